"""What ``lamina info`` shows of a precomputed volume: its scales, encodings, sharding,
write grids and the engine of each scale."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lamina_precomputed.engine import choose_scale_engine, scale_obstacles
from lamina_precomputed.info import scale_resolution
from lamina_precomputed.sharding import ShardedScale

if TYPE_CHECKING:
    from lamina_precomputed.backend import CVBackend

__all__ = ["describe_volume", "scale_engine"]


def scale_engine(backend: CVBackend, info: Mapping[str, Any], scale: Mapping[str, Any]) -> str:
    """The engine a scale uses or will use, or why it cannot be used as asked."""
    try:
        return choose_scale_engine(
            backend.requested_engine, backend.engine, backend.path, info, scale, backend.cv_kwargs
        )
    except ValueError:
        reasons = scale_obstacles(backend.path, info, scale, backend.cv_kwargs)
        return f"refused on tensorstore: {'; '.join(reasons)}"


def describe_volume(backend: CVBackend, info: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-able description of the volume ``backend`` serves, whose info is ``info``."""
    by_resolution: dict[Any, Mapping[str, Any]] = {}
    for scale in info["scales"]:
        by_resolution.setdefault(scale_resolution(scale), scale)
    scales = []
    for res in backend.resolutions:
        scale = by_resolution[res]
        offset = backend.get_voxel_offset(res)
        size = backend.get_dataset_size(res)
        sharded = ShardedScale.from_scale(scale) if scale.get("sharding") else None
        engine = scale_engine(backend, info, scale)
        scales.append(
            {
                "key": scale.get("key"),
                "resolution": list(res),
                "voxel_offset": list(offset),
                "size": list(size),
                "chunk_size": list(backend.get_chunk_size(res)),
                "bounds_nm": [list(offset * res), list((offset + size) * res)],
                "encoding": scale.get("encoding"),
                "sharded": sharded is not None,
                "sharding": None if sharded is None else dict(sharded.sharding),
                "shard_box": None
                if sharded is None or sharded.shard_box_chunks is None
                else list(sharded.write_grid_size),
                "write_grid": list(backend.get_write_grid_size(res)),
                "engine": engine,
                "notes": [] if engine == backend.engine else [f"engine {engine}"],
            }
        )
    return {
        "path": backend.path,
        "format": "neuroglancer precomputed",
        "engine": backend.engine,
        "type": info.get("type"),
        "data_type": str(backend.dtype),
        "num_channels": backend.num_channels,
        "scales": scales,
    }
