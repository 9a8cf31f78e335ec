"""IO: scales by resolution, layout, zeros, alignment, bounds, zero chunks, threads, and
the memory layout of writes."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_precomputed import build_cv_layer
from precomputed_support import raw_read, small_volume_params, stored_chunks

from lamina import BBox3D, UnknownResolutionError, Vec3D, VolumetricIndex

FINE = Vec3D(4, 4, 40)
COARSE = Vec3D(8, 8, 40)


@pytest.fixture
def layer(tmp_path: Path) -> Any:
    return build_cv_layer(tmp_path / "v", **small_volume_params())


def idx(start: Any, stop: Any, res: Any = FINE) -> VolumetricIndex:
    return VolumetricIndex.from_coords(start, stop, res)


def test_the_index_resolution_picks_the_scale(layer: Any) -> None:
    layer[FINE, 0:64, 0:64, 0:4] = 1
    layer[COARSE, 0:32, 0:32, 0:4] = 2
    assert (layer[FINE, 0:64, 0:64, 0:4] == 1).all()
    assert (layer[COARSE, 0:32, 0:32, 0:4] == 2).all()
    # index at 4 nm, read at 8 nm: the same region, half the voxels
    at_index = build_cv_layer(layer.name, index_resolution=FINE, default_desired_resolution=COARSE)
    assert at_index[0:64, 0:64, 0:4].shape == (1, 32, 32, 4)
    assert (at_index[0:64, 0:64, 0:4] == 2).all()


def test_data_resolution_resamples_from_the_stored_scale(layer: Any) -> None:
    layer[COARSE, 0:32, 0:32, 0:4] = 5
    upsampled = build_cv_layer(
        layer.name, data_resolution=COARSE, interpolation_mode="img", readonly=True
    )
    out = upsampled[FINE, 0:64, 0:64, 0:4]
    assert out.shape == (1, 64, 64, 4)
    assert (out == 5).all()


def test_an_unknown_resolution_names_the_path_and_the_scales(layer: Any) -> None:
    with pytest.raises(UnknownResolutionError) as caught:
        layer[Vec3D(16, 16, 40), 0:8, 0:8, 0:1]
    message = str(caught.value)
    assert layer.name in message
    assert "(4, 4, 40), (8, 8, 40)" in message
    with pytest.raises(UnknownResolutionError):
        layer[Vec3D(16, 16, 40), 0:32, 0:32, 0:4] = 1


def test_reads_are_channels_first_views_of_fortran_cutouts(tmp_path: Path) -> None:
    layer = build_cv_layer(tmp_path / "v", **small_volume_params(info_num_channels=3))
    data = np.arange(3 * 64 * 32 * 4, dtype=np.uint8).reshape(3, 64, 32, 4)
    layer[FINE, 0:64, 0:32, 0:4] = data
    out = layer[FINE, 0:64, 0:32, 0:4]
    assert out.shape == (3, 64, 32, 4)
    np.testing.assert_array_equal(out, data)
    assert type(out) is np.ndarray
    # (C, X, Y, Z) with x fastest: the transpose of a Fortran-ordered (X, Y, Z, C)
    # array, not a copy of it.
    assert out.base is not None
    assert out.transpose(1, 2, 3, 0).flags.f_contiguous


def test_a_read_keeps_at_most_one_copy_of_the_data(tmp_path: Path) -> None:
    layer = build_cv_layer(
        tmp_path / "v",
        **small_volume_params(
            info_chunk_size=(64, 64, 8),
            info_bbox=BBox3D.from_coords((0, 0, 0), (256, 256, 16), FINE),
            info_scales=[FINE],
        ),
    )
    layer[FINE, 0:256, 0:256, 0:16] = np.ones((1, 256, 256, 16), np.uint8)
    layer[FINE, 0:64, 0:64, 0:8]  # warm up: handles, imports
    tracemalloc.start()
    try:
        out = layer[FINE, 0:256, 0:256, 0:16]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.nbytes == 256 * 256 * 16
    # The output buffer plus a chunk or two being decoded; never two full copies.
    assert peak < 1.5 * out.nbytes, (peak, out.nbytes)


def test_missing_chunks_and_out_of_bounds_read_as_zeros(layer: Any) -> None:
    layer[FINE, 0:32, 0:32, 0:4] = 7
    out = layer[FINE, -16:48, -16:48, -2:6]
    assert out.shape == (1, 64, 64, 8)
    assert (out[:, 16:48, 16:48, 2:6] == 7).all()
    out[:, 16:48, 16:48, 2:6] = 0
    assert not out.any()
    assert not layer[FINE, 500:600, 500:600, 100:101].any()


# -- writes: alignment, bounds, zero chunks ----------------------------------------------------
def test_writes_are_chunk_aligned_unless_opted_out(layer: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not aligned to the chunk grid"):
        layer[FINE, 1:33, 0:32, 0:4] = 1
    assert not stored_chunks(layer.name, "4_4_40")
    loose = build_cv_layer(layer.name, cv_kwargs={"non_aligned_writes": True})
    assert not loose.backend.enforce_chunk_aligned_writes
    loose[FINE, 1:33, 0:32, 0:4] = 1
    out = layer[FINE, 0:40, 0:32, 0:4]
    assert (out[:, 1:33] == 1).all()
    assert not out[:, 0].any()
    assert not out[:, 33:].any()


def test_writes_outside_the_bounds_are_refused_before_anything_is_written(layer: Any) -> None:
    with pytest.raises(ValueError, match=r"outside the dataset bounds.*autocrop"):
        layer[FINE, 96:160, 0:32, 0:4] = 3  # x reaches 160; the dataset ends at 128
    assert not stored_chunks(layer.name, "4_4_40")


def test_autocrop_is_an_explicit_opt_in(layer: Any) -> None:
    cropping = build_cv_layer(layer.name, cv_kwargs={"autocrop": True})
    data = np.arange(64 * 32 * 4, dtype=np.uint8).reshape(1, 64, 32, 4) + 1
    cropping[FINE, 96:160, -32:0, 0:4] = data  # wholly outside in y: nothing to write
    assert not stored_chunks(layer.name, "4_4_40")
    cropping[FINE, 96:160, 0:32, 0:4] = data
    np.testing.assert_array_equal(layer[FINE, 96:128, 0:32, 0:4], data[:, :32])
    assert {box[:2] for box in stored_chunks(layer.name, "4_4_40")} == {(96, 128)}


def test_all_zero_chunks_are_stored_by_default(layer: Any) -> None:
    layer[FINE, 0:32, 0:32, 0:4] = 5
    layer[FINE, 0:32, 0:32, 0:4] = 0
    assert stored_chunks(layer.name, "4_4_40") == [(0, 32, 0, 32, 0, 4)]
    assert not layer[FINE, 0:32, 0:32, 0:4].any()
    skipping = build_cv_layer(layer.name, cv_kwargs={"delete_black_uploads": True})
    skipping[FINE, 0:32, 0:32, 0:4] = 0
    assert stored_chunks(layer.name, "4_4_40") == []  # deleted: the documented opt-in
    skipping[FINE, 32:64, 0:32, 0:4] = np.zeros((1, 32, 32, 4), np.uint8)
    assert stored_chunks(layer.name, "4_4_40") == []


def test_negative_values_into_uint64_are_refused(tmp_path: Path) -> None:
    layer = build_cv_layer(tmp_path / "v", **small_volume_params(info_data_type="uint64"))
    with pytest.raises(ValueError, match="without losing data"):
        layer[FINE, 0:32, 0:32, 0:4] = np.full((1, 32, 32, 4), -1, np.int64)
    layer[FINE, 0:32, 0:32, 0:4] = np.full((1, 32, 32, 4), 2**40, np.int64)
    assert (layer[FINE, 0:32, 0:32, 0:4] == 2**40).all()


def test_many_threads_write_and_read_one_layer(layer: Any) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        try:
            x, y = 32 * (i % 4), 32 * (i // 4)
            data = np.full((1, 32, 32, 4), i + 1, np.uint8)
            barrier.wait(timeout=30)
            for _ in range(5):
                layer[FINE, x : x + 32, y : y + 32, 0:4] = data
                np.testing.assert_array_equal(layer[FINE, x : x + 32, y : y + 32, 0:4], data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    expected = np.zeros((1, 128, 64, 4), np.uint8)
    for i in range(8):
        expected[:, 32 * (i % 4) : 32 * (i % 4) + 32, 32 * (i // 4) : 32 * (i // 4) + 32] = i + 1
    np.testing.assert_array_equal(raw_read(layer.name, idx((0, 0, 0), (128, 64, 4))), expected)


@pytest.mark.cloudvolume_engine  # lamina's own chunk IO
def test_raw_chunks_are_read_through_one_buffer_per_thread(
    layer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local raw chunks are read into the reading thread's scratch buffer, not a new one
    per chunk; what a read returns never shares it, and a short chunk is still damaged."""
    from lamina_precomputed.codecs import DamagedChunkError
    from lamina_precomputed.storage import FileStore

    rng = np.random.default_rng(0)
    first_data = rng.integers(0, 255, (1, 64, 64, 4), dtype=np.uint8)
    layer[FINE, 0:64, 0:64, 0:4] = first_data
    layer[FINE, 64:128, 0:64, 0:4] = 255 - first_data
    transient: list[str] = []
    real = FileStore.get_transient

    def counted(store: FileStore, name: str, span: Any = None) -> Any:
        transient.append(name)
        return real(store, name, span)

    monkeypatch.setattr(FileStore, "get_transient", counted)
    first = layer[FINE, 0:64, 0:64, 0:4]
    second = layer[FINE, 64:128, 0:64, 0:4]
    np.testing.assert_array_equal(first, first_data)
    np.testing.assert_array_equal(second, 255 - first_data)
    assert len(transient) == 8  # every chunk of both reads
    store = FileStore(f"file://{tmp_path / 'v'}")
    one, other = (
        store.get_transient("4_4_40/0-32_0-32_0-4"),
        store.get_transient("4_4_40/32-64_0-32_0-4"),
    )
    assert one is not None
    assert other is not None
    assert np.shares_memory(np.frombuffer(one, np.uint8), np.frombuffer(other, np.uint8))
    assert bytes(other) == (tmp_path / "v" / "4_4_40" / "32-64_0-32_0-4").read_bytes()
    chunk = tmp_path / "v" / "4_4_40" / "0-32_0-32_0-4"
    chunk.write_bytes(chunk.read_bytes()[:-1])
    with pytest.raises(DamagedChunkError, match="0-32_0-32_0-4"):
        build_cv_layer(layer.name)[FINE, 0:64, 0:64, 0:4]


