"""Hook module announced by the ``lamina`` entry point.

It imports nothing heavy: neuroglancer, tornado and Pillow are imported when a view is
made or a preview written, never during plugin discovery.
"""

from __future__ import annotations

from typing import Any

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar
from lamina_view.cli import PREVIEW_COMMAND, VIEW_COMMAND


def view(layers: Any, **options: Any) -> Any:
    """Show layers in neuroglancer (see ``lamina_view.viewer.view``)."""
    from lamina_view.viewer import view as make_view

    return make_view(layers, **options)


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("view", view, kind="viewer")


@hookimpl
def lamina_register_commands(registry: Registrar) -> None:
    registry.register("view", VIEW_COMMAND)
    registry.register("preview", PREVIEW_COMMAND)
