"""The engine under every flow: run one task per chunk on an executor, with retries,
a resumable journal, a progress bar and a summary.

:func:`run_chunks` takes an *operation* — a picklable callable ``operation(idx) -> int``
that processes one chunk and returns the bytes it wrote — and the chunk indices, and
runs them on the executor registered under ``executor`` (``serial``, ``threads``,
``processes``, a plugin's ``dask``, …), started for the run and stopped at its end —
or, inside :func:`lamina.flows.reuse_workers`, kept for the block's next runs. Layers
inside the operation travel to worker processes by pickling, that is by their specs;
the operation is pickled once per run and unpickled once per worker process
(:class:`_OncePerWorker`).

Faults: a task that raises is retried up to ``retries`` times (3 by default) after an
exponential backoff with jitter; a pool whose worker process died (SIGKILL, out of
memory: ``concurrent.futures.BrokenExecutor``) is replaced by a new one and its
unfinished tasks run again there (each counts one attempt, so a task that keeps killing
its worker still ends). Chunks that still fail end the run with
:class:`ChunksFailedError`, which lists the box of each (voxels and nm) — the finished
chunks are in the journal, and ``resume=True`` runs just the others.
"""

from __future__ import annotations

import heapq
import pickle
import random
import sys
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from pathlib import Path
from typing import Any

import attrs

from lamina.errors import LaminaError
from lamina.flows.checks import check_run_options
from lamina.flows.executors import default_workers
from lamina.flows.journal import Journal
from lamina.flows.reuse import KeptExecutors, RunExecutor
from lamina.volumetric.backend import warm_up_layers
from lamina.volumetric.index import VolumetricIndex

__all__ = ["ChunkFailure", "ChunksFailedError", "RunSummary", "run_chunks"]

_BACKOFF_S = 0.2
#: This process, among every process that has run or will run a flow.
_PROCESS = uuid.uuid4().hex


def _shared(layer: Any) -> bool:
    """Whether ``layer``'s data is seen by other processes (not in-memory)."""
    capabilities = getattr(getattr(layer, "backend", None), "capabilities", None)
    return bool(getattr(capabilities, "shared_across_processes", True))


_MAX_BACKOFF_S = 10.0


@attrs.frozen
class RunSummary:
    """What a run did: chunks run and skipped (resumed), bytes written, seconds, the
    run's journal and, for a resumed run, whether that journal was found
    (``journal_found``; ``None`` when the run was not resumed)."""

    chunks: int
    skipped: int
    bytes: int
    seconds: float
    journal_found: bool | None = None
    journal: Path | None = None

    def line(self) -> str:
        """One summary line, e.g. ``64 chunks, 2.1 MB in 0.8 s, 2.6 MB/s``; a resumed run
        that found no journal says so (every task ran)."""
        rate = self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0
        if self.journal_found is False:
            where = f" in {self.journal.parent}" if self.journal is not None else ""
            note = f" (resume: no journal of this run was found{where}, every task ran)"
        else:
            note = f" ({self.skipped} already done, skipped)" if self.skipped else ""
        return (
            f"{self.chunks} chunk{'' if self.chunks == 1 else 's'}, "
            f"{_megabytes(self.bytes)} in {self.seconds:.1f} s, "
            f"{rate:.1f} MB/s{note}"
        )

    def __str__(self) -> str:
        return self.line()


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@attrs.frozen
class ChunkFailure:
    """A chunk that failed every attempt: its number, index, last error and attempts."""

    number: int
    index: VolumetricIndex
    error: str
    attempts: int

    def describe(self) -> str:
        idx = self.index
        return (
            f"chunk {self.number}: {idx.start.pformat()}:{idx.stop.pformat()} voxels at "
            f"{idx.resolution.pformat()} nm ({idx.bbox.pformat((1, 1, 1))} nm) — {self.error} "
            f"(after {self.attempts} attempt{'s' if self.attempts != 1 else ''})"
        )