@pytest.mark.cloudvolume_engine  # lamina's own chunk IO
@pytest.mark.parametrize(("dtype", "channels"), [("uint8", 1), (">u2", 2), ("float32", 3)])
def test_cutouts_read_only_the_planes_they_need_from_raw_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: str, channels: int
) -> None:
    """Random cutouts of a volume CloudVolume wrote (edge chunks clipped) equal its data,
    though each raw chunk file is read only from the cutout's first voxel to its last."""
    from lamina_precomputed import storage
    from precomputed_support import raw_write

    native = np.dtype(dtype).newbyteorder("=")
    bbox = BBox3D.from_coords((0, 0, 0), (100, 90, 13), FINE)
    layer = build_cv_layer(
        tmp_path / "v",
        **small_volume_params(
            info_scales=[FINE],
            info_bbox=bbox,
            info_data_type=native.name,
            info_num_channels=channels,
        ),
    )
    rng = np.random.default_rng(1)
    data = rng.integers(0, 60000, (channels, 100, 90, 13)).astype(native)
    raw_write(layer.name, idx((0, 0, 0), (100, 90, 13)), data)
    spans: list[int] = []
    real = storage.read_span

    def recorded(fd: int, buffer: memoryview, first: int, last: int, offset: int = 0) -> int:
        spans.append(last - first)
        return real(fd, buffer, first, last, offset)

    monkeypatch.setattr(storage, "read_span", recorded)
    fresh = build_cv_layer(layer.name)
    for _ in range(30):
        lo = [int(rng.integers(0, n - 1)) for n in (100, 90, 13)]
        hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, (100, 90, 13), strict=True)]
        cutout = fresh[FINE, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        np.testing.assert_array_equal(cutout, data[:, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]])
    spans.clear()
    fresh[FINE, 40:50, 40:50, 5:6]  # one plane of one chunk: 10 rows of it
    chunk_bytes = 32 * 32 * 4 * channels * native.itemsize
    if channels == 1:
        assert spans == [(9 * 32 + 10) * native.itemsize]
    assert len(spans) == 1
    assert spans[0] < chunk_bytes


