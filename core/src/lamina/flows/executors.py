"""The core's executors for the flows' tasks: ``serial``, ``threads`` and ``processes``.

An executor factory is registered through the executor hook
(``lamina_register_executors``) and called as ``factory(workers=N, **options)``; it
returns an object with the ``concurrent.futures.Executor`` interface (``submit``,
``shutdown``) and, optionally, ``cancel_pending()`` (cancel the tasks not started,
:func:`cancel_pending`) and ``abort()`` (stop at once, :func:`abort_executor`). The
flows' engine (:mod:`lamina.flows.engine`) submits the flow's tasks and handles
retries, resumption, workers that die and interrupts, so an executor only runs
functions. A plugin adds another engine the same way (``lamina-dask`` adds ``dask``).

* ``serial``: runs each task in the calling thread, when it is submitted.
* ``threads``: a pool of ``workers`` daemon threads (default: the CPUs this process may
  use) (:class:`ThreadsExecutor`). Daemon, because a thread cannot be stopped: after an
  interrupt the engine does not wait for a task still running past its grace, and the
  interpreter's exit must not wait for it either (``ThreadPoolExecutor`` joins its
  threads at exit).
* ``processes``: a process pool of ``workers`` processes (default: the usable CPUs),
  forked on Linux (fast to start; lamina's backends drop handles inherited across
  fork) and spawned elsewhere (:class:`ProcessesExecutor`). Each worker resamples in one
  thread (``LAMINA_RESAMPLE_THREADS=1``): the processes are the parallelism. Each keeps
  the memory it frees for its next task (:mod:`lamina.flows.allocator`). A worker that
  dies (killed, out of memory) breaks the pool; the engine then starts a new pool and
  runs that pool's unfinished tasks again.

Interrupts (Ctrl-C): a terminal sends SIGINT to its whole foreground process group, the
``processes`` workers included. Worker processes never act on it — the parent decides
(:mod:`lamina.flows.interrupts`: a short grace for running tasks, then
:func:`abort_executor`).
A worker interrupted at an arbitrary point would leave behind, held for good, a lock it
shares with its siblings and the parent since the fork: the pool's result-queue lock
(every worker then blocks sending its result, and the parent waits for them forever),
or tqdm's multiprocessing lock, which cloud-files takes for the (disabled) progress bar
of each download and upload. So the workers start with SIGINT blocked (it is blocked
while the pool forks them) and ignore it (:func:`ignore_terminal_interrupts`), and
each gets locks of its own for tqdm (:func:`fresh_progress_bar_locks`), so that
nothing another process holds or leaked can block it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, TypeVar

from lamina.flows.allocator import tune_worker_malloc

__all__ = [
    "ProcessesExecutor",
    "SerialExecutor",
    "ThreadsExecutor",
    "abort_executor",
    "cancel_pending",
    "default_workers",
    "fresh_progress_bar_locks",
    "ignore_terminal_interrupts",
    "processes_executor",
    "serial_executor",
    "sigint_blocked",
    "stop_processes",
    "threads_executor",
]

T = TypeVar("T")

#: After SIGTERM, how long :func:`stop_processes` waits before SIGKILL.
_TERMINATE_WAIT_S = 0.5


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _check_workers(workers: int | None) -> int:
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int or None; got {workers!r}")
    return workers


# -- interrupts and locks in worker processes --------------------------------------------------
@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in the calling thread for the block.

    A thread or process started inside inherits the block (a forked or spawned process
    keeps its parent thread's signal mask), so the terminal's Ctrl-C never reaches it,
    not even before it can ignore SIGINT itself. A SIGINT that arrives meanwhile is
    delivered to another thread of this process or, when the block ends, to this one:
    it is deferred, never lost. Nothing happens where threads have no signal mask.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if signal.SIGINT not in before:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def ignore_terminal_interrupts() -> None:
    """In a worker process: ignore SIGINT, the terminal's Ctrl-C, which reaches every
    process of the foreground group. The process that runs the flow decides what an
    interrupt stops (see the module docstring). Only the main thread may do this."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # a SIGINT pending since the fork is dropped
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def fresh_progress_bar_locks() -> None:
    """In a worker process just forked: give tqdm locks of this process's own.

    tqdm guards its bars with a class-wide lock made of a ``threading.RLock`` and a
    ``multiprocessing.RLock``, a semaphore shared with every process forked after it
    was made. cloud-files makes a (disabled) bar, taking that lock, for every download
    and upload; a process that dies or is interrupted holding it (or a parent thread
    that held the thread lock at the fork) would block every other worker for good.
    Worker bars are never shown, so they need no lock shared across processes.
    """
    std = sys.modules.get("tqdm.std")
    if std is None:  # never imported: the locks made here will be this process's
        return
    lock_class: Any = std.TqdmDefaultWriteLock
    lock_class.th_lock = threading.RLock()
    lock_class.mp_lock = None  # no semaphore shared with other processes
    fresh = lock_class()
    classes: list[Any] = [std.tqdm]
    while classes:
        cls = classes.pop()
        if cls is std.tqdm or "_lock" in vars(cls):
            cls._lock = fresh
        classes.extend(cls.__subclasses__())


