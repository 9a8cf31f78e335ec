"""``downsample``: add a resolution pyramid to a volume, one read per task (as Igneous).

The new scales are added to the volume first (``backend.add_resolutions``: stored, so
every worker sees them). Tasks follow the chunk grid of the *coarsest* new level; each
reads its region once at ``from_resolution`` and writes every level from it, each level
resampled from the one before it, so no level is read back. Every task's writes are
whole chunks of every level (checked before anything runs).
"""

from __future__ import annotations

from typing import Any, Literal, Unpack

import attrs

from lamina.flows.engine import RunSummary, run_chunks
from lamina.flows.grid import task_grid, volumetric_backend
from lamina.flows.options import RunOptions, check_executor_reaches, mode_for
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.interpolation import InterpolationMode
from lamina.volumetric.resample import resample

__all__ = ["DownsampleChunk", "downsample", "pyramid_resolutions"]


def pyramid_resolutions(
    from_resolution: RawVec3D, factor: RawVec3D, levels: int
) -> list[Vec3D[float]]:
    """``from_resolution * factor**k`` for ``k = 1 .. levels``."""
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be an int >= 1; got {levels!r}")
    base = Vec3D.from_seq(from_resolution, "from_resolution").float()
    f = Vec3D.from_seq(factor, "factor")
    if not all(float(v).is_integer() and v >= 1 for v in f) or f == Vec3D(1, 1, 1):
        raise ValueError(
            f"factor must be whole numbers >= 1 on every axis, not all 1 (e.g. 2,2,1); got "
            f"{f.pformat()}"
        )
    return [
        Vec3D(*(b * v**k for b, v in zip(base, f, strict=True))).float()
        for k in range(1, levels + 1)
    ]


@attrs.frozen
class DownsampleChunk:
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

    Args:
        layer: a volumetric layer whose backend can add scales (precomputed, HDF5,
            in-memory).
        from_resolution: the scale the pyramid is computed from; default: the finest.
        factor: the downsampling factor per level (x, y, z), whole numbers.
        levels: how many levels to add.
        mode: the resampling mode; default: the one the volume's type implies
            (``segmentation`` for labels, ``img`` otherwise).
        bbox: the region (nm) to compute; default: the whole volume.
        chunk_size: voxels of one task at the coarsest level, a multiple of its chunk
            size (default: one chunk there, i.e. ``factor**levels`` chunks per axis at
            ``from_resolution``).
        run: how it runs (:class:`lamina.flows.options.RunOptions`).
    """
    backend = volumetric_backend(layer, "layer")
    check_executor_reaches(run, backend)
    start = (
        backend.resolutions[0]
        if from_resolution is None
        else Vec3D.from_seq(from_resolution, "from_resolution").float()
    )
    wanted = pyramid_resolutions(start, factor, levels)
    extended = backend.add_resolutions(wanted)
    pyramid = attrs.evolve(layer, backend=extended)
    coarsest = wanted[-1]
    region = extended.get_bounds(coarsest).bbox if bbox is None else bbox
    size = extended.get_chunk_size(coarsest) if chunk_size is None else chunk_size
    tasks = task_grid(extended, region, coarsest, size)
    for task in tasks:
        for res in wanted[:-1]:
            level = VolumetricIndex(resolution=res, bbox=task.bbox).intersection(
                extended.get_bounds(res)
            )
            if extended.enforce_chunk_aligned_writes and not extended.is_chunk_aligned(level):
                extended.assert_idx_is_chunk_aligned(level)  # raises, describing the grid
    chosen: Literal["img", "segmentation"] | InterpolationMode = mode or mode_for(extended)
    operation = DownsampleChunk(pyramid, start, tuple(wanted), chosen)
    description = {
        "layer": extended.name,
        "from_resolution": list(start),
        "levels": [list(r) for r in wanted],
        "mode": chosen,
        "bbox": [list(region.start), list(region.end)],
        "chunk_size": list(Vec3D.from_seq(size)),
    }
    return run_chunks("downsample", operation, tasks, description, layers=(pyramid,), **run)
