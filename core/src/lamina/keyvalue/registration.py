"""What the key-value scheme contributes: key-value layers, their in-memory backend and
the ``DBIndex`` specs build (see :mod:`lamina.registration`)."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_db_layer", "lamina.keyvalue.layer:build_db_layer")
    registry.register("build_memory_db_layer", "lamina.keyvalue.memory:build_memory_db_layer")
    registry.register("DBIndex", "lamina.keyvalue.index:DBIndex", kind="index")


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("MemoryKeyValueBackend", "lamina.keyvalue.memory:MemoryKeyValueBackend")
