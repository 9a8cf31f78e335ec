"""Faults on dask: a worker SIGKILLed mid-run loses no task (on
the session's cluster, and on the local cluster the executor starts, whose workers
always come back); a task that kills its worker until dask gives up (KilledWorker) goes
through the engine's retries, and in the end TasksFailedError; a task that fails twice
then succeeds; one that always fails, then a resumed run with the fixed function doing
just that task; resuming a run whose process was killed.

Every ``apply`` here runs :class:`dask_support.Step` over a keyed source of 16 blocks
(4 x 4 x 1 tasks of 16 x 16 x 8 voxels): each call leaves a marker file naming its
block and worker process, so the tests count calls across processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from dask_support import (
    HERE,
    R,
    Step,
    call_pids,
    calls,
    environment,
    key_of,
    keyed_source,
    volume,
    write_plan,
)

import lamina
from lamina import BBox3D
from lamina.flows import TasksFailedError, apply

SHAPE = (64, 64, 8)
CHUNK = (16, 16, 8)
STARTS = [(x, y, 0) for y in range(0, 64, 16) for x in range(0, 64, 16)]  # task order
KEYS = [key_of(s) for s in STARTS]


@pytest.fixture
def job(tmp_path: Path) -> dict[str, Any]:
    src, data = keyed_source(tmp_path / "src", SHAPE, CHUNK)
    dst = volume(tmp_path / "dst", SHAPE, CHUNK, dtype="uint32")
    steps = tmp_path / "steps"
    steps.mkdir()
    return {
        "src": src,
        "dst": dst,
        "data": data,
        "steps": steps,
        "fn": Step(str(steps)),
        "dst_path": tmp_path / "dst",
    }


def _run(job: dict[str, Any], address: str, **options: Any) -> Any:
    return apply(
        job["fn"],
        job["src"],
        job["dst"],
        chunk_size=CHUNK,
        executor="dask",
        workers=2,
        scheduler=address,
        **options,
    )


def _written(job: dict[str, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(lamina.build_cv_layer(str(job["dst_path"]))[R, 0:64, 0:64, 0:8])


def _expected(job: dict[str, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(job["data"] * 3 + 1)


def _block(start: tuple[int, int, int]) -> tuple[slice, ...]:
    return (slice(None), *(slice(s, s + c) for s, c in zip(start, CHUNK, strict=True)))


def test_a_worker_killed_mid_run_loses_no_task(
    job: dict[str, Any], address: str, client: Any
) -> None:
    write_plan(job["steps"], {"*": {"sleep": 0.6}})  # 16 x 0.6 s on 2 workers: ~5 s
    workers = set(client.run(os.getpid).values())
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = _run(job, address)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:  # a call that has just begun
        recorded = call_pids(job["steps"])
        if len(recorded) >= 3:
            victim_key, victim = recorded[-1][1], recorded[-1][2]
        else:
            time.sleep(0.02)
    assert victim in workers
    os.kill(victim, signal.SIGKILL)  # while it sleeps in its task
    thread.join(timeout=150)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"].tasks == 16
    np.testing.assert_array_equal(_written(job), _expected(job))
    counted = calls(job["steps"])
    assert set(counted) == set(KEYS)
    assert counted[victim_key] >= 2  # the killed task ran again elsewhere
    client.wait_for_workers(2, timeout=120)
    assert victim not in set(client.run(os.getpid).values())  # the nanny started a new one


def test_killed_worker_from_dask_goes_through_the_engine_retries(
    job: dict[str, Any], address: str, cluster: Any, client: Any, tmp_path: Path
) -> None:
    """With ``allowed-failures`` 0, dask gives up on a task at the first worker it kills
    (KilledWorker): the engine retries it like any failed task and the run completes; a
    task that kills every worker it runs on ends in TasksFailedError, the other tasks
    written.

    The killer is the last of 4 tasks, so that the tasks dask placed on the same
    worker have run before it (dask runs a worker's tasks in the order they came, and
    counts every task a dying worker holds as suspicious); it sleeps before killing, so
    that they are reported done.
    """
    row = BBox3D.from_coords((0, 0, 0), (64, 16, 8), R)  # tasks 0 to 3
    killer = KEYS[3]
    saved = cluster.scheduler.allowed_failures
    cluster.scheduler.allowed_failures = 0
    try:
        write_plan(job["steps"], {str(killer): {"kill": 1, "sleep": 0.5}})
        summary = _run(job, address, retries=1, bbox=row)
        assert summary.tasks == 4
        assert calls(job["steps"]) == {KEYS[0]: 1, KEYS[1]: 1, KEYS[2]: 1, killer: 2}
        np.testing.assert_array_equal(_written(job)[:, :, :16], _expected(job)[:, :, :16])

        steps = tmp_path / "steps-always"
        steps.mkdir()
        write_plan(steps, {str(killer): {"kill": 10**6, "sleep": 0.5}})
        again = {**job, "fn": Step(str(steps)), "dst_path": tmp_path / "dst-always"}
        again["dst"] = volume(again["dst_path"], SHAPE, CHUNK, dtype="uint32")
        with pytest.raises(TasksFailedError) as caught:
            _run(again, address, retries=1, bbox=row)
    finally:
        cluster.scheduler.allowed_failures = saved
    (failure,) = caught.value.failures
    assert failure.number == 3
    assert (tuple(failure.index.start), tuple(failure.index.stop)) == ((48, 0, 0), (64, 16, 8))
    assert "KilledWorker" in failure.error
    assert failure.attempts == 2
    assert "1 of 4 tasks failed" in str(caught.value)
    assert calls(steps) == {KEYS[0]: 1, KEYS[1]: 1, KEYS[2]: 1, killer: 2}  # 2 workers killed
    written, expected = _written(again), _expected(again)
    np.testing.assert_array_equal(written[:, :48, :16], expected[:, :48, :16])
    assert not written[_block(STARTS[3])].any()  # nothing pretends to be done
    client.wait_for_workers(2, timeout=120)


def test_on_its_own_local_cluster_killed_workers_come_back(
    job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``apply`` with ``executor="dask", workers=2`` and no scheduler: the executor starts
    a local cluster of 2 single-threaded worker processes on loopback, each resampling in
    one thread, and closes it (and its processes) at the end.

    A worker of it that dies is restarted by its nanny however long that takes: dask's
    SpecCluster would otherwise close for good a nanny whose worker is not back within
    ``lost-worker-timeout`` (15 s: a loaded machine, a worker killed again and again;
    made 50 ms here), and a run whose workers are all gone would wait forever.
    """
    import dask
    import distributed  # noqa: F401 - its defaults in dask.config before we change one
    import lamina_dask.executor as executor_module

    started: list[Any] = []
    original = executor_module._local

    def spy(module: Any, workers: int | None) -> Any:
        made = original(module, workers)
        environ = made.client.run(environment, "LAMINA_RESAMPLE_THREADS")
        started.append((made, made.client.nthreads(), environ, made.client.run(os.getpid)))
        shutdown = made.shutdown

        def counting_nannies(*args: Any, **kwargs: Any) -> None:
            nannies.append(len(made.cluster.workers))
            shutdown(*args, **kwargs)

        made.shutdown = counting_nannies
        return made

    nannies: list[int] = []

    monkeypatch.setattr(executor_module, "_local", spy)
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    write_plan(job["steps"], {str(KEYS[0]): {"kill": 1, "sleep": 0.3}})
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = apply(
                job["fn"], job["src"], job["dst"], chunk_size=CHUNK, executor="dask", workers=2
            )
        except BaseException as exc:
            outcome["error"] = exc

    with dask.config.set({"distributed.deploy.lost-worker-timeout": "50ms"}):
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(timeout=90)
    assert not thread.is_alive(), "the run hangs: its cluster lost its workers for good"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"].tasks == 16
    np.testing.assert_array_equal(_written(job), _expected(job))
    assert calls(job["steps"])[KEYS[0]] >= 2  # killed its worker, ran again
    assert nannies == [2]  # at the end of the run, the killed worker's nanny still there

    ((made, nthreads, environ, pids),) = started  # one cluster for the run
    assert made.address.startswith("tcp://127.0.0.1:")
    assert len(nthreads) == 2  # 2 worker processes, on loopback, of one thread each
    assert all(w.startswith("tcp://127.0.0.1:") and n == 1 for w, n in nthreads.items())
    assert set(environ.values()) == {"1"}  # each resamples in one thread
    assert os.getpid() not in pids.values()
    assert made.cluster.status.name == "closed"  # shutdown() closed the cluster it started
    assert made.client.status == "closed"
    left = [  # and its processes (nannies' workers, restarted ones too) are gone
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in children_before and "resource_tracker" not in " ".join(p.cmdline())
    ]
    assert not left, [p.cmdline() for p in left]


