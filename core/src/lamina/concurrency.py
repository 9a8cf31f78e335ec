"""Thread pools and per-process state, shared by lamina's modules and safe across fork.

Several parts of lamina keep something for the whole process: threads (resampling,
range-map reads, precomputed chunk IO, a layer set's members) and caches of clients
or file handles. A process forked from this one inherits those objects but not the
threads behind them, and a lock that another thread held at the fork stays held in
the child for ever. So they are kept here, reset by one fork hook:

* :class:`ProcessLocal`: a value made on first use in each process (a forked child
  makes its own, and may close what it inherited), with a lock of that process;
* :class:`ThreadPool` and :func:`shared_pool`: threads started on first use, and
  started again in a forked child;
* :func:`run_all`: tasks on a pool, results in order, every task ended before the
  first error is raised;
* :func:`share_with_helper`: half a piece of work to a helper thread, taken back when
  the helper is still busy with someone else's.

A flow's ``threads`` executor (:class:`lamina.flows.executors.ThreadsExecutor`) is not
one of these: it lives for one run, and its threads are daemon threads, so that a run
interrupted with Ctrl-C can be abandoned without waiting for its tasks.
"""

from __future__ import annotations

import contextvars
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Final, Generic, TypeVar, cast

__all__ = [
    "ProcessLocal",
    "ThreadPool",
    "at_fork_in_child",
    "in_pool",
    "run_all",
    "share_with_helper",
    "shared_pool",
]

T = TypeVar("T")

_UNSET: Final = object()
_locals: weakref.WeakSet[ProcessLocal[Any]] = weakref.WeakSet()
_child_hooks: list[Callable[[], object]] = []


class ProcessLocal(Generic[T]):
    """A value of this process: ``factory()`` on first use, and again on first use in a
    forked child, which never sees its parent's value.

    ``on_inherited``, when given, is called in the child on that first use with the
    value the fork copied (e.g. to close file handles that are the child's copies of
    the parent's); without it that value is dropped. :attr:`lock` is this process's
    lock for changes to the value: made anew in a child, never inherited held.
    """

    __slots__ = ("__weakref__", "_factory", "_inherited", "_lock", "_on_inherited", "_value")

    def __init__(
        self, factory: Callable[[], T], *, on_inherited: Callable[[T], object] | None = None
    ) -> None:
        self._factory = factory
        self._on_inherited = on_inherited
        self._value: object = _UNSET
        self._inherited: object = _UNSET
        self._lock = threading.RLock()
        _locals.add(self)

    @property
    def lock(self) -> threading.RLock:
        """This process's lock for the value (reentrant)."""
        return self._lock

    def get(self) -> T:
        """This process's value, made on first use."""
        value = self._value
        if value is _UNSET:
            with self._lock:
                value = self._value
                if value is _UNSET:
                    inherited, self._inherited = self._inherited, _UNSET
                    if inherited is not _UNSET and self._on_inherited is not None:
                        self._on_inherited(cast(T, inherited))
                    value = self._value = self._factory()
        return cast(T, value)

    def _forked(self) -> None:
        if self._on_inherited is not None and self._value is not _UNSET:
            self._inherited = self._value
        self._value = _UNSET
        self._lock = threading.RLock()


def at_fork_in_child(fn: Callable[[], object]) -> None:
    """Call ``fn`` in every process forked from this one, as it starts (after every
    :class:`ProcessLocal` is reset). Only for what must be right before any use, such
    as a pid cached for a per-read check: a :class:`ProcessLocal` defers the work."""
    _child_hooks.append(fn)


def _after_fork_in_child() -> None:
    for local in list(_locals):
        local._forked()
    for hook in _child_hooks:
        hook()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- threads ------------------------------------------------------------------------------------
_in_pool = threading.local()


def _mark_thread(name: str) -> None:
    _in_pool.name = name


def in_pool(name: str) -> bool:
    """Whether the calling thread is one of the threads of the pool ``name`` (a task
    that would wait for more tasks on its own pool runs them itself instead)."""
    return getattr(_in_pool, "name", None) == name


