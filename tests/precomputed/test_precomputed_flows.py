"""The flows on precomputed volumes on local files: processes, the command line (copy
creating its DST, downsample's defaults, run with JSON and YAML specs), resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lamina
from lamina import BBox3D, Vec3D
from lamina.flows import copy, downsample
from lamina.testing import run_lamina

R = Vec3D(8, 8, 40)
SHAPE = (256, 256, 32)


def _volume(path: Path, chunk: tuple[int, int, int] = (64, 64, 8), **info: Any) -> Any:
    info.setdefault("info_type", "image")
    info.setdefault("info_data_type", "uint8")
    info.setdefault("info_encoding", "raw")
    return lamina.build_cv_layer(
        str(path),
        default_desired_resolution=R,
        index_resolution=R,
        info_num_channels=1,
        info_chunk_size=chunk,
        info_scales=[R],
        info_bbox=BBox3D.from_coords((0, 0, 0), SHAPE, R),
        **info,
    )


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, np.ndarray[Any, Any]]:
    data = np.random.default_rng(3).integers(0, 255, (1, *SHAPE), dtype="uint8")
    _volume(tmp_path / "src")[0:256, 0:256, 0:32] = data
    return tmp_path / "src", data


@pytest.fixture(autouse=True)
def _journals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_JOURNAL_DIR", str(tmp_path / "journals"))


def _lamina(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_lamina(*args, cwd=cwd, env={"LAMINA_JOURNAL_DIR": str(cwd / "journals")})


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_copy_and_downsample_in_parallel(
    executor: str, source: tuple[Path, Any], tmp_path: Path
) -> None:
    path, data = source
    src = lamina.build_cv_layer(str(path))
    dst = _volume(tmp_path / "dst", chunk=(128, 128, 16))
    summary = copy(src, dst, executor=executor, workers=2, chunk_size=(128, 128, 16))
    assert summary.chunks == 2 * 2 * 2
    np.testing.assert_array_equal(
        lamina.build_cv_layer(str(tmp_path / "dst"))[R, 0:256, 0:256, 0:32], data
    )
    downsample(dst, levels=2, executor=executor, workers=2)
    reopened = lamina.build_cv_layer(str(tmp_path / "dst"))
    assert reopened.backend.resolutions == (R, Vec3D(16, 16, 40), Vec3D(32, 32, 40))
    level1 = np.floor(data.reshape(1, 128, 2, 128, 2, 32).astype(float).mean(axis=(2, 4)) + 0.5)
    np.testing.assert_array_equal(reopened[Vec3D(16, 16, 40), 0:128, 0:128, 0:32], level1)


def test_segmentation_pyramids_take_the_mode(tmp_path: Path) -> None:
    seg = _volume(tmp_path / "seg", info_type="segmentation", info_data_type="uint32")
    ids = np.zeros((1, *SHAPE), dtype="uint32")
    ids[:, 0:2, 0:2, 0] = [[5, 5], [5, 6]]
    seg[0:256, 0:256, 0:32] = ids
    downsample(seg, levels=1, executor="processes", workers=2)
    assert (
        lamina.build_cv_layer(str(tmp_path / "seg"))[Vec3D(16, 16, 40), 0:1, 0:1, 0:1].item() == 5
    )


def test_cli_copy_creates_dst_then_downsample_defaults(
    source: tuple[Path, Any], tmp_path: Path
) -> None:
    path, data = source
    copied = _lamina(
        "copy", str(path), "out", "--dst-chunk-size", "128,128,16", "--chunk-size", "128,128,16",
        "--executor", "processes",
        "--workers", "2", cwd=tmp_path,
    )  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.strip().startswith("8 chunks, 2.1 MB in ")  # one summary line
    assert copied.stderr == ""  # not a terminal: no progress bar
    out = lamina.build_cv_layer(str(tmp_path / "out"))
    assert out.backend.get_chunk_size(R) == Vec3D(128, 128, 16)
    np.testing.assert_array_equal(out[R, 0:256, 0:256, 0:32], data)
    pyramid = _lamina("downsample", "out", "--quiet", cwd=tmp_path)
    assert pyramid.returncode == 0, pyramid.stderr
    info = _lamina("info", "out", "--json", cwd=tmp_path)
    scales = [s["resolution"] for s in json.loads(info.stdout)["scales"]]
    assert scales == [[8, 8, 40], [16, 16, 40], [32, 32, 40], [64, 64, 40]]


def test_cli_bbox_resume_and_errors(source: tuple[Path, Any], tmp_path: Path) -> None:
    path, data = source
    part = _lamina("copy", str(path), "part", "--bbox", "0,0,0:128,128,16", cwd=tmp_path)
    assert part.returncode == 0, part.stderr
    out = lamina.build_cv_layer(str(tmp_path / "part"))[R, 0:256, 0:256, 0:32]
    np.testing.assert_array_equal(out[:, :128, :128, :16], data[:, :128, :128, :16])
    assert not out[:, 128:].any()
    again = _lamina(
        "copy", str(path), "part", "--bbox", "0,0,0:128,128,16", "--resume", cwd=tmp_path
    )
    assert "0 chunks" in again.stdout
    assert "already done, skipped" in again.stdout
    bad = _lamina("copy", str(path), "part", "--bbox", "0,0:1,1", cwd=tmp_path)
    assert bad.returncode != 0
    assert "--bbox start must be three numbers" in bad.stderr
    unknown = _lamina("copy", "nothing.xyz://a", "b", cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no installed path opener recognises 'nothing.xyz://a'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    for command in ("copy", "downsample", "run"):
        helped = _lamina(command, "--help", cwd=tmp_path)
        assert helped.returncode == 0
        assert "--executor" in helped.stdout


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_cli_run_spec(suffix: str, source: tuple[Path, Any], tmp_path: Path) -> None:
    path, data = source
    _volume(tmp_path / "dst")
    spec = {
        "@type": "copy",
        "src": {"@type": "build_cv_layer", "path": str(path)},
        "dst": {"@type": "build_cv_layer", "path": str(tmp_path / "dst")},
        "chunk_size": [128, 128, 16],
    }
    file = tmp_path / f"spec{suffix}"
    if suffix == ".json":
        file.write_text(json.dumps(spec))
    else:
        import yaml

        file.write_text(yaml.safe_dump(spec))
    ran = _lamina("run", str(file), "--executor", "threads", "--workers", "2", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("8 chunks")
    np.testing.assert_array_equal(
        lamina.build_cv_layer(str(tmp_path / "dst"))[R, 0:256, 0:256, 0:32], data
    )
    missing = _lamina("run", "nope.json", cwd=tmp_path)
    assert missing.returncode == 1
    assert "no spec file at 'nope.json'" in missing.stderr


def test_unknown_encodings_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="info_encoding must be one of raw, jpeg"):
        _volume(tmp_path / "bad", info_encoding="raw (uncompressed)")
    assert not (tmp_path / "bad").exists()


def test_the_parent_imports_cloudvolume_before_forking_workers(
    source: tuple[Path, Any], tmp_path: Path
) -> None:
    """Forked workers inherit CloudVolume from the parent (``CVBackend.warm_up``) instead
    of each importing it again on its first chunk (about a second each)."""
    path, _ = source
    script = f"""
import sys, lamina
from lamina.flows import downsample
layer = lamina.build_cv_layer({str(path)!r})
assert "cloudvolume" not in sys.modules, "building a layer stays cheap"
downsample(layer, levels=1, executor="processes", workers=2, progress=False,
           journal_dir={str(tmp_path / "j")!r})
print("cloudvolume" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "True"
