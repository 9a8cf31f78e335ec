"""``lamina info PATH [--json]`` (issue item 7) and path-opener dispatch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import lamina_precomputed.hooks
import pytest
from lamina_precomputed import build_cv_layer
from lamina_precomputed.opener import recognises_precomputed
from precomputed_support import small_volume_params

from lamina import BBox3D, hookimpl
from lamina.cli import main
from lamina.plugins import PathOpener


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    build_cv_layer(tmp_path / "v", **small_volume_params(info_num_channels=2))
    return tmp_path / "v"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_for_a_person(volume: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "info", str(volume))
    assert code == 0
    assert f"file://{volume}" in out
    assert "data type: uint8" in out
    assert "num channels: 2" in out
    assert "type: image" in out
    assert "scales: 2" in out
    assert "4x4x40 nm (key 4_4_40)" in out
    assert "voxel offset (0, 0, 0), size (128, 128, 8), chunk size (32, 32, 4)" in out
    assert "bounds (0, 0, 0) - (512, 512, 320) nm" in out
    assert "encoding raw" in out


def test_info_as_json(volume: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "info", f"precomputed://file://{volume}", "--json")
    assert code == 0
    description = json.loads(out)
    assert description["data_type"] == "uint8"
    assert description["num_channels"] == 2
    fine, coarse = description["scales"]
    assert fine["resolution"] == [4.0, 4.0, 40.0]
    assert fine["chunk_size"] == [32, 32, 4]
    assert fine["encoding"] == "raw"
    assert coarse["size"] == [64, 64, 8]
    assert coarse["bounds_nm"] == [[0.0, 0.0, 0.0], [512.0, 512.0, 320.0]]


def test_info_on_s3(s3_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    build_cv_layer(f"{s3_root}/cli", **small_volume_params())
    code, out, _ = run(capsys, "info", f"{s3_root}/cli", "--json")
    assert code == 0
    assert json.loads(out)["path"] == f"{s3_root}/cli"


def test_info_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "info", f"file://{tmp_path}/missing")
    assert code == 1
    assert err.startswith("lamina info: error: no precomputed volume at")
    code, _, err = run(capsys, "info", str(tmp_path / "data.h5"))
    assert code == 2  # a path no installed plugin opens: the command line is wrong
    assert "no installed path opener recognises" in err
    assert "pip install lamina-hdf5" in err
    assert "precomputed://PATH" in err


def test_the_precomputed_opener_recognises_its_forms(volume: Path, tmp_path: Path) -> None:
    for path in ("precomputed://gs://b/v", "gs://b/v", "s3://b/v", "mem://b/v", "file:///x"):
        assert recognises_precomputed(path)
    assert recognises_precomputed(str(volume))
    assert not recognises_precomputed(str(tmp_path))  # a directory without an info file
    assert not recognises_precomputed("https://example.org/v")
    for other in ("gs://b/v.zarr", "s3://b/data.h5", "out.zarr", "file:///x/v.n5"):
        assert not recognises_precomputed(other)  # another format's: not guessed


class _FakeFormat:
    """Another plugin's path form, described by the same command."""

    @hookimpl
    def lamina_register_path_openers(self, registry: Any) -> None:
        from lamina import build_memory_volumetric_layer

        def open_fake(path: str, **options: Any) -> Any:
            return build_memory_volumetric_layer(
                BBox3D.from_coords((0, 0, 0), (64, 64, 8), (2, 2, 2)),
                resolutions=[(2, 2, 2)],
                chunk_size=(16, 16, 8),
                dtype="float32",
                name=path,
            )

        registry.register(
            "fake", PathOpener(recognises=lambda p: p.startswith("fake://"), open=open_fake)
        )


def test_info_dispatches_through_the_registry(
    lamina_host: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    lamina_host.register_plugin(lamina_precomputed.hooks, distribution="lamina-precomputed")
    lamina_host.register_plugin(_FakeFormat(), distribution="lamina-fake")
    code, out, _ = run(capsys, "info", "fake://thing", "--json")
    assert code == 0
    description = json.loads(out)
    assert description["path"] == "fake://thing"
    assert description["data_type"] == "float32"
    assert description["scales"][0]["chunk_size"] == [16, 16, 8]
    code, out, _ = run(capsys, "info", "fake://thing")
    assert "voxel offset (0, 0, 0), size (64, 64, 8), chunk size (16, 16, 8)" in out


def test_the_installed_command(volume: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lamina", "info", str(volume), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["scales"][0]["key"] == "4_4_40"


class _ZarrLike:
    """A test-only format claiming ``*.zarr`` paths: it creates in-memory volumes."""

    def __init__(self) -> None:
        self.volumes: dict[str, Any] = {}

    def create(self, path: str, like: Any) -> Any:
        from lamina import build_memory_volumetric_layer

        self.volumes[path] = build_memory_volumetric_layer(
            BBox3D.from_coords(like.bbox_start, like.bbox_end),
            resolutions=like.resolutions,
            chunk_size=like.chunk_size,
            dtype=like.data_type,
            num_channels=like.num_channels,
            index_resolution=like.resolutions[0],
            default_desired_resolution=like.resolutions[0],
        )
        return self.volumes[path]

    @hookimpl
    def lamina_register_path_openers(self, registry: Any) -> None:
        registry.register(
            "zarrlike",
            PathOpener(
                recognises=lambda p: p.endswith(".zarr"),
                open=lambda p, **options: self.volumes[p],
                forms=("DIR.zarr",),
                exists=lambda p: p in self.volumes,
                create=self.create,
            ),
        )


def test_copy_creates_the_format_the_destination_names_unless_told_otherwise(
    lamina_host: Any, volume: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lamina_host.register_plugin(lamina_precomputed.hooks, distribution="lamina-precomputed")
    zarr_like = _ZarrLike()
    lamina_host.register_plugin(zarr_like, distribution="lamina-zarrlike")
    source = build_cv_layer(volume)
    expected = source[(4, 4, 40), 0:128, 0:128, 0:8]

    out = str(tmp_path / "out.zarr")
    code, _, err = run(capsys, "copy", str(volume), out, "--quiet")
    assert code == 0, err
    assert not Path(out).exists()  # not a precomputed directory: the zarr-like format's
    assert (zarr_like.volumes[out][(4, 4, 40), 0:128, 0:128, 0:8] == expected).all()

    forced = str(tmp_path / "forced.zarr")
    code, _, err = run(capsys, "copy", str(volume), forced, "--format", "precomputed", "--quiet")
    assert code == 0, err
    assert forced not in zarr_like.volumes
    assert (Path(forced) / "info").is_file()
    assert (build_cv_layer(forced)[(4, 4, 40), 0:128, 0:128, 0:8] == expected).all()
    code, out_text, _ = run(capsys, "info", forced, "--format", "precomputed", "--json")
    assert code == 0
    assert json.loads(out_text)["num_channels"] == 2
