"""Hook module announced by the entry point. Names are registered by import string
(``"package.module:attribute"``): lamina imports them on first use, so discovering
plugins imports nothing of this package but this module."""

from __future__ import annotations

from lamina import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_jsondir_layer", "lamina_jsondir.backend:build_jsondir_layer")


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("JsonDirBackend", "lamina_jsondir.backend:JsonDirBackend")
