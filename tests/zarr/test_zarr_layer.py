"""lamina-zarr beyond the contract suite: what is refused (and that nothing is written
then), the creation policy, the commands, other layers built on Zarr members, and
TensorStore in forked and spawned workers."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from lamina_zarr import AxesError, ZarrInfoMismatchError, build_zarr_layer
from zarr_support import new_layer

import lamina
from lamina import BBox3D, Vec3D, VolumetricIndex
from lamina.testing import TestVolume

RES = Vec3D(4.0, 4.0, 40.0)
VOLUME = TestVolume()


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args], capture_output=True, text=True, cwd=cwd
    )


def data(shape: tuple[int, ...], seed: int = 0, dtype: str = "uint8") -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).integers(0, 200, shape).astype(dtype)


# -- plain arrays: what lamina needs to be told ----------------------------------------------
def test_a_plain_array_needs_axes_and_resolution(tmp_path: Path) -> None:
    stored = data((2, 8, 16, 24))
    zarr.create_array(str(tmp_path / "a.zarr"), data=stored, chunks=(2, 4, 8, 8))
    with pytest.raises(AxesError, match=r"axes=.*resolution="):
        build_zarr_layer(tmp_path / "a.zarr")
    with pytest.raises(AxesError, match="resolution="):
        build_zarr_layer(tmp_path / "a.zarr", axes="czyx")
    layer = build_zarr_layer(tmp_path / "a.zarr", axes="czyx", resolution=(4, 4, 40))
    read = layer[Vec3D(4, 4, 40), 0:24, 0:16, 0:8]
    assert np.array_equal(read, stored.transpose(0, 3, 2, 1))


def test_dimension_names_serve_as_axes(tmp_path: Path) -> None:
    stored = data((8, 16, 24))
    zarr.create_array(
        str(tmp_path / "a.zarr"), data=stored, chunks=(4, 8, 8), dimension_names=["z", "y", "x"]
    )
    layer = build_zarr_layer(tmp_path / "a.zarr", resolution=(4, 4, 40))
    assert layer.backend.num_channels == 1
    assert np.array_equal(layer[Vec3D(4, 4, 40), 0:24, 0:16, 0:8][0], stored.transpose(2, 1, 0))


def test_two_dimensional_images_are_refused(tmp_path: Path) -> None:
    zarr.create_array(str(tmp_path / "a.zarr"), data=data((16, 24)), chunks=(8, 8))
    with pytest.raises(AxesError, match="2-D"):
        build_zarr_layer(tmp_path / "a.zarr", axes="yx", resolution=(4, 4, 40))


def test_a_time_axis_is_read_one_point_at_a_time(tmp_path: Path) -> None:
    stored = data((3, 1, 4, 8, 8))
    zarr.create_array(str(tmp_path / "t.zarr"), data=stored, chunks=(1, 1, 4, 8, 8))
    with pytest.raises(AxesError, match=r"time_index= \(0 to 2\)"):
        build_zarr_layer(tmp_path / "t.zarr", axes="tczyx", resolution=(4, 4, 40))
    with pytest.raises(AxesError, match=r"time_index must be in 0\.\.2"):
        build_zarr_layer(tmp_path / "t.zarr", axes="tczyx", resolution=(4, 4, 40), time_index=3)
    layer = build_zarr_layer(tmp_path / "t.zarr", axes="tczyx", resolution=(4, 4, 40), time_index=2)
    assert np.array_equal(layer[Vec3D(4, 4, 40), 0:8, 0:8, 0:4], stored[2].transpose(0, 3, 2, 1))


def _ome_group(path: Path, unit: str, translation: list[float]) -> None:
    """An OME-NGFF 0.5 image of one (z, y, x) dataset written by zarr-python."""
    group = zarr.open_group(str(path), mode="w")
    group.create_array("0", data=data((4, 8, 8)), chunks=(4, 8, 8))
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "axes": [{"name": a, "type": "space", "unit": unit} for a in "zyx"],
                "datasets": [
                    {
                        "path": "0",
                        "coordinateTransformations": [
                            {"type": "scale", "scale": [0.04, 0.004, 0.004]},
                            {"type": "translation", "translation": translation},
                        ],
                    }
                ],
            }
        ],
    }


def test_units_are_converted_and_unknown_ones_refused(tmp_path: Path) -> None:
    _ome_group(tmp_path / "um.zarr", "micrometer", [0.4, 0.0, 0.04])
    layer = build_zarr_layer(tmp_path / "um.zarr")
    (res,) = layer.backend.resolutions
    assert res == Vec3D(4.0, 4.0, 40.0)
    assert layer.backend.get_voxel_offset(res) == Vec3D(10, 0, 10)
    _ome_group(tmp_path / "bad.zarr", "furlong", [0.0, 0.0, 0.0])
    with pytest.raises(AxesError, match="furlong"):
        build_zarr_layer(tmp_path / "bad.zarr")


def test_an_origin_off_the_voxel_grid_is_said(tmp_path: Path) -> None:
    _ome_group(tmp_path / "off.zarr", "micrometer", [0.0, 0.0, 0.0059])
    with pytest.warns(UserWarning, match="not on the 4 nm voxel grid"):
        layer = build_zarr_layer(tmp_path / "off.zarr")
    assert layer.backend.get_voxel_offset(RES) == Vec3D(1, 0, 0)


def test_codecs_lamina_cannot_decode_are_refused_when_opened(tmp_path: Path) -> None:
    import numcodecs

    zarr.create_array(
        str(tmp_path / "d.zarr"),
        data=data((4, 8, 8)),
        chunks=(4, 8, 8),
        zarr_format=2,
        filters=[numcodecs.Delta(dtype="u1")],
    )
    with pytest.raises(ValueError, match="the filter delta cannot be read"):
        build_zarr_layer(tmp_path / "d.zarr", axes="zyx", resolution=(4, 4, 40))


# -- new volumes: refused before anything is written -----------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"zarr_format": 2, "info_shard_size": (64, 64, 8)}, "needs zarr_format=3"),
        ({"info_encoding": "jpeg"}, "info_encoding must be one of zstd, blosc, gzip, raw"),
        ({"info_shard_size": (48, 64, 8)}, "whole multiples of info_chunk_size"),
        ({"info_data_type": "complex64"}, "info_data_type"),
        ({"zarr_format": 4}, "zarr_format must be 2 or 3"),
    ],
)
def test_what_a_new_volume_cannot_hold_is_refused_first(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        new_layer(tmp_path / "v.zarr", **changes)
    assert not (tmp_path / "v.zarr").exists()


def test_the_creation_policy_guards_stored_scales(tmp_path: Path) -> None:
    layer = new_layer(tmp_path / "v.zarr")
    idx = VolumetricIndex.from_coords((32, 64, 4), (64, 96, 8), RES)
    layer[idx] = 7
    with pytest.raises(ZarrInfoMismatchError, match="Differences"):
        new_layer(tmp_path / "v.zarr", info_chunk_size=(16, 16, 4))
    assert int(layer[idx].max()) == 7  # refused: nothing changed
    grown = build_zarr_layer(tmp_path / "v.zarr", info_scales=[(16, 16, 40)])
    assert grown.backend.resolutions == (RES, Vec3D(8.0, 8.0, 40.0), Vec3D(16.0, 16.0, 40.0))
    assert int(grown[idx].max()) == 7  # a scale added: the others kept
    replaced = new_layer(tmp_path / "v.zarr", info_chunk_size=(16, 16, 4), info_overwrite=True)
    assert replaced.backend.get_chunk_size(RES) == Vec3D(16, 16, 4)
    assert int(replaced[idx].max()) == 0  # a replaced scale starts empty


def test_a_plain_array_is_not_turned_into_an_image(tmp_path: Path) -> None:
    zarr.create_array(str(tmp_path / "a.zarr"), data=data((4, 8, 8)), chunks=(4, 8, 8))
    before = sorted(p.name for p in (tmp_path / "a.zarr").iterdir())
    with pytest.raises(ValueError, match="OME-Zarr images only"):
        new_layer(tmp_path / "a.zarr")
    assert sorted(p.name for p in (tmp_path / "a.zarr").iterdir()) == before


def test_zarr_v2_volumes_round_trip_and_stay_v2_when_extended(tmp_path: Path) -> None:
    layer = new_layer(tmp_path / "v2.zarr", zarr_format=2)
    assert (tmp_path / "v2.zarr" / ".zattrs").is_file()
    build_zarr_layer(tmp_path / "v2.zarr", info_scales=[(16, 16, 40)])
    attrs = json.loads((tmp_path / "v2.zarr" / ".zattrs").read_text())
    assert attrs["multiscales"][0]["version"] == "0.4"
    assert len(attrs["multiscales"][0]["datasets"]) == 3
    assert not (tmp_path / "v2.zarr" / "zarr.json").exists()
    assert layer.backend.describe()["format"].startswith("OME-Zarr 0.4 (Zarr v2")


# -- the commands --------------------------------------------------------------------------------
def _precomputed(path: Path) -> np.ndarray[Any, Any]:
    values = data((1, 128, 128, 16), seed=3)
    layer = lamina.build_cv_layer(
        str(path),
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=(32, 32, 8),
        info_bbox=BBox3D.from_coords((64, 0, 8), (192, 128, 24), RES),
        info_scales=[RES],
        index_resolution=RES,
    )
    layer[RES, 64:192, 0:128, 8:24] = values
    return values


def test_copy_to_zarr_downsample_and_info(tmp_path: Path) -> None:
    values = _precomputed(tmp_path / "pre")
    out = tmp_path / "out.ome.zarr"
    assert cli("copy", str(tmp_path / "pre"), str(out), "--quiet").returncode == 0
    layer = build_zarr_layer(out)
    assert np.array_equal(layer[RES, 64:192, 0:128, 8:24], values)
    done = cli("downsample", str(out), "--levels", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    meta = json.loads((out / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]
    transforms = [d["coordinateTransformations"] for d in meta["datasets"]]
    scales = [t[0]["scale"] for t in transforms]
    translations = [t[1]["translation"] for t in transforms]
    assert scales == [[1.0, 40.0, 4.0, 4.0], [1.0, 40.0, 8.0, 8.0], [1.0, 40.0, 16.0, 16.0]]
    # finest: voxel offset x resolution; coarser: t0 + (s_k - s0) / 2 (pixel centres)
    assert translations == [
        [0.0, 320.0, 0.0, 256.0],
        [0.0, 320.0, 2.0, 258.0],
        [0.0, 320.0, 6.0, 262.0],
    ]
    info = cli("info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert described["format"] == "OME-Zarr 0.5 (Zarr v3, lamina-zarr)"
    assert [s["resolution"] for s in described["scales"]][2] == [16.0, 16.0, 40.0]
    coarse = build_zarr_layer(out)[Vec3D(16, 16, 40), 16:48, 0:32, 8:24]
    expected = values.reshape(1, 32, 4, 32, 4, 16).mean(axis=(2, 4))
    assert np.abs(coarse.astype(float) - expected).max() <= 1


def test_copy_with_format_zarr_and_back_to_hdf5(tmp_path: Path) -> None:
    values = _precomputed(tmp_path / "pre")
    done = cli(
        "copy", str(tmp_path / "pre"), str(tmp_path / "plain"), "--format", "zarr", "--quiet"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "plain" / "zarr.json").is_file()
    done = cli("copy", str(tmp_path / "plain"), str(tmp_path / "v.h5"), "--quiet")
    assert done.returncode == 0, done.stderr
    h5 = lamina.build_h5_layer(str(tmp_path / "v.h5"))
    assert np.array_equal(h5[RES, 64:192, 0:128, 8:24], values)


def test_command_errors_are_one_line(tmp_path: Path) -> None:
    zarr.create_array(str(tmp_path / "a.zarr"), data=data((4, 8, 8)), chunks=(4, 8, 8))
    done = cli("info", str(tmp_path / "a.zarr"))
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1
    assert "axes=" in done.stderr


# -- layers over Zarr members ----------------------------------------------------------------
def test_layer_set_and_range_map_with_zarr_members(tmp_path: Path) -> None:
    image = new_layer(tmp_path / "img.zarr")
    labels = new_layer(tmp_path / "seg.zarr", info_type="segmentation", info_data_type="uint32")
    idx = VolumetricIndex.from_coords((32, 64, 4), (96, 128, 12), RES)
    image[idx] = data((1, 64, 64, 8), seed=1)
    labels[idx] = data((1, 64, 64, 8), seed=2, dtype="uint32")
    both = lamina.build_volumetric_layer_set({"img": image, "seg": labels})
    read = both[idx]
    assert np.array_equal(read["img"], image[idx])
    assert np.array_equal(read["seg"], labels[idx])
    assert labels.backend.volume_type == "segmentation"
    left = BBox3D.from_coords((32, 64, 4), (64, 128, 12), RES)
    right = BBox3D.from_coords((64, 64, 4), (96, 128, 12), RES)
    other = new_layer(tmp_path / "other.zarr")
    other[idx] = 9
    mapped = lamina.build_range_mapped_layer([(left, image), (right, other)])
    stitched = mapped[idx]
    assert np.array_equal(stitched[:, :32], image[idx][:, :32])
    assert (stitched[:, 32:] == 9).all()


# -- processes ---------------------------------------------------------------------------------
def test_a_layer_pickles_small_and_reads_in_a_spawned_process(tmp_path: Path) -> None:
    layer = new_layer(tmp_path / "v.zarr")
    idx = VolumetricIndex.from_coords((32, 64, 4), (64, 96, 8), RES)
    layer[idx] = 5
    blob = pickle.dumps(layer)
    assert len(blob) < 20_000
    code = (
        "import pickle, sys; layer = pickle.loads(sys.stdin.buffer.read());"
        "from lamina import VolumetricIndex, Vec3D;"
        "idx = VolumetricIndex.from_coords((32, 64, 4), (64, 96, 8), Vec3D(4, 4, 40));"
        "print(int(layer[idx].sum()), layer.backend.engine)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=blob, capture_output=True, check=True
    ).stdout.decode()
    assert out.split() == [str(5 * 32 * 32 * 4), "lamina"]  # local reads: lamina's reader


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_after_the_parent_used_tensorstore(tmp_path: Path, context: str) -> None:
    """TensorStore aborts a process forked after its parent used it: forked workers read
    through zarr-python, spawned ones through TensorStore; the samples are the same."""
    torch = pytest.importorskip("torch")
    from lamina.torch import LayerDataset, VolumetricStridedIndexer

    layer = new_layer(tmp_path / "v.zarr")
    full = VolumetricIndex.from_coords((32, 64, 4), (192, 160, 14), RES)
    layer[full] = data((1, *full.shape), seed=4)
    windows = VolumetricStridedIndexer(
        BBox3D.from_coords((32, 64, 4), (128, 96, 12), RES), RES, (32, 32, 8), (16, 32, 8)
    )
    expected = [layer[windows(i)] for i in range(len(windows))]  # the parent uses TensorStore
    loader = torch.utils.data.DataLoader(
        LayerDataset(layer, windows),
        batch_size=None,
        num_workers=2,
        multiprocessing_context=context,
        timeout=120,
    )
    got = [sample.numpy() for sample in loader]
    assert len(got) == len(expected) == 5
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


def test_the_zarr_python_engine_reads_and_writes_the_same_files(tmp_path: Path) -> None:
    layer = new_layer(tmp_path / "v.zarr", info_num_channels=2)
    other = build_zarr_layer(tmp_path / "v.zarr", engine="zarr-python", index_resolution=RES)
    assert other.backend.engine == "zarr-python"
    idx = VolumetricIndex.from_coords((32, 64, 4), (96, 128, 12), RES)
    values = data((2, *idx.shape), seed=5)
    other[idx] = values
    assert np.array_equal(layer[idx], values)
    assert np.array_equal(other[idx], values)
    with pytest.raises(ValueError, match="engine must be one of"):
        build_zarr_layer(tmp_path / "v.zarr", engine="h5py")


_PART_WRITER = """
import sys
import numpy as np
from lamina import Vec3D, VolumetricIndex
from lamina_zarr import build_zarr_layer
path, first = sys.argv[1], int(sys.argv[2])
res = Vec3D(4, 4, 40)
backend = build_zarr_layer(path).backend.with_changes(enforce_chunk_aligned_writes=False)
for i in range(first, 16, 2):  # every other 32 x 32 x 4 part of the 64 x 64 x 8 shard
    x, y, z = 32 + (i % 2) * 32, 64 + (i // 2 % 2) * 32, 4 + (i // 4 % 2) * 4
    part = VolumetricIndex.from_coords((x, y, z), (x + 32, y + 32, z + 4), res)
    backend.write(part, np.full((1, 32, 32, 4), 1 + first, "u1"))
"""


def test_parts_of_one_shard_written_by_two_processes_at_once_are_all_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "s.zarr")
    new_layer(path, info_shard_size=(64, 64, 8))
    writers = [
        subprocess.Popen([sys.executable, "-c", _PART_WRITER, path, str(first)]) for first in (0, 1)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    stored = np.asarray(zarr.open_array(os.path.join(path, "s0"), mode="r")[:, 0:8, 0:64, 0:64])
    for i in range(8):
        x, y, z = (i % 2) * 32, (i // 2 % 2) * 32, (i // 4 % 2) * 4
        assert (stored[:, z : z + 4, y : y + 32, x : x + 32] == 1 + i % 2).all(), i


def test_auto_reads_some_compressed_chunks_with_tensorstore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """engine="auto": lamina's reader for every read of uncompressed chunks, and for reads
    of one compressed chunk and of very many; TensorStore for 2 to 127 compressed ones
    (its threads decode them side by side)."""
    from lamina_zarr import chunks

    volume = TestVolume(chunk_size=(16, 16, 2))
    used: list[int] = []
    original = chunks.LocalChunkReader.read_into

    def recording(reader: Any, out: Any, lo: Any, hi: Any, t: Any) -> None:
        used.append(reader.count_chunks(lo, hi))
        original(reader, out, lo, hi, t)

    monkeypatch.setattr(chunks.LocalChunkReader, "read_into", recording)
    for encoding in ("zstd", "raw"):
        layer = new_layer(tmp_path / f"{encoding}.zarr", volume, info_encoding=encoding)
        full = VolumetricIndex.from_coords((32, 64, 4), (192, 160, 14), RES)
        layer[full] = data((1, *full.shape), seed=8)
        used.clear()
        boxes = (
            VolumetricIndex.from_coords((32, 64, 4), (48, 80, 6), RES),  # 1 chunk
            VolumetricIndex.from_coords((32, 64, 4), (64, 96, 6), RES),  # 2 x 2 x 1
            VolumetricIndex.from_coords((32, 64, 4), (96, 112, 8), RES),  # 4 x 3 x 2
            full,  # 10 x 6 x 5 chunks
        )
        values = [layer[box] for box in boxes]
        assert used == ([1, 300] if encoding == "zstd" else [1, 4, 24, 300]), encoding
        reference = build_zarr_layer(tmp_path / f"{encoding}.zarr", engine="tensorstore")
        for box, value in zip(boxes, values, strict=True):
            assert np.array_equal(value, reference[box])


@pytest.mark.parametrize("engine", ["lamina", "tensorstore"])
@pytest.mark.parametrize("sharded", [False, True])
def test_big_endian_arrays_read_as_their_values(tmp_path: Path, engine: str, sharded: bool) -> None:
    from zarr.codecs import BytesCodec

    stored = np.arange(4 * 8 * 8, dtype=">u2").reshape(4, 8, 8)
    zarr.create_array(
        str(tmp_path / "be.zarr"),
        data=stored,
        chunks=(2, 4, 4),
        shards=(4, 8, 8) if sharded else None,
        serializer=BytesCodec(endian="big"),
        compressors=None,
    )
    layer = build_zarr_layer(tmp_path / "be.zarr", axes="zyx", resolution=RES, engine=engine)
    assert layer.backend.dtype == np.dtype("uint16")
    read = layer[RES, 0:8, 0:8, 0:4]
    assert np.array_equal(read[0], stored.astype("u2").transpose(2, 1, 0))
    v2 = zarr.create_array(str(tmp_path / "be2.zarr"), data=stored, chunks=(2, 4, 4), zarr_format=2)
    assert v2.dtype == np.dtype(">u2")
    old = build_zarr_layer(tmp_path / "be2.zarr", axes="zyx", resolution=RES, engine=engine)
    assert old.backend.dtype == np.dtype("uint16")  # the byte order is the file's business
    partly_outside = old[RES, 4:12, 0:8, 0:4]
    assert partly_outside.dtype == np.dtype("uint16")
    assert np.array_equal(partly_outside[0, :4], stored.astype("u2").transpose(2, 1, 0)[4:])


def _ome_v04(path: Path, unit: str, scale: list[float], shape: tuple[int, ...]) -> None:
    """An OME-NGFF 0.4 image of one (z, y, x) dataset on Zarr v2, written by zarr-python."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("0", data=data(shape), chunks=shape)
    transform = {"type": "scale", "scale": scale}
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [{"name": a, "type": "space", "unit": unit} for a in "zyx"],
            "datasets": [{"path": "0", "coordinateTransformations": [transform]}],
        }
    ]


