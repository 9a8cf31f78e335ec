"""Workers kept from one run to the next: ``with flows.reuse_workers(): ...``.

By default a run starts its executor (the ``processes`` pool, lamina-dask's local
cluster) when it begins and stops it when it ends, so nothing outlives the call. That
costs every run the same fixed price: forking the workers, the page faults of their
fresh heaps on the first chunk, and their shutdown — about 0.1 s for ``processes`` x 2,
several seconds for a Dask local cluster. A script that runs several flows, or the same
flow on many regions, can pay it once::

    with flows.reuse_workers():
        flows.copy(src, dst, executor="processes", workers=2)
        flows.downsample(dst, executor="processes", workers=2)

Inside the block, the first run with a given executor, ``workers`` and ``scheduler``
starts the executor and the later ones use it again; the block's end stops them all
(``shutdown(wait=True)``). A block inside another uses the outer one. A pool that
breaks during a run (a worker process killed) is replaced, and the replacement is kept;
a run that ends by an exception (an interrupt, say) stops its executor, so the next run
starts a fresh one and finds no stray tasks of it.

What a kept worker knows of this process is what it had when it started (``processes``
forks at the first run of the block): a function changed, a plugin registered or an
environment variable set later in this process does not reach it. Layers and
operations travel by pickle on every run, so they are always the current ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextvars import ContextVar
from typing import Any

__all__ = ["KeptExecutors", "kept_executors", "reuse_workers"]

ExecutorKey = tuple[str, int | None, tuple[tuple[str, Any], ...]]


class KeptExecutors:
    """The executors a :func:`reuse_workers` block keeps, by executor name, ``workers``
    and options."""

    def __init__(self) -> None:
        self._executors: dict[ExecutorKey, Executor] = {}

    def __len__(self) -> int:
        """How many executors the block keeps."""
        return len(self._executors)

    def __iter__(self) -> Iterator[Executor]:
        """The executors the block keeps."""
        return iter(list(self._executors.values()))

    @staticmethod
    def key(name: str, workers: int | None, options: dict[str, Any]) -> ExecutorKey:
        return (name, workers, tuple(sorted(options.items())))

    def get(self, key: ExecutorKey, start: Callable[[], Executor]) -> Executor:
        """The kept executor for ``key``, started with ``start()`` the first time."""
        executor = self._executors.get(key)
        if executor is None:
            executor = self._executors[key] = start()
        return executor

    def replace(self, key: ExecutorKey, start: Callable[[], Executor]) -> Executor:
        """A new executor for ``key`` in place of one that broke (already shut down)."""
        executor = self._executors[key] = start()
        return executor

    def discard(self, key: ExecutorKey) -> None:
        """Forget ``key``'s executor (its run stopped it)."""
        self._executors.pop(key, None)

    def close(self) -> None:
        """Stop every kept executor, waiting for its workers to exit."""
        executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            with contextlib.suppress(Exception):
                executor.shutdown(wait=True, cancel_futures=True)


_current: ContextVar[KeptExecutors | None] = ContextVar("lamina_kept_executors", default=None)


def kept_executors() -> KeptExecutors | None:
    """The executors of the innermost :func:`reuse_workers` block, or ``None`` outside."""
    return _current.get()


@contextlib.contextmanager
def reuse_workers() -> Iterator[KeptExecutors]:
    """Keep each run's executor for the next runs of this block (see the module)."""
    outer = _current.get()
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
