"""Workers kept from one run to the next: ``with flows.reuse_workers(): ...``.

By default a run starts its executor (the ``processes`` pool, lamina-dask's local
cluster) when it begins and stops it when it ends, so nothing outlives the call. That
costs every run the same fixed price: forking the workers, the page faults of their
fresh heaps on the first task, and their shutdown — a fraction of a second for
``processes``, seconds for a Dask local cluster (bench/README.md, "Flows"). A script that
runs several flows, or the same flow on many regions, can pay it once::

    with flows.reuse_workers():
        flows.copy(src, dst, executor="processes", workers=2)
        flows.downsample(dst, executor="processes", workers=2)

Inside the block, the first run with a given executor, worker count and ``scheduler``
starts the executor and the later ones use it again; the block's end stops them all
(``shutdown(wait=True)``). A block inside another uses the outer one. A pool that
breaks (a worker process killed, during a run or between runs) is replaced, and the
replacement is kept. A run that ends by an exception other than its failed tasks
(:class:`~lamina.flows.failures.TasksFailedError`) — an interrupt, say — stops its
executor (an interrupt stops it at once: :func:`~lamina.flows.executors.abort_executor`),
so the next run starts a fresh one and finds no stray tasks of it. Two runs
at once (from two threads of the block's context) never share an executor: the second
starts one of its own for the run, as outside a block.

What a kept worker knows of this process is what it had when it started (``processes``
forks at the first run of the block): a function changed, a plugin registered or an
environment variable set later in this process does not reach it, and a function
defined in ``__main__`` after that is missing there (each task fails with an
``AttributeError``). Layers and operations travel by pickle on every run, so they are
always the current ones; the modules a later run needs are imported by each worker on
its first task of that run (not once, before the fork, as in a run of its own).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextvars import ContextVar
from typing import Any

from lamina.flows.executors import abort_executor

__all__ = ["ExecutorKey", "KeptExecutors", "RunExecutor", "kept_executors", "reuse_workers"]

#: (executor name, worker count, options such as ``scheduler``)
ExecutorKey = tuple[str, int, tuple[tuple[str, Any], ...]]

logger = logging.getLogger(__name__)


class KeptExecutors:
    """The executors a :func:`reuse_workers` block keeps, by :data:`ExecutorKey`; each
    serves one run at a time."""

    def __init__(self) -> None:
        self.pid = os.getpid()  # a forked worker inherits a copy: not its block
        self._lock = threading.Lock()
        self._idle: dict[ExecutorKey, Executor] = {}
        self._busy: set[ExecutorKey] = set()  # taken by a run, not yet given back
        self._closed = False

    def __len__(self) -> int:
        """How many executors the block keeps between runs (not those a run has now)."""
        with self._lock:
            return len(self._idle)

    def __iter__(self) -> Iterator[Executor]:
        """The executors the block keeps between runs."""
        with self._lock:
            return iter(list(self._idle.values()))

    @staticmethod
    def key(name: str, workers: int, options: dict[str, Any]) -> ExecutorKey:
        """The key of a run's executor: its registered name, resolved worker count and
        options."""
        return (name, workers, tuple(sorted(options.items())))

    def take(self, key: ExecutorKey, start: Callable[[], Executor]) -> tuple[Executor, bool] | None:
        """For one run: ``key``'s executor and whether it served an earlier run (``False``:
        just started with ``start()``); ``None`` while another run has it."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this reuse_workers() block has ended")
            if key in self._busy:
                return None
            self._busy.add(key)
            executor = self._idle.pop(key, None)
        if executor is not None:
            return executor, True
        try:
            return start(), False
        except BaseException:
            with self._lock:
                self._busy.discard(key)
            raise

    def give_back(self, key: ExecutorKey, executor: Executor | None) -> None:
        """A run is over: keep ``executor`` for the next (``None``: the run stopped it).
        After the block's end, it is stopped instead."""
        with self._lock:
            self._busy.discard(key)
            if executor is not None and not self._closed:
                self._idle[key] = executor
                return
        if executor is not None:
            _stop([executor])

    def close(self) -> None:
        """Stop every idle executor, waiting for its workers to exit; one serving a run
        is stopped when that run gives it back."""
        with self._lock:
            self._closed = True
            executors, self._idle = list(self._idle.values()), {}
        _stop(executors)