def stop_processes(processes: Sequence[Any], wait: float = _TERMINATE_WAIT_S) -> None:
    """Stop ``processes`` (``multiprocessing.Process`` objects of this process) now:
    SIGTERM, up to ``wait`` seconds for them to exit, then SIGKILL to those left."""
    alive = [p for p in processes if _alive(p)]
    for process in alive:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.terminate()
    deadline = time.monotonic() + wait
    waiting = {p.sentinel: p for p in alive if _alive(p)}
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for ready in multiprocessing.connection.wait(list(waiting), remaining):
            waiting.pop(ready, None)
    for process in waiting.values():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.kill()
    for process in alive:  # reap them: no zombie left behind
        with contextlib.suppress(OSError, ValueError, AssertionError):
            process.join(0.2)


def _alive(process: Any) -> bool:
    try:
        return bool(process.is_alive())
    except (ValueError, AssertionError):  # closed, or not this process's child
        return False


# -- the executors -----------------------------------------------------------------------------
def cancel_pending(executor: Executor | None, futures: Iterable[Future[Any]]) -> None:
    """Cancel the tasks of ``executor`` not started yet (of ``futures``, its tasks in
    flight); the running ones go on. Calls ``executor.cancel_pending()`` when it has one
    (an executor whose futures must not be cancelled from outside), else cancels each
    future."""
    own = getattr(executor, "cancel_pending", None)
    if callable(own):
        own()
        return
    for future in futures:
        future.cancel()


def abort_executor(executor: Executor) -> None:
    """Stop ``executor`` at once: its queued tasks cancelled, its running ones abandoned,
    its workers stopped as far as it can (``processes`` kills its worker processes), never
    waiting for a task. Calls ``executor.abort()`` when it has one, else
    ``shutdown(wait=False, cancel_futures=True)``."""
    abort = getattr(executor, "abort", None)
    if callable(abort):
        abort()
    else:
        executor.shutdown(wait=False, cancel_futures=True)


class SerialExecutor(Executor):
    """Runs each submitted call at once, in the calling thread (no parallelism)."""

    #: tasks run inside ``submit``, in the caller's thread (the engine gives an
    #: interrupted task its grace there)
    runs_in_calling_thread = True

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the engine decides; KeyboardInterrupt still stops it
            if not isinstance(exc, Exception):
                raise
            future.set_exception(exc)
        return future


def serial_executor(workers: int | None = None, **options: Any) -> Executor:
    """The ``serial`` executor (``workers`` is accepted and ignored: it is always 1)."""
    _reject_options("serial", options)
    return SerialExecutor()


class _WorkItem:
    __slots__ = ("args", "fn", "future", "kwargs")

    def __init__(self, future: Future[Any], fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)


def _thread_worker(work: queue.SimpleQueue[_WorkItem | None], idle: threading.Semaphore) -> None:
    while True:
        item = work.get()
        if item is None:  # shut down: pass the word on to the next thread
            work.put(None)
            return
        item.run()
        del item
        idle.release()


