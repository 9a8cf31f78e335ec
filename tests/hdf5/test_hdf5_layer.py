"""build_h5_layer: the documented layout, creation policy, existing files, CREMI, errors."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from lamina_hdf5 import H5InfoMismatchError, build_h5_layer

import lamina
from lamina import BBox3D

BBOX = BBox3D.from_coords((0, 0, 0), (256, 128, 32), (4, 4, 40))


def params(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "info_type": "image",
        "info_data_type": "uint8",
        "info_num_channels": 1,
        "info_chunk_size": (64, 64, 8),
        "info_bbox": BBOX,
        "info_scales": [(4, 4, 40), (8, 8, 40)],
    }
    base.update(over)
    return base


def test_signature_mirrors_build_cv_layer() -> None:
    names = list(inspect.signature(build_h5_layer).parameters)
    for name in (
        "default_desired_resolution",
        "index_resolution",
        "data_resolution",
        "interpolation_mode",
        "readonly",
        "allow_slice_rounding",
        "index_procs",
        "read_procs",
        "write_procs",
        "info_compression",
        "info_compression_level",
        "resolution",
        "axes",
    ):
        assert name in names
    assert names[:2] == ["path", "dataset"]


def test_lamina_namespace_builds_through_the_hook(tmp_path: Path) -> None:
    layer = lamina.build_h5_layer(tmp_path / "a.h5", "vol", **params())
    assert type(layer.backend).__name__ == "H5Backend"


def test_layout_is_zyx_with_attributes_a_plain_h5py_user_reads(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    layer = build_h5_layer(
        path, "vol", **params(), index_resolution=(8, 8, 40), default_desired_resolution=(8, 8, 40)
    )
    data = (np.arange(128 * 64 * 8) % 251).astype(np.uint8).reshape(1, 128, 64, 8)
    layer[0:128, 0:64, 0:8] = data
    with h5py.File(path, "r") as f:
        group = f["vol"]
        assert group.attrs["lamina_layout"] == "lamina-hdf5/1"
        assert group.attrs["type"] == "image"
        assert sorted(group) == ["4_4_40", "8_8_40"]
        ds = group["8_8_40"]
        assert ds.shape == (32, 64, 128)  # z, y, x
        assert ds.chunks == (8, 64, 64)
        assert ds.attrs["axes"] == "zyx"
        assert list(ds.attrs["resolution"]) == [40, 8, 8]
        assert list(ds.attrs["voxel_offset"]) == [0, 0, 0]
        assert list(ds.attrs["chunk_size"]) == [8, 64, 64]
        fine = group["4_4_40"]
        assert fine.shape == (32, 128, 256)
        z, y, x = 3, 10, 20
        assert ds[z, y, x] == data[0, x, y, z]


def test_reads_are_views_of_c_order_zyx(tmp_path: Path) -> None:
    layer = build_h5_layer(
        tmp_path / "a.h5",
        "vol",
        **params(),
        index_resolution=(4, 4, 40),
        default_desired_resolution=(4, 4, 40),
    )
    out = layer[0:64, 0:64, 0:8]
    assert out.shape == (1, 64, 64, 8)
    assert out.base is not None  # a transposed view
    assert out.transpose(0, 3, 2, 1).flags.c_contiguous


@pytest.mark.parametrize(
    ("fill_time", "direct"),
    [("never", False), ("ifset", True), ("alloc", True)],
)
def test_unwritten_chunks_read_as_zeros_whatever_the_fill_time(
    tmp_path: Path, fill_time: str, direct: bool
) -> None:
    """lamina reads into uninitialised memory only where HDF5 writes every voxel itself;
    with fill time "never" HDF5 may skip unallocated chunks, so h5py's zeroed read stays."""
    from h5py import h5d, h5p, h5s, h5t
    from lamina_hdf5 import handles

    path = tmp_path / "fill.h5"
    with h5py.File(path, "w") as f:
        dcpl = h5p.create(h5p.DATASET_CREATE)
        dcpl.set_chunk((4, 32, 32))
        dcpl.set_fill_time(getattr(h5d, f"FILL_TIME_{fill_time.upper()}"))
        h5d.create(f.id, b"raw", h5t.NATIVE_UINT16, h5s.create_simple((8, 64, 64)), dcpl=dcpl)
        f["raw"][0:4, 0:32, 0:32] = 7  # one chunk allocated, three not
    layer = build_h5_layer(
        path,
        "raw",
        resolution=(4, 4, 40),
        axes="zyx",
        index_resolution=(4, 4, 40),
        default_desired_resolution=(4, 4, 40),
    )
    for _ in range(3):
        dirty = np.full((8, 64, 64), 0xABCD, dtype=np.uint16)  # memory the read may reuse
        del dirty
        out = layer[0:64, 0:64, 0:8]
        assert (out[:, 0:32, 0:32, 0:4] == 7).all()
        assert int(out.sum()) == 7 * 32 * 32 * 4  # everything else reads as zeros
    reader = handles.state(str(path.resolve())).datasets["raw"]
    assert reader.direct is direct


