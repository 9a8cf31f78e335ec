"""``layer.to_dask``: equal to a direct read for every format, a resampling layer and
processors; blocks on the storage grid, each storage chunk read once; a small graph that
computes on the threaded scheduler and on a 2-worker LocalCluster."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
from arrays_support import (
    BOX,
    CHUNK,
    OFFSET,
    SHAPE,
    R,
    Recorder,
    data,
    hdf5_layer,
    memory_layer,
    precomputed_layer,
    zarr_layer,
)

import lamina
from lamina import BBox3D, Vec3D
from lamina.volumetric.memory import MemoryVolumetricBackend

FORMATS = {
    "memory": lambda tmp: memory_layer(),
    "precomputed": lambda tmp: precomputed_layer(tmp / "vol"),
    "hdf5": lambda tmp: hdf5_layer(tmp / "vol.h5"),
    "zarr": lambda tmp: zarr_layer(tmp / "vol.ome.zarr"),
    "zarr-sharded": lambda tmp: zarr_layer(tmp / "vol.ome.zarr", info_shard_size=(64, 64, 8)),
}


def resampling_layer(resolution: tuple[int, int, int]) -> Any:
    """The in-memory volume read at ``resolution`` (indexed there too) from its 8 nm data."""
    return lamina.build_volumetric_layer(
        memory_layer().backend,
        default_desired_resolution=resolution,
        index_resolution=resolution,
        data_resolution=R,
        interpolation_mode="img",
    )


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_compute_equals_a_direct_read(fmt: str, tmp_path: Path) -> None:
    layer = FORMATS[fmt](tmp_path)
    array = layer.to_dask()
    assert array.shape == (1, *SHAPE)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array.compute(), data())
    box = BBox3D.from_coords((20, 40, 9), (150, 170, 30), R)  # off the grid on every face
    part = layer.to_dask(bbox=box, chunks=(64, 64, 8))
    np.testing.assert_array_equal(part.compute(), layer[20:150, 40:170, 9:30])


def test_reads_go_through_processors_and_resampling() -> None:
    inverted = memory_layer().with_procs(read_procs=[lambda d: 255 - d])
    np.testing.assert_array_equal(inverted.to_dask().compute(), 255 - data())
    coarse = resampling_layer((16, 16, 40))
    array = coarse.to_dask(chunks=(32, 32, 8))
    assert array.shape == (1, SHAPE[0] // 2, SHAPE[1] // 2, SHAPE[2])
    # the data's 32 x 32 x 8 grid at 8 nm is 16 x 16 x 8 at 16 nm, from the offset 8, 16, 8
    assert array.chunks[1:] == ((32, 32, 32), (32, 32, 16), (8, 8, 8))
    with pytest.raises(ValueError, match=r"storage grid \[16, 16, 8\]"):
        coarse.to_dask(chunks=(24, 32, 8))
    expected = coarse[8 : 8 + SHAPE[0] // 2, 16 : 16 + SHAPE[1] // 2, 8 : 8 + SHAPE[2]]
    np.testing.assert_array_equal(array.compute(), expected)


def test_blocks_follow_the_storage_grid_and_read_every_chunk_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = memory_layer()
    box = BBox3D.from_coords((20, 40, 9), (150, 170, 30), R)
    array = layer.to_dask(bbox=box, chunks=(64, 32, 8))
    # the first block ends on the grid (offset 16, 32, 8; cells of 64 x 32 x 8)
    assert array.chunks[1] == (60, 64, 6)
    assert array.chunks[2] == (24, 32, 32, 32, 10)
    assert array.chunks[3] == (7, 8, 6)
    reads = Recorder(monkeypatch, MemoryVolumetricBackend)
    array.compute(scheduler="threads")
    assert len(reads.boxes) == 3 * 5 * 3
    reads.assert_disjoint_and_on_grid(OFFSET, CHUNK)
    with pytest.raises(
        ValueError, match=r"whole multiples of the storage grid \[32, 32, 8\].*try \[64, 32, 8\]"
    ):
        layer.to_dask(chunks=(50, 32, 8))
    with pytest.raises(ValueError, match="channel axis is one block"):
        layer.to_dask(chunks=(2, 64, 64, 8))
    with pytest.raises(lamina.UnknownResolutionError, match="not a scale"):
        layer.to_dask(resolution=(16, 16, 40))


def test_blocks_of_a_sharded_zarr_follow_the_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lamina_zarr import ZarrBackend

    layer = zarr_layer(tmp_path / "vol.ome.zarr", info_shard_size=(64, 64, 16))
    with dask.config.set({"array.chunk-size": "64KiB"}):  # a shard of uint8 per block
        array = layer.to_dask()
    assert all(len(set(c[:-1])) <= 1 for c in array.chunks[1:])  # whole shards
    assert array.chunks[1][0] == 64
    assert array.numblocks[1:] == (3, 3, 2)
    reads = Recorder(monkeypatch, ZarrBackend, "read_into")
    np.testing.assert_array_equal(array.compute(scheduler="threads"), data())
    assert len(reads.boxes) == np.prod([len(c) for c in array.chunks[1:]])
    reads.assert_disjoint_and_on_grid(OFFSET, (64, 64, 16))
    with pytest.raises(ValueError, match=r"storage grid \[64, 64, 16\]"):
        layer.to_dask(chunks=(32, 32, 8))


def test_the_graph_is_small_and_computes_on_a_cluster(tmp_path: Path, client: Any) -> None:
    layer = precomputed_layer(tmp_path / "vol")
    array = layer.to_dask(chunks=(64, 64, 8))
    assert len(pickle.dumps(array)) < 20_000  # the layer travels by spec, not by data
    np.testing.assert_array_equal(client.compute(array).result(), data())
    summed = client.compute((array.astype("uint32") * 2).sum()).result()
    assert summed == int(data().astype("uint64").sum() * 2)
    assert layer.backend.get_bounds(R).bbox == BOX
    assert Vec3D(*OFFSET) == layer.backend.get_voxel_offset(R)


def test_default_blocks_are_whole_cells_that_fit_dasks_chunk_size() -> None:
    layer = memory_layer()
    assert layer.to_dask().numblocks == (1, 1, 1, 1)  # 720 KiB: one block of 128 MiB
    with dask.config.set({"array.chunk-size": "100KiB"}):
        array = layer.to_dask()
    # 32 x 32 x 8 cells (8 KiB) grown alike on every axis: 2 x 2 x 2 of them, 64 KiB
    assert array.chunks[1:] == ((64, 64, 64), (64, 64, 32), (16, 8))
    np.testing.assert_array_equal(array.compute(), data())


def test_default_blocks_of_huge_and_thin_boxes() -> None:
    import attrs

    from lamina.arrays.blocks import ArrayGeometry, block_sizes, default_block_size

    def geometry(stop: tuple[int, int, int], grid: Any) -> ArrayGeometry:
        return ArrayGeometry(R, (0, 0, 0), stop, 1, np.dtype("uint8"), grid)

    petascale = geometry((10**6, 10**6, 10**5), ((0, 0, 0), (128, 128, 16)))
    assert default_block_size(petascale) == (1024, 1024, 128)  # 8 x 8 x 8 chunks, 128 MiB
    # a box one voxel thick on two axes, without a grid: found at once, not voxel by voxel
    assert default_block_size(geometry((1, 1, 10**12), None)) == (1, 1, 2**27)
    big_cells = geometry((4096, 4096, 512), ((0, 0, 0), (1024, 1024, 256)))
    assert default_block_size(big_cells) == (1024, 1024, 256)  # one cell, though larger
    # 32 voxels across two cells of the grid: one block of both, not two halves
    straddling = attrs.evolve(geometry((64, 32, 8), ((16, 0, 0), (32, 32, 8))), start=(32, 0, 0))
    assert block_sizes(straddling, None)[1:] == ((32,), (32,), (8,))


def test_compute_returns_the_layers_memory_order(tmp_path: Path) -> None:
    from lamina.arrays.layer_array import LayerArray

    layer = precomputed_layer(tmp_path / "vol")
    direct = layer[BOX]
    for array in (layer.to_dask(), layer.to_dask(chunks=(64, 64, 8))):
        assert isinstance(array, LayerArray)
        computed = array.compute(scheduler="threads")
        np.testing.assert_array_equal(computed, data())
        assert computed.strides == direct.strides  # x fastest, as the layer reads
    multi = layer.to_dask(chunks=(64, 64, 8))
    (unoptimized,) = dask.compute(multi, optimize_graph=False)  # blocks in C order
    np.testing.assert_array_equal(unoptimized, data())
    derived = (multi + 1).compute(scheduler="threads")  # a plain Dask array: C blocks
    assert type(multi + 1) is dask.array.Array
    assert derived.flags.c_contiguous
    np.testing.assert_array_equal(derived, data() + 1)


def test_a_box_sliced_out_reads_only_that_box(monkeypatch: pytest.MonkeyPatch) -> None:
    from lamina.arrays.layer_array import LayerArray

    layer = memory_layer()
    array = layer.to_dask()  # one block of the whole volume
    reads = Recorder(monkeypatch, MemoryVolumetricBackend)
    part = array[:, 10:100, -40:, 3:]
    assert isinstance(part, LayerArray)
    assert part.numblocks == (1, 1, 1, 1)
    np.testing.assert_array_equal(part.compute(scheduler="threads"), data()[:, 10:100, -40:, 3:])
    start = (OFFSET[0] + 10, OFFSET[1] + 120, OFFSET[2] + 3)
    assert reads.boxes == [(start, (OFFSET[0] + 100, OFFSET[1] + 160, OFFSET[2] + 24))]
    reads.boxes.clear()
    blocked = layer.to_dask(chunks=(64, 32, 8))[:, 10:100, -40:, 3:]  # keeps their grid
    assert blocked.chunks[1:] == ((54, 36), (8, 32), (5, 8, 8))
    np.testing.assert_array_equal(blocked.compute(scheduler="threads"), data()[:, 10:100, -40:, 3:])
    assert len(reads.boxes) == 2 * 2 * 3
    reads.assert_disjoint_and_on_grid(OFFSET, CHUNK)
    # anything but a box of voxels is dask's own indexing, over whole blocks
    np.testing.assert_array_equal(array[0, ::2, 5].compute(), data()[0, ::2, 5])
    np.testing.assert_array_equal(array[:, 5:9][0:1, 1:3].compute(), data()[:, 6:8])
    assert type(array[0]) is dask.array.Array


def test_slices_stay_dasks_where_a_box_could_read_differently(tmp_path: Path) -> None:
    """After an item assignment, with a processor whose values depend on the box read,
    and on an upsampling layer, a slice is dask's own: equal to the computed array's."""
    from lamina.arrays.layer_array import LayerArray

    assigned = memory_layer().to_dask()
    assigned[:, 0:10] = 0
    np.testing.assert_array_equal(
        assigned[:, 5:15].compute(scheduler="threads"),
        assigned.compute(scheduler="threads")[:, 5:15],
    )
    assert (assigned[:, 5:10].compute(scheduler="threads") == 0).all()
    by_box = memory_layer().with_procs(read_procs=[lambda d: d // 2 + d.max() // 2])
    array = by_box.to_dask(chunks=(64, 64, 8))
    assert not isinstance(array[:, 3:50, 7:60, 1:9], LayerArray)
    np.testing.assert_array_equal(
        array[:, 3:50, 7:60, 1:9].compute(scheduler="threads"),
        array.compute(scheduler="threads")[:, 3:50, 7:60, 1:9],
    )
    upsampled = resampling_layer((4, 4, 40)).to_dask()
    np.testing.assert_array_equal(
        upsampled[:, 3:41, 5:30, 1:9].compute(scheduler="threads"),
        upsampled.compute(scheduler="threads")[:, 3:41, 5:30, 1:9],
    )
