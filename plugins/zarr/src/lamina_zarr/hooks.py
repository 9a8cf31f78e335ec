"""Hook module announced by the ``lamina`` entry point: every name by import string, so
discovering plugins imports neither TensorStore nor zarr-python."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_zarr_layer", "lamina_zarr.builder:build_zarr_layer")


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("ZarrBackend", "lamina_zarr.backend:ZarrBackend")


@hookimpl
def lamina_register_path_openers(registry: Registrar) -> None:
    registry.register("zarr", "lamina_zarr.opener:ZARR_OPENER")
