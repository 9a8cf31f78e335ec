"""What the core contributes from its top-level modules: layers over any backend, the
in-memory object backend, and the ``plugins`` and ``info`` commands.

The core registers itself through the same hooks and entry points as any plugin (its
``pyproject.toml`` lists this module and one registration module per subpackage, as
pytest's own plugins are), so ``lamina plugins`` lists the core's names beside the
plugins', a plugin reusing a core name is a conflict like any other, and the plugin
host knows no core module by name. Everything is registered by import string: nothing
is imported until it is used.
"""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_layer", "lamina.layer:build_layer")
    registry.register("build_memory_layer", "lamina.memory:build_memory_layer")


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("MemoryBackend", "lamina.memory:MemoryBackend")


@hookimpl
def lamina_register_commands(registry: Registrar) -> None:
    registry.register("plugins", "lamina.cli:plugins_command")
    registry.register("info", "lamina.describe:INFO_COMMAND")
