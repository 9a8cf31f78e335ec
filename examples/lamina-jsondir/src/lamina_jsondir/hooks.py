"""Hook module announced by the entry point; it imports nothing until a builder is used."""

from __future__ import annotations

from typing import Any

from lamina import hookimpl


def build_jsondir_layer(*args: Any, **kwargs: Any) -> Any:
    """Build a layer over a directory of JSON files (see ``lamina_jsondir.backend``)."""
    from lamina_jsondir.backend import build_jsondir_layer as build

    return build(*args, **kwargs)


def _backend(*args: Any, **kwargs: Any) -> Any:
    from lamina_jsondir.backend import JsonDirBackend

    return JsonDirBackend(*args, **kwargs)


@hookimpl
def lamina_register_builders(registry: Any) -> None:
    registry.register("build_jsondir_layer", build_jsondir_layer)


@hookimpl
def lamina_register_backends(registry: Any) -> None:
    registry.register("JsonDirBackend", _backend)