def test_multichannel_is_czyx(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    layer = build_h5_layer(
        path,
        "vol",
        **params(info_num_channels=3),
        index_resolution=(4, 4, 40),
        default_desired_resolution=(4, 4, 40),
    )
    data = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 8), dtype=np.uint8)
    layer[0:64, 0:64, 0:8] = data
    with h5py.File(path, "r") as f:
        ds = f["vol/4_4_40"]
        assert ds.attrs["axes"] == "czyx"
        np.testing.assert_array_equal(ds[:, 0:8, 0:64, 0:64], data.transpose(0, 3, 2, 1))
    np.testing.assert_array_equal(layer[0:64, 0:64, 0:8], data)


@pytest.mark.parametrize(("compression", "level"), [("gzip", 7), ("lzf", None), (None, None)])
def test_compression(tmp_path: Path, compression: str | None, level: int | None) -> None:
    path = tmp_path / "a.h5"
    build_h5_layer(
        path, "vol", **params(info_compression=compression, info_compression_level=level)
    )
    with h5py.File(path, "r") as f:
        assert f["vol/4_4_40"].compression == compression
        if level is not None:
            assert f["vol/4_4_40"].compression_opts == level


def test_bad_compression_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="info_compression"):
        build_h5_layer(tmp_path / "a.h5", "vol", **params(info_compression="zstd"))
    with pytest.raises(ValueError, match="info_compression_level"):
        build_h5_layer(tmp_path / "b.h5", "vol", **params(info_compression_level=3))


def test_info_params_without_scales_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="info_compression given without info_scales"):
        build_h5_layer(tmp_path / "a.h5", info_compression="gzip")


def test_policy_same_spec_is_kept_differences_need_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    layer = build_h5_layer(
        path, "vol", **params(), index_resolution=(4, 4, 40), default_desired_resolution=(4, 4, 40)
    )
    layer[0:64, 0:64, 0:8] = 5
    again = build_h5_layer(
        path, "vol", **params(), index_resolution=(4, 4, 40), default_desired_resolution=(4, 4, 40)
    )
    assert (again[0:64, 0:64, 0:8] == 5).all()
    with pytest.raises(H5InfoMismatchError, match="info_overwrite=False") as err:
        build_h5_layer(path, "vol", **params(info_chunk_size=(32, 32, 8)))
    assert "scales[4_4_40].chunk_size" in str(err.value)
    with pytest.raises(H5InfoMismatchError, match="info_keep_existing_scales"):
        build_h5_layer(path, "vol", **params(info_data_type="uint16", info_scales=[(16, 16, 40)]))
    # a new scale is added, existing ones kept
    build_h5_layer(path, "vol", **params(info_scales=[(16, 16, 40)]))
    with h5py.File(path, "r") as f:
        assert sorted(f["vol"]) == ["16_16_40", "4_4_40", "8_8_40"]
    build_h5_layer(
        path,
        "vol",
        **params(info_scales=[(4, 4, 40)], info_data_type="uint16"),
        info_overwrite=True,
        info_keep_existing_scales=False,
    )
    with h5py.File(path, "r") as f:
        assert sorted(f["vol"]) == ["4_4_40"]
        assert f["vol/4_4_40"].dtype == np.uint16


def test_reference_hdf5_volume_written_like_h5ls(tmp_path: Path) -> None:
    ref = tmp_path / "ref.h5"
    build_h5_layer(ref, "em/raw", **params(info_compression="gzip"))
    layer = build_h5_layer(
        tmp_path / "new.h5",
        info_reference_path=f"{ref}/em/raw",
        info_inherit_all_params=True,
        info_scales=[(8, 8, 40)],
    )
    backend: Any = layer.backend
    assert backend.dataset == "volume"
    assert backend.get_dataset_size((8, 8, 40)) == lamina.Vec3D(128, 64, 32)
    assert backend.describe()["scales"][0]["compression"] == "gzip"