def test_a_task_that_fails_twice_then_succeeds(job: dict[str, Any], address: str) -> None:
    flaky = {KEYS[0], KEYS[9]}
    write_plan(job["steps"], {str(k): {"fail": 2} for k in flaky})
    summary = _run(job, address)  # 3 retries by default
    assert summary.tasks == 16
    np.testing.assert_array_equal(_written(job), _expected(job))
    # the retried call ran again each time (dask did not hand back a cached error)
    assert calls(job["steps"]) == {k: 3 if k in flaky else 1 for k in KEYS}


def test_a_task_that_always_fails_then_resume_with_the_fix(
    job: dict[str, Any], address: str
) -> None:
    broken = KEYS[6]
    write_plan(job["steps"], {str(broken): {"fail": 10**6}})
    with pytest.raises(TasksFailedError) as caught:
        _run(job, address)
    (failure,) = caught.value.failures
    assert failure.number == 6
    assert tuple(failure.index.start) == STARTS[6]
    assert tuple(failure.index.stop) == (48, 32, 8)
    assert failure.attempts == 4  # the first and 3 retries
    assert "RuntimeError: planned failure 4 of block" in failure.error
    message = str(caught.value)
    assert "1 of 16 tasks failed" in message
    assert "resume=True" in message
    written, expected = _written(job), _expected(job)
    assert not written[_block(STARTS[6])].any()
    mask = np.ones(written.shape, bool)
    mask[_block(STARTS[6])] = False
    np.testing.assert_array_equal(written[mask], expected[mask])  # every other task's block
    assert calls(job["steps"]) == {k: 4 if k == broken else 1 for k in KEYS}

    write_plan(job["steps"], {})  # the fix
    summary = _run(job, address, resume=True)
    assert (summary.tasks, summary.skipped) == (1, 15)
    assert calls(job["steps"]) == {k: 5 if k == broken else 1 for k in KEYS}  # just that one
    np.testing.assert_array_equal(_written(job), expected)


