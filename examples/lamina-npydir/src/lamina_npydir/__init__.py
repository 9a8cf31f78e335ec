"""lamina-npydir's entry point (see ``README.md``): hooks and an opener, importing nothing heavy."""

from __future__ import annotations

import os

from lamina.plugins.contributions import PathOpener
from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar, import_target

BUILDER = "lamina_npydir.volume:build_npydir_layer"


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_npydir_layer", BUILDER)


@hookimpl
def lamina_register_path_openers(registry: Registrar) -> None:
    registry.register("npydir", "lamina_npydir:NPYDIR_OPENER")


def _meta(path: str) -> str:  # volume.json of a local path; "" for a URL (gs://...)
    return "" if "://" in path else os.path.join(os.path.expanduser(path), "volume.json")


NPYDIR_OPENER = PathOpener(
    recognises=lambda p: _meta(p).endswith(".npydir/volume.json") or os.path.isfile(_meta(p)),
    open=lambda path, **options: import_target(BUILDER)(path, **{"readonly": True, **options}),
    forms=("DIR.npydir", "DIR (a local directory holding a volume.json)"),
    exists=lambda path: os.path.isfile(_meta(path)),
    can_create=lambda path: _meta(path).endswith(".npydir/volume.json"),
    create=lambda path, like: import_target(BUILDER)(path, **like.builder_kwargs()),
)
