"""``copy``: a region of one volume into another, chunk by chunk.

The destination may differ in format, chunking, encoding and resolution: with a coarser
``dst_resolution`` each task reads the source at ``resolution`` and resamples by the
whole-number factor between the two, in the mode the source's type implies (``img``
for images — block means — and ``segmentation`` for labels — the most frequent id).
"""

from __future__ import annotations

from typing import Any, Literal, Unpack

import attrs

from lamina.flows.engine import RunSummary, run_chunks
from lamina.flows.grid import task_grid, volumetric_backend
from lamina.flows.options import RunOptions, check_executor_reaches, mode_for
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.resample import resample

__all__ = ["CopyChunk", "copy"]


@attrs.frozen
class CopyChunk:
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


def _finest(backend: Any) -> Vec3D[float]:
    resolution: Vec3D[float] = backend.resolutions[0]
    return resolution


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

    Args:
        src, dst: volumetric layers (any plugin's); ``dst`` must have a scale at
            ``dst_resolution`` covering the region.
        bbox: the region (nm); default: the source's bounds at ``resolution``.
        resolution: where the source is read; default: its finest scale.
        dst_resolution: where the destination is written; default ``resolution``; a
            coarser one must be a whole-number multiple of it on every axis.
        chunk_size: voxels of one task at ``dst_resolution``: a multiple of the
            destination's chunk size (default: about 512 x 512 x 64 voxels of chunks).
        run: ``executor``, ``workers``, ``resume``, ``scheduler``, ``retries``,
            ``progress``, ``journal_dir`` (see :class:`lamina.flows.options.RunOptions`).

    Returns the run's :class:`~lamina.flows.engine.RunSummary`.
    """
    src_backend = volumetric_backend(src, "src")
    dst_backend = volumetric_backend(dst, "dst")
    check_executor_reaches(run, dst_backend)
    res = (
        _finest(src_backend)
        if resolution is None
        else Vec3D.from_seq(resolution, "resolution").float()
    )
    dst_res = res if dst_resolution is None else Vec3D.from_seq(dst_resolution).float()
    for axis, (r, d) in enumerate(zip(res, dst_res, strict=True)):
        ratio = d / r
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"dst_resolution {dst_res.pformat()} must be resolution {res.pformat()} times "
                f"a whole number on every axis (axis {'xyz'[axis]}: {d} / {r} = {ratio:g}); "
                "copies downsample, they do not upsample"
            )
    if bbox is None:
        bbox = src_backend.get_bounds(res).bbox
    tasks = task_grid(dst_backend, bbox, dst_res, chunk_size)
    operation = CopyChunk(src, dst, res, mode_for(src_backend))
    description = {
        "src": src_backend.name,
        "dst": dst_backend.name,
        "bbox": [list(bbox.start), list(bbox.end)],
        "resolution": list(res),
        "dst_resolution": list(dst_res),
        "chunk_size": None if chunk_size is None else list(chunk_size),
    }
    return run_chunks("copy", operation, tasks, description, layers=(src, dst), **run)
