"""A third party's volumetric format (examples/lamina-npydir): lamina's volumetric
contract suite, the creation policy, and the ``lamina`` commands on it.

Runs in the tox env ``all``, where the example distribution is installed.
"""

from __future__ import annotations

import inspect
import json
import os
import pydoc
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lamina_npydir  # installed by the tox env `all`
import numpy as np
import pytest
from lamina_npydir.volume import NpyDirBackend

import lamina
from lamina import BBox3D, Vec3D, VolumetricIndex
from lamina.testing import TestVolume, VolumetricBackendTests, plugin_listing, random_data
from lamina.volumetric.creation import VolumeMismatchError, res_to_key

RES = (4, 4, 40)
BBOX = BBox3D.from_coords((16, 32, 2), (144, 96, 14), RES)  # 128 x 64 x 12 voxels
INFO: dict[str, Any] = {
    "info_scales": [RES],
    "info_type": "image",
    "info_data_type": "uint16",
    "info_num_channels": 1,
    "info_chunk_size": (32, 32, 4),
    "info_bbox": BBOX,
}


# -- raw access to the files, written here without the plugin (numpy and json only) -----------
def _scale(path: str, res: Any) -> tuple[Path, dict[str, Any]]:
    meta = json.loads((Path(path) / "volume.json").read_text())
    (scale,) = [s for s in meta["scales"] if tuple(map(float, s["resolution"])) == tuple(res)]
    return Path(path) / res_to_key(res), scale  # a scale's folder: "4_4_40"


def _files(path: str, idx: VolumetricIndex) -> Iterator[tuple[Path, list[tuple[int, int]]]]:
    """Every chunk file overlapping ``idx``, with its box ``[(x0, x1), (y0, y1), (z0, z1)]``."""
    folder, _ = _scale(path, idx.resolution)
    for file in folder.glob("*.npy"):
        box = [(int(a), int(b)) for a, b in (part.split("-") for part in file.stem.split("_"))]
        if all(a < idx.stop[d] and idx.start[d] < b for d, (a, b) in enumerate(box)):
            yield file, box


def _overlap(box: list[tuple[int, int]], idx: VolumetricIndex) -> tuple[Any, Any]:
    """The overlap of a chunk and ``idx``: slices of the chunk's array and of ``idx``'s."""
    lo = [max(a, s) for (a, _), s in zip(box, idx.start, strict=True)]
    hi = [min(b, e) for (_, b), e in zip(box, idx.stop, strict=True)]
    in_chunk = tuple(slice(lo[d] - box[d][0], hi[d] - box[d][0]) for d in range(3))
    in_idx = tuple(slice(lo[d] - idx.start[d], hi[d] - idx.start[d]) for d in range(3))
    return (slice(None), *in_chunk), (slice(None), *in_idx)


def raw_read(backend: Any, idx: VolumetricIndex) -> Any:
    out = np.zeros((backend.num_channels, *idx.shape), dtype=backend.dtype)
    for file, box in _files(backend.path, idx):
        in_chunk, in_idx = _overlap(box, idx)
        out[in_idx] = np.load(file)[in_chunk]
    return out