def test_units_converted_to_nm_name_their_scales_exactly(tmp_path: Path) -> None:
    _ome_v04(tmp_path / "um.zarr", "micrometer", [0.04, 0.0069, 0.0069], (4, 8, 8))
    layer = build_zarr_layer(tmp_path / "um.zarr")
    assert layer.backend.resolutions == (Vec3D(6.9, 6.9, 40.0),)
    assert layer[Vec3D(6.9, 6.9, 40), 0:8, 0:8, 0:4].shape == (1, 8, 8, 4)


def test_an_image_without_channels_gets_channels_only_when_rewritten(tmp_path: Path) -> None:
    _ome_v04(tmp_path / "img.zarr", "nanometer", [40.0, 4.0, 4.0], (4, 16, 16))
    grow = {
        "info_num_channels": 3,
        "info_type": "image",
        "info_data_type": "uint8",
        "info_chunk_size": (16, 16, 4),
        "info_bbox": BBox3D.from_coords((0, 0, 0), (16, 16, 4), RES),
    }
    with pytest.raises(ZarrInfoMismatchError, match="num_channels 1 -> 3"):
        build_zarr_layer(
            tmp_path / "img.zarr", info_scales=[(8, 8, 40)], info_overwrite=True, **grow
        )
    assert sorted(p.name for p in (tmp_path / "img.zarr").iterdir()) == [".zattrs", ".zgroup", "0"]
    rewritten = build_zarr_layer(
        tmp_path / "img.zarr",
        info_scales=[RES],
        info_overwrite=True,
        info_keep_existing_scales=False,
        **grow,
    )
    assert rewritten.backend.num_channels == 3
    assert rewritten.backend.volume.axes.letters == "czyx"


def test_the_readme_example_runs(tmp_path: Path) -> None:
    import re

    readme = Path(__file__).parents[2] / "plugins" / "zarr" / "README.md"
    example = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)[0]
    out = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 4, 4, 1)"
    assert (tmp_path / "em.ome.zarr" / "s1" / "zarr.json").is_file()
