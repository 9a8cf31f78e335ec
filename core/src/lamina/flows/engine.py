"""The engine under every flow: run one task per chunk on an executor, with retries,
a resumable journal, a progress bar and a summary.

:func:`run_chunks` takes an *operation* — a picklable callable ``operation(idx) -> int``
that processes one task's box and returns the bytes it wrote — and the tasks' indices,
and runs them on the executor registered under ``executor`` (``serial``, ``threads``,
``processes``, a plugin's ``dask``, …), started for the run and stopped at its end —
or, inside :func:`lamina.flows.reuse_workers`, kept for the block's next runs. Layers
inside the operation travel to worker processes by pickling, that is by their specs;
the operation is pickled once per run and unpickled once per worker process
(:class:`_OncePerWorker`).

Words: a *task* is one call of the operation (one box of the flow's task grid); a
*chunk* is a storage chunk of the destination. A task covers one or many chunks; the
summary and the progress bar count both (``4 tasks, 1,024 chunks, 86.0 MB in 0.5 s,
172 MB/s``) when the flow says how many chunks a task writes (``chunks_per_task``,
e.g. :class:`StorageChunks`).

Faults: a task that raises is retried up to ``retries`` times (3 by default) after an
exponential backoff with jitter; a pool whose worker process died (SIGKILL, out of
memory: ``concurrent.futures.BrokenExecutor``) is replaced by a new one and its
unfinished tasks run again there (each counts one attempt, so a task that keeps killing
its worker still ends). Tasks that still fail end the run with
:class:`ChunksFailedError`, which lists the box of each (voxels and nm) — the finished
tasks are in the journal, and ``resume=True`` runs just the others.

Interrupts: Ctrl-C (``KeyboardInterrupt``, in the main thread running the flow) stops the
run within about :data:`INTERRUPT_GRACE_S` plus the time its executor takes to stop.
Nothing more is submitted and queued tasks are cancelled; tasks already running get
that grace to finish (a task mid-write ends cleanly and is journaled; on ``serial``,
the task in progress gets it too); every task that finished is in the journal; the
executor is then stopped at once (:func:`lamina.flows.executors.abort_executor`:
``processes`` kills its worker processes, ``threads`` lets its daemon threads go,
``dask`` kills its local cluster's workers). The run then raises
:class:`FlowInterrupted`, a ``KeyboardInterrupt`` saying how many tasks are finished
and where the journal is; ``resume=True`` does the rest. A second Ctrl-C while it stops
only cuts the grace short. The progress bar has a lock of its own, so that an interrupt
in the middle of drawing it cannot leave tqdm's shared lock held, which the workers'
storage libraries (cloud-files) take on every download and upload.
"""

from __future__ import annotations

import functools
import heapq
import pickle
import random
import re
import signal
import sys
import threading
import time
import uuid
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, ClassVar

import attrs

from lamina.errors import LaminaError
from lamina.flows.checks import check_run_options
from lamina.flows.executors import cancel_pending, default_workers
from lamina.flows.journal import Journal
from lamina.flows.reuse import KeptExecutors, RunExecutor
from lamina.volumetric.backend import warm_up_layers
from lamina.volumetric.geometry import Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = [
    "INTERRUPT_GRACE_S",
    "ChunkFailure",
    "ChunksFailedError",
    "FlowInterrupted",
    "RunSummary",
    "StorageChunks",
    "run_chunks",
]

_BACKOFF_S = 0.2
_MAX_BACKOFF_S = 10.0
#: After Ctrl-C, how long tasks already running may take to finish (and be journaled)
#: before the executor is stopped under them.
INTERRUPT_GRACE_S = 1.0
#: This process, among every process that has run or will run a flow.
_PROCESS = uuid.uuid4().hex


def _shared(layer: Any) -> bool:
    """Whether ``layer``'s data is seen by other processes (not in-memory)."""
    capabilities = getattr(getattr(layer, "backend", None), "capabilities", None)
    return bool(getattr(capabilities, "shared_across_processes", True))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


