"""The ``dask`` executor itself: registered through the executor hook without importing
dask, ``concurrent.futures`` semantics on an existing cluster (which it leaves running),
no deduplication of repeated calls, cancellation, and clear errors (dask missing, bad
arguments, a scheduler that cannot be reached or is lost mid-run)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dask_support import volume
from lamina_dask import (
    DaskExecutor,
    DaskNotInstalledError,
    SchedulerLostError,
    SchedulerUnreachableError,
    dask_executor,
)

from lamina.flows import copy


def _pid_and(value: Any, *, plus: int = 0) -> tuple[int, Any]:
    return os.getpid(), value + plus


def _fail(message: str) -> None:
    raise ValueError(message)


def _touch(path: str) -> int:
    Path(path).mkdir(exist_ok=True)
    (Path(path) / f"{time.monotonic_ns()}-{os.getpid()}").touch()
    return 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_registered_without_importing_dask() -> None:
    code = (
        "import sys\n"
        "from lamina.plugins.manager import get_host\n"
        "factory = get_host().lookup('executors', 'dask')\n"
        "print(factory.__module__)\n"
        "heavy = sorted(m for m in ('dask', 'distributed', 'tornado') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split("\n")
    assert out[0] == "lamina_dask.executor"
    assert out[1] == "[]"


def test_futures_on_an_existing_cluster(address: str, client: Any, tmp_path: Path) -> None:
    executor = dask_executor(workers=2, scheduler=address)
    assert isinstance(executor, DaskExecutor)
    try:
        futures = [executor.submit(_pid_and, n, plus=10) for n in range(6)]
        failing = executor.submit(_fail, "boom")
        done, _ = wait([*futures, failing], return_when=FIRST_COMPLETED, timeout=60)
        assert done
        done, not_done = wait([*futures, failing], timeout=60)
        assert not not_done
        results = [f.result() for f in futures]
        assert [value for _, value in results] == list(range(10, 16))  # kwargs reach fn
        assert {pid for pid, _ in results} <= set(client.run(os.getpid).values())
        assert os.getpid() not in {pid for pid, _ in results}  # ran in worker processes
        with pytest.raises(ValueError, match="boom"):
            failing.result()
        # the very same call, submitted again, runs again: no key deduplication
        marks = str(tmp_path / "marks")
        again = [executor.submit(_touch, marks) for _ in range(3)]
        assert [f.result(timeout=60) for f in again] == [1, 1, 1]
        assert len(list(Path(marks).iterdir())) == 3
    finally:
        executor.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(_pid_and, 1)
    executor.shutdown()  # twice is fine
    assert executor.client.status == "closed"
    # the cluster someone else runs is left running
    assert client.status == "running"
    assert len(client.run(os.getpid)) == 2


def test_shutdown_cancels_what_is_in_flight(address: str, client: Any) -> None:
    executor = dask_executor(workers=1, scheduler=address)
    slow = [executor.submit(time.sleep, 3) for _ in range(3)]
    start = time.monotonic()
    executor.shutdown(wait=True, cancel_futures=True)
    assert time.monotonic() - start < 2.5  # did not wait for the sleeps (2 x 3 s at least)
    assert all(f.cancelled() for f in slow)
    done, _ = wait(slow, timeout=1)  # cancelled futures count as done for wait()
    assert len(done) == 3
    client.wait_for_workers(2, timeout=60)
    assert client.submit(sum, [1, 2], pure=False).result(timeout=60) == 3  # cluster free


def test_a_run_uses_the_default_client_of_its_scheduler_and_leaves_it_open(
    address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import distributed

    src = volume(tmp_path / "src", (64, 64, 8), (32, 32, 8))
    src[0:64, 0:64, 0:8] = np.arange(64 * 64 * 8, dtype="uint8").reshape(1, 64, 64, 8)
    dst = volume(tmp_path / "dst", (64, 64, 8), (32, 32, 8))
    with distributed.Client(address) as mine:  # the process's default client
        assert distributed.default_client() is mine

        def no_new_client(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("the run connected a client of its own")

        with monkeypatch.context() as patched:
            patched.setattr(distributed, "Client", no_new_client)
            bare = address.removeprefix("tcp://")  # the same scheduler, without tcp://
            executor = dask_executor(workers=2, scheduler=bare)
            assert executor.client is mine
            assert not executor.owns_client
            executor.shutdown()
            assert mine.status == "running"  # not ours to close
            summary = copy(
                src, dst, chunk_size=(32, 32, 8), executor="dask", workers=2,
                scheduler=address, progress=False,
            )  # fmt: skip
        assert summary.tasks == 4
        assert mine.status == "running"
        assert mine.submit(sum, [1, 2], pure=False).result(timeout=60) == 3
    assert (dst[0:64, 0:64, 0:8] == src[0:64, 0:64, 0:8]).all()


def test_a_default_client_of_another_scheduler_is_not_used(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import distributed

    class OtherSchedulersClient:
        status = "running"
        asynchronous = False

        class scheduler:  # stands for Client.scheduler
            address = "tcp://127.0.0.1:9"

    monkeypatch.setattr(distributed, "default_client", OtherSchedulersClient)
    executor = dask_executor(workers=2, scheduler=address)
    try:
        assert executor.owns_client
        assert executor.client.submit(sum, [1, 2], pure=False).result(timeout=60) == 3
    finally:
        executor.shutdown()
    assert executor.client.status == "closed"


def test_arguments_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="workers must be a positive int or None; got 0"):
        dask_executor(workers=0)
    with pytest.raises(ValueError, match="scheduler must be a dask scheduler's address"):
        dask_executor(workers=1, scheduler="  ")
    with pytest.raises(ValueError, match="takes workers= and scheduler=, not \\['threads'\\]"):
        dask_executor(workers=1, threads=2)
    monkeypatch.setenv("LAMINA_DASK_LOG_LEVEL", "chatty")
    with pytest.raises(ValueError, match="LAMINA_DASK_LOG_LEVEL must be a logging level"):
        dask_executor(workers=1, scheduler="tcp://127.0.0.1:9")


def test_unreachable_scheduler_is_a_clear_error_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMINA_DASK_CONNECT_TIMEOUT", "1")
    src = volume(tmp_path / "src", (32, 32, 8), (16, 16, 8))
    dst = volume(tmp_path / "dst", (32, 32, 8), (16, 16, 8))
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(SchedulerUnreachableError) as caught:
        copy(src, dst, executor="dask", scheduler=address)
    assert time.monotonic() - start < 15
    message = str(caught.value)
    assert f"cannot reach the dask scheduler at {address!r} within 1 s" in message
    assert isinstance(caught.value, OSError)
    monkeypatch.setenv("LAMINA_DASK_CONNECT_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="LAMINA_DASK_CONNECT_TIMEOUT must be a number"):
        dask_executor(scheduler=address)


def test_lost_scheduler_breaks_the_executor_and_the_run_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler that goes away mid-run: the tasks in flight fail with
    SchedulerLostError (a BrokenExecutor), the engine asks for a new executor, which
    cannot reach the address any more: the run ends with that error, not a hang."""
    from distributed import LocalCluster

    monkeypatch.setenv("LAMINA_DASK_CONNECT_TIMEOUT", "1")
    # a scheduler without workers: the tasks wait there until it goes away
    lonely = LocalCluster(
        n_workers=0,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )
    address = str(lonely.scheduler_address)
    executor = dask_executor(workers=1, scheduler=address)
    waiting = executor.submit(_pid_and, 1)
    src = volume(tmp_path / "src", (32, 32, 8), (16, 16, 8))
    dst = volume(tmp_path / "dst", (32, 32, 8), (16, 16, 8))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            copy(src, dst, executor="dask", scheduler=address, chunk_size=(16, 16, 8))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while len(lonely.scheduler.tasks) < 3 and time.monotonic() < deadline:  # run submitted
        time.sleep(0.05)
    lonely.close()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert isinstance(waiting.exception(timeout=30), SchedulerLostError)
    assert isinstance(waiting.exception(), BrokenExecutor)
    assert address in str(waiting.exception())
    executor.shutdown()
    (error,) = errors
    assert isinstance(error, SchedulerUnreachableError)
    assert address in str(error)


