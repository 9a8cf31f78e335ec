"""The flows' engine: executors by name, retries, failures listing boxes, the journal and
resume, pools rebuilt after a worker is killed, the progress bar and the summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from lamina import UnknownNameError, Vec3D, VolumetricIndex
from lamina.flows import RunSummary, TasksFailedError, run_tasks
from lamina.flows.executors import SerialExecutor

RES = (4, 4, 40)


def _tasks(n: int) -> list[VolumetricIndex]:
    return [
        VolumetricIndex.from_coords((16 * i, 0, 0), (16 * i + 16, 16, 1), RES) for i in range(n)
    ]


@attrs.frozen
class Recorder:
    """Writes one marker file per call (works across processes): ``calls/<x>-<n>``."""

    root: Path
    fail_times: int = 0  # the first this many calls of each task raise
    fail_always: frozenset[int] = frozenset()
    kill_first: frozenset[int] = frozenset()  # tasks whose first call kills its process

    def calls(self, x: int) -> int:
        return len(list(self.root.glob(f"{x}-*")))

    def __call__(self, idx: VolumetricIndex) -> int:
        x = idx.start[0] // 16
        n = self.calls(x)
        (self.root / f"{x}-{n}").touch()
        if x in self.kill_first and n == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        if x in self.fail_always or n < self.fail_times:
            raise RuntimeError(f"task {x} failed on call {n}")
        return 100


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    (tmp_path / "calls").mkdir()
    return Recorder(tmp_path / "calls")


def _run(op: Any, tasks: list[VolumetricIndex], tmp_path: Path, **kw: Any) -> RunSummary:
    kw.setdefault("progress", False)
    return run_tasks("test", op, tasks, {"case": "x"}, journal_dir=tmp_path / "j", **kw)


@pytest.mark.parametrize("executor", ["serial", "threads", "processes"])
def test_every_task_runs_once(executor: str, recorder: Recorder, tmp_path: Path) -> None:
    summary = _run(recorder, _tasks(6), tmp_path, executor=executor, workers=2)
    assert [recorder.calls(x) for x in range(6)] == [1] * 6
    assert (summary.tasks, summary.skipped, summary.bytes) == (6, 0, 600)
    assert summary.line().startswith("6 tasks, 0.0 MB in ")
    assert summary.line().endswith(" MB/s")


class Unpickled:
    """Records, per call, the process and the identity of the object that ran it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, idx: VolumetricIndex) -> int:
        (self.root / f"{os.getpid()}-{id(self)}-{idx.start[0]}").touch()
        time.sleep(0.02)  # both workers get tasks
        return 1


def test_a_worker_process_unpickles_the_operation_once_per_run(tmp_path: Path) -> None:
    """The operation (and its layers' handles) is kept from task to task in a worker, as
    on serial; a second run ships a new one."""
    for run in ("a", "b"):
        root = tmp_path / run
        root.mkdir()
        _run(Unpickled(root), _tasks(12), tmp_path, executor="processes", workers=2)
        objects: dict[str, set[str]] = {}
        for marker in root.iterdir():
            pid, obj, _ = marker.name.split("-")
            objects.setdefault(pid, set()).add(obj)
        assert len(list(root.iterdir())) == 12
        assert all(len(ids) == 1 for ids in objects.values()), objects


def test_a_task_failing_twice_then_succeeding(recorder: Recorder, tmp_path: Path) -> None:
    flaky = attrs.evolve(recorder, fail_times=2)
    summary = _run(flaky, _tasks(3), tmp_path, executor="threads", workers=2)
    assert summary.tasks == 3
    assert [recorder.calls(x) for x in range(3)] == [3, 3, 3]


def test_a_task_that_always_fails_is_listed_and_resume_does_just_it(
    recorder: Recorder, tmp_path: Path
) -> None:
    broken = attrs.evolve(recorder, fail_always=frozenset({2, 4}))
    with pytest.raises(TasksFailedError) as caught:
        _run(broken, _tasks(6), tmp_path, executor="threads", workers=2, retries=2)
    err = caught.value
    assert [f.number for f in err.failures] == [2, 4]
    assert all(f.attempts == 3 for f in err.failures)
    text = str(err)
    assert "2 of 6 tasks failed" in text
    assert (
        "task 2: (32, 0, 0):(48, 16, 1) voxels at (4, 4, 40) nm ((128, 0, 0) - (192, 64, 40) nm)"
        in text
    )
    assert "RuntimeError: task 4 failed" in text
    assert "resume=True" in text
    assert [recorder.calls(x) for x in range(6)] == [1, 1, 3, 1, 3, 1]
    # fixed, resumed: only the two failed tasks run again
    summary = _run(recorder, _tasks(6), tmp_path, executor="threads", workers=2, resume=True)
    assert (summary.tasks, summary.skipped) == (2, 4)
    assert [recorder.calls(x) for x in range(6)] == [1, 1, 4, 1, 4, 1]
    assert "(4 already done, skipped)" in summary.line()
    # without resume the journal starts afresh: everything runs
    _run(recorder, _tasks(6), tmp_path)
    assert [recorder.calls(x) for x in range(6)] == [2, 2, 5, 2, 5, 2]