def raw_write(backend: Any, idx: VolumetricIndex, data: Any) -> None:
    """``np.save`` the chunks of the grid that ``idx`` covers (read, patched, saved)."""
    folder, scale = _scale(backend.path, idx.resolution)
    offset, chunk, size = scale["voxel_offset"], scale["chunk_size"], scale["dataset_size"]
    folder.mkdir(parents=True, exist_ok=True)
    starts = [
        range(offset[d] + (idx.start[d] - offset[d]) // chunk[d] * chunk[d], idx.stop[d], chunk[d])
        for d in range(3)
    ]
    for x, y, z in ((x, y, z) for x in starts[0] for y in starts[1] for z in starts[2]):
        box = [(a, min(a + chunk[d], offset[d] + size[d])) for d, a in enumerate((x, y, z))]
        file = folder / ("_".join(f"{a}-{b}" for a, b in box) + ".npy")
        shape = (backend.num_channels, *(b - a for a, b in box))
        array = np.load(file) if file.exists() else np.zeros(shape, dtype=backend.dtype)
        in_chunk, in_idx = _overlap(box, idx)
        array[in_chunk] = data[in_idx]
        np.save(file, array)


class TestNpyDirContract(VolumetricBackendTests):
    """The example backend passes lamina's volumetric contract suite."""

    def make_backend(self, volume: TestVolume, path: Path) -> NpyDirBackend:
        layer = lamina.build_npydir_layer(
            f"{path}.npydir",
            info_scales=volume.resolutions,
            info_type="image",
            info_data_type=volume.dtype,
            info_num_channels=volume.num_channels,
            info_chunk_size=volume.chunk_size,
            info_bbox=volume.bbox,
        )
        backend: NpyDirBackend = layer.backend
        return backend

    def reopened(self, backend: Any) -> NpyDirBackend:
        return NpyDirBackend(backend.path)  # volume.json as it is on disk now

    def raw_read(self, backend: Any, idx: VolumetricIndex) -> Any:
        return raw_read(backend, idx)

    def raw_write(self, backend: Any, idx: VolumetricIndex, data: Any) -> None:
        raw_write(backend, idx, data)

    def is_stored(self, backend: Any, idx: VolumetricIndex) -> bool:
        return os.path.isdir(backend.path) and any(True for _ in _files(backend.path, idx))

    def damage_stored_chunk(self, backend: Any, idx: VolumetricIndex) -> bool:
        first = VolumetricIndex.from_coords(idx.start, idx.start + 1, idx.resolution)
        ((file, _),) = list(_files(backend.path, first))
        file.write_bytes(file.read_bytes()[:100])  # cut short: the header and a few voxels
        return True


# -- the builder, its name and its policy ----------------------------------------------------
@pytest.fixture
def volume(tmp_path: Path) -> tuple[str, Any]:
    """A two-scale uint16 volume with random data in both scales."""
    path = str(tmp_path / "vol.npydir")
    layer = lamina.build_npydir_layer(path, **{**INFO, "info_scales": [RES, (8, 8, 40)]})
    data = random_data((1, 128, 64, 12), "uint16", seed=3)
    layer[RES, BBOX] = data
    layer[(8, 8, 40), BBOX] = data[:, ::2, ::2, :]
    return path, data


def test_listed_by_lamina_plugins() -> None:
    record = plugin_listing()["lamina-npydir"]
    assert record["error"] is None
    assert record["entry_point"] == "npydir = lamina_npydir"
    assert record["names"]["names"] == ["build_npydir_layer"]
    assert record["names"]["path_openers"] == ["npydir"]
    out = subprocess.run(
        [sys.executable, "-m", "lamina", "plugins"], capture_output=True, text=True
    )
    assert "lamina-npydir 0.1.0  [ok]" in out.stdout


def test_help_shows_the_real_builder() -> None:
    builder = lamina.build_npydir_layer
    assert builder is lamina.get_builder("build_npydir_layer")
    assert builder is lamina_npydir.volume.build_npydir_layer
    parameters = inspect.signature(builder).parameters
    assert list(parameters)[:2] == ["path", "default_desired_resolution"]
    assert all(p.kind is p.KEYWORD_ONLY for name, p in parameters.items() if name != "path")
    assert parameters["info_overwrite"].annotation == "bool"
    shown = pydoc.plain(pydoc.render_doc(builder))
    assert "build_npydir_layer(path: 'str | os.PathLike[str]', *, default_desired_res" in shown
    assert "info_reference_path, info_reference_scale, info_inherit_all_params:" in shown


def test_discovery_imports_nothing_of_the_format() -> None:
    code = (
        "import sys, lamina.paths; lamina.registered_names(); lamina.paths._openers();"
        "print('lamina_npydir.volume' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_round_trip_through_the_layer_and_the_spec(volume: tuple[str, Any]) -> None:
    path, data = volume
    layer = lamina.build_npydir_layer(path, readonly=True, default_desired_resolution=RES)
    np.testing.assert_array_equal(layer[BBOX], data)
    np.testing.assert_array_equal(layer[(8, 8, 40), BBOX], data[:, ::2, ::2, :])
    same = lamina.build({"@type": "build_npydir_layer", "path": path, "readonly": True})
    np.testing.assert_array_equal(same[RES, BBOX], data)
    assert layer.backend.volume_type == "image"
    outside = BBox3D.from_coords((0, 0, 0), (16, 32, 2), RES)  # no chunk there: the fill value
    assert not layer[outside].any()


def test_numpy_reads_what_lamina_wrote_and_lamina_what_numpy_wrote(
    volume: tuple[str, Any],
) -> None:
    path, data = volume
    chunk = np.load(Path(path) / "4_4_40" / "16-48_32-64_2-6.npy")  # the first chunk
    assert chunk.dtype == np.uint16
    np.testing.assert_array_equal(chunk, data[:, 0:32, 0:32, 0:4])
    mine = np.arange(32 * 32 * 4, dtype=np.uint16).reshape(1, 32, 32, 4)
    np.save(Path(path) / "4_4_40" / "48-80_64-96_10-14.npy", mine)  # by numpy alone
    layer = lamina.build_npydir_layer(path, readonly=True, default_desired_resolution=RES)
    np.testing.assert_array_equal(layer[RES, 48:80, 64:96, 10:14], mine)


def test_info_scales_alone_adds_a_scale_and_a_change_needs_overwrite(
    volume: tuple[str, Any],
) -> None:
    path, data = volume
    layer = lamina.build_npydir_layer(path, info_scales=[(16, 16, 40)])  # the rest: inherited
    assert [tuple(r) for r in layer.backend.resolutions] == [RES, (8, 8, 40), (16, 16, 40)]
    assert layer.backend.get_chunk_size((16, 16, 40)) == Vec3D(32, 32, 4)
    with pytest.raises(VolumeMismatchError, match="Differences") as info:
        lamina.build_npydir_layer(path, **{**INFO, "info_chunk_size": (64, 64, 4)})
    assert "scales[4_4_40].chunk_size: [32, 32, 4] -> [64, 64, 4]" in str(info.value)
    assert "info_overwrite=False" in str(info.value)
    with pytest.raises(VolumeMismatchError, match=r"uint16.*uint8"):
        lamina.build_npydir_layer(path, **{**INFO, "info_data_type": "uint8"})
    kept = lamina.build_npydir_layer(path, readonly=True, default_desired_resolution=RES)
    np.testing.assert_array_equal(kept[BBOX], data)  # nothing was written
    changed = lamina.build_npydir_layer(
        path, **{**INFO, "info_chunk_size": (64, 64, 4)}, info_overwrite=True
    )
    assert changed.backend.get_chunk_size(RES) == Vec3D(64, 64, 4)
    assert not changed[RES, BBOX].any()  # a replaced scale starts empty
    dropped = lamina.build_npydir_layer(
        path, **INFO, info_overwrite=True, info_keep_existing_scales=False
    )
    assert [tuple(r) for r in dropped.backend.resolutions] == [RES]
    assert sorted(p.name for p in Path(path).iterdir()) == ["volume.json"]  # no chunk left


def test_a_reference_scale_picks_the_stored_volumes_scale(volume: tuple[str, Any]) -> None:
    """On a stored volume, info_reference_scale names which of its scales the new ones
    take their box from; one it does not have is refused before anything is written."""
    from lamina.errors import UnknownResolutionError

    with pytest.raises(UnknownResolutionError, match="info_reference_scale"):
        lamina.build_npydir_layer(
            volume[0], info_scales=[(16, 16, 40)], info_reference_scale=(2, 2, 2)
        )
    layer = lamina.build_npydir_layer(
        volume[0], info_scales=[(16, 16, 40)], info_reference_scale=RES
    )
    assert Vec3D(16, 16, 40) in layer.backend.resolutions


def test_a_reference_in_another_format(tmp_path: Path) -> None:
    src = lamina.build_cv_layer(str(tmp_path / "cv"), **{**INFO, "info_data_type": "uint8"})
    layer = lamina.build_npydir_layer(
        str(tmp_path / "like.npydir"),
        info_scales=[RES],
        info_reference_path=str(tmp_path / "cv"),
        info_inherit_all_params=True,
    )
    assert layer.backend.dtype == np.uint8
    assert layer.backend.get_bounds(RES).bbox == src.backend.get_bounds(RES).bbox
    back = lamina.build_cv_layer(  # and the other way: npydir as another format's reference
        str(tmp_path / "cv2"),
        info_scales=[RES],
        info_reference_path=str(tmp_path / "like.npydir"),
        info_inherit_all_params=True,
    )
    assert back.backend.dtype == np.uint8
    assert back.backend.get_chunk_size(RES) == Vec3D(32, 32, 4)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (
            {"info_data_type": "complex64"},
            ValueError,
            "info_data_type must be a bool, int.*complex64",
        ),
        ({"info_data_type": "object"}, ValueError, "info_data_type must name a numeric.*object"),
        ({"info_data_type": "no-such"}, ValueError, "info_data_type must name a numeric"),
        ({"info_chunk_size": (32.5, 32, 4)}, ValueError, r"info_chunk_size .*\(32\.5, 32, 4\)"),
        ({"info_chunk_size": (0, 32, 4)}, ValueError, r"info_chunk_size .*\(0, 32, 4\)"),
        ({"info_chunk_size": (32, 32)}, ValueError, "info_chunk_size must have exactly 3"),
        ({"info_type": "mesh"}, ValueError, "info_type must be 'image' or 'segmentation'"),
        ({"info_num_channels": 0}, ValueError, "info_num_channels must be an int >= 1"),
        ({"info_bbox": None}, ValueError, r"needs info_bbox \(missing\)"),
    ],
)
def test_what_it_cannot_store_is_refused_before_anything_is_written(
    tmp_path: Path, change: dict[str, Any], error: type[Exception], match: str
) -> None:
    path = tmp_path / "bad.npydir"
    with pytest.raises(error, match=match):
        lamina.build_npydir_layer(str(path), **{**INFO, **change})
    assert not path.exists()