def test_missing_dask_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    src = volume(tmp_path / "src", (32, 32, 8), (16, 16, 8))
    dst = volume(tmp_path / "dst", (32, 32, 8), (16, 16, 8))
    with pytest.raises(DaskNotInstalledError, match="pip install lamina-dask") as caught:
        copy(src, dst, executor="dask", workers=2)
    assert isinstance(caught.value, ImportError)
    assert "dask.distributed" in str(caught.value)


def _worker_environment() -> tuple[str | None, str | None]:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("LAMINA_RESAMPLE_THREADS")


def _worker_diagnostics() -> tuple[Any, Any]:
    import dask

    return (
        dask.config.get("distributed.worker.profile.enabled"),
        dask.config.get("distributed.admin.tick.interval"),
    )


def test_its_local_cluster_workers_keep_freed_memory_and_run_no_diagnostics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dask's MALLOC_TRIM_THRESHOLD_=65536 would hand each task's arrays back to the
    system and fault them in again on the next task; lamina's local cluster starts its
    workers without it and applies lamina's allocator settings in each, whatever dask's
    nannies left in this process's os.environ. Its workers run neither dask's profiler
    nor its 20 ms tick (nobody sees either without a dashboard)."""
    import dask
    from lamina_dask import lamina_worker_config

    from lamina.testing import second_round_page_faults
    from lamina.testing.workers import BLOCK_BYTES, BLOCKS

    # as a plain LocalCluster's nannies leave this process's environment (the workers
    # inherit it): not the user's choice, so lamina's settings still apply in them
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    config = lamina_worker_config()["distributed.nanny.pre-spawn-environ"]
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") == 65536
    assert "MALLOC_TRIM_THRESHOLD_" not in config
    assert config["OMP_NUM_THREADS"] == 1  # dask's other settings stay
    executor = dask_executor(workers=1)
    try:
        environments = executor.client.run(_worker_environment)
        faults = executor.client.run(second_round_page_faults)
        diagnostics = executor.client.run(_worker_diagnostics)
    finally:
        executor.shutdown()
    assert list(environments.values()) == [("65536", "1")]
    assert list(diagnostics.values()) == [(False, "1s")]  # no profiler, no 20 ms tick
    (worker_faults,) = faults.values()
    assert worker_faults < BLOCK_BYTES * BLOCKS // 4096 // 10, worker_faults


class _MarkWorker:
    """A run's operation: marks each task with the process that ran it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, idx: Any) -> int:
        (self.root / f"{os.getpid()}-{idx.start[0]}").touch()
        return 1


def test_runs_in_a_reuse_block_share_one_local_cluster(tmp_path: Path) -> None:
    """Without ``scheduler=`` each run starts a local cluster of its own (seconds); in a
    ``reuse_workers()`` block the first run's cluster serves the next and the block's end
    closes it."""
    from lamina import VolumetricIndex
    from lamina.flows import reuse_workers, run_tasks

    tasks = [VolumetricIndex.from_coords((i, 0, 0), (i + 1, 1, 1), (1, 1, 1)) for i in range(4)]

    def workers_of_a_run(name: str) -> set[str]:
        root = tmp_path / name
        root.mkdir()
        run_tasks(
            "test",
            _MarkWorker(root),
            tasks,
            {"case": name},
            executor="dask",
            workers=2,
            journal_dir=tmp_path / "j",
            progress=False,
        )
        return {marker.name.split("-")[0] for marker in root.iterdir()}

    with reuse_workers() as kept:
        first = workers_of_a_run("a")
        (executor,) = kept
        assert isinstance(executor, DaskExecutor)
        assert executor.cluster is not None
        second = workers_of_a_run("b")
        assert executor.client.status == "running"
    assert first == second
    assert executor.client.status == "closed"
    assert executor.cluster.status.name == "closed"
