"""The threads that read the sources of a range map at once, shared by the process.

Both kinds of range map (volumetric and key-value) read their sources' parts through
:func:`run_all`: on the process-wide pool ``"rangemap"`` of :mod:`lamina.concurrency`,
at most :data:`MAX_CONCURRENT_READS` threads, started on first use and again in a
forked child. A range map among the sources of another runs its parts one after
another inside those threads, so that it never waits for threads its caller holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from lamina import concurrency

__all__ = ["MAX_CONCURRENT_READS", "run_all"]

#: At most this many source parts are read at once (threads of one read).
MAX_CONCURRENT_READS = 8

T = TypeVar("T")

_POOL = "rangemap"


def run_all(tasks: Sequence[Callable[[], T]], concurrent: bool) -> list[T]:
    """Run ``tasks`` and return their results in order: on the shared threads of this
    module when ``concurrent`` and there is more than one, else one after another (as
    inside those threads, so that a range map among the sources of another never waits
    for threads its caller holds). Every task ends before the first error, in task
    order, is raised."""
    if not concurrent or len(tasks) < 2 or concurrency.in_pool(_POOL):
        return [task() for task in tasks]
    return concurrency.run_all(tasks, concurrency.shared_pool(_POOL, MAX_CONCURRENT_READS))
