"""The precomputed path opener: which paths this plugin opens (for ``lamina info`` & co).

The core's ``lamina.paths.open_path`` asks every registered opener in turn; this one
recognises precomputed forms. It imports nothing heavy: CloudVolume is imported when a
path is opened.
"""

from __future__ import annotations

import os
from typing import Any

from lamina.plugins.contributions import PathOpener, VolumeTemplate

__all__ = ["PRECOMPUTED_OPENER", "recognises_precomputed"]

_SCHEMES = ("file://", "gs://", "s3://", "mem://")
_PREFIX = "precomputed://"


def _no_suffix(path: str) -> bool:
    """A precomputed volume is a directory (or a prefix) with an ``info`` inside: its
    last name has no file suffix (``out``, not ``out.zarr`` or ``data.h5``)."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return "." not in last.lstrip(".")


# -- the precomputed path opener ---------------------------------------------------------------
def recognises_precomputed(path: str) -> bool:
    """``precomputed://…`` (also over ``http(s)://``); a local directory holding an
    ``info`` file; or a ``gs://``, ``s3://``, ``file://``, ``mem://`` path whose last name
    has no suffix. Paths of other formats (``out.zarr``, ``data.h5``) are not claimed."""
    if path.startswith(_PREFIX):
        return True
    if path.startswith(_SCHEMES):
        return _no_suffix(path)
    if "://" in path:
        return False
    return os.path.isfile(os.path.join(os.path.expanduser(path), "info"))


def open_precomputed(path: str, **options: Any) -> Any:
    """The precomputed volume at ``path`` as a layer (readonly unless asked otherwise)."""
    from lamina_precomputed.builder import build_cv_layer

    options.setdefault("readonly", True)
    return build_cv_layer(path, **options)


def precomputed_exists(path: str) -> bool:
    """Whether a precomputed volume (its ``info``) is stored at ``path``."""
    from lamina_precomputed.info import normalize_path, read_info_or_none

    return read_info_or_none(normalize_path(path)) is not None


def can_create_precomputed(path: str) -> bool:
    """``precomputed://…``, or a local or remote path whose last name has no suffix and
    that is not an existing file."""
    if path.startswith(_PREFIX):
        return True
    if "://" in path and not path.startswith(_SCHEMES):
        return False
    return _no_suffix(path) and not os.path.isfile(os.path.expanduser(path))


def create_precomputed(path: str, like: VolumeTemplate, engine: str | None = None) -> Any:
    """A new precomputed volume at ``path`` like the template (raw encoding unless the
    template names a precomputed encoding), as a writable layer on ``engine``."""
    from lamina_precomputed.builder import build_cv_layer
    from lamina_precomputed.info import PRECOMPUTED_ENCODINGS

    encoding = like.encoding if like.encoding in PRECOMPUTED_ENCODINGS else "raw"
    return build_cv_layer(
        path,
        info_encoding=encoding,
        info_shard_size=like.shard_size,
        engine=engine,
        **like.builder_kwargs(),
    )


PRECOMPUTED_OPENER = PathOpener(
    recognises=recognises_precomputed,
    open=open_precomputed,
    forms=(
        "precomputed://PATH",
        "file://PATH",
        "gs://BUCKET/PATH",
        "s3://BUCKET/PATH",
        "mem://NAME",
        "DIR (a local directory holding an info file, or a new one: a name without suffix)",
    ),
    exists=precomputed_exists,
    can_create=can_create_precomputed,
    create=create_precomputed,
    # It claims every suffixless path (``gs://b/vol``, ``out``), so it gives way to a
    # format that claims a path positively (``out.h5:/group``, a suffix or a scheme).
    priority=-1,
    engines=("auto", "tensorstore", "cloudvolume"),
    shards=True,
)