class ChunksFailedError(LaminaError):
    """Some chunks failed every attempt; ``failures`` lists them (nothing else is lost:
    every other chunk was written and is in the journal)."""

    def __init__(self, flow: str, failures: Sequence[ChunkFailure], total: int, journal: Path):
        self.failures = list(failures)
        self.journal = journal
        listed = "\n  ".join(f.describe() for f in self.failures[:20])
        more = f"\n  … and {len(self.failures) - 20} more" if len(self.failures) > 20 else ""
        super().__init__(
            f"{flow}: {len(self.failures)} of {total} chunks failed:\n  {listed}{more}\n"
            f"The other chunks are written (journal: {journal}). Fix the cause and run "
            "again with resume=True (--resume) to do just these."
        )


def _progress_bar(total: int, initial: int, enabled: bool | None, label: str) -> Any:
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    tqdm.monitor_interval = 0  # no monitor thread (the processes executor forks)
    return tqdm(
        total=total,
        initial=initial,
        unit="chunk",
        desc=label,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        bar_format="{desc}: {n_fmt}/{total_fmt} chunks |{bar}| {postfix} [{elapsed}<{remaining}]",
    )


def _call(operation: Callable[[VolumetricIndex], int], idx: VolumetricIndex) -> int:
    return int(operation(idx))


#: Operations a worker process has unpickled, by run token: the newest two (two runs
#: may share a cluster at once; workers kept by reuse_workers() hold no more than that).
_worker_operations: OrderedDict[str, Callable[[VolumetricIndex], int]] = OrderedDict()
_WORKER_OPERATIONS_KEPT = 2


class _OncePerWorker:
    """A run's operation, pickled once in the parent and unpickled once per worker process.

    Each task ships the same few-kB payload; the first task a worker runs unpickles it
    and keeps the result for the run's later tasks, so the operation's layers keep
    their handles (a CloudVolume per scale, an HDF5 file) from chunk to chunk, as they
    do on ``serial`` and ``threads``. Operations are idempotent per chunk, so a task
    that failed leaves nothing the next one depends on.
    """

    __slots__ = ("_payload", "operation", "token")

    def __init__(self, operation: Callable[[VolumetricIndex], int]) -> None:
        self.operation = operation
        self.token = uuid.uuid4().hex
        self._payload: bytes | None = None

    def __call__(self, idx: VolumetricIndex) -> int:
        return self.operation(idx)

    def __reduce__(self) -> tuple[Any, tuple[str, bytes]]:
        if self._payload is None:
            self._payload = _dumps(self.operation)
        return _worker_operation, (self.token, self._payload)


