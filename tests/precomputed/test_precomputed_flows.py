"""The flows on precomputed volumes on local files: processes, the command line (copy
creating its DST, downsample's defaults, run with JSON and YAML specs), resume."""

from __future__ import annotations

import json
import re
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
    assert summary.tasks == 2 * 2 * 2
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
    # one summary line: tasks, chunks (once copy counts them), bytes
    assert re.match(r"8 tasks, (8 chunks, )?2\.1 MB in ", copied.stdout.strip()), copied.stdout
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
    assert again.stdout.startswith("0 tasks, ")
    assert "already done, skipped" in again.stdout
    bad = _lamina("copy", str(path), "part", "--bbox", "0,0:1,1", cwd=tmp_path)
    assert bad.returncode != 0
    assert "--bbox start must be three numbers" in bad.stderr
    unknown = _lamina("copy", "nothing.xyz://a", "b", cwd=tmp_path)
    assert unknown.returncode == 2  # no installed plugin opens it: a usage error
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
    assert ran.stdout.startswith("8 tasks, ")  # (and 8 chunks, once copy counts them)
    np.testing.assert_array_equal(
        lamina.build_cv_layer(str(tmp_path / "dst"))[R, 0:256, 0:256, 0:32], data
    )
    missing = _lamina("run", "nope.json", cwd=tmp_path)
    assert missing.returncode == 1
    assert "lamina run: error: the spec nope.json: no such file" in missing.stderr


def test_unknown_encodings_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="info_encoding must be one of raw, jpeg"):
        _volume(tmp_path / "bad", info_encoding="raw (uncompressed)")
    assert not (tmp_path / "bad").exists()


def test_the_parent_imports_cloudfiles_before_forking_workers(
    source: tuple[Path, Any], tmp_path: Path
) -> None:
    """Forked workers inherit cloud-files from the parent (``CVBackend.warm_up``) instead
    of each importing it again on its first chunk (about a second each)."""
    path, _ = source
    script = f"""
import sys, lamina
from lamina.flows import downsample
layer = lamina.build_cv_layer({str(path)!r})
assert "cloudfiles" not in sys.modules, "building a layer stays cheap"
downsample(layer, levels=1, executor="processes", workers=2, progress=False,
           journal_dir={str(tmp_path / "j")!r})
print("cloudfiles" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "True"


# -- nothing lost when a run is killed, nothing made when arguments are bad -----------------------
_DRIVER = """
import sys, time
import numpy as np
import lamina
from lamina.flows import apply

class Slow:
    '''A configured callable object, as a model is: known by its class and state.'''

    def __init__(self, factor, markers):
        self.factor = factor
        self.markers = markers

    def __call__(self, data):
        import os, uuid
        open(os.path.join(self.markers, uuid.uuid4().hex), "w").close()
        time.sleep(0.15)
        return data * self.factor

src = lamina.build_cv_layer(sys.argv[1])
dst = lamina.build_cv_layer(sys.argv[2])
summary = apply(Slow(2, sys.argv[3]), src, dst, chunk_size=(64, 64, 8), progress=False,
                resume=len(sys.argv) > 4)