_INTERRUPTED_RUN = """
import sys
import lamina
from lamina.flows import apply
from dask_support import Step
root = sys.argv[1]
apply(
    Step(root + "/steps"),
    lamina.build_cv_layer(root + "/src"),
    lamina.build_cv_layer(root + "/dst"),
    chunk_size=(16, 16, 8),
    executor="dask",
    workers=2,
    scheduler=sys.argv[2],
    journal_dir=root + "/journals",
)
"""


def test_resume_after_an_interrupted_run(
    job: dict[str, Any], address: str, tmp_path: Path, cluster: Any
) -> None:
    write_plan(job["steps"], {"*": {"sleep": 0.4}})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED_RUN, str(tmp_path), address],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    journals = tmp_path / "journals"
    deadline = time.monotonic() + 120
    finished: list[str] = []
    while len(finished) < 4 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        for journal in journals.glob("apply-*.jsonl"):
            finished = journal.read_text().splitlines()[1:]
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    process.send_signal(signal.SIGKILL)  # mid-run: no cleanup at all
    process.wait(timeout=30)
    process.stderr.close() if process.stderr else None
    (journal,) = journals.glob("apply-*.jsonl")
    done = {int(line) for line in journal.read_text().splitlines()[1:] if line.isdigit()}
    assert 4 <= len(done) < 16
    before = calls(job["steps"])

    write_plan(job["steps"], {})
    summary = _run(job, address, resume=True, journal_dir=journals)
    assert summary.skipped == len(done)
    assert summary.tasks == 16 - len(done)
    np.testing.assert_array_equal(_written(job), _expected(job))
    after = calls(job["steps"])
    again = {k for k in KEYS if after.get(k, 0) > before.get(k, 0)}
    assert again == {KEYS[n] for n in range(16) if n not in done}  # just the unfinished
