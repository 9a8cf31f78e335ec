"""Ctrl-C during a run: stop within about a second, keeping every finished task.

Ctrl-C (``KeyboardInterrupt``, in the main thread running the flow) stops the run within
about :data:`INTERRUPT_GRACE_S` plus the time its executor takes to stop. Nothing more
is submitted and queued tasks are cancelled; tasks already running get that grace to
finish (a task mid-write ends cleanly and is journaled; on ``serial``, the task in
progress gets it too: :class:`_SigintGuard`); every task that finished is in the
journal; the executor is then stopped at once
(:func:`lamina.flows.executors.abort_executor`: ``processes`` kills its worker
processes, ``threads`` lets its daemon threads go, ``dask`` kills its local cluster's
workers) — :func:`_stop_interrupted`. The run then raises :class:`FlowInterrupted`, a
``KeyboardInterrupt`` saying how many tasks are finished and where the journal is;
``resume=True`` does the rest. A second Ctrl-C while it stops only cuts the grace short.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from lamina.flows.executors import cancel_pending
from lamina.flows.progress import _plural, _Tally
from lamina.flows.reuse import RunExecutor
from lamina.volumetric.index import VolumetricIndex

__all__ = ["INTERRUPT_GRACE_S", "FlowInterrupted"]

#: After Ctrl-C, how long tasks already running may take to finish (and be journaled)
#: before the executor is stopped under them.
INTERRUPT_GRACE_S = 1.0


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


def _harvest(
    executor: Any,
    in_flight: dict[Future[int], int],
    tasks: Sequence[VolumetricIndex],
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
                tally.finish(n, tasks[n], int(future.result()))
        remaining = deadline - time.monotonic()
        if not pending or hurry.is_set() or remaining <= 0:
            return
        wait(pending, timeout=min(remaining, 0.05), return_when=FIRST_COMPLETED)


def _stop_interrupted(
    run_executor: RunExecutor,
    in_flight: dict[Future[int], int],
    tasks: Sequence[VolumetricIndex],
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
                _harvest(run_executor.executor, in_flight, tasks, tally, deadline, guard.signalled)
                run_executor.abort()
                tally.close()
            return
        except KeyboardInterrupt:
            continue
    run_executor.abort()
    tally.close()
