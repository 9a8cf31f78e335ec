"""The Zarr path opener (for ``lamina info``, ``copy``, ``downsample``, ``view`` and the
other commands, and ``format="zarr"``). It imports nothing heavy: TensorStore and
zarr-python are imported when a path is opened."""

from __future__ import annotations

import os
from typing import Any

from lamina.plugins.contributions import PathOpener, VolumeTemplate
from lamina_zarr.paths import PREFIXES, REMOTE

__all__ = ["ZARR_OPENER", "recognises_zarr"]

_SUFFIXES = (".zarr", ".n5")
_METADATA = ("zarr.json", ".zarray", ".zgroup", ".zattrs")


def _last_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1].lower()


def recognises_zarr(path: str) -> bool:
    """``zarr://``, ``zarr2://``, ``zarr3://``, ``n5://``; a path (local, ``file://``,
    ``s3://``, ``gs://``) whose last name ends in ``.zarr`` or ``.n5``; or a local
    directory holding Zarr metadata (``zarr.json``, ``.zarray``, ``.zgroup``)."""
    if path.startswith(PREFIXES):
        return True
    if "://" in path and not path.startswith(("file://", *REMOTE)):
        return False
    if _last_name(path).endswith(_SUFFIXES):
        return True
    if "://" in path and not path.startswith("file://"):
        return False
    local = os.path.expanduser(path.removeprefix("file://"))
    return any(os.path.isfile(os.path.join(local, name)) for name in _METADATA)


def open_zarr(path: str, **options: Any) -> Any:
    """The Zarr volume at ``path`` as a layer (readonly unless asked otherwise)."""
    from lamina_zarr.builder import build_zarr_layer

    options.setdefault("readonly", True)
    return build_zarr_layer(path, **options)


def zarr_exists(path: str) -> bool:
    """Whether a Zarr array or group, or an N5 container, is stored at ``path``."""
    from lamina_zarr.nodes import MetaStore, normalize_path, read_node

    return read_node(MetaStore(normalize_path(path))) is not None


def can_create_zarr(path: str) -> bool:
    """Paths this plugin creates new volumes at: ``zarr://``, ``zarr2://``, ``zarr3://``
    or a last name ending in ``.zarr`` (N5 is read only)."""
    if path.startswith(("zarr://", "zarr2://", "zarr3://")):
        return True
    if "://" in path and not path.startswith(("file://", *REMOTE)):
        return False
    return _last_name(path).endswith(".zarr")


def create_zarr(path: str, like: VolumeTemplate, engine: str | None = None) -> Any:
    """A new OME-Zarr image at ``path`` like the template (its encoding when it is a
    Zarr compression, else zstd; sharded like it when it has shards), writable."""
    from lamina_zarr.builder import build_zarr_layer
    from lamina_zarr.creation import DEFAULT_ENCODING, ENCODINGS

    encoding = like.encoding if like.encoding in ENCODINGS else DEFAULT_ENCODING
    return build_zarr_layer(
        path,
        info_encoding=encoding,
        info_shard_size=like.shard_size,
        engine=engine,
        **like.builder_kwargs(),
    )


ZARR_OPENER = PathOpener(
    recognises=recognises_zarr,
    open=open_zarr,
    forms=(
        "zarr://PATH, zarr2://PATH, zarr3://PATH",
        "n5://PATH",
        "PATH.zarr, PATH.ome.zarr, PATH.n5 (local, file://, s3://, gs://)",
        "DIR (a local directory holding zarr.json, .zarray or .zgroup)",
    ),
    exists=zarr_exists,
    can_create=can_create_zarr,
    create=create_zarr,
    engines=("auto", "tensorstore", "lamina", "zarr-python"),
    shards=True,
)
