"""Helpers for the lamina-dask tests: volumes on local files and picklable ``apply``
functions whose behaviour (sleep, fail, kill its worker) is planned per task in a file,
so that worker processes of any cluster follow the plan and record every call.

Module level, so that dask's worker processes import them by name (they inherit this
process's ``sys.path``; the subprocesses of the tests get ``PYTHONPATH``).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import attrs
import numpy as np

import lamina
from lamina import BBox3D, Vec3D

R = Vec3D(8, 8, 40)
HERE = Path(__file__).resolve().parent


def volume(
    path: Path,
    shape: tuple[int, int, int],
    chunk: tuple[int, int, int],
    dtype: str = "uint8",
    scales: list[Vec3D[float]] | None = None,
    volume_type: str = "image",
) -> Any:
    """A new precomputed volume on local files (raw encoding), one channel."""
    return lamina.build_cv_layer(
        str(path),
        default_desired_resolution=R,
        index_resolution=R,
        info_type=volume_type,
        info_data_type=dtype,
        info_num_channels=1,
        info_chunk_size=chunk,
        info_encoding="raw",
        info_scales=scales or [R],
        info_bbox=BBox3D.from_coords((0, 0, 0), shape, R),
    )


def keyed_source(path: Path, shape: tuple[int, int, int], chunk: tuple[int, int, int]) -> Any:
    """A uint32 volume whose voxel (x, y, z) holds ``1 + x + 1000 * y + 1000000 * z``: the
    first voxel of a block names the block (see :func:`key_of`)."""
    layer = volume(path, shape, chunk, dtype="uint32")
    x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    data = (1 + x + 1000 * y + 1000000 * z).astype("uint32")[None]
    layer[R, 0 : shape[0], 0 : shape[1], 0 : shape[2]] = data
    return layer, data


def key_of(start: tuple[int, int, int]) -> int:
    """The key of the block starting at voxel ``start`` of a :func:`keyed_source`."""
    return 1 + start[0] + 1000 * start[1] + 1000000 * start[2]


def triple_plus_one(data: Any) -> Any:
    return data * 3 + 1


def neighbours_in_x(data: Any) -> Any:
    """``out[x] = data[x - 1] + data[x + 1]`` (uint16): needs one voxel of context in x."""
    wide = data.astype("uint16")
    out = np.zeros_like(wide)
    out[:, 1:-1] = wide[:, :-2] + wide[:, 2:]
    return out


@attrs.frozen
class Step:
    """An ``apply`` fn: ``3 * data + 1``, recording each call as a file
    ``DIR/calls/KEY-PID-UUID`` (KEY: the block's first voxel) and following the plan in
    ``DIR/plan.json``: ``{KEY or "*": {"sleep": s, "fail": n, "kill": n}}`` — sleep ``s``
    seconds, raise on the first ``n`` calls, SIGKILL its own worker process on the first
    ``n`` calls. Change the plan file to "fix" the function between runs (its repr, hence
    the run's journal, stays the same)."""

    dir: str

    def __call__(self, data: Any) -> Any:
        root = Path(self.dir)
        key = int(data[0, 0, 0, 0])
        calls = root / "calls"
        calls.mkdir(exist_ok=True)
        before = len(list(calls.glob(f"{key}-*")))
        (calls / f"{key}-{os.getpid()}-{uuid.uuid4().hex}").touch()
        plan_file = root / "plan.json"
        plan = json.loads(plan_file.read_text()) if plan_file.exists() else {}
        step = {**plan.get("*", {}), **plan.get(str(key), {})}
        time.sleep(step.get("sleep", 0))
        if before < step.get("kill", 0):
            os.kill(os.getpid(), signal.SIGKILL)
        if before < step.get("fail", 0):
            raise RuntimeError(f"planned failure {before + 1} of block {key}")
        return data * 3 + 1


def write_plan(root: Path, plan: dict[str, dict[str, float]]) -> None:
    (root / "plan.json").write_text(json.dumps(plan))


def calls(root: Path) -> dict[int, int]:
    """Calls recorded per key."""
    counts: dict[int, int] = {}
    for file in (root / "calls").glob("*-*-*"):
        key = int(file.name.split("-")[0])
        counts[key] = counts.get(key, 0) + 1
    return counts


def call_pids(root: Path) -> list[tuple[float, int, int]]:
    """(time, key, pid) of every recorded call, oldest first."""
    found = []
    for file in (root / "calls").glob("*-*-*"):
        key, pid, _ = file.name.split("-")
        try:
            found.append((file.stat().st_mtime, int(key), int(pid)))
        except FileNotFoundError:  # pragma: no cover - never removed
            continue
    return sorted(found)


def environment(name: str) -> str | None:
    """``os.environ.get(name)`` where it runs (``client.run(environment, NAME)``)."""
    return os.environ.get(name)


def triple_plus_one_uint8(data: Any) -> Any:
    """``3 a + 1`` in uint8 (wrapping): a pointwise function."""
    return (data * 3 + 1).astype("uint8")