def test_no_retry_with_retries_zero(recorder: Recorder, tmp_path: Path) -> None:
    with pytest.raises(TasksFailedError, match="after 1 attempt\\)"):
        _run(attrs.evolve(recorder, fail_times=1), _tasks(1), tmp_path, retries=0)
    with pytest.raises(ValueError, match="retries must be an int >= 0"):
        _run(recorder, _tasks(1), tmp_path, retries=-1)


def test_a_killed_worker_loses_no_task(recorder: Recorder, tmp_path: Path) -> None:
    killer = attrs.evolve(recorder, kill_first=frozenset({1, 3}))
    summary = _run(killer, _tasks(6), tmp_path, executor="processes", workers=2)
    assert summary.tasks == 6
    assert all(recorder.calls(x) >= 1 for x in range(6))
    assert recorder.calls(1) >= 2
    assert recorder.calls(3) >= 2  # killed once, then run again in a new pool


def test_resume_after_an_interrupted_run(tmp_path: Path) -> None:
    # a run in another process is killed (SIGKILL) half way; resume does the rest
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from pathlib import Path
            from test_engine import Slow, _tasks
            from lamina.flows import run_tasks
            run_tasks("test", Slow(Path({str(tmp_path)!r}) / "calls"), _tasks(8),
                       {{"case": "interrupted"}}, journal_dir={str(tmp_path / "j")!r},
                       progress=False)
            """
        )
    )
    (tmp_path / "calls").mkdir()
    proc = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 60
    journal = None
    while time.monotonic() < deadline:
        found = list((tmp_path / "j").glob("test-*.jsonl")) if (tmp_path / "j").exists() else []
        if found and len(found[0].read_text().splitlines()) >= 4:  # header + 3 tasks
            journal = found[0]
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert journal is not None, "the run never recorded 3 tasks"
    finished_before = len(journal.read_text().splitlines()) - 1
    assert 3 <= finished_before < 8
    slow = Slow(tmp_path / "calls")
    summary = run_tasks(
        "test",
        slow,
        _tasks(8),
        {"case": "interrupted"},
        journal_dir=tmp_path / "j",
        resume=True,
        progress=False,
    )
    assert summary.skipped == finished_before
    assert summary.tasks == 8 - finished_before
    ran = {int(p.name.split("-")[0]) for p in (tmp_path / "calls").iterdir()}
    assert ran == set(range(8))


@attrs.frozen
class Slow:
    root: Path

    def __call__(self, idx: VolumetricIndex) -> int:
        time.sleep(0.2)
        (self.root / f"{idx.start[0] // 16}-{time.monotonic_ns()}").touch()
        return 1


def test_unknown_executor_names_the_registered_ones(recorder: Recorder, tmp_path: Path) -> None:
    from lamina.plugins.manager import get_host

    if "dask" not in {e.name for e in get_host().registry.entries("executors")}:
        with pytest.raises(UnknownNameError, match=r"dask.*pip install lamina-dask"):
            _run(recorder, _tasks(1), tmp_path, executor="dask")
    with pytest.raises(UnknownNameError, match="threads"):
        _run(recorder, _tasks(1), tmp_path, executor="thread")


def test_serial_executor_reports_exceptions_on_the_future() -> None:
    future = SerialExecutor().submit(lambda: 1 / 0)
    assert isinstance(future.exception(), ZeroDivisionError)
    assert SerialExecutor().submit(lambda: 5).result() == 5


def test_workers_are_checked(recorder: Recorder, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers must be a positive int"):
        _run(recorder, _tasks(1), tmp_path, executor="threads", workers=0)


def test_progress_bar_counts_tasks_and_chunks(
    recorder: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(recorder, _tasks(4), tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "4/4 tasks" in err
    assert " MB/s [" in err
    assert "|, " not in err  # no stray separator before the rate
    assert "| , " not in err
    per_task = _run(recorder, _tasks(4), tmp_path, progress=True, chunks_per_task=lambda i: 3)
    err = capsys.readouterr().err
    assert "4/4 tasks" in err
    assert "| 12 chunks, " in err
    assert per_task.storage_chunks == 12
    _run(recorder, _tasks(4), tmp_path, progress=False)
    assert capsys.readouterr().err == ""


def test_the_summary_says_tasks_and_chunks() -> None:
    summary = RunSummary(4, 0, 86_000_000, 0.5, storage_chunks=1024)
    assert summary.line() == "4 tasks, 1,024 chunks, 86.0 MB in 0.5 s, 172 MB/s"
    assert summary.chunks == summary.tasks == 4  # chunks: the old name, an alias
    assert RunSummary(1, 0, 2_100_000, 0.8).line() == "1 task, 2.1 MB in 0.8 s, 2.6 MB/s"
    assert RunSummary(0, 3, 0, 0.0, storage_chunks=0).line() == (
        "0 tasks, 0 chunks, 0.0 MB in 0.0 s, 0.0 MB/s (3 already done, skipped)"
    )


def test_storage_chunks_counts_the_chunks_a_task_covers() -> None:
    from lamina import BBox3D, build_memory_volumetric_layer
    from lamina.flows import StorageChunks

    layer = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (100, 64, 8), RES), [RES, (8, 8, 40)], (32, 32, 4)
    )
    count = StorageChunks(layer.backend, (Vec3D(*RES).float(),))
    assert count(VolumetricIndex.from_coords((0, 0, 0), (64, 64, 8), RES)) == 2 * 2 * 2
    assert count(VolumetricIndex.from_coords((64, 0, 0), (100, 32, 4), RES)) == 2  # edge
    both = StorageChunks(layer.backend, (Vec3D(*RES).float(), Vec3D(8, 8, 40).float()))
    assert both(VolumetricIndex.from_coords((0, 0, 0), (64, 64, 8), RES)) == 8 + 2


def test_a_run_whose_every_task_fails_alike_stops_and_says_nothing_was_written() -> None:
    """Values a narrower destination cannot hold: every task would fail the same way. Each
    is tried once (a retry cannot cure it) and the run stops after three, instead of
    trying every task four times and saying the others were written."""
    from lamina import BBox3D, build_memory_volumetric_layer
    from lamina.flows import TasksFailedError, copy

    box = BBox3D.from_coords((0, 0, 0), (256, 256, 8), (4, 4, 40))
    src = build_memory_volumetric_layer(box, [(4, 4, 40)], chunk_size=(32, 32, 8), dtype="uint16")
    dst = build_memory_volumetric_layer(box, [(4, 4, 40)], chunk_size=(32, 32, 8), dtype="uint8")
    src[(4, 4, 40), 0:256, 0:256, 0:8] = 1000
    with pytest.raises(TasksFailedError) as failed:
        copy(src, dst, chunk_size=(32, 32, 8), progress=False)
    message = str(failed.value)
    assert "3 tasks failed the same way and none succeeded" in message
    assert "61 tasks were not tried" in message
    assert "No task was written" in message
    assert all(f.attempts == 1 for f in failed.value.failures)
    assert not dst[(4, 4, 40), 0:256, 0:256, 0:8].any()


def test_the_old_names_are_aliases(recorder: Recorder, tmp_path: Path) -> None:
    """run_chunks, ChunkFailure and ChunksFailedError (from before a flow's unit of work
    was called a task) stay, from lamina.flows and lamina.flows.engine alike."""
    import lamina.flows
    import lamina.flows.engine
    from lamina.flows import ChunkFailure, ChunksFailedError, TaskFailure, run_chunks

    assert ChunksFailedError is TasksFailedError
    assert ChunkFailure is TaskFailure
    for module in (lamina.flows, lamina.flows.engine):
        for name in (
            "run_tasks", "run_chunks", "RunSummary", "StorageChunks", "TaskFailure",
            "ChunkFailure", "TasksFailedError", "ChunksFailedError", "FlowInterrupted",
        ):  # fmt: skip
            assert getattr(module, name) is getattr(lamina.flows, name), (module, name)
    assert lamina.flows.engine.INTERRUPT_GRACE_S == 1.0
    # the old function keeps its old keyword
    summary = run_chunks(
        "test", recorder, description={"case": "alias"}, chunks=_tasks(2),
        journal_dir=tmp_path / "j", progress=False,
    )  # fmt: skip
    assert summary.tasks == summary.chunks == 2


def test_a_journal_written_before_tasks_were_called_tasks_is_resumed(
    recorder: Recorder, tmp_path: Path
) -> None:
    """Journals used to count their tasks under "chunks": such a one is still read."""
    import json

    _run(recorder, _tasks(4), tmp_path)
    (journal,) = (tmp_path / "j").glob("test-*.jsonl")
    header = json.loads(journal.read_text().splitlines()[0])
    assert header["tasks"] == 4
    header["chunks"] = header.pop("tasks")
    journal.write_text(json.dumps(header, sort_keys=True) + "\n0\n2\n")
    summary = _run(recorder, _tasks(4), tmp_path, resume=True)
    assert (summary.tasks, summary.skipped, summary.journal_found) == (2, 2, True)
    assert [recorder.calls(x) for x in range(4)] == [1, 2, 1, 2]
    with pytest.raises(ValueError, match="is of a run of 4 tasks, not 5"):
        _run(recorder, _tasks(5), tmp_path, resume=True)
