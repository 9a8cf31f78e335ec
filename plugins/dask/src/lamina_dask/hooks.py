"""Hook module announced by the ``lamina`` entry point.

It imports nothing heavy: :mod:`lamina_dask.executor` imports dask and distributed when
the executor is created (a flow run with ``executor="dask"``), never during plugin
discovery.
"""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar
from lamina_dask.executor import dask_executor


@hookimpl
def lamina_register_executors(registry: Registrar) -> None:
    registry.register("dask", dask_executor)
