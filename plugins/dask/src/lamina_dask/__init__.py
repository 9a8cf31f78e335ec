"""lamina-dask: run lamina's flows on a ``dask.distributed`` cluster.

Installing it registers the ``dask`` executor (``executor="dask"``, ``lamina copy …
--executor dask [--scheduler tcp://HOST:PORT]``); see :mod:`lamina_dask.executor`.
Importing this package does not import dask.
"""

from __future__ import annotations

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "DaskExecutor": "lamina_dask.executor",
    "QUIET_DIAGNOSTICS": "lamina_dask.executor",
    "DaskNotInstalledError": "lamina_dask.executor",
    "SchedulerLostError": "lamina_dask.executor",
    "SchedulerUnreachableError": "lamina_dask.executor",
    "TaskCancelledError": "lamina_dask.executor",
    "dask_executor": "lamina_dask.executor",
    "lamina_worker_config": "lamina_dask.executor",
    "lamina_worker_plugin": "lamina_dask.executor",
}

__all__ = sorted(_LAZY)

__getattr__ = module_getattr(__name__, _LAZY, globals())
