"""The engine under every flow: run a flow's tasks on an executor, with retries, a
resumable journal, a progress bar and a summary.

:func:`run_tasks` takes an *operation* — a picklable callable ``operation(idx) -> int``
that processes one task's box and returns the bytes it wrote — and the tasks' indices,
and runs them on the executor registered under ``executor`` (``serial``, ``threads``,
``processes``, a plugin's ``dask``, …), started for the run and stopped at its end —
or, inside :func:`lamina.flows.reuse_workers`, kept for the block's next runs. It keeps
up to twice the workers' count of tasks in flight, records each finished one in the
journal (:mod:`lamina.flows.journal`) and skips, with ``resume=True``, those an earlier
run of the same thing recorded.

Words: a *task* is one call of the operation (one box of the flow's task grid); a
*chunk* is a storage chunk of the destination; a task covers one or many chunks.

The engine's concepts, one module each (every name below is importable from here too):

* :mod:`lamina.flows.shipping` — the operation pickled once per run and unpickled once
  per worker process;
* :mod:`lamina.flows.failures` — retries with backoff, errors not worth retrying, a run
  that stops when its tasks all fail alike, and :class:`TasksFailedError` listing the
  tasks that still failed;
* :mod:`lamina.flows.interrupts` — Ctrl-C: a grace for running tasks, the executor
  stopped at once, :class:`FlowInterrupted`;
* :mod:`lamina.flows.progress` — the progress bar, the tally of finished tasks and
  storage chunks (:class:`StorageChunks`), and :class:`RunSummary`.

A worker process that dies (SIGKILL, out of memory: ``concurrent.futures.BrokenExecutor``)
breaks its pool: the engine starts a new one and runs the unfinished tasks there again
(each counts one attempt, so a task that keeps killing its worker still ends).

``run_chunks`` is the old name of :func:`run_tasks`, kept as an alias (its third
parameter is still called ``chunks``), as are ``ChunkFailure`` and ``ChunksFailedError``
(:mod:`lamina.flows.failures`).
"""

from __future__ import annotations

import heapq
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from pathlib import Path
from typing import Any

from lamina.flows.checks import check_run_options
from lamina.flows.executors import default_workers
from lamina.flows.failures import (
    FAILED_ALIKE_LIMIT,
    ChunkFailure,
    ChunksFailedError,
    TaskFailure,
    TasksFailedError,
    _all_failed_alike,
    _retry_delay,
    _retryable,
)
from lamina.flows.interrupts import (
    INTERRUPT_GRACE_S,
    FlowInterrupted,
    _SigintGuard,
    _stop_interrupted,
)
from lamina.flows.journal import Journal
from lamina.flows.progress import RunSummary, StorageChunks, _Tally
from lamina.flows.reuse import KeptExecutors, RunExecutor
from lamina.flows.shipping import _call, _OncePerWorker
from lamina.volumetric.backend import warm_up_layers
from lamina.volumetric.index import VolumetricIndex

__all__ = [
    "FAILED_ALIKE_LIMIT",
    "INTERRUPT_GRACE_S",
    "ChunkFailure",
    "ChunksFailedError",
    "FlowInterrupted",
    "RunSummary",
    "StorageChunks",
    "TaskFailure",
    "TasksFailedError",
    "run_chunks",
    "run_tasks",
]

#: This process, among every process that has run or will run a flow.
_PROCESS = uuid.uuid4().hex


def _shared(layer: Any) -> bool:
    """Whether ``layer``'s data is seen by other processes (not in-memory)."""
    capabilities = getattr(getattr(layer, "backend", None), "capabilities", None)
    return bool(getattr(capabilities, "shared_across_processes", True))


