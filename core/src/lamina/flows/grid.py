"""Task grids: the tasks a flow cuts its region into, on the destination's write grid.

Every task of a flow writes one box of the destination that is a whole number of cells
of the destination's write grid (``task_size``, a multiple of the write grid's size: its
storage chunk, or the shard of a sharded scale), snapped to that grid, so writes are
aligned and no two tasks touch the same chunk or shard: they never race, in any
executor. Tasks at the region's edges are cropped to the region; a
region whose edges are not on the grid (nor on the dataset's end) is refused unless the
destination accepts non-aligned writes.
"""

from __future__ import annotations

import math
from typing import Any

from lamina.flows.checks import FlowArgumentError, check_region
from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.chunker import VolumetricIndexChunker
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = [
    "DEFAULT_TASK_VOXELS",
    "default_task_size",
    "region_inside",
    "task_grid",
    "volumetric_backend",
]

#: A task is held in memory whole: larger ones are refused before anything runs (a
#: destination whose write grid is its whole dataset, a murmurhash3-sharded volume).
MAX_TASK_BYTES = 8 << 30

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
    """A whole number of ``chunk_size`` cells per axis, about :data:`DEFAULT_TASK_VOXELS`
    voxels (at least one cell)."""
    return Vec3D(
        *(c * max(1, t // c) for c, t in zip(chunk_size, DEFAULT_TASK_VOXELS, strict=True))
    )


def _task_size(backend: VolumetricBackend, resolution: Vec3D[float], given: Any) -> Vec3D[int]:
    cell = backend.get_write_grid_size(resolution)
    if given is None:
        return default_task_size(cell)
    size = Vec3D.from_seq(given, "chunk_size").int()
    if not size > 0 or any(s % c for s, c in zip(size, cell, strict=True)):
        raise FlowArgumentError(
            f"chunk_size (the size of one task) must be a positive multiple of the "
            f"destination's write grid ({backend.describe_write_grid(resolution)}) at "
            f"{resolution.pformat()} nm; got {size.pformat()}. Try "
            f"{default_task_size(cell).pformat()}"
        )
    return size


def region_inside(
    dst: VolumetricBackend, bbox: BBox3D, resolution: Vec3D[float]
) -> VolumetricIndex:
    """``bbox`` at ``resolution`` as an index, checked to be whole voxels inside ``dst``
    (a :class:`~lamina.flows.checks.FlowArgumentError` otherwise)."""
    check_region("task_grid", bbox, "the region")
    region = VolumetricIndex(resolution=resolution, bbox=bbox)
    region.shape  # noqa: B018 - raises when bbox is not whole voxels at resolution
    if not dst.is_within_bounds(region):
        bounds = dst.get_bounds(resolution)
        raise FlowArgumentError(
            f"the region {region.pformat()} at {resolution.pformat()} nm reaches outside "
            f"{dst.name} ({bounds.pformat()}); nothing was written. Give a region inside "
            f"it (--bbox {','.join(map(str, bounds.start))}:{','.join(map(str, bounds.stop))}"
            " covers all of it), or make the destination larger"
        )
    return region


def task_grid(
    dst: VolumetricBackend,
    bbox: BBox3D,
    resolution: RawVec3D,
    task_size: RawVec3D | None = None,
) -> list[VolumetricIndex]:
    """The tasks covering ``bbox`` at ``resolution`` on ``dst``'s write grid (x fastest).

    Computed without reading or writing anything, so a flow calls it before it changes
    anything; ``dst`` may stand for a volume not created yet
    (:func:`lamina.flows.checks.backend_like`). An empty region, one reaching outside
    ``dst``, a ``task_size`` off the write grid or a region off the grid (where aligned
    writes are enforced) is a :class:`~lamina.flows.checks.FlowArgumentError`.
    """
    res = Vec3D.from_seq(resolution, "resolution").float()
    region = region_inside(dst, bbox, res)
    size = _task_size(dst, res, task_size)
    task_bytes = math.prod(size) * dst.num_channels * dst.dtype.itemsize
    if task_bytes > MAX_TASK_BYTES:
        raise FlowArgumentError(
            f"one task of {size.pformat()} voxels at {res.pformat()} nm would hold "
            f"{task_bytes / 2**30:.1f} GiB in memory (at most {MAX_TASK_BYTES / 2**30:.0f} "
            f"GiB): {dst.name}'s write grid is {dst.describe_write_grid(res)}. Give a smaller "
            "chunk_size (--chunk-size) that is a multiple of the write grid, or write into a "
            "volume whose write grid is smaller (unsharded, or identity-hashed shards)"
        )
    aligned = dst.get_write_aligned_index(region, "expand")
    chunker = VolumetricIndexChunker(chunk_size=size)
    tasks = [t.intersection(region) for t in chunker(aligned, mode="exact")]
    tasks = [t for t in tasks if not t.bbox.is_empty]
    if dst.enforce_chunk_aligned_writes:
        for t in tasks:
            if not dst.is_write_aligned(t):
                bounds = dst.get_bounds(res)
                expanded = aligned.intersection(bounds)
                raise FlowArgumentError(
                    f"the region {region.pformat()} at {res.pformat()} nm is not on the write "
                    f"grid of {dst.name} (voxel offset {dst.get_voxel_offset(res).pformat()}, "
                    f"{dst.describe_write_grid(res)}), so its edge tasks would write partial "
                    f"chunks or shards. Use the aligned region "
                    f"{expanded.pformat()} (--bbox "
                    f"{','.join(map(str, expanded.start))}:{','.join(map(str, expanded.stop))})"
                )
    return tasks
