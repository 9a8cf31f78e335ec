"""``downsample``: add a resolution pyramid to a volume, one read per task (as Igneous).

Every argument is checked first, against the geometry the new scales will have
(computed without writing: :func:`lamina.flows.checks.planned_scales`); only then are
the scales added to the volume (``backend.add_resolutions``: stored, so every worker
sees them), so a pyramid that fails to start leaves the volume as it was. Tasks follow
the write grid of the *coarsest* new level; each reads its region once at
``from_resolution`` and writes every level from it, each level resampled from the one
before it, so no level is read back. Every task's writes are whole chunks of every
level (checked before anything runs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Unpack

import attrs

from lamina.flows.checks import (
    FlowArgumentError,
    check_mode,
    check_region,
    check_resolution,
    check_run_options,
    check_writable,
    planned_scales,
)
from lamina.flows.engine import run_tasks
from lamina.flows.grid import task_grid, volumetric_backend
from lamina.flows.options import RunOptions, check_executor_reaches, mode_for
from lamina.flows.progress import RunSummary, StorageChunks
from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.interpolation import InterpolationMode
from lamina.volumetric.resample import resample

__all__ = ["DownsampleChunk", "DownsampleTask", "downsample", "pyramid_resolutions"]


def pyramid_resolutions(
    from_resolution: RawVec3D, factor: RawVec3D, levels: int
) -> list[Vec3D[float]]:
    """``from_resolution * factor**k`` for ``k = 1 .. levels``."""
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise FlowArgumentError(f"levels must be an int >= 1; got {levels!r}")
    try:
        base = Vec3D.from_seq(from_resolution, "from_resolution").float()
        f = Vec3D.from_seq(factor, "factor")
    except (TypeError, ValueError) as exc:
        raise FlowArgumentError(f"downsample: {exc}") from None
    if not all(float(v).is_integer() and v >= 1 for v in f) or f == Vec3D(1, 1, 1):
        raise FlowArgumentError(
            f"factor must be whole numbers >= 1 on every axis, not all 1 (e.g. 2,2,1); got "
            f"{f.pformat()}"
        )
    return [
        Vec3D(*(b * v**k for b, v in zip(base, f, strict=True))).float()
        for k in range(1, levels + 1)
    ]


@attrs.frozen
class DownsampleTask:
    """One pyramid task: read at ``from_resolution`` once, write every level."""

    layer: Any
    from_resolution: Vec3D[float]
    levels: tuple[Vec3D[float], ...]
    mode: InterpolationMode

    def __call__(self, idx: VolumetricIndex) -> int:
        data = self.layer[VolumetricIndex(resolution=self.from_resolution, bbox=idx.bbox)]
        previous, written = self.from_resolution, 0
        bounds = {res: self.layer.backend.get_bounds(res) for res in self.levels}
        for res in self.levels:
            factor = [p / r for p, r in zip(previous, res, strict=True)]
            data = resample(data, factor, self.mode, allow_shape_rounding=True)
            target = VolumetricIndex(resolution=res, bbox=idx.bbox).intersection(bounds[res])
            x, y, z = target.shape
            part = data[:, :x, :y, :z]
            self.layer[target] = part
            written += int(part.nbytes)
            previous = res
        return written


#: The old name of :class:`DownsampleTask` (the same class), kept for callers.
DownsampleChunk = DownsampleTask


def _default_task_size(
    grids: Mapping[Vec3D[float], VolumetricBackend], levels: Sequence[Vec3D[float]]
) -> Vec3D[int]:
    """One cell of the coarsest level's write grid, grown (as a whole number of them) to
    cover a whole cell of every finer level's write grid too (a sharded finer level)."""
    coarsest = levels[-1]
    size = list(grids[coarsest].get_write_grid_size(coarsest))
    for res in levels[:-1]:
        cell = grids[res].get_write_grid_size(res)
        for d in range(3):
            needed = math.ceil(cell[d] * res[d] / coarsest[d])
            size[d] = math.lcm(size[d], max(1, needed))
    return Vec3D(*size)


