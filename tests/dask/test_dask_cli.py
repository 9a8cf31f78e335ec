"""The command line with lamina-dask installed: ``lamina copy … --executor dask`` on a
local cluster of its own and on an existing one (``--scheduler``, left running), quiet
(nothing on standard error, one summary line), and ``lamina plugins``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dask_support import R, volume

import lamina
from lamina import Vec3D

SHAPE = (64, 64, 16)
LAMINA = str(Path(sys.executable).with_name("lamina"))  # the console script users run


def _lamina(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAMINA_JOURNAL_DIR": str(cwd / "journals")}
    return subprocess.run(
        [LAMINA, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, np.ndarray[Any, Any]]:
    data = np.random.default_rng(11).integers(0, 255, (1, *SHAPE), dtype="uint8")
    volume(tmp_path / "src", SHAPE, (16, 16, 8))[R, 0:64, 0:64, 0:16] = data
    return tmp_path / "src", data


def test_cli_copy_on_a_local_dask_cluster(source: tuple[Path, Any], tmp_path: Path) -> None:
    path, data = source
    ran = _lamina(
        "copy", str(path), "out", "--dst-chunk-size", "32,32,8", "--chunk-size", "32,32,8",
        "--executor", "dask", "--workers", "2", cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("8 tasks, ")  # the one summary line
    assert ran.stdout.count("\n") == 1
    assert ran.stderr == ""  # no progress bar off a terminal, and dask's logs are quiet
    out = lamina.build_cv_layer(str(tmp_path / "out"))
    assert out.backend.get_chunk_size(R) == Vec3D(32, 32, 8)
    np.testing.assert_array_equal(out[R, 0:64, 0:64, 0:16], data)


def test_cli_copy_on_an_existing_cluster(
    source: tuple[Path, Any], tmp_path: Path, address: str, client: Any
) -> None:
    path, data = source
    ran = _lamina(
        "copy", str(path), "out", "--chunk-size", "32,32,8", "--executor", "dask",
        "--scheduler", address, "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("8 tasks, ")
    assert ran.stderr == ""
    np.testing.assert_array_equal(
        lamina.build_cv_layer(str(tmp_path / "out"))[R, 0:64, 0:64, 0:16], data
    )
    # the cluster the command used is still running, with its workers
    assert client.status == "running"
    assert len(client.run(os.getpid)) == 2


def test_cli_unreachable_scheduler(
    source: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = source
    monkeypatch.setenv("LAMINA_DASK_CONNECT_TIMEOUT", "1")
    ran = _lamina(
        "copy", str(path), "out", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9",
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 1
    assert "cannot reach the dask scheduler at 'tcp://127.0.0.1:9' within 1 s" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_lamina_plugins_lists_lamina_dask(tmp_path: Path) -> None:
    listed = _lamina("plugins", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    text = listed.stdout
    assert "lamina-dask 0.1.0  [ok]" in text
    section = text[text.index("lamina-dask") :]
    assert "hooks: lamina_register_executors" in section
    assert "executors: dask" in section
    as_json = _lamina("plugins", "--json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    (entry,) = [p for p in json.loads(as_json.stdout) if p["distribution"] == "lamina-dask"]
    assert entry["entry_point"] == "dask = lamina_dask.hooks"
    assert entry["hooks"] == ["lamina_register_executors"]
    assert entry["names"]["executors"] == ["dask"]
    assert entry["error"] is None