print(summary.tasks, summary.skipped)
"""


def test_a_killed_apply_with_a_callable_object_resumes_from_another_directory(
    source: tuple[Path, Any], tmp_path: Path
) -> None:
    import os
    import signal
    import time

    path, data = source
    small = data // 2  # so that doubling stays in uint8
    lamina.build_cv_layer(str(path))[R, 0:256, 0:256, 0:32] = small
    _volume(tmp_path / "dst")
    markers = tmp_path / "markers"
    markers.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # Slow lives in __main__ of each run
    first_dir, second_dir = tmp_path / "here", tmp_path / "there"
    first_dir.mkdir()
    second_dir.mkdir()
    args = [sys.executable, str(script), str(path), str(tmp_path / "dst"), str(markers)]
    driver = subprocess.Popen(args, cwd=first_dir, env=env)
    deadline = time.monotonic() + 60
    while len(list(markers.iterdir())) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)
    driver.wait(30)
    started = len(list(markers.iterdir()))
    assert 6 <= started < 64  # killed mid-run: 64 tasks of 64 x 64 x 8
    resumed = subprocess.run(
        [*args, "resume"], cwd=second_dir, env=env, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    ran, skipped = (int(v) for v in resumed.stdout.split())
    assert skipped >= started - 1  # every task journaled before the kill is skipped
    assert ran + skipped == 64
    out = lamina.build_cv_layer(str(tmp_path / "dst"))[R, 0:256, 0:256, 0:32]
    np.testing.assert_array_equal(out, small * 2)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--executor", "gpu"], "gpu"),
        (["--workers", "0", "--executor", "threads"], "workers"),
        (["--resolution", "9,9,40"], "9"),
        (["--chunk-size", "100,100,8"], "multiple"),
        (["--bbox", "64,64,8:0,0,0"], "bbox"),
        (["--levls", "2"], "levls"),
    ],
)
def test_a_bad_copy_argument_creates_no_destination(
    source: tuple[Path, Any], tmp_path: Path, extra: list[str], message: str
) -> None:
    path, _ = source
    out = _lamina("copy", str(path), "out", "--dst-chunk-size", "64,64,8", *extra, cwd=tmp_path)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()
    good = _lamina("copy", str(path), "out", "--dst-chunk-size", "128,128,16", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    made = lamina.build_cv_layer(str(tmp_path / "out"))
    assert made.backend.get_chunk_size(R) == Vec3D(128, 128, 16)


def _invert(data: Any) -> Any:
    return 255 - data


def test_apply_into_a_sharded_volume_writes_every_voxel(
    source: tuple[Path, Any], tmp_path: Path
) -> None:
    import tensorstore as ts

    from lamina.flows import apply

    path, data = source
    sharding = {
        "@type": "neuroglancer_uint64_sharded_v1",
        "hash": "identity",
        "preshift_bits": 2,
        "minishard_bits": 1,
        "shard_bits": 3,
        "minishard_index_encoding": "gzip",
        "data_encoding": "gzip",
    }
    ts.open(
        {
            "driver": "neuroglancer_precomputed",
            "kvstore": {"driver": "file", "path": str(tmp_path / "sharded")},
            "multiscale_metadata": {"type": "image", "data_type": "uint8", "num_channels": 1},
            "scale_metadata": {
                "resolution": list(R),
                "encoding": "raw",
                "chunk_size": [64, 64, 8],
                "size": list(SHAPE),
                "sharding": sharding,
            },
            "create": True,
        }
    ).result()
    dst = lamina.build_cv_layer(str(tmp_path / "sharded"))
    assert dst.backend.get_write_grid_size(R) == Vec3D(128, 128, 16)
    summary = apply(_invert, lamina.build_cv_layer(str(path)), dst, progress=False)
    assert summary.tasks >= 1
    back = ts.open(
        {
            "driver": "neuroglancer_precomputed",
            "kvstore": {"driver": "file", "path": str(tmp_path / "sharded")},
        }
    ).result()
    np.testing.assert_array_equal(
        np.asarray(back.read(order="F").result()).transpose(3, 0, 1, 2), 255 - data
    )


def test_a_pyramid_over_a_sharded_level_never_writes_one_shard_from_two_tasks(
    tmp_path: Path,
) -> None:
    """An existing sharded level of the pyramid: tasks cover whole shards there by
    default; a task size that would share a shard between tasks is refused, even with
    non-aligned writes allowed (two read-modify-writes of one shard lose voxels)."""
    fine, level = Vec3D(4, 4, 40), Vec3D(8, 8, 40)
    path = tmp_path / "v"
    lamina.build_cv_layer(
        str(path),
        info_scales=[fine],
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=(32, 32, 8),
        info_bbox=BBox3D.from_coords((0, 0, 0), (512, 512, 8), fine),
    )
    info = json.loads((path / "info").read_text())
    sharded = {
        **info["scales"][0],
        "key": "8_8_40",
        "resolution": [8, 8, 40],
        "size": [256, 256, 8],
        "sharding": {
            "@type": "neuroglancer_uint64_sharded_v1",
            "preshift_bits": 0,
            "hash": "identity",
            "minishard_bits": 6,
            "shard_bits": 4,
            "minishard_index_encoding": "raw",
            "data_encoding": "raw",
        },
    }
    info["scales"].append(sharded)
    (path / "info").write_text(json.dumps(info))
    layer = lamina.build_cv_layer(str(path), cv_kwargs={"non_aligned_writes": True})
    assert layer.backend.get_write_grid_size(level) == Vec3D(256, 256, 8)
    data = np.random.default_rng(0).integers(1, 255, (1, 512, 512, 8), dtype=np.uint8)
    layer[fine, 0:512, 0:512, 0:8] = data
    with pytest.raises(ValueError, match=r"shares cells of level \(8, 8, 40\).*\(128, 128, 8\)"):
        downsample(layer, levels=2, executor="threads", workers=4, chunk_size=(32, 32, 8))
    downsample(layer, levels=2, executor="threads", workers=4, progress=False)
    got = lamina.build_cv_layer(str(path))[level, 0:256, 0:256, 0:8]
    want = np.floor(data.reshape(1, 256, 2, 256, 2, 8).astype(float).mean(axis=(2, 4)) + 0.5)
    np.testing.assert_array_equal(got, want)
