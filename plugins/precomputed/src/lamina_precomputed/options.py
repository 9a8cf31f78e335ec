"""The CloudVolume options (``cv_kwargs``) that ``CVBackend`` honours, and what follows
from them.

lamina's defaults (:data:`DEFAULT_CV_KWARGS`) are CloudVolume's with caching off;
``cv_kwargs`` override them. Options lamina does not honour are refused, naming those
it does, except a few accepted without effect so that specs written for CloudVolume
still build. The backend's ``with_changes`` keys map onto the same options
(:func:`changed_options`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lamina_precomputed.storage import compression_name

__all__ = [
    "DEFAULT_CV_KWARGS",
    "cache_control",
    "changed_options",
    "check_cv_kwargs",
    "compression_for",
    "disk_cache_root",
]

#: lamina's defaults for the CloudVolume options it honours; ``cv_kwargs`` override them.
DEFAULT_CV_KWARGS: Mapping[str, Any] = {
    "bounded": False,
    "fill_missing": True,
    "progress": False,
    "cache": False,
    "lru_bytes": 0,
    "compress": False,
    "delete_black_uploads": False,
    "non_aligned_writes": False,
    "overwrite_partial_chunks": False,
    "autocrop": False,
}
#: CloudVolume options lamina honours beyond the defaults above.
_HONOURED = frozenset(
    {*DEFAULT_CV_KWARGS, "background_color", "compress_level", "cdn_cache", "secrets", "use_https"}
)
#: CloudVolume options accepted for specs written for CloudVolume, with no effect on
#: image IO here (progress bars, CloudVolume's own parallelism, graphene, meshes).
_WITHOUT_EFFECT = frozenset(
    {
        "agglomerate",
        "cache_locking",
        "compress_cache",
        "green_threads",
        "lru_encoding",
        "max_redirects",
        "mesh_dir",
        "parallel",
        "skel_dir",
        "timestamp",
    }
)
_REFUSED = {
    "mip": "the resolution comes from the index, not from cv_kwargs['mip']",
    "info": "the info comes from the path or from the info_* parameters",
    "provenance": "lamina does not read or write provenance files",
}


def check_cv_kwargs(cv_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """lamina's defaults with ``cv_kwargs`` over them, after refusing unknown and
    contradictory options (``mip``, ``info``, a negative ``lru_bytes``...)."""
    given = dict(cv_kwargs or {})
    for key, why in _REFUSED.items():
        if key in given:
            raise ValueError(f"cv_kwargs must not contain {key!r}: {why}")
    unknown = sorted(set(given) - _HONOURED - _WITHOUT_EFFECT)
    if unknown:
        raise ValueError(
            f"cv_kwargs has keys lamina-precomputed does not know: {unknown}; it honours "
            f"{sorted(_HONOURED)} and accepts without effect {sorted(_WITHOUT_EFFECT)}"
        )
    kwargs = {**DEFAULT_CV_KWARGS, **given}
    if kwargs["lru_bytes"] is None:
        kwargs["lru_bytes"] = 0
    if int(kwargs["lru_bytes"]) < 0:
        raise ValueError(f"cv_kwargs['lru_bytes'] must be >= 0; got {kwargs['lru_bytes']}")
    compression_name(kwargs["compress"])  # raises for an unknown compression
    return kwargs


def changed_options(kwargs: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the option keys of ``with_changes`` applied:
    ``enforce_chunk_aligned_writes``, ``overwrite_partial_chunks``, ``allow_cache``,
    ``use_compression`` and ``cache_bytes_limit``; other keys are left to the caller."""
    changed = dict(kwargs)
    if "enforce_chunk_aligned_writes" in changes:
        changed["non_aligned_writes"] = not bool(changes["enforce_chunk_aligned_writes"])
    if "overwrite_partial_chunks" in changes:
        changed["overwrite_partial_chunks"] = bool(changes["overwrite_partial_chunks"])
    if "allow_cache" in changes:
        wanted = bool(changes["allow_cache"])
        changed["cache"] = (changed["cache"] or True) if wanted else False
    if "use_compression" in changes:
        changed["compress"] = "gzip" if changes["use_compression"] else False
    if "cache_bytes_limit" in changes:
        limit = changes["cache_bytes_limit"]
        changed["lru_bytes"] = 0 if limit is None else int(limit)
        if changed["lru_bytes"] < 0:
            raise ValueError(f"cache_bytes_limit must be >= 0; got {limit}")
    return changed


def cache_control(cdn_cache: Any) -> str | None:
    """CloudVolume's ``cdn_cache``: ``False`` no caching, an int a max-age, a str as is."""
    if cdn_cache is None or cdn_cache is True:
        return None
    if cdn_cache is False:
        return "no-cache"
    if isinstance(cdn_cache, int):
        return f"public, max-age={cdn_cache}"
    return str(cdn_cache)


def compression_for(compress: Any, encoding: str) -> Any:
    """The compression of a scale's chunk files: ``compress``, where ``None`` is
    CloudVolume's default, gzip for the encodings that do not compress themselves."""
    if compress is None:
        return "gzip" if encoding in ("raw", "compressed_segmentation") else False
    return compress


def disk_cache_root(cache: Any) -> str:
    """Where the disk cache lives: ``cv_kwargs['cache']`` when it is a path, else
    ``$CLOUD_VOLUME_CACHE_DIR``, else ``~/.cloudvolume/cache`` (CloudVolume's place)."""
    if isinstance(cache, str | os.PathLike):
        return os.fspath(cache)
    return os.environ.get("CLOUD_VOLUME_CACHE_DIR") or os.path.expanduser("~/.cloudvolume/cache")