def _pyramid_tasks(
    grids: Mapping[Vec3D[float], VolumetricBackend],
    levels: Sequence[Vec3D[float]],
    bbox: BBox3D | None,
    chunk_size: RawVec3D | None,
) -> tuple[list[VolumetricIndex], BBox3D, Vec3D[int]]:
    """The tasks of a pyramid (on the coarsest level's write grid), its region and task
    size, checking that no two tasks write one cell of any level's write grid (they
    would race, a read-modify-write against a read-modify-write) and, where aligned
    writes are enforced, that every task writes whole cells. ``grids`` gives, per level,
    the backend whose geometry the level has (or will have:
    :func:`lamina.flows.checks.planned_scales`)."""
    coarsest = levels[-1]
    top = grids[coarsest]
    region = top.get_bounds(coarsest).bbox if bbox is None else bbox
    size = Vec3D.from_seq(
        _default_task_size(grids, levels) if chunk_size is None else chunk_size, "chunk_size"
    ).int()
    tasks = task_grid(top, region, coarsest, size)
    for task in tasks:
        for res in levels[:-1]:
            grid = grids[res]
            bounds = grid.get_bounds(res)
            level = VolumetricIndex(resolution=res, bbox=task.bbox).intersection(bounds)
            if grid.enforce_chunk_aligned_writes and not grid.is_write_aligned(level):
                try:
                    grid.assert_idx_is_write_aligned(level)  # describes the grid
                except ValueError as exc:
                    raise FlowArgumentError(
                        f"downsample: the task {task.pformat()} at {coarsest.pformat()} nm "
                        f"writes part of a chunk of level {res.pformat()} nm: {exc}"
                    ) from None
            # the cells this task touches, inside the region: no other task's
            cells = grid.get_write_aligned_index(level, "expand").intersection(bounds)
            inside = VolumetricIndex(resolution=res, bbox=region).intersection(cells)
            if inside.bbox != level.bbox:
                raise FlowArgumentError(
                    f"downsample: the task {task.pformat()} at {coarsest.pformat()} nm "
                    f"shares cells of level {res.pformat()} nm's write grid "
                    f"({grid.describe_write_grid(res)}) with other tasks, which would "
                    "write them at once and lose each other's voxels. Give a chunk_size "
                    f"that is a multiple of {_default_task_size(grids, levels).pformat()}"
                )
    return tasks, region, size


def downsample(
    layer: Any,
    from_resolution: RawVec3D | None = None,
    factor: RawVec3D = (2, 2, 1),
    levels: int = 3,
    mode: InterpolationMode | None = None,
    bbox: BBox3D | None = None,
    chunk_size: RawVec3D | None = None,
    **run: Unpack[RunOptions],
) -> RunSummary:
    """Add ``levels`` scales of ``factor`` each to ``layer``'s volume, from ``from_resolution``.

    Every argument is checked — against the geometry the new scales will have — before
    the scales are added: a pyramid that fails to start leaves the volume as it was.

    Args:
        layer: a writable volumetric layer whose backend can add scales (precomputed,
            HDF5, in-memory).
        from_resolution: the scale the pyramid is computed from, one of the volume's;
            default: the finest.
        factor: the downsampling factor per level (x, y, z), whole numbers.
        levels: how many levels to add.
        mode: the resampling mode; default: the one the volume's type implies
            (``segmentation`` for labels, ``img`` otherwise).
        bbox: the region (nm) to compute; default: the whole volume.
        chunk_size: voxels of one task at the coarsest level, a multiple of its write
            grid (default: one cell of it, i.e. ``factor**levels`` chunks per axis at
            ``from_resolution``).
        run: how it runs (:class:`lamina.flows.options.RunOptions`).
    """
    check_run_options("downsample", run, downsample)
    backend = volumetric_backend(layer, "layer")
    if type(backend).add_resolutions is VolumetricBackend.add_resolutions:
        backend.add_resolutions(())  # the base class's: says this backend cannot add scales
    check_executor_reaches(run, backend)
    check_writable("downsample", layer, "layer")
    start = (
        backend.resolutions[0]
        if from_resolution is None
        else check_resolution(backend, from_resolution, "from_resolution", "downsample")
    )
    wanted = pyramid_resolutions(start, factor, levels)
    check_mode("downsample", mode, backend.num_channels)
    check_region("downsample", bbox)
    _pyramid_tasks(planned_scales(backend, wanted), wanted, bbox, chunk_size)
    # every argument is good: only now is the volume changed (if it lacks a level)
    new = [r for r in wanted if r not in backend.resolutions]
    extended = backend.add_resolutions(wanted) if new else backend
    pyramid = attrs.evolve(layer, backend=extended)
    tasks, region, size = _pyramid_tasks(dict.fromkeys(wanted, extended), wanted, bbox, chunk_size)
    chosen: Literal["img", "segmentation"] | InterpolationMode = mode or mode_for(extended)
    operation = DownsampleTask(pyramid, start, tuple(wanted), chosen)
    description = {
        "layer": extended.name,
        "from_resolution": list(start),
        "levels": [list(r) for r in wanted],
        "mode": chosen,
        "bbox": [list(region.start), list(region.end)],
        "chunk_size": list(size),
    }
    return run_tasks(
        "downsample",
        operation,
        tasks,
        description,
        layers=(pyramid,),
        destinations=(pyramid,),
        chunks_per_task=StorageChunks(extended, tuple(wanted)),
        **run,
    )
