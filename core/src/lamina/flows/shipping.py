"""Shipping a run's operation to the workers: pickled once, unpickled once per worker.

Layers inside the operation travel to worker processes by pickling, that is by their
specs. The engine submits ``_call(shipped, idx)`` for each task, ``shipped`` being the
operation wrapped in :class:`_OncePerWorker`: the parent pickles it once per run (plain
pickle, or cloudpickle for what plain pickle refuses: :func:`_dumps`), and each worker
process unpickles it on its first task of the run and keeps it for the others
(:func:`_worker_operation`). On ``serial`` and ``threads`` nothing is pickled: the
operation is called as it is.
"""

from __future__ import annotations

import pickle
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from lamina.volumetric.index import VolumetricIndex

__all__: list[str] = []

#: Operations a worker process has unpickled, by run token: the newest two (two runs
#: may share a cluster at once; workers kept by reuse_workers() hold no more than that).
_worker_operations: OrderedDict[str, Callable[[VolumetricIndex], int]] = OrderedDict()
_WORKER_OPERATIONS_KEPT = 2


def _call(operation: Callable[[VolumetricIndex], int], idx: VolumetricIndex) -> int:
    """One task, in a worker: ``operation(idx)``, the bytes it wrote."""
    return int(operation(idx))


class _OncePerWorker:
    """A run's operation, pickled once in the parent and unpickled once per worker process.

    Each task ships the same few-kB payload; the first task a worker runs unpickles it
    and keeps the result for the run's later tasks, so the operation's layers keep
    their handles (a CloudVolume per scale, an HDF5 file) from task to task, as they
    do on ``serial`` and ``threads``. Operations are idempotent per task, so a task
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