def run_tasks(
    flow: str,
    operation: Callable[[VolumetricIndex], int],
    tasks: Sequence[VolumetricIndex],
    description: dict[str, Any],
    *,
    executor: str = "serial",
    workers: int | None = None,
    resume: bool = False,
    scheduler: str | None = None,
    retries: int = 3,
    progress: bool | None = None,
    journal_dir: str | Path | None = None,
    run_id: str | None = None,
    layers: Sequence[Any] = (),
    destinations: Sequence[Any] = (),
    chunks_per_task: Callable[[VolumetricIndex], int] | None = None,
) -> RunSummary:
    """Run ``operation`` on every task; see the module docstring.

    Args:
        flow: the flow's name (for messages and the journal's name).
        operation: picklable ``operation(idx) -> bytes written``; must be idempotent.
        tasks: the tasks' indices, in order (their numbers are their positions).
        description: what the run does, JSON-able (names the journal): it must be the
            same in every process for the same run (no ``repr`` holding an address;
            :func:`lamina.flows.identity.callable_identity` names functions).
        executor, workers, scheduler: the registered executor, its worker count and,
            for executors with a cluster (``dask``), the scheduler's address.
        resume: skip the tasks the journal of this same run lists as finished (the
            summary says when no journal was found).
        retries: how often a failing task is tried again (0: never).
        progress: show a progress bar (``None``: when standard error is a terminal).
        journal_dir: where journals live (default: a per-user state directory, see
            :func:`lamina.flows.journal.default_journal_dir`).
        run_id: name the run: its journal is named after it instead of a hash of
            ``description`` (a resumed run must still do the same tasks).
        layers: the layers the operation reads and writes; their backends' ``warm_up``
            runs here first, before any worker process is forked (in a
            ``reuse_workers()`` block, only the first run's workers are forked after it).
        destinations: the layers the operation writes; one whose data stays in this process
            (an in-memory volume) makes the run this process's own (no other process
            resumes it).
        chunks_per_task: how many storage chunks of the destination a task's box covers
            (e.g. :class:`StorageChunks`), called in this process for each finished
            task: the summary and the bar then count chunks too.

    Raises:
        TasksFailedError: tasks failed every attempt (the others are journaled).
        FlowInterrupted: Ctrl-C (the finished tasks are journaled).
    """
    from lamina.plugins.manager import get_host

    check_run_options(  # before the journal is touched
        flow,
        {
            "executor": executor,
            "workers": workers,
            "resume": resume,
            "scheduler": scheduler,
            "retries": retries,
            "progress": progress,
            "journal_dir": journal_dir,
            "run_id": run_id,
        },
    )
    factory = get_host().lookup("executors", executor)
    options = {} if scheduler is None else {"scheduler": scheduler}
    total = len(tasks)
    description = {"flow": flow, **description}
    if any(not _shared(layer) for layer in destinations):
        # a destination that lives in this process (an in-memory one) is another volume
        # in every other process, though its name may repeat: so is the run
        description["process"] = _PROCESS
    journal = Journal.for_run(description, journal_dir, run_id)
    done = journal.start(total, resume)
    todo: deque[int] = deque(n for n in range(total) if n not in done)
    attempts = dict.fromkeys(todo, 0)
    failures: list[TaskFailure] = []
    retry_heap: list[tuple[float, int]] = []
    start = time.perf_counter()
    tally = _Tally(journal, chunks_per_task, start)
    tally.start_bar(flow, total, total - len(todo), progress)
    parallel = workers if workers is not None else default_workers()
    capacity = 2 * max(1, parallel) if executor != "serial" else 1
    in_flight: dict[Future[int], int] = {}
    shipped = _OncePerWorker(operation)

    def fail_or_retry(n: int, error: str, retryable: bool = True) -> None:
        attempts[n] += 1
        if attempts[n] > retries or not retryable:
            failures.append(TaskFailure(n, tasks[n], error, attempts[n]))
            if _all_failed_alike(failures, tally.recorded):  # the rest would fail too
                todo.clear()
                retry_heap.clear()
            return
        heapq.heappush(retry_heap, (time.monotonic() + _retry_delay(attempts[n]), n))

    def start_pool() -> Any:
        return factory(workers=workers, **options)

    def submit(pool: Any, n: int) -> None:
        """Submit task ``n``. A task that runs inside ``submit`` (``serial``) gets the
        grace of an interrupted run there; the interrupt is raised once it is counted."""
        if not getattr(pool, "runs_in_calling_thread", False):
            in_flight[pool.submit(_call, shipped, tasks[n])] = n
            return
        with _SigintGuard(INTERRUPT_GRACE_S) as guard:
            future = pool.submit(_call, shipped, tasks[n])
        in_flight[future] = n
        if guard.signalled.is_set():
            raise KeyboardInterrupt

    # this run's own executor, or inside flows.reuse_workers() the block's
    run_executor = RunExecutor(KeptExecutors.key(executor, parallel, options), start_pool)
    interrupt: KeyboardInterrupt | None = None
    try:
        warm_up_layers(layers)
        pool = run_executor.open()
        # an executor that knows its size (a cluster reached by address) may say so
        own = getattr(pool, "parallelism", None)
        if isinstance(own, int) and own > 0 and executor != "serial":
            capacity = 2 * own
        while todo or in_flight or retry_heap:
            now = time.monotonic()
            while retry_heap and retry_heap[0][0] <= now:
                todo.append(heapq.heappop(retry_heap)[1])
            while todo and len(in_flight) < capacity:
                n = todo.popleft()
                try:
                    submit(pool, n)
                except BrokenExecutor:
                    todo.appendleft(n)
                    if in_flight:  # they fail too; the broken-pool path below replaces it
                        break
                    if not run_executor.reused:
                        raise
                    pool = run_executor.replace()  # a kept pool that broke between runs
            if not in_flight:
                time.sleep(max(0.0, min(0.5, retry_heap[0][0] - now)) if retry_heap else 0)
                continue
            timeout = max(0.01, retry_heap[0][0] - now) if retry_heap else None
            finished, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                n = in_flight[future]
                try:
                    written = int(future.result())
                except BrokenExecutor as exc:
                    del in_flight[future]
                    broken = True
                    fail_or_retry(n, f"its worker process died ({type(exc).__name__})")
                except Exception as exc:
                    del in_flight[future]
                    fail_or_retry(n, f"{type(exc).__name__}: {exc}", _retryable(exc))
                else:
                    # journaled, counted and taken off in_flight with Ctrl-C held back: one
                    # landing in between would have the stop record the task a second time
                    with _SigintGuard(None) as held:
                        tally.finish(n, tasks[n], written)
                        del in_flight[future]
                    if held.signalled.is_set():
                        raise KeyboardInterrupt
            if broken:  # every task of the broken pool fails: collect them, start a new pool
                for future in list(in_flight):
                    n = in_flight.pop(future)
                    fail_or_retry(n, "its worker process died")
                pool = run_executor.replace()
        run_executor.close(ended=True)
    except KeyboardInterrupt as exc:
        interrupt = exc
        _stop_interrupted(run_executor, in_flight, tasks, tally)
    except BaseException:
        try:  # an error: stop the executor, waiting for its workers
            run_executor.close(ended=False)
        except KeyboardInterrupt:  # Ctrl-C while waiting: stop it at once
            run_executor.abort()
            raise
        raise
    finally:
        tally.close()
    if interrupt is not None:
        raise FlowInterrupted(flow, len(done) + len(tally.recorded), total, journal.path) from (
            interrupt
        )
    summary = RunSummary(
        total - len(done),
        len(done),
        tally.bytes,
        time.perf_counter() - start,
        journal_found=journal.found,
        journal=journal.path,
        storage_chunks=None if chunks_per_task is None else tally.storage_chunks,
    )
    if failures:
        raise TasksFailedError(
            flow,
            sorted(failures, key=lambda f: f.number),
            total,
            journal.path,
            finished=len(done) + len(tally.recorded),
        )
    return summary


def run_chunks(
    flow: str,
    operation: Callable[[VolumetricIndex], int],
    chunks: Sequence[VolumetricIndex],
    description: dict[str, Any],
    **options: Any,
) -> RunSummary:
    """Alias of :func:`run_tasks`, its old name (``chunks`` are the tasks' indices),
    kept for callers."""
    return run_tasks(flow, operation, chunks, description, **options)
