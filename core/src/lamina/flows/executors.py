"""The core's executors for chunked processing: ``serial``, ``threads`` and ``processes``.

An executor factory is registered through the executor hook
(``lamina_register_executors``) and called as ``factory(workers=N, **options)``; it
returns an object with the ``concurrent.futures.Executor`` interface (``submit``,
``shutdown``). The flows' engine (:mod:`lamina.flows.engine`) submits one task per
chunk and handles retries, resumption and workers that die, so an executor only runs
functions. A plugin adds another engine the same way (``lamina-dask`` adds ``dask``).

* ``serial``: runs each task in the calling thread, when it is submitted.
* ``threads``: a thread pool (``workers`` threads; default: the CPUs this process may use).
* ``processes``: a process pool of ``workers`` processes (default: the usable CPUs),
  forked on Linux (fast to start; lamina's backends drop handles inherited across
  fork) and spawned elsewhere. Each worker resamples in one thread
  (``LAMINA_RESAMPLE_THREADS=1``): the processes are the parallelism. Each keeps the
  memory it frees for its next chunk (:mod:`lamina.flows.allocator`). A worker that
  dies (killed, out of memory) breaks the pool; the engine then starts a new pool and
  runs that pool's unfinished tasks again.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar

from lamina.flows.allocator import tune_worker_malloc

__all__ = [
    "SerialExecutor",
    "default_workers",
    "processes_executor",
    "serial_executor",
    "threads_executor",
]

T = TypeVar("T")


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


class SerialExecutor(Executor):
    """Runs each submitted call at once, in the calling thread (no parallelism)."""

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


def threads_executor(workers: int | None = None, **options: Any) -> Executor:
    """The ``threads`` executor: a pool of ``workers`` threads."""
    _reject_options("threads", options)
    return ThreadPoolExecutor(max_workers=_check_workers(workers), thread_name_prefix="lamina")


def _init_process_worker() -> None:
    os.environ["LAMINA_RESAMPLE_THREADS"] = "1"
    tune_worker_malloc()


def processes_executor(workers: int | None = None, **options: Any) -> Executor:
    """The ``processes`` executor: a pool of ``workers`` processes (forked on Linux)."""
    _reject_options("processes", options)
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(
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
