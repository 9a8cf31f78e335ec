"""What ``CVBackend`` knows of a scale from the info alone: its geometry, and whether
lamina can read and write it.

A scale whose encoding, data type or channel count lamina cannot handle exactly is
refused before anything is written (a new info) or when first used (an existing
volume, which still opens while any of its scales can be used). A geometry change is
refused when it would renumber a sharded scale's chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from lamina.volumetric.geometry import Vec3D
from lamina_precomputed.codecs import UnsupportedEncodingError, check_encoding
from lamina_precomputed.sharding import ShardedScale

__all__ = ["StoredScale", "check_scale", "check_scales", "check_shards_stay"]


@attrs.frozen
class StoredScale:
    """A scale's voxel offset, chunk size, size and sharding, from its info alone (the
    geometry of a scale whose encoding lamina refuses is still described)."""

    offset: Vec3D[int]
    chunk: Vec3D[int]
    size: Vec3D[int]
    sharded: ShardedScale | None

    @classmethod
    def of(cls, scale: Mapping[str, Any]) -> StoredScale:
        return cls(
            Vec3D.from_seq(scale["voxel_offset"], "voxel_offset").int(),
            Vec3D.from_seq(scale["chunk_sizes"][0], "chunk size").int(),
            Vec3D.from_seq(scale["size"], "size").int(),
            ShardedScale.from_scale(scale) if scale.get("sharding") else None,
        )


def check_shards_stay(path: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Refuse a geometry change that would give a sharded scale's chunks other ids: its
    stored chunks would be read from the wrong places (before anything is written)."""
    for before, after in zip(old["scales"], new["scales"], strict=True):
        if not before.get("sharding"):
            continue
        if not ShardedScale.from_scale(before).keeps_chunk_ids(ShardedScale.from_scale(after)):
            raise ValueError(
                f"the scale {before.get('key')} of {path} is sharded: changing its voxel "
                f"offset {before['voxel_offset']} -> {after['voxel_offset']}, chunk size "
                f"{before['chunk_sizes'][0]} -> {after['chunk_sizes'][0]} or size "
                f"{before['size']} -> {after['size']} would renumber its chunks, and their "
                "data would be read from other places. Keep the chunk grid (a size with "
                "as many chunks per axis, rounded up to a power of two), or copy the "
                "volume into a new one with the geometry you want (lamina copy)."
            )


def check_scale(path: str, info: Mapping[str, Any], scale: Mapping[str, Any]) -> None:
    """Refuse a scale whose encoding, dtype and channel count lamina cannot read and write
    exactly (see :func:`lamina_precomputed.codecs.check_encoding`)."""
    check_encoding(
        str(scale.get("encoding", "raw")),
        info["data_type"],
        int(info["num_channels"]),
        where=f"{path} (scale {scale.get('key')})",
    )


def check_scales(path: str, info: Mapping[str, Any], *, every: bool) -> None:
    """Refuse, before anything is written, a new info with any scale lamina cannot
    handle (``every``), or an existing volume none of whose scales it can: a volume
    with some such scales opens, and those scales are refused when first used."""
    errors = []
    for scale in info.get("scales") or []:
        try:
            check_scale(path, info, scale)
        except UnsupportedEncodingError as exc:
            if every:
                raise
            errors.append(exc)
    if errors and len(errors) == len(info.get("scales") or []):
        raise errors[0]
