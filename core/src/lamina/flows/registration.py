"""What the flows contribute: ``copy``, ``downsample`` and ``apply`` for specs
(``{"@type": "copy", ...}``), the reference system's ``build_subchunkable_apply_flow``
and ``lambda`` (:mod:`lamina.flows.reference_specs`), the
``lamina copy / downsample / run`` commands, and the ``serial``, ``threads`` and
``processes`` executors (see :mod:`lamina.registration`)."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("copy", "lamina.flows.copying:copy", kind="flow")
    registry.register("downsample", "lamina.flows.pyramid:downsample", kind="flow")
    registry.register("apply", "lamina.flows.blockwise:apply", kind="flow")
    registry.register(
        "build_subchunkable_apply_flow",
        "lamina.flows.reference_specs:build_subchunkable_apply_flow",
        kind="flow",
    )
    registry.register("lambda", "lamina.flows.reference_specs:build_lambda")


@hookimpl
def lamina_register_commands(registry: Registrar) -> None:
    registry.register("copy", "lamina.flows.cli:COPY_COMMAND")
    registry.register("downsample", "lamina.flows.cli:DOWNSAMPLE_COMMAND")
    registry.register("run", "lamina.flows.cli:RUN_COMMAND")


@hookimpl
def lamina_register_executors(registry: Registrar) -> None:
    registry.register("serial", "lamina.flows.executors:serial_executor")
    registry.register("threads", "lamina.flows.executors:threads_executor")
    registry.register("processes", "lamina.flows.executors:processes_executor")
