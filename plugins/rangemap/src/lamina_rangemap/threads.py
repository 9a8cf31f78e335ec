"""The threads that read the sources of a range map at once, shared by the process.

Both kinds of range map (volumetric and key-value) read their sources' parts through
:func:`run_all`: on one pool of at most :data:`MAX_CONCURRENT_READS` threads, created on
first use and forgotten in a forked child (whose parent's threads do not exist). A
range map among the sources of another runs its parts one after another inside those
threads, so that it never waits for threads its caller holds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["MAX_CONCURRENT_READS", "run_all"]

#: At most this many source parts are read at once (threads of one read).
MAX_CONCURRENT_READS = 8

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_worker = threading.local()


def _mark_worker() -> None:
    _worker.active = True


def _forget_pool() -> None:  # in a forked child the parent's threads do not exist
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=MAX_CONCURRENT_READS,
                thread_name_prefix="lamina-rangemap",
                initializer=_mark_worker,
            )
        return _pool


def run_all(tasks: Sequence[Callable[[], T]], concurrent: bool) -> list[T]:
    """Run ``tasks`` and return their results in order: on the shared threads of this
    module when ``concurrent`` and there is more than one, else one after another (as
    inside those threads, so that a range map among the sources of another never waits
    for threads its caller holds). The first error, in task order, is raised."""
    if not concurrent or len(tasks) < 2 or getattr(_worker, "active", False):
        return [task() for task in tasks]
    futures = [_shared_pool().submit(task) for task in tasks]
    return [future.result() for future in futures]