def test_what_it_cannot_open_is_refused(tmp_path: Path, volume: tuple[str, Any]) -> None:
    path, _ = volume
    with pytest.raises(FileNotFoundError, match="create the volume with info_scales"):
        lamina.build_npydir_layer(str(tmp_path / "none.npydir"))
    with pytest.raises(ValueError, match="info_type given without info_scales"):
        lamina.build_npydir_layer(path, info_type="image")
    meta = json.loads((Path(path) / "volume.json").read_text())
    for key, value, match in [
        ("data_type", "object", "data_type must be a bool, int, uint or float dtype"),
        ("chunk_size", [0, 32, 4], "chunk_size must be positive"),
        ("chunk_size", None, "chunk_size"),
        ("type", "mesh", "type 'mesh'"),
    ]:
        bad = json.loads(json.dumps(meta))
        if key == "data_type" or key == "type":
            bad[key] = value
        else:
            bad["scales"][0][key] = value
        (Path(path) / "volume.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=r"is not a lamina-npydir volume\.json") as info:
            lamina.build_npydir_layer(path)
        assert match in str(info.value)


# -- the commands --------------------------------------------------------------------------
def _lamina(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args], capture_output=True, text=True, timeout=300
    )


def test_lamina_copy_to_npydir_and_back(tmp_path: Path) -> None:
    src = lamina.build_cv_layer(str(tmp_path / "src"), **INFO, info_encoding="raw")
    data = random_data((1, 128, 64, 12), "uint16", seed=5)
    src[RES, BBOX] = data
    there, back = str(tmp_path / "copy.npydir"), str(tmp_path / "back")
    for a, b in [(str(tmp_path / "src"), there), (there, back)]:
        out = _lamina("copy", a, b, "--quiet", "--journal-dir", str(tmp_path / "journals"))
        assert out.returncode == 0, out.stderr
    npydir = lamina.build_npydir_layer(there, readonly=True)
    assert npydir.backend.get_chunk_size(RES) == Vec3D(32, 32, 4)
    np.testing.assert_array_equal(npydir[RES, BBOX], data)
    np.testing.assert_array_equal(
        np.load(Path(there) / "4_4_40" / "16-48_32-64_2-6.npy"), data[:, :32, :32, :4]
    )
    copied = lamina.build_cv_layer(back, readonly=True)
    np.testing.assert_array_equal(copied[RES, BBOX], data)


