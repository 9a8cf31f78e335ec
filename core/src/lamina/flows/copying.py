"""``copy``: a region of one volume into another, task by task.

The destination may differ in format, chunking, encoding and resolution: with a coarser
``dst_resolution`` each task reads the source at ``resolution`` and resamples by the
whole-number factor between the two, in the mode the source's type implies (``img``
for images — block means — and ``segmentation`` for labels — the most frequent id).
Every argument is checked before anything is written (:func:`plan_copy`).
"""

from __future__ import annotations

from typing import Any, Literal, Unpack

import attrs

from lamina.flows.checks import (
    FlowArgumentError,
    check_dtypes,
    check_region,
    check_resolution,
    check_run_options,
    check_writable,
)
from lamina.flows.engine import run_tasks
from lamina.flows.grid import task_grid, volumetric_backend
from lamina.flows.options import RunOptions, check_executor_reaches, mode_for
from lamina.flows.progress import RunSummary, StorageChunks
from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.resample import resample

__all__ = ["CopyChunk", "CopyPlan", "CopyTask", "copy", "plan_copy"]


@attrs.frozen
class CopyTask:
    """One copy task: ``dst[idx] = src`` at ``read_resolution``, resampled to ``idx``'s."""

    src: Any
    dst: Any
    read_resolution: Vec3D[float]
    mode: Literal["img", "segmentation"]

    def __call__(self, idx: VolumetricIndex) -> int:
        data = self.src[VolumetricIndex(resolution=self.read_resolution, bbox=idx.bbox)]
        if self.read_resolution != idx.resolution:
            factor = [r / d for r, d in zip(self.read_resolution, idx.resolution, strict=True)]
            data = resample(data, factor, self.mode)
        self.dst[idx] = data
        return int(data.nbytes)


#: The old name of :class:`CopyTask` (the same class), kept for callers.
CopyChunk = CopyTask


@attrs.frozen
class CopyPlan:
    """What a copy will do, computed by :func:`plan_copy` before anything is written."""

    tasks: list[VolumetricIndex]
    resolution: Vec3D[float]
    dst_resolution: Vec3D[float]
    bbox: BBox3D
    mode: Literal["img", "segmentation"]


def plan_copy(
    src: Any,
    dst_backend: VolumetricBackend,
    bbox: BBox3D | None = None,
    resolution: RawVec3D | None = None,
    dst_resolution: RawVec3D | None = None,
    chunk_size: RawVec3D | None = None,
    run: RunOptions | None = None,
) -> CopyPlan:
    """Every check :func:`copy` makes, and its tasks, reading and writing nothing.

    ``dst_backend`` is the destination's backend or, for a destination not created yet,
    the geometry it will have (:func:`lamina.flows.checks.backend_like`): ``lamina copy``
    checks a new destination this way before creating it, so a bad argument leaves no
    volume behind.
    """
    run = run or {}
    check_run_options("copy", run, copy)
    src_backend = volumetric_backend(src, "src")
    check_executor_reaches(run, dst_backend)
    res = (
        src_backend.resolutions[0]
        if resolution is None
        else check_resolution(src_backend, resolution, "resolution", "copy", layer=src)
    )
    dst_res = res if dst_resolution is None else Vec3D.from_seq(dst_resolution).float()
    for axis, (r, d) in enumerate(zip(res, dst_res, strict=True)):
        ratio = d / r
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise FlowArgumentError(
                f"dst_resolution {dst_res.pformat()} must be resolution {res.pformat()} times "
                f"a whole number on every axis (axis {'xyz'[axis]}: {d} / {r} = {ratio:g}); "
                "copies downsample, they do not upsample"
            )
    check_resolution(dst_backend, dst_res, "dst_resolution", "copy")
    if src_backend.name == dst_backend.name and res == dst_res:
        raise FlowArgumentError(
            f"copy: the source and the destination are the same volume ({src_backend.name}) "
            f"at {res.pformat()} nm: a copy onto itself would read what it writes. Copy "
            "into another path"
        )
    check_dtypes("copy", src_backend, dst_backend)
    check_region("copy", bbox)
    region = src_backend.get_bounds(res).bbox if bbox is None else bbox
    tasks = task_grid(dst_backend, region, dst_res, chunk_size)
    return CopyPlan(tasks, res, dst_res, region, mode_for(src_backend))


def copy(
    src: Any,
    dst: Any,
    bbox: BBox3D | None = None,
    resolution: RawVec3D | None = None,
    dst_resolution: RawVec3D | None = None,
    chunk_size: RawVec3D | None = None,
    **run: Unpack[RunOptions],
) -> RunSummary:
    """Copy ``bbox`` of ``src`` at ``resolution`` into ``dst`` at ``dst_resolution``.

    Every argument is checked before anything is written (:func:`plan_copy`): a copy
    that fails to start changes nothing.

    Args:
        src, dst: volumetric layers (any plugin's); ``dst`` must have a scale at
            ``dst_resolution`` covering the region, and a dtype that holds every value
            of ``src``'s (``np.can_cast(src, dst, "safe")``).
        bbox: the region (nm); default: the source's bounds at ``resolution``.
        resolution: where the source is read, one of its scales; default: its finest.
        dst_resolution: where the destination is written; default ``resolution``; a
            coarser one must be a whole-number multiple of it on every axis.
        chunk_size: voxels of one task at ``dst_resolution``: a multiple of the
            destination's write grid (default: about 512 x 512 x 64 voxels of chunks).
        run: ``executor``, ``workers``, ``resume``, ``scheduler``, ``retries``,
            ``progress``, ``journal_dir``, ``run_id`` (see
            :class:`lamina.flows.options.RunOptions`).

    Returns the run's :class:`~lamina.flows.progress.RunSummary`.
    """
    check_run_options("copy", run, copy)
    dst_backend = volumetric_backend(dst, "dst")
    plan = plan_copy(src, dst_backend, bbox, resolution, dst_resolution, chunk_size, run)
    check_writable("copy", dst, "dst")
    src_backend = volumetric_backend(src, "src")
    operation = CopyTask(src, dst, plan.resolution, plan.mode)
    description = {
        "src": src_backend.name,
        "dst": dst_backend.name,
        "bbox": [list(plan.bbox.start), list(plan.bbox.end)],
        "resolution": list(plan.resolution),
        "dst_resolution": list(plan.dst_resolution),
        "chunk_size": None if chunk_size is None else [int(v) for v in chunk_size],
    }
    return run_tasks(
        "copy",
        operation,
        plan.tasks,
        description,
        layers=(src, dst),
        destinations=(dst,),
        chunks_per_task=StorageChunks(dst_backend, (plan.dst_resolution,)),
        **run,
    )