@pytest.mark.cloudvolume_engine  # lamina's own chunk IO
@pytest.mark.parametrize("helper", ["thread", "took it", "taken back"])
def test_large_local_reads_share_their_chunks_with_a_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: str
) -> None:
    """A local read of at least ``SHARED_FROM`` chunks gives half to a helper thread (or
    takes it back when the helper is busy): every chunk lands, absent ones as zeros."""
    from lamina_precomputed import scale_io

    from lamina.testing import StandInHelper

    monkeypatch.setattr(scale_io, "SHARED_FROM", 16)
    stand_in = StandInHelper(runs=helper == "took it")
    if helper != "thread":
        monkeypatch.setattr(scale_io, "shared_pool", lambda name, workers: stand_in)
    layer = build_cv_layer(tmp_path / "v", **small_volume_params(info_scales=[FINE]))
    data = np.random.default_rng(2).integers(1, 255, (1, 128, 128, 8), dtype=np.uint8)
    layer[FINE, 0:128, 0:128, 0:8] = data
    (tmp_path / "v" / "4_4_40" / "96-128_64-96_4-8").unlink()
    data[:, 96:128, 64:96, 4:8] = 0
    read = build_cv_layer(layer.name)[FINE, 0:128, 0:128, 0:8]  # 32 chunks
    np.testing.assert_array_equal(read, data)
    assert stand_in.submitted == (0 if helper == "thread" else 1)