@attrs.frozen
class RunSummary:
    """What a run did: tasks run and skipped (resumed), the storage chunks its tasks
    wrote (``storage_chunks``; ``None`` when the flow does not count them), bytes
    written, seconds, the run's journal and, for a resumed run, whether that journal was
    found (``journal_found``; ``None`` when the run was not resumed).

    ``chunks`` is the old name of ``tasks`` (it counted tasks), kept for callers."""

    tasks: int
    skipped: int
    bytes: int
    seconds: float
    journal_found: bool | None = None
    journal: Path | None = None
    storage_chunks: int | None = None

    @property
    def chunks(self) -> int:
        """The tasks run (the name this count had before tasks and chunks were told
        apart; :attr:`storage_chunks` counts chunks)."""
        return self.tasks

    def line(self) -> str:
        """One summary line, e.g. ``4 tasks, 1,024 chunks, 86.0 MB in 0.5 s, 172 MB/s``;
        a resumed run says how many tasks were already done, or that it found no journal
        (every task ran)."""
        if self.journal_found is False:
            where = f" in {self.journal.parent}" if self.journal is not None else ""
            note = f" (resume: no journal of this run was found{where}, every task ran)"
        else:
            note = f" ({self.skipped:,} already done, skipped)" if self.skipped else ""
        counted = (
            "" if self.storage_chunks is None else f"{_plural(self.storage_chunks, 'chunk')}, "
        )
        return (
            f"{_plural(self.tasks, 'task')}, {counted}{_megabytes(self.bytes)} in "
            f"{self.seconds:.1f} s, {_rate(self.bytes, self.seconds)}{note}"
        )

    def __str__(self) -> str:
        return self.line()


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _rate(written: int, seconds: float) -> str:
    """``2.6 MB/s``, ``172 MB/s``: one decimal below 100."""
    rate = written / seconds / 1e6 if seconds > 0 else 0.0
    return f"{rate:.0f} MB/s" if rate >= 100 else f"{rate:.1f} MB/s"


@attrs.frozen
class StorageChunks:
    """``chunks_per_task`` for :func:`run_chunks`: how many storage chunks of
    ``backend`` a task's box covers at each of ``resolutions`` (the box taken at each
    resolution and cut to that scale's bounds), summed — the chunks a copy or an apply
    writes at its one resolution, or a pyramid task at every level. Counted in the
    process that runs the flow, from geometry alone."""

    backend: Any
    resolutions: tuple[Vec3D[float], ...]
    _grids: dict[Vec3D[float], tuple[VolumetricIndex, Vec3D[int], Vec3D[int]]] = attrs.field(
        factory=dict, init=False, eq=False, repr=False
    )

    def _grid(self, res: Vec3D[float]) -> tuple[VolumetricIndex, Vec3D[int], Vec3D[int]]:
        grid = self._grids.get(res)
        if grid is None:
            backend = self.backend
            grid = self._grids[res] = (
                backend.get_bounds(res),
                backend.get_voxel_offset(res),
                backend.get_chunk_size(res),
            )
        return grid

    def __call__(self, idx: VolumetricIndex) -> int:
        total = 0
        for res in self.resolutions:
            bounds, offset, size = self._grid(res)
            box = VolumetricIndex(resolution=res, bbox=idx.bbox).intersection(bounds)
            if box.bbox.is_empty:
                continue
            count = 1
            for d in range(3):
                first = (box.start[d] - offset[d]) // size[d]
                last = -(-(box.stop[d] - offset[d]) // size[d])
                count *= max(0, last - first)
            total += count
        return total


@attrs.frozen
class ChunkFailure:
    """A task that failed every attempt: its number, index, last error and attempts."""

    number: int
    index: VolumetricIndex
    error: str
    attempts: int

    def describe(self) -> str:
        idx = self.index
        return (
            f"task {self.number}: {idx.start.pformat()}:{idx.stop.pformat()} voxels at "
            f"{idx.resolution.pformat()} nm ({idx.bbox.pformat((1, 1, 1))} nm) — {self.error} "
            f"(after {self.attempts} attempt{'s' if self.attempts != 1 else ''})"
        )


#: After this many tasks failed alike, none having succeeded, a run stops: the others
#: would fail the same way (a destination refusing every write, say).
FAILED_ALIKE_LIMIT = 3

#: Errors a retry cannot cure: the same task fails the same way (a value the destination
#: cannot hold, data that does not decode, a bug in the function applied).
_NOT_RETRYABLE: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    NotImplementedError,
    AssertionError,
    ArithmeticError,
)