def _stop(executors: list[Executor]) -> None:
    """Shut every one down, waiting for its workers; after an interrupt (Ctrl-C while
    waiting), the one it stopped and the rest are aborted instead (stopped at once,
    :func:`~lamina.flows.executors.abort_executor`), and the interrupt is raised at
    the end."""
    interrupted: BaseException | None = None
    for executor in executors:
        try:
            if interrupted is None:
                executor.shutdown(wait=True, cancel_futures=True)
            else:
                abort_executor(executor)
        except Exception as exc:  # the next ones still need stopping
            logger.warning("stopping %r failed: %s", executor, exc)
        except BaseException as exc:  # Ctrl-C: stop this one and the rest without waiting
            interrupted = interrupted or exc
            try:
                abort_executor(executor)
            except Exception as error:
                logger.warning("stopping %r failed: %s", executor, error)
    if interrupted is not None:
        raise interrupted


_current: ContextVar[KeptExecutors | None] = ContextVar("lamina_kept_executors", default=None)


def kept_executors() -> KeptExecutors | None:
    """The executors of the innermost :func:`reuse_workers` block of this process, or
    ``None`` outside one."""
    kept = _current.get()
    return kept if kept is not None and kept.pid == os.getpid() else None


@contextlib.contextmanager
def reuse_workers() -> Iterator[KeptExecutors]:
    """Keep each run's executor for the next runs of this block (see the module)."""
    outer = kept_executors()
    if outer is not None:
        yield outer
        return
    kept = KeptExecutors()
    token = _current.set(kept)
    try:
        yield kept
    finally:
        _current.reset(token)
        kept.close()


class RunExecutor:
    """The executor of one run: its own (started at :meth:`open`, stopped at
    :meth:`close`), or, inside a :func:`reuse_workers` block, the block's (handed back
    at :meth:`close` unless the run ended by an error; :meth:`abort`, after an
    interrupt, stops it at once either way)."""

    def __init__(self, key: ExecutorKey, start: Callable[[], Executor]) -> None:
        self._key = key
        self._start = start
        self._kept = kept_executors()
        self._borrowed = False
        #: whether :attr:`executor` served an earlier run of the block (and may have
        #: broken since, between runs)
        self.reused = False
        self.executor: Executor | None = None

    def open(self) -> Executor:
        taken = None if self._kept is None else self._kept.take(self._key, self._start)
        if taken is None:
            self.executor = self._start()
        else:
            self.executor, self.reused = taken
            self._borrowed = True
        return self.executor

    def replace(self) -> Executor:
        """A new executor in place of one that broke (stopped without waiting)."""
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
        self.executor, self.reused = self._start(), False
        return self.executor

    def _give_back(self, executor: Executor | None) -> bool:
        """Hand a borrowed executor back to the block (``None``: it is being stopped);
        whether it was borrowed (and not handed back yet)."""
        if not self._borrowed or self._kept is None:
            return False
        self._borrowed = False
        self._kept.give_back(self._key, executor)
        return True

    def close(self, ended: bool) -> None:
        """The run is over: ``ended`` normally (its failed tasks listed) or by an error.
        An executor of its own is shut down, waiting for its workers (an interrupt
        meanwhile leaves it to :meth:`abort`)."""
        executor = self.executor
        if ended and self._give_back(executor):
            self.executor = None
            return
        self._give_back(None)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        self.executor = None

    def abort(self) -> None:
        """The run was interrupted: stop its executor at once, a kept one too (the
        block's next run starts a fresh one), without waiting for a task."""
        executor, self.executor = self.executor, None
        self._give_back(None)
        if executor is not None:
            abort_executor(executor)
