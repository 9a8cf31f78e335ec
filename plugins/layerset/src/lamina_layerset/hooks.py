"""Hook module announced by the ``lamina`` entry point: every name by import string, so
discovering plugins imports nothing else of this distribution."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_layer_set", "lamina_layerset.layer_set:build_layer_set")
    registry.register(
        "build_volumetric_layer_set", "lamina_layerset.volumetric:build_volumetric_layer_set"
    )


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("LayerSetBackend", "lamina_layerset.layer_set:LayerSetBackend")
    registry.register("VolumetricSetBackend", "lamina_layerset.volumetric:VolumetricSetBackend")