class _Threads:
    __slots__ = ("executor", "workers")

    def __init__(self) -> None:
        self.executor: ThreadPoolExecutor | None = None
        self.workers = 0


class ThreadPool:
    """Threads named ``lamina-{name}``, started on first use and started again in a
    forked child (whose parent's threads do not exist there). A copy or an unpickled
    pool has no threads until it is used."""

    __slots__ = ("_threads", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._threads: ProcessLocal[_Threads] = ProcessLocal(_Threads)

    def executor(self, workers: int) -> ThreadPoolExecutor:
        """This process's executor, with at least ``workers`` threads. A caller needing
        more threads than the pool has replaces it with a larger one; what was given to
        the smaller one still runs, and its threads end once it is unused (so a caller
        that obtained it before never submits to a shut-down executor)."""
        if workers < 1:
            raise ValueError(f"a thread pool needs at least 1 worker; got {workers}")
        threads = self._threads.get()
        executor = threads.executor
        if executor is not None and threads.workers >= workers:
            return executor
        with self._threads.lock:
            if threads.executor is None or threads.workers < workers:
                threads.executor = ThreadPoolExecutor(
                    max_workers=workers,
                    thread_name_prefix=f"lamina-{self.name}",
                    initializer=_mark_thread,
                    initargs=(self.name,),
                )
                threads.workers = workers
            return threads.executor

    @property
    def started(self) -> bool:
        """Whether this process has started the pool's threads."""
        return self._threads.get().executor is not None

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name,))

    def __copy__(self) -> ThreadPool:
        return type(self)(self.name)

    def __deepcopy__(self, memo: dict[int, Any]) -> ThreadPool:
        return type(self)(self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


_named: dict[str, ThreadPool] = {}


def shared_pool(name: str, workers: int) -> ThreadPoolExecutor:
    """The process-wide pool ``name``: created on first use with ``workers`` threads,
    grown when a later caller asks for more (see :meth:`ThreadPool.executor`), and
    created afresh in a forked child."""
    pool = _named.get(name)
    if pool is None:
        pool = _named.setdefault(name, ThreadPool(name))
    return pool.executor(workers)


def run_all(
    tasks: Sequence[Callable[[], T]],
    pool: ThreadPoolExecutor | None,
    *,
    caller_takes_first: bool = False,
) -> list[T]:
    """The results of ``tasks``, in order.

    Without a pool, or with fewer than two tasks, they run one after another in the
    calling thread and the first error stops them. Otherwise each runs on ``pool`` in a
    copy of the caller's context (its contextvars, such as numpy's errstate); with
    ``caller_takes_first`` the calling thread runs the first task meanwhile rather than
    only waiting. Every task ends before the first error, in task order, is raised: none
    still runs once the call is over.
    """
    if pool is None or len(tasks) < 2:
        return [task() for task in tasks]
    first = 1 if caller_takes_first else 0
    futures = [pool.submit(contextvars.copy_context().run, task) for task in tasks[first:]]
    results: list[T] = []
    errors: list[Exception] = []
    if caller_takes_first:
        try:
            results.append(tasks[0]())
        except Exception as exc:
            errors.append(exc)
    for future in futures:
        try:
            results.append(future.result())
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    return results


def share_with_helper(
    pool: ThreadPoolExecutor, mine: Callable[[], object], theirs: Callable[[], object]
) -> None:
    """Run ``theirs`` on ``pool`` (a helper thread) while this thread runs ``mine``. If
    the helper has not started ``theirs`` by the time ``mine`` is done (it is busy with
    another thread's work), this thread takes it back and runs it too. Both have ended
    when the call returns or raises."""
    other = pool.submit(contextvars.copy_context().run, theirs)
    try:
        mine()
    except BaseException:
        if not other.cancel():
            wait([other])
        raise
    if other.cancel():
        theirs()
    else:
        other.result()