def test_a_shard_size_is_refused_by_a_format_that_does_not_shard(tmp_path: Path) -> None:
    lamina.build_cv_layer(str(tmp_path / "src"), **INFO)[RES, BBOX] = 1
    there = str(tmp_path / "copy.npydir")
    out = _lamina("copy", str(tmp_path / "src"), there, "--dst-shard-size", "64,64,8")
    assert out.returncode != 0
    assert "its format stores no shards" in out.stderr
    assert not Path(there).exists()


def test_lamina_info(volume: tuple[str, Any]) -> None:
    path, _ = volume
    out = _lamina("info", path)
    assert out.returncode == 0, out.stderr
    assert "data type: uint16" in out.stdout
    assert "voxel offset (16, 32, 2), size (128, 64, 12), chunk size (32, 32, 4)" in out.stdout
    described = json.loads(_lamina("info", path, "--json").stdout)
    assert described["path"] == path
    assert [s["resolution"] for s in described["scales"]] == [[4, 4, 40], [8, 8, 40]]
    assert described["scales"][0]["size"] == [128, 64, 12]
    bare = path.removesuffix(".npydir")  # a directory holding a volume.json is recognised too
    os.rename(path, bare)
    assert _lamina("info", bare).returncode == 0


def test_lamina_preview(tmp_path: Path, volume: tuple[str, Any]) -> None:
    from PIL import Image

    path, data = volume
    out = _lamina("preview", path, "--out", str(tmp_path / "p.png"), "--z", "8")
    assert out.returncode == 0, out.stderr
    with Image.open(tmp_path / "p.png") as image:
        shown = np.asarray(image)
    assert shown.shape == (64, 128)  # y rows, x columns
    stretched = data[0, :, :, 6].T.astype(float)  # z = 8 is the 7th slice (offset 2)
    assert np.corrcoef(shown.ravel(), stretched.ravel())[0, 1] > 0.99


