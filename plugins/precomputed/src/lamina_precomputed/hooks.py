"""Hook module announced by the ``lamina`` entry point: every name by import string, so
discovering plugins imports nothing of this distribution beyond this module."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_cv_layer", "lamina_precomputed.builder:build_cv_layer")
    registry.register("build_ts_layer", "lamina_precomputed.builder:build_ts_layer")


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("CVBackend", "lamina_precomputed.backend:CVBackend")


@hookimpl
def lamina_register_path_openers(registry: Registrar) -> None:
    registry.register("precomputed", "lamina_precomputed.opener:PRECOMPUTED_OPENER")