def test_non_aligned_writes_opt_in_and_no_silent_crop(tmp_path: Path) -> None:
    layer = build_h5_layer(
        tmp_path / "a.h5",
        "vol",
        **params(),
        index_resolution=(4, 4, 40),
        default_desired_resolution=(4, 4, 40),
    )
    with pytest.raises(ValueError, match="not aligned"):
        layer[1:10, 0:64, 0:8] = 1
    with pytest.raises(ValueError, match="bounds"):
        layer[192:320, 0:64, 0:8] = 1
    loose = lamina.build_volumetric_layer(
        layer.backend.with_changes(enforce_chunk_aligned_writes=False),
        index_resolution=(4, 4, 40),
        default_desired_resolution=(4, 4, 40),
    )
    loose[1:10, 2:5, 3:4] = 9
    out = layer[0:64, 0:64, 0:8]
    assert (out[0, 1:10, 2:5, 3] == 9).all()
    assert out.sum() == 9 * 9 * 3


# -- files lamina did not write ------------------------------------------------------------------
def test_plain_h5py_dataset_with_resolution_and_axes(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    arr = np.random.default_rng(1).integers(0, 1000, (20, 30, 40, 2), dtype=np.uint16)  # xyzc
    with h5py.File(path, "w") as f:
        f.create_dataset("deep/data", data=arr, chunks=(10, 10, 10, 2))
    with pytest.raises(ValueError, match=r"'axes' attribute.*axes="):
        build_h5_layer(path, "deep/data")
    with pytest.raises(ValueError, match=r"'resolution' attribute.*resolution="):
        build_h5_layer(path, "deep/data", axes="xyzc")
    with pytest.raises(ValueError, match="4 dimensions"):
        build_h5_layer(path, "deep/data", axes="zyx", resolution=(1, 1, 1))
    layer = build_h5_layer(
        path,
        axes="xyzc",
        resolution=(4, 4, 40),
        index_resolution=(4, 4, 40),
        default_desired_resolution=(4, 4, 40),
    )
    np.testing.assert_array_equal(layer[0:20, 0:30, 0:40], arr.transpose(3, 0, 1, 2))
    assert layer.backend.get_chunk_size((4, 4, 40)) == lamina.Vec3D(10, 10, 10)
    layer[0:10, 0:10, 0:10] = 7
    with h5py.File(path, "r") as f:
        assert (f["deep/data"][0:10, 0:10, 0:10, :] == 7).all()


def _cremi(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    raw = rng.integers(0, 255, (10, 50, 60), dtype=np.uint8)
    labels = rng.integers(0, 10**6, (10, 50, 60), dtype=np.uint64)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("volumes/raw", data=raw)
        ds.attrs["resolution"] = (40.0, 4.0, 4.0)
        ids = f.create_dataset("volumes/labels/neuron_ids", data=labels, chunks=(5, 25, 30))
        ids.attrs["resolution"] = (40.0, 4.0, 4.0)
        ids.attrs["offset"] = (80.0, 8.0, 12.0)  # z, y, x nm
    return raw, labels


def test_cremi_style_file_opens_with_no_extra_argument(tmp_path: Path) -> None:
    path = tmp_path / "sample_A.hdf"
    raw, labels = _cremi(path)
    with pytest.raises(ValueError, match="2 volumes"):
        build_h5_layer(path)
    layer = build_h5_layer(
        path, "volumes/raw", index_resolution=(4, 4, 40), default_desired_resolution=(4, 4, 40)
    )
    assert layer.backend.resolutions == (lamina.Vec3D(4.0, 4.0, 40.0),)
    np.testing.assert_array_equal(layer[0:60, 0:50, 0:10][0], raw.transpose(2, 1, 0))
    ids = build_h5_layer(
        f"{path}:/volumes/labels/neuron_ids",
        index_resolution=(4, 4, 40),
        default_desired_resolution=(4, 4, 40),
    )
    assert ids.backend.get_voxel_offset((4, 4, 40)) == lamina.Vec3D(3, 2, 2)
    out = ids[3:63, 2:52, 2:12]
    np.testing.assert_array_equal(out[0], labels.transpose(2, 1, 0))
    assert not ids[0:3, 0:2, 0:2].any()  # outside the dataset: zeros


def test_contradictory_offset_names_attribute_and_argument(tmp_path: Path) -> None:
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("raw", shape=(4, 4, 4), dtype="uint8")
        ds.attrs["resolution"] = (40.0, 4.0, 4.0)
        ds.attrs["offset"] = (10.0, 0.0, 0.0)
        bad = f.create_dataset("bad_res", shape=(4, 4, 4), dtype="uint8")
        bad.attrs["resolution"] = (4.0, 4.0)
    with pytest.raises(ValueError, match=r"'offset'.*voxel_offset="):
        build_h5_layer(path, "raw")
    assert build_h5_layer(path, "raw", voxel_offset=(0, 0, 0)).backend.get_voxel_offset(
        (4, 4, 40)
    ) == lamina.Vec3D(0, 0, 0)
    with pytest.raises(ValueError, match=r"'resolution'.*resolution="):
        build_h5_layer(path, "bad_res")


def test_missing_file_and_dataset(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="info_scales"):
        build_h5_layer(tmp_path / "none.h5")
    build_h5_layer(tmp_path / "a.h5", "vol", **params())
    with pytest.raises(FileNotFoundError, match="no group or dataset 'other'"):
        build_h5_layer(tmp_path / "a.h5", "other")


def test_reference_precomputed_volume(tmp_path: Path) -> None:
    precomputed = pytest.importorskip("lamina_precomputed")
    precomputed.build_cv_layer(
        tmp_path / "cv",
        info_type="segmentation",
        info_data_type="uint32",
        info_num_channels=1,
        info_chunk_size=(64, 64, 8),
        info_bbox=BBox3D.from_coords((64, 0, 0), (320, 128, 16), (4, 4, 40)),
        info_scales=[(4, 4, 40)],
    )
    layer = build_h5_layer(
        tmp_path / "from_cv.h5",
        info_reference_path=str(tmp_path / "cv"),
        info_inherit_all_params=True,
        info_scales=[(4, 4, 40), (8, 8, 40)],
    )
    backend: Any = layer.backend
    assert backend.dtype == np.uint32
    assert backend.volume_type == "segmentation"
    assert backend.get_voxel_offset((4, 4, 40)) == lamina.Vec3D(64, 0, 0)
    assert backend.get_dataset_size((8, 8, 40)) == lamina.Vec3D(128, 64, 16)


@pytest.mark.parametrize(
    ("chunk", "dtype", "expected"),
    [
        ((64, 64, 8), "uint8", 1 << 20),  # 32 KiB chunks: the 1 MiB floor
        ((64, 64, 64), "uint64", 4 * 64**3 * 8),  # 2 MiB chunks: 4 of them
    ],
)
def test_reads_and_writes_use_a_chunk_cache_of_a_few_chunks(
    tmp_path: Path, chunk: tuple[int, int, int], dtype: str, expected: int
) -> None:
    """HDF5 2.0's 8 MiB default cache is slower for random cutouts (bench/bench_hdf5.py);
    a cache smaller than one chunk would read chunks piecewise. lamina sizes it per dataset."""
    bbox = BBox3D.from_coords((0, 0, 0), (128, 128, 64), (4, 4, 40))
    layer = build_h5_layer(
        tmp_path / "c.h5",
        "vol",
        index_resolution=(4, 4, 40),
        default_desired_resolution=(4, 4, 40),
        **params(
            info_chunk_size=chunk, info_data_type=dtype, info_bbox=bbox, info_scales=[(4, 4, 40)]
        ),
    )
    data = np.arange(128 * 128 * 64, dtype=dtype).reshape(1, 128, 128, 64)
    layer[0:128, 0:128, 0:64] = data
    assert (layer[0:128, 0:128, 0:64] == data).all()
    from lamina_hdf5 import handles

    reader = handles.state(layer.backend._abs).datasets["vol/4_4_40"]
    nbytes = reader.dataset.id.get_access_plist().get_chunk_cache()[1]
    assert nbytes == expected == handles.chunk_cache_bytes(chunk[::-1], np.dtype(dtype).itemsize)
    with h5py.File(tmp_path / "c.h5", "r+") as f:
        opened = handles.open_with_small_cache(f, "vol/4_4_40")
        assert opened.id.get_access_plist().get_chunk_cache()[1] == expected
        assert (opened[...] == data[0].T).all()  # the same dataset, reopened
