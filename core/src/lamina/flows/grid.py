"""Task grids: the chunks a flow cuts its region into, on the destination's chunk grid.

Every task of a flow writes one box of the destination that is a whole number of the
destination's storage chunks (``task_size``, a multiple of its chunk size), snapped to
its chunk grid, so writes are chunk-aligned and no two tasks touch the same chunk: they
never race, in any executor. Tasks at the region's edges are cropped to the region; a
region whose edges are not on the grid (nor on the dataset's end) is refused unless the
destination accepts non-aligned writes.
"""

from __future__ import annotations

from typing import Any

from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.chunker import VolumetricIndexChunker
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = ["DEFAULT_TASK_VOXELS", "default_task_size", "task_grid", "volumetric_backend"]

#: The default task covers about this many voxels per axis (a whole number of chunks).
DEFAULT_TASK_VOXELS = Vec3D(512, 512, 64)


def volumetric_backend(layer: Any, what: str) -> VolumetricBackend:
    """The volumetric backend of ``layer``, or a ``TypeError`` naming the argument."""
    backend = getattr(layer, "backend", None)
    if not isinstance(backend, VolumetricBackend):
        raise TypeError(
            f"{what} must be a volumetric layer (e.g. lamina.build_cv_layer(...)); got "
            f"{type(layer).__name__}"
        )
    return backend


def default_task_size(chunk_size: Vec3D[int]) -> Vec3D[int]:
    """A whole number of chunks per axis, about :data:`DEFAULT_TASK_VOXELS` voxels."""
    return Vec3D(
        *(c * max(1, t // c) for c, t in zip(chunk_size, DEFAULT_TASK_VOXELS, strict=True))
    )


def _task_size(backend: VolumetricBackend, resolution: Vec3D[float], given: Any) -> Vec3D[int]:
    chunk = backend.get_chunk_size(resolution)
    if given is None:
        return default_task_size(chunk)
    size = Vec3D.from_seq(given, "chunk_size").int()
    if not size > 0 or any(s % c for s, c in zip(size, chunk, strict=True)):
        raise ValueError(
            f"chunk_size (the size of one task) must be a positive multiple of the "
            f"destination's chunk size {chunk.pformat()} at {resolution.pformat()} nm; got "
            f"{size.pformat()}. Try {default_task_size(chunk).pformat()}"
        )
    return size


def task_grid(
    dst: VolumetricBackend,
    bbox: BBox3D,
    resolution: RawVec3D,
    task_size: RawVec3D | None = None,
) -> list[VolumetricIndex]:
    """The tasks covering ``bbox`` at ``resolution`` on ``dst``'s chunk grid (x fastest)."""
    res = Vec3D.from_seq(resolution, "resolution").float()
    region = VolumetricIndex(resolution=res, bbox=bbox)
    region.shape  # noqa: B018 - raises when bbox is not whole voxels at resolution
    if region.bbox.is_empty:
        raise ValueError(f"the region {bbox.pformat()} is empty")
    if not dst.is_within_bounds(region):
        bounds = dst.get_bounds(res)
        raise ValueError(
            f"the region {region.pformat()} at {res.pformat()} nm reaches outside "
            f"{dst.name} ({bounds.pformat()}); nothing was written. Give a region inside "
            f"it (--bbox {','.join(map(str, bounds.start))}:{','.join(map(str, bounds.stop))}"
            " covers all of it), or make the destination larger"
        )
    size = _task_size(dst, res, task_size)
    aligned = dst.get_chunk_aligned_index(region, "expand")
    chunker = VolumetricIndexChunker(chunk_size=size)
    tasks = [t.intersection(region) for t in chunker(aligned, mode="exact")]
    tasks = [t for t in tasks if not t.bbox.is_empty]
    if dst.enforce_chunk_aligned_writes:
        for t in tasks:
            if not dst.is_chunk_aligned(t):
                bounds = dst.get_bounds(res)
                expanded = aligned.intersection(bounds)
                raise ValueError(
                    f"the region {region.pformat()} at {res.pformat()} nm is not on the chunk "
                    f"grid of {dst.name} (voxel offset {dst.get_voxel_offset(res).pformat()}, "
                    f"chunk size {dst.get_chunk_size(res).pformat()}), so its edge tasks "
                    f"would write partial chunks. Use the aligned region "
                    f"{expanded.pformat()} (--bbox "
                    f"{','.join(map(str, expanded.start))}:{','.join(map(str, expanded.stop))})"
                )
    return tasks
