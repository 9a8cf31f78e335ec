"""``flows.reuse_workers()``: runs inside the block share their executor's workers, the
block's end stops them, a broken pool is replaced (and the replacement kept), a run
ended by an exception stops its executor, two runs at once never share one; outside a
block (and in a forked worker) every run has its own."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from lamina import VolumetricIndex
from lamina.flows import TasksFailedError, reuse_workers, run_tasks
from lamina.flows.executors import default_workers
from lamina.flows.reuse import KeptExecutors, kept_executors

RES = (4, 4, 40)
TASKS = [VolumetricIndex.from_coords((16 * i, 0, 0), (16 * i + 16, 16, 1), RES) for i in range(6)]


@attrs.frozen
class WhoRuns:
    """Marks each call with its process (``<pid>-<task>``); can kill or fail a task."""

    root: Path
    kill: int | None = None  # this task's first call kills its worker process
    fail: int | None = None  # this task always raises

    def __call__(self, idx: VolumetricIndex) -> int:
        x = idx.start[0] // 16
        first = not list(self.root.glob(f"*-{x}"))
        (self.root / f"{os.getpid()}-{x}").touch()
        if x == self.kill and first:
            os.kill(os.getpid(), signal.SIGKILL)
        if x == self.fail:
            raise RuntimeError(f"task {x} fails")
        time.sleep(0.02)  # both workers get tasks
        return 1


class Interrupt:
    """Ends the run the way Ctrl-C would: a BaseException out of a task."""

    def __call__(self, idx: VolumetricIndex) -> int:
        raise KeyboardInterrupt


@attrs.frozen
class SeesABlock:
    """Marks whether the process running the task sees a reuse_workers() block."""

    root: Path

    def __call__(self, idx: VolumetricIndex) -> int:
        (self.root / f"{os.getpid()}-{kept_executors() is not None}").touch()
        return 1


def _run(op: Callable[[VolumetricIndex], int], tmp_path: Path, **run: Any) -> None:
    """One run of ``op`` over TASKS, on ``processes`` x 2 unless ``run`` says otherwise."""
    run.setdefault("executor", "processes")
    run.setdefault("workers", 2)
    run_tasks(
        "test", op, TASKS, {"case": repr(op)}, journal_dir=tmp_path / "j", progress=False, **run
    )


def _pids(
    tmp_path: Path, name: str, kill: int | None = None, fail: int | None = None, **run: Any
) -> set[int]:
    """Run a WhoRuns operation into ``tmp_path/name``; the worker processes it ran in."""
    root = tmp_path / name
    root.mkdir()
    _run(WhoRuns(root, kill=kill, fail=fail), tmp_path, **run)
    return {int(marker.name.split("-")[0]) for marker in root.iterdir()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_runs_in_a_block_share_their_workers_and_its_end_stops_them(tmp_path: Path) -> None:
    with reuse_workers() as kept:
        first = _pids(tmp_path, "a")
        second = _pids(tmp_path, "b")
        assert len(kept) == 1
        assert all(_alive(pid) for pid in first)
    assert first == second
    assert len(first) == 2
    assert os.getpid() not in first
    assert not any(_alive(pid) for pid in first)


def test_outside_a_block_every_run_starts_and_stops_its_own_workers(tmp_path: Path) -> None:
    first = _pids(tmp_path, "a")
    assert not any(_alive(pid) for pid in first)
    second = _pids(tmp_path, "b")
    assert not first & second


def test_each_executor_and_worker_count_has_its_own_kept_executor(tmp_path: Path) -> None:
    with reuse_workers() as kept:
        two = _pids(tmp_path, "two", workers=2)
        one = _pids(tmp_path, "one", workers=1)
        _pids(tmp_path, "threads", executor="threads")
        assert len(kept) == 3
        assert len(one) == 1
        assert not one & two
        assert _pids(tmp_path, "two-again", workers=2) == two


def test_a_nested_block_uses_the_outer_one(tmp_path: Path) -> None:
    with reuse_workers() as outer:
        with reuse_workers() as inner:
            assert inner is outer
            first = _pids(tmp_path, "a")
        assert all(_alive(pid) for pid in first)  # the inner end stopped nothing
        assert _pids(tmp_path, "b") == first
    assert not any(_alive(pid) for pid in first)


def test_a_broken_pool_is_replaced_and_the_replacement_kept(tmp_path: Path) -> None:
    with reuse_workers() as kept:
        before = _pids(tmp_path, "a")
        _pids(tmp_path, "killed", kill=2)  # every task is still done
        assert len(list((tmp_path / "killed").glob("*-*"))) >= len(TASKS)
        after = _pids(tmp_path, "b")
        assert _pids(tmp_path, "c") == after
        assert len(kept) == 1
    assert not after & before  # a new pool: the killed one's worker is not among them
    assert not any(_alive(pid) for pid in after)


def test_failed_tasks_keep_the_pool_but_an_interrupted_run_stops_it(tmp_path: Path) -> None:
    with reuse_workers() as kept:
        first = _pids(tmp_path, "a")
        with pytest.raises(TasksFailedError):
            _pids(tmp_path, "failing", fail=3, retries=0)
        assert _pids(tmp_path, "b") == first  # a run that ended normally keeps it
        with pytest.raises(KeyboardInterrupt):
            _run(Interrupt(), tmp_path)
        assert len(kept) == 0  # the interrupted run stopped the kept pool
        assert not any(_alive(pid) for pid in first)
        after = _pids(tmp_path, "c")
        assert not after & first
        assert len(kept) == 1


def test_a_kept_pool_whose_workers_died_between_runs_is_replaced(tmp_path: Path) -> None:
    with reuse_workers() as kept:
        first = _pids(tmp_path, "a")
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)  # the pool notices: its next submit raises BrokenProcessPool
        second = _pids(tmp_path, "b")
        assert len(list((tmp_path / "b").iterdir())) >= len(TASKS)
        assert not second & first
        assert _pids(tmp_path, "c") == second
        assert len(kept) == 1


def test_workers_none_is_the_default_count(tmp_path: Path) -> None:
    with reuse_workers() as kept:
        default = _pids(tmp_path, "none", workers=None)
        explicit = _pids(tmp_path, "explicit", workers=default_workers())
        assert default == explicit
        assert len(kept) == 1


def test_a_forked_worker_sees_no_block(tmp_path: Path) -> None:
    root = tmp_path / "seen"
    root.mkdir()
    with reuse_workers():
        _run(SeesABlock(root), tmp_path)
        assert kept_executors() is not None
    assert {marker.name.split("-")[1] for marker in root.iterdir()} == {"False"}


def test_two_runs_at_once_never_share_an_executor() -> None:
    from concurrent.futures import ThreadPoolExecutor

    kept = KeptExecutors()
    key = KeptExecutors.key("threads", 2, {})
    started: list[ThreadPoolExecutor] = []

    def start() -> ThreadPoolExecutor:
        started.append(ThreadPoolExecutor(2))
        return started[-1]

    taken = kept.take(key, start)
    assert taken == (started[0], False)
    assert kept.take(key, start) is None  # busy: the second run starts its own
    kept.give_back(key, started[0])
    assert kept.take(key, start) == (started[0], True)
    kept.give_back(key, started[0])
    kept.close()
    with pytest.raises(RuntimeError, match="after shutdown"):  # stopped at the block's end
        started[0].submit(print)
    with pytest.raises(RuntimeError, match="block has ended"):
        kept.take(key, start)
