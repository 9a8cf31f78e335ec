"""The core's own contributions, registered through the same hooks as any plugin.

Registering the core like a plugin keeps one code path: ``lamina plugins`` lists the
core's names beside the plugins', and a plugin that reuses a core name is reported as
a conflict like any other.
"""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    from lamina.layer import build_layer
    from lamina.memory import build_memory_layer

    registry.register("build_layer", build_layer)
    registry.register("build_memory_layer", build_memory_layer)


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    from lamina.memory import MemoryBackend

    registry.register("MemoryBackend", MemoryBackend)


@hookimpl
def lamina_register_commands(registry: Registrar) -> None:
    from lamina.cli import plugins_command

    registry.register("plugins", plugins_command)