class ThreadsExecutor(Executor):
    """A pool of up to ``workers`` daemon threads, started as tasks come.

    As ``ThreadPoolExecutor``, except that its threads are daemon threads: a task still
    running when the pool is abandoned (:meth:`abort`, after an interrupt) never keeps
    the interpreter from exiting. A thread cannot be stopped; an abandoned task runs on
    until it ends, or until the process exits.
    """

    def __init__(self, workers: int, name: str = "lamina") -> None:
        self._workers = workers
        self._name = name
        self._work: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shut = False
        # a pool dropped without shutdown() lets its threads go
        weakref.finalize(self, self._work.put, None)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._work.put(_WorkItem(future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=_thread_worker,
                    args=(self._work, self._idle),
                    name=f"{self._name}_{len(self._threads)}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item.future.cancel()
            self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def cancel_pending(self) -> None:
        """Cancel the queued tasks and take no more; the running ones go on."""
        self.shutdown(wait=False, cancel_futures=True)

    def abort(self) -> None:
        """Cancel the queued tasks and let the threads go without waiting for them."""
        self.shutdown(wait=False, cancel_futures=True)


def threads_executor(workers: int | None = None, **options: Any) -> Executor:
    """The ``threads`` executor: a pool of ``workers`` daemon threads."""
    _reject_options("threads", options)
    return ThreadsExecutor(_check_workers(workers), name="lamina")


def _init_process_worker() -> None:
    ignore_terminal_interrupts()
    fresh_progress_bar_locks()
    os.environ["LAMINA_RESAMPLE_THREADS"] = "1"
    tune_worker_malloc()


class ProcessesExecutor(ProcessPoolExecutor):
    """``ProcessPoolExecutor`` whose workers never take the terminal's Ctrl-C, and which
    :meth:`abort` stops at once.

    The pool forks (or spawns) its workers inside ``submit``; SIGINT is blocked in the
    calling thread meanwhile, so each worker starts with it blocked and its initializer
    ignores it. The pool's own threads, started there too, keep it blocked: SIGINT goes
    to the caller's thread.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the pool's worker processes and manager thread: shutdown() forgets them, and
        # abort() may come after it (after cancel_pending(), say)
        self._workers_known: dict[int, Any] = {}
        self._manager_known: threading.Thread | None = None

    def _note(self) -> None:
        processes = getattr(self, "_processes", None)
        if processes is not None:
            self._workers_known = processes  # the pool's own dict, kept up to date
        manager = getattr(self, "_executor_manager_thread", None)
        if isinstance(manager, threading.Thread):
            self._manager_known = manager

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with sigint_blocked():
            return super().submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._note()
        super().shutdown(wait=wait, cancel_futures=cancel_futures)

    def cancel_pending(self) -> None:
        """Cancel the tasks not started and take no more; the running ones go on.

        The pool's own manager thread cancels them (``shutdown(wait=False,
        cancel_futures=True)``). A future cancelled from outside races with the pool's
        cleanup when a worker then dies (as :meth:`abort` makes them): Python 3.11's pool
        fails on it and leaves its call queue's feeder thread blocked, which then hangs
        the interpreter's exit."""
        self.shutdown(wait=False, cancel_futures=True)

    def abort(self) -> None:
        """Cancel the queued tasks and stop every worker process now (SIGTERM, then
        SIGKILL after :data:`_TERMINATE_WAIT_S`), without waiting for a task."""
        self._note()
        stop_processes(list(dict(self._workers_known).values()))  # a copy: it may change
        self.shutdown(wait=False, cancel_futures=True)
        if self._manager_known is not None:
            # The pool's manager thread sees its workers gone and cleans up at once.
            # Waiting for it keeps the interpreter's exit from waking it after it closed
            # its wake-up pipe (Python 3.11 then prints "Bad file descriptor").
            self._manager_known.join(_TERMINATE_WAIT_S)


def processes_executor(workers: int | None = None, **options: Any) -> Executor:
    """The ``processes`` executor: a pool of ``workers`` processes (forked on Linux)."""
    _reject_options("processes", options)
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessesExecutor(
        max_workers=_check_workers(workers),
        mp_context=multiprocessing.get_context(method),
        initializer=_init_process_worker,
    )


def _reject_options(name: str, options: dict[str, Any]) -> None:
    if options:
        raise ValueError(
            f"the {name!r} executor takes no option {sorted(options)} (scheduler= is for "
            "the 'dask' executor of lamina-dask)"
        )
