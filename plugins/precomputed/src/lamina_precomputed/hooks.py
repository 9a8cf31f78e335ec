"""Hook module announced by the ``lamina`` entry point.

It imports nothing heavy: CloudVolume is imported when a layer is built or a path
is opened, never during plugin discovery.
"""

from __future__ import annotations

from typing import Any

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar
from lamina_precomputed.cli import PRECOMPUTED_OPENER


def build_cv_layer(*args: Any, **kwargs: Any) -> Any:
    """Build a layer over a Neuroglancer precomputed volume (see
    ``lamina_precomputed.builder.build_cv_layer`` for the parameters)."""
    from lamina_precomputed.builder import build_cv_layer as build

    return build(*args, **kwargs)


def CVBackend(*args: Any, **kwargs: Any) -> Any:
    """The CloudVolume backend (see ``lamina_precomputed.backend.CVBackend``)."""
    from lamina_precomputed.backend import CVBackend as backend

    return backend(*args, **kwargs)


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_cv_layer", build_cv_layer)


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("CVBackend", CVBackend)


@hookimpl
def lamina_register_path_openers(registry: Registrar) -> None:
    registry.register("precomputed", PRECOMPUTED_OPENER)
