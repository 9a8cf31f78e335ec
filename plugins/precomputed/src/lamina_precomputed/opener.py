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

_REMOTE_PREFIXES = ("precomputed://", "file://", "gs://", "s3://", "mem://")
_FILE_SUFFIXES = (".h5", ".hdf5", ".hdf", ".json", ".yaml", ".yml")


# -- the precomputed path opener ---------------------------------------------------------------
def recognises_precomputed(path: str) -> bool:
    """``precomputed://…``, ``file://…``, ``gs://…``, ``s3://…``, ``mem://…``, or a local
    directory holding an ``info`` file."""
    if path.startswith(_REMOTE_PREFIXES):
        return True
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
    """Precomputed forms, and local paths that are not an HDF5 file or a file at all."""
    if path.startswith(_REMOTE_PREFIXES):
        return True
    if "://" in path or path.lower().endswith(_FILE_SUFFIXES):
        return False
    return not os.path.isfile(os.path.expanduser(path))


def create_precomputed(path: str, like: VolumeTemplate) -> Any:
    """A new precomputed volume at ``path`` like the template (raw encoding unless the
    template names a precomputed encoding), as a writable layer."""
    from lamina_precomputed.builder import build_cv_layer
    from lamina_precomputed.info import PRECOMPUTED_ENCODINGS

    encoding = like.encoding if like.encoding in PRECOMPUTED_ENCODINGS else "raw"
    return build_cv_layer(path, info_encoding=encoding, **like.builder_kwargs())


PRECOMPUTED_OPENER = PathOpener(
    recognises=recognises_precomputed,
    open=open_precomputed,
    forms=(
        "precomputed://PATH",
        "file://PATH",
        "gs://BUCKET/PATH",
        "s3://BUCKET/PATH",
        "mem://NAME",
        "DIR (a local directory holding an info file)",
    ),
    exists=precomputed_exists,
    can_create=can_create_precomputed,
    create=create_precomputed,
)
