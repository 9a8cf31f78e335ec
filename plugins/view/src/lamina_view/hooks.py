"""Hook module announced by the ``lamina`` entry point: every name by import string, so
discovering plugins imports neither neuroglancer, tornado nor Pillow."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("view", "lamina_view.viewer:view", kind="viewer")


@hookimpl
def lamina_register_commands(registry: Registrar) -> None:
    registry.register("view", "lamina_view.cli:VIEW_COMMAND")
    registry.register("preview", "lamina_view.cli:PREVIEW_COMMAND")