def test_lamina_view_serves_it(volume: tuple[str, Any]) -> None:
    path, data = volume
    process = subprocess.Popen(
        [sys.executable, "-m", "lamina", "view", path, "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline, url = time.monotonic() + 120, ""
        while not url.startswith("http://") and time.monotonic() < deadline:
            url = process.stdout.readline()
        with urllib.request.urlopen(url.strip(), timeout=30) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    with lamina.view(lamina.build_npydir_layer(path, readonly=True)) as shown:  # its data
        with urllib.request.urlopen(f"{shown.data_url}/0/info", timeout=30) as response:
            info = json.loads(response.read())
        assert info["data_type"] == "uint16"
        assert info["scales"][0]["voxel_offset"] == [16, 32, 2]
        size = info["scales"][0]["chunk_sizes"][0]
        name = "_".join(
            f"{a}-{a + min(s, n)}" for a, s, n in zip((16, 32, 2), size, (128, 64, 12), strict=True)
        )
        with urllib.request.urlopen(f"{shown.data_url}/0/4_4_40/{name}", timeout=30) as response:
            raw = np.frombuffer(response.read(), dtype="<u2")
        x, y, z = (min(s, n) for s, n in zip(size, (128, 64, 12), strict=True))
        np.testing.assert_array_equal(raw, data[0, :x, :y, :z].ravel(order="F"))
