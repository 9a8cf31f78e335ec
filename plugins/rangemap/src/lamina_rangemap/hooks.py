"""Hook module announced by the ``lamina`` entry point: every name by import string, so
discovering plugins imports nothing else of this distribution."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register(
        "build_range_mapped_layer", "lamina_rangemap.builder:build_range_mapped_layer"
    )
    registry.register("KeyRange", "lamina_rangemap:KeyRange", kind="index")


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("RangeMapBackend", "lamina_rangemap:RangeMapBackend")
    registry.register("RangeMapDBBackend", "lamina_rangemap:RangeMapDBBackend")