def _dumps(operation: Any) -> bytes:
    """``pickle.dumps``; for what plain pickle refuses (a lambda given to ``apply``),
    cloudpickle when it is installed (dask brings it), as dask itself would do."""
    try:
        return pickle.dumps(operation, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as refused:
        try:
            import cloudpickle  # type: ignore[import-untyped]
        except ImportError:
            raise refused from None
        return bytes(cloudpickle.dumps(operation, protocol=pickle.HIGHEST_PROTOCOL))


def _worker_operation(token: str, payload: bytes) -> Callable[[VolumetricIndex], int]:
    """In a worker: the run's operation, unpickled on its first task only."""
    operation = _worker_operations.get(token)
    if operation is None:
        operation = _worker_operations[token] = pickle.loads(payload)
        while len(_worker_operations) > _WORKER_OPERATIONS_KEPT:
            _worker_operations.popitem(last=False)
    else:
        _worker_operations.move_to_end(token)
    return operation


def run_chunks(
    flow: str,
    operation: Callable[[VolumetricIndex], int],
    chunks: Sequence[VolumetricIndex],
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
) -> RunSummary:
    """Run ``operation`` on every chunk; see the module docstring.

    Args:
        flow: the flow's name (for messages and the journal's name).
        operation: picklable ``operation(idx) -> bytes written``; must be idempotent.
        chunks: the chunk indices, in order (their numbers are their positions).
        description: what the run does, JSON-able (names the journal): it must be the
            same in every process for the same run (no ``repr`` holding an address;
            :func:`lamina.flows.identity.callable_identity` names functions).
        executor, workers, scheduler: the registered executor, its worker count and,
            for executors with a cluster (``dask``), the scheduler's address.
        resume: skip the chunks the journal of this same run lists as finished (the
            summary says when no journal was found).
        retries: how often a failing chunk is tried again (0: never).
        progress: show a progress bar (``None``: when standard error is a terminal).
        journal_dir: where journals live (default: a per-user state directory, see
            :func:`lamina.flows.journal.default_journal_dir`).
        run_id: name the run: its journal is named after it instead of a hash of
            ``description`` (a resumed run must still do the same chunks).
        layers: the layers the operation reads and writes; their backends' ``warm_up``
            runs here first, before any worker process is forked (in a
            ``reuse_workers()`` block, only the first run's workers are forked after it).
        destinations: the layers the operation writes; one whose data stays in this process
            (an in-memory volume) makes the run this process's own (no other process
            resumes it).
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
    total = len(chunks)
    description = {"flow": flow, **description}
    if any(not _shared(layer) for layer in destinations):
        # a destination that lives in this process (an in-memory one) is another volume
        # in every other process, though its name may repeat: so is the run
        description["process"] = _PROCESS
    journal = Journal.for_run(description, journal_dir, run_id)
    done = journal.start(total, resume)
    todo: deque[int] = deque(n for n in range(total) if n not in done)
    attempts = dict.fromkeys(todo, 0)
    failures: list[ChunkFailure] = []
    retry_heap: list[tuple[float, int]] = []
    written = 0
    start = time.perf_counter()
    bar = _progress_bar(total, total - len(todo), progress, flow)
    parallel = workers if workers is not None else default_workers()
    capacity = 2 * max(1, parallel) if executor != "serial" else 1
    in_flight: dict[Future[int], int] = {}
    shipped = _OncePerWorker(operation)

    def fail_or_retry(n: int, error: str) -> None:
        attempts[n] += 1
        if attempts[n] > retries:
            failures.append(ChunkFailure(n, chunks[n], error, attempts[n]))
            return
        delay = min(_MAX_BACKOFF_S, _BACKOFF_S * 2 ** (attempts[n] - 1))
        heapq.heappush(retry_heap, (time.monotonic() + delay * random.uniform(0.5, 1.0), n))

    def start_pool() -> Any:
        return factory(workers=workers, **options)

    # this run's own executor, or inside flows.reuse_workers() the block's
    run_executor = RunExecutor(KeptExecutors.key(executor, parallel, options), start_pool)
    warm_up_layers(layers)
    ended = False
    try:
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
                    in_flight[pool.submit(_call, shipped, chunks[n])] = n
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
                n = in_flight.pop(future)
                try:
                    written += future.result()
                except BrokenExecutor as exc:
                    broken = True
                    fail_or_retry(n, f"its worker process died ({type(exc).__name__})")
                except Exception as exc:
                    fail_or_retry(n, f"{type(exc).__name__}: {exc}")
                else:
                    journal.record(n)
                    bar.update(1)
                    bar.set_postfix_str(f"{written / 1e6 / (time.perf_counter() - start):.1f} MB/s")
            if broken:  # every task of the broken pool fails: collect them, start a new pool
                for future in list(in_flight):
                    n = in_flight.pop(future)
                    fail_or_retry(n, "its worker process died")
                pool = run_executor.replace()
        ended = True
    finally:
        run_executor.close(ended)  # an interrupted run stops even a kept executor
        bar.close()
        journal.close()
    summary = RunSummary(
        total - len(done),
        len(done),
        written,
        time.perf_counter() - start,
        journal_found=journal.found,
        journal=journal.path,
    )
    if failures:
        raise ChunksFailedError(flow, sorted(failures, key=lambda f: f.number), total, journal.path)
    return summary
