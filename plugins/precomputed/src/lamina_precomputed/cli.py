"""The precomputed path opener: which paths this plugin opens (for ``lamina info`` & co).

The core's ``lamina.paths.open_path`` asks every registered opener in turn; this one
recognises precomputed forms. It imports nothing heavy: CloudVolume is imported when a
path is opened.
"""

from __future__ import annotations

import os
from typing import Any

from lamina.plugins.contributions import PathOpener

__all__ = ["PRECOMPUTED_OPENER", "recognises_precomputed"]

_REMOTE_PREFIXES = ("precomputed://", "file://", "gs://", "s3://", "mem://")


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
)