def _retryable(exc: BaseException) -> bool:
    """Whether trying the task again could succeed: storage and network faults (an
    ``OSError``, a timeout) may pass; a deterministic error will not."""
    return isinstance(exc, OSError | TimeoutError) or not isinstance(exc, _NOT_RETRYABLE)


def _all_failed_alike(failures: Sequence[ChunkFailure], finished: Any) -> bool:
    """``FAILED_ALIKE_LIMIT`` tasks failed with one error (its text up to the first
    digit, so that boxes and values may differ) and none has succeeded."""
    if finished or len(failures) < FAILED_ALIKE_LIMIT:
        return False
    kinds = {re.split(r"\d", f.error, maxsplit=1)[0] for f in failures}
    return len(kinds) == 1


class ChunksFailedError(LaminaError):
    """Some tasks failed every attempt; ``failures`` lists them (nothing else is lost:
    every other task was written and is in the journal)."""

    def __init__(
        self,
        flow: str,
        failures: Sequence[ChunkFailure],
        total: int,
        journal: Path,
        finished: int | None = None,
    ):
        self.failures = list(failures)
        self.journal = journal
        self.finished = total - len(self.failures) if finished is None else finished
        listed = "\n  ".join(f.describe() for f in self.failures[:20])
        more = f"\n  … and {len(self.failures) - 20} more" if len(self.failures) > 20 else ""
        stopped = total - self.finished - len(self.failures)
        if stopped:
            what = (
                f"{len(self.failures)} tasks failed the same way and none succeeded, so the "
                f"run stopped; {stopped} tasks were not tried"
            )
        else:
            what = f"{len(self.failures)} of {total} tasks failed"
        written = (
            "No task was written"
            if self.finished == 0
            else f"{self.finished} of {total} tasks are written (journal: {journal})"
        )
        super().__init__(
            f"{flow}: {what}:\n  {listed}{more}\n{written}. Fix the cause and run again "
            "with resume=True (--resume) to do just the rest."
        )


class FlowInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (see the module docstring): ``finished`` of ``total``
    tasks are done and in ``journal`` (those of earlier runs it resumed included);
    running it again with ``resume=True`` does the rest. A ``KeyboardInterrupt``, so
    that what catches one (a script's handler, the ``lamina`` command) still does."""

    def __init__(self, flow: str, finished: int, total: int, journal: Path) -> None:
        self.flow = flow
        self.finished = finished
        self.total = total
        self.journal = journal
        super().__init__(f"{flow}: interrupted: {self.describe()}")

    def describe(self) -> str:
        """E.g. ``12 of 64 tasks finished and journaled (journal: /path/x.jsonl)``."""
        return (
            f"{self.finished:,} of {_plural(self.total, 'task')} finished and journaled "
            f"(journal: {self.journal})"
        )

    def __reduce__(self) -> tuple[Any, tuple[str, int, int, Path]]:
        return type(self), (self.flow, self.finished, self.total, self.journal)


@functools.cache
def _bar_class() -> Any:
    """tqdm with a lock and a set of bars of its own (see the module docstring): the
    engine's bar never takes tqdm's class-wide lock, which an interrupt could leave held
    for the storage libraries that take it in worker threads."""
    from tqdm import tqdm

    class _ProgressBar(tqdm):  # type: ignore[type-arg]
        _instances: ClassVar[weakref.WeakSet[Any]] = weakref.WeakSet()

    _ProgressBar.set_lock(threading.RLock())
    return _ProgressBar


def _progress_bar(total: int, initial: int, enabled: bool | None, label: str, text: str) -> Any:
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    tqdm.monitor_interval = 0  # no monitor thread (the processes executor forks)
    bar_class = _bar_class()
    bar_class.monitor_interval = 0
    return bar_class(
        total=total,
        initial=initial,
        unit="task",
        desc=label,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        # a list: tqdm shows postfix[0] as it is (a string would get a ", " before it)
        postfix=[text],
        bar_format="{desc}: {n_fmt}/{total_fmt} tasks |{bar}| {postfix[0]} [{elapsed}<{remaining}]",
    )


class _SigintGuard:
    """While active in the main thread, Ctrl-C sets :attr:`signalled` instead of raising
    ``KeyboardInterrupt`` at once.

    ``grace=None`` (stopping after an interrupt): it never raises; the stopping code
    polls :attr:`signalled` to cut its grace short. ``grace=s`` (a task running in the
    caller's thread, ``serial``): the first Ctrl-C lets the task run up to ``s`` more
    seconds; a second one, or the grace's end, raises ``KeyboardInterrupt`` in it; the
    caller checks :attr:`signalled` after the task and raises then. Nothing changes in
    another thread, or when SIGINT does not raise ``KeyboardInterrupt`` already (a
    handler of the caller's own, or SIGINT ignored).
    """

    def __init__(self, grace: float | None) -> None:
        self.grace = grace
        self.signalled = threading.Event()
        # reentrant: the handler runs in the main thread, which may hold it (__exit__)
        self._lock = threading.RLock()
        self._active = False
        self._previous: Any = None
        self._timer: threading.Timer | None = None

    def __enter__(self) -> _SigintGuard:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._active = True
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = not self.signalled.is_set()
        self.signalled.set()
        if self.grace is None:
            return
        with self._lock:
            if not self._active:  # leaving: the caller raises
                return
            if first:
                self._timer = threading.Timer(self.grace, self._expire)
                self._timer.daemon = True
                self._timer.start()
                return
        raise KeyboardInterrupt

    def _expire(self) -> None:
        """The grace is over: interrupt the main thread (a signal: it also cuts short a
        blocking system call)."""
        with self._lock:
            if not self._active:
                return
            if hasattr(signal, "pthread_kill"):
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            else:  # pragma: no cover - not POSIX
                import _thread

                _thread.interrupt_main()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            active, self._active = self._active, False
        if self._timer is not None:
            self._timer.cancel()
        if active:
            signal.signal(signal.SIGINT, self._previous)


class _Tally:
    """What a run has finished: each finished task recorded once, in the journal first,
    then in the counts and on the bar."""

    def __init__(
        self,
        journal: Journal,
        chunks_per_task: Callable[[VolumetricIndex], int] | None,
        start: float,
    ) -> None:
        self.journal = journal
        self.bar: Any = None  # set once the bar's first text is known
        self.chunks_per_task = chunks_per_task
        self.start = start
        self.recorded: set[int] = set()
        self.bytes = 0
        self.storage_chunks = 0

    def text(self) -> str:
        """The bar's right-hand text: chunks written (when counted) and throughput."""
        rate = _rate(self.bytes, time.perf_counter() - self.start)
        if self.chunks_per_task is None:
            return rate
        return f"{_plural(self.storage_chunks, 'chunk')}, {rate}"

    def finish(self, n: int, idx: VolumetricIndex, written: int) -> None:
        if n in self.recorded:
            return
        self.journal.record(n)
        self.recorded.add(n)
        self.bytes += written
        if self.chunks_per_task is not None:
            self.storage_chunks += int(self.chunks_per_task(idx))
        if self.bar is not None and not self.bar.disable:
            self.bar.postfix = [self.text()]
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.journal.close()


def _harvest(
    executor: Any,
    in_flight: dict[Future[int], int],
    chunks: Sequence[VolumetricIndex],
    tally: _Tally,
    deadline: float,
    hurry: threading.Event,
) -> None:
    """After an interrupt: cancel the tasks not started, and record every task that
    finishes until ``deadline`` (or a second Ctrl-C, ``hurry``)."""
    cancel_pending(executor, in_flight)
    pending = set(in_flight)
    while True:
        for future in [f for f in pending if f.done()]:
            pending.discard(future)
            if not future.cancelled() and future.exception() is None:
                n = in_flight[future]
                tally.finish(n, chunks[n], int(future.result()))
        remaining = deadline - time.monotonic()
        if not pending or hurry.is_set() or remaining <= 0:
            return
        wait(pending, timeout=min(remaining, 0.05), return_when=FIRST_COMPLETED)


def _stop_interrupted(
    run_executor: RunExecutor,
    in_flight: dict[Future[int], int],
    chunks: Sequence[VolumetricIndex],
    tally: _Tally,
) -> None:
    """Stop an interrupted run (see the module docstring): the grace, the journal, the
    executor stopped at once, the bar and the journal closed. A Ctrl-C meanwhile only
    ends the grace; one that slips in before the guard is up starts the stop again,
    without a grace."""
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    for attempt in range(3):
        try:
            with _SigintGuard(None) as guard:
                if attempt:
                    guard.signalled.set()
                _harvest(run_executor.executor, in_flight, chunks, tally, deadline, guard.signalled)
                run_executor.abort()
                tally.close()
            return
        except KeyboardInterrupt:
            continue
    run_executor.abort()
    tally.close()


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
    chunks_per_task: Callable[[VolumetricIndex], int] | None = None,
) -> RunSummary:
    """Run ``operation`` on every task; see the module docstring.

    Args:
        flow: the flow's name (for messages and the journal's name).
        operation: picklable ``operation(idx) -> bytes written``; must be idempotent.
        chunks: the tasks' indices, in order (their numbers are their positions).
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
        ChunksFailedError: tasks failed every attempt (the others are journaled).
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
    start = time.perf_counter()
    tally = _Tally(journal, chunks_per_task, start)
    tally.bar = _progress_bar(total, total - len(todo), progress, flow, tally.text())
    parallel = workers if workers is not None else default_workers()
    capacity = 2 * max(1, parallel) if executor != "serial" else 1
    in_flight: dict[Future[int], int] = {}
    shipped = _OncePerWorker(operation)

    def fail_or_retry(n: int, error: str, retryable: bool = True) -> None:
        attempts[n] += 1
        if attempts[n] > retries or not retryable:
            failures.append(ChunkFailure(n, chunks[n], error, attempts[n]))
            if _all_failed_alike(failures, tally.recorded):  # the rest would fail too
                todo.clear()
                retry_heap.clear()
            return
        delay = min(_MAX_BACKOFF_S, _BACKOFF_S * 2 ** (attempts[n] - 1))
        heapq.heappush(retry_heap, (time.monotonic() + delay * random.uniform(0.5, 1.0), n))

    def start_pool() -> Any:
        return factory(workers=workers, **options)

    def submit(pool: Any, n: int) -> None:
        """Submit task ``n``. A task that runs inside ``submit`` (``serial``) gets the
        grace of an interrupted run there; the interrupt is raised once it is counted."""
        if not getattr(pool, "runs_in_calling_thread", False):
            in_flight[pool.submit(_call, shipped, chunks[n])] = n
            return
        with _SigintGuard(INTERRUPT_GRACE_S) as guard:
            future = pool.submit(_call, shipped, chunks[n])
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
                    tally.finish(n, chunks[n], written)
                    del in_flight[future]  # after: an interrupt in between records it again
            if broken:  # every task of the broken pool fails: collect them, start a new pool
                for future in list(in_flight):
                    n = in_flight.pop(future)
                    fail_or_retry(n, "its worker process died")
                pool = run_executor.replace()
        run_executor.close(ended=True)
    except KeyboardInterrupt as exc:
        interrupt = exc
        _stop_interrupted(run_executor, in_flight, chunks, tally)
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
        raise ChunksFailedError(
            flow,
            sorted(failures, key=lambda f: f.number),
            total,
            journal.path,
            finished=len(done) + len(tally.recorded),
        )
    return summary
