"""Hook module announced by the ``lamina`` entry point.

It imports nothing beyond the plugin hook machinery: the set modules (and numpy) are
imported when a set is built, never during plugin discovery.

``ROIMaskProcessor``, the set-level processor of the reference system, is the core's
(``lamina.ROIMaskProcessor``, registered by name by the core); this distribution
re-exports it as ``lamina_layerset.ROIMaskProcessor`` and does not register it again
(two distributions registering one name is a conflict).
"""

from __future__ import annotations

from typing import Any

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


def build_layer_set(*args: Any, **kwargs: Any) -> Any:
    """Build a generic layer set (see ``lamina_layerset.layer_set.build_layer_set``)."""
    from lamina_layerset.layer_set import build_layer_set as build

    return build(*args, **kwargs)


def build_volumetric_layer_set(*args: Any, **kwargs: Any) -> Any:
    """Build a volumetric layer set (see
    ``lamina_layerset.volumetric.build_volumetric_layer_set``)."""
    from lamina_layerset.volumetric import build_volumetric_layer_set as build

    return build(*args, **kwargs)


def LayerSetBackend(*args: Any, **kwargs: Any) -> Any:
    """The generic set backend (see ``lamina_layerset.layer_set.LayerSetBackend``)."""
    from lamina_layerset.layer_set import LayerSetBackend as backend

    return backend(*args, **kwargs)


def VolumetricSetBackend(*args: Any, **kwargs: Any) -> Any:
    """The volumetric set backend (see ``lamina_layerset.volumetric.VolumetricSetBackend``)."""
    from lamina_layerset.volumetric import VolumetricSetBackend as backend

    return backend(*args, **kwargs)


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_layer_set", build_layer_set)
    registry.register("build_volumetric_layer_set", build_volumetric_layer_set)


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("LayerSetBackend", LayerSetBackend)
    registry.register("VolumetricSetBackend", VolumetricSetBackend)