# -- the memory layout of writes ---------------------------------------------------------------
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_every_memory_layout_stores_the_same_chunk_files(tmp_path: Path, layout: str) -> None:
    """C-ordered (C, X, Y, Z) arrays, x-fastest ones and strided views are encoded alike:
    the chunk files hold x-fastest raw bytes whatever the input's layout."""
    data = np.random.default_rng(0).integers(0, 255, (2, 64, 32, 4), np.uint8)
    given = {
        "C": np.ascontiguousarray(data),
        "F": np.asfortranarray(data.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2),
        "strided": np.repeat(data, 2, axis=1)[:, ::2],
    }[layout]
    layer = build_cv_layer(tmp_path / "v", **small_volume_params(info_num_channels=2))
    layer[FINE, 0:64, 0:32, 0:4] = given
    chunk = (tmp_path / "v" / "4_4_40" / "32-64_0-32_0-4").read_bytes()
    assert chunk == data[:, 32:64, 0:32, 0:4].transpose(1, 2, 3, 0).tobytes(order="F")
    np.testing.assert_array_equal(layer[FINE, 0:64, 0:32, 0:4], data)


@pytest.mark.cloudvolume_engine  # TensorStore encodes and stores on its own threads
@pytest.mark.parametrize("layout", ["C", "F", "fill", "non-aligned"])
def test_large_writes_are_cut_into_slabs_on_the_write_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    import lamina_precomputed.backend as backend_module
    from lamina_precomputed.scale_io import ScaleIO

    for name in ("_SPLIT_BYTES", "_SLAB_BYTES"):
        monkeypatch.setattr(backend_module, name, 8192)  # a 256 KiB write: many slabs
    layer = build_cv_layer(tmp_path / "v", **small_volume_params(info_num_channels=2))
    slabs: list[tuple[Any, ...]] = []
    real = ScaleIO.write

    def spy(self: Any, xyzc: Any, start: Any, partial: bool) -> None:
        slabs.append((xyzc.shape, tuple(start)))
        real(self, xyzc, start, partial)

    monkeypatch.setattr(ScaleIO, "write", spy)
    rng = np.random.default_rng(3)
    region = idx((0, 0, 0), (128, 128, 8))
    if layout == "C":
        data: Any = np.ascontiguousarray(rng.integers(0, 255, (2, 128, 128, 8), np.uint8))
        expected = data
    elif layout == "F":
        data = np.asfortranarray(rng.integers(0, 255, (128, 128, 8, 2), np.uint8))
        data = data.transpose(3, 0, 1, 2)
        expected = data
    elif layout == "fill":
        data = 7
        expected = np.full((2, 128, 128, 8), 7, np.uint8)
    else:
        layer = build_cv_layer(layer.name, cv_kwargs={"non_aligned_writes": True})
        region = idx((5, 3, 1), (120, 128, 7))
        data = np.ascontiguousarray(rng.integers(1, 255, (2, 115, 125, 6), np.uint8))
        expected = data
    layer[region] = data
    assert len(slabs) > 1
    for _, start in slabs:  # every cut is a chunk-grid line
        assert all(
            s == r or s % c == 0 for s, r, c in zip(start, region.start, (32, 32, 4), strict=True)
        ), start
    np.testing.assert_array_equal(raw_read(layer.name, region), expected)
    if layout == "non-aligned":
        around = raw_read(layer.name, idx((0, 0, 0), (128, 128, 8)))
        around[:, 5:120, 3:128, 1:7] = 0
        assert not around.any()


def test_writes_leave_no_temporary_files_and_survive_a_deleted_volume(
    layer: Any, tmp_path: Path
) -> None:
    """Chunk files are written to a temporary name and renamed into place (a reader never
    sees half a chunk); directories removed by ``delete`` are made again."""
    for _ in range(2):
        layer[FINE, 0:64, 0:64, 0:4] = 1
        layer[COARSE, 0:32, 0:32, 0:4] = 2
        assert sorted(p.name for p in (tmp_path / "v" / "4_4_40").iterdir()) == [
            "0-32_0-32_0-4",
            "0-32_32-64_0-4",
            "32-64_0-32_0-4",
            "32-64_32-64_0-4",
        ]
        assert (layer[COARSE, 0:32, 0:32, 0:4] == 2).all()
        layer.backend.delete()
        layer = build_cv_layer(tmp_path / "v", **small_volume_params())
