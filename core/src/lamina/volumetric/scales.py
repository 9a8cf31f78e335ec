"""Per-resolution geometry of a volume: voxel offset, chunk size and dataset size.

Shared by every backend that creates volumes (in-memory, precomputed, HDF5): a volume
is described by a box in nm and a list of resolutions, and each resolution's voxel
extent is the smallest whole-voxel box covering it. Offsets within 1e-5 voxel of an
integer count as that integer (so 2.999999 is 3, not 2 as the reference truncated) and the size
reaches the voxel holding the box's end, so no part of the box falls outside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs

from lamina.volumetric.converters import to_int_vec3
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D

__all__ = [
    "ScaleGeometry",
    "scale_geometry",
    "scales_from_bbox",
    "sorted_resolutions",
]

_EPS = 1e-5


def _floor(v: float) -> int:
    r = round(v)
    return int(r) if abs(v - r) < _EPS else math.floor(v)


def _ceil(v: float) -> int:
    r = round(v)
    return int(r) if abs(v - r) < _EPS else math.ceil(v)


@attrs.frozen
class ScaleGeometry:
    """One resolution's extent and chunking, in voxels at that resolution."""

    voxel_offset: Vec3D[int] = attrs.field(converter=to_int_vec3)
    chunk_size: Vec3D[int] = attrs.field(converter=to_int_vec3)
    dataset_size: Vec3D[int] = attrs.field(converter=to_int_vec3)

    def __attrs_post_init__(self) -> None:
        if not self.chunk_size > 0:
            raise ValueError(f"chunk_size must be positive; got {self.chunk_size.pformat()}")
        if not self.dataset_size >= 0:
            raise ValueError(f"dataset_size must be >= 0; got {self.dataset_size.pformat()}")

    @property
    def voxel_end(self) -> Vec3D[int]:
        return self.voxel_offset + self.dataset_size


def scale_geometry(bbox: BBox3D, resolution: RawVec3D, chunk_size: RawVec3D) -> ScaleGeometry:
    """The whole-voxel extent covering ``bbox`` at ``resolution``: start floored, end ceiled."""
    res = Vec3D.from_seq(resolution, "resolution").float()
    start = [_floor(bbox.start[d] / res[d]) for d in range(3)]
    end = [_ceil(bbox.end[d] / res[d]) for d in range(3)]
    return ScaleGeometry(
        voxel_offset=start,
        chunk_size=chunk_size,
        dataset_size=[end[d] - start[d] for d in range(3)],
    )


def sorted_resolutions(resolutions: Iterable[RawVec3D]) -> tuple[Vec3D[float], ...]:
    """Resolutions as float vectors, finest (smallest voxel volume) first, duplicates dropped."""
    unique = {Vec3D.from_seq(r, "resolution").float() for r in resolutions}
    return tuple(sorted(unique, key=lambda r: (r[0] * r[1] * r[2], tuple(r))))


def scales_from_bbox(
    bbox: BBox3D, resolutions: Iterable[RawVec3D], chunk_size: RawVec3D
) -> dict[Vec3D[float], ScaleGeometry]:
    """One :class:`ScaleGeometry` per resolution, finest first, all covering ``bbox``."""
    ordered = sorted_resolutions(resolutions)
    if not ordered:
        raise ValueError("at least one resolution is needed")
    return {res: scale_geometry(bbox, res, chunk_size) for res in ordered}


def bbox_of(scales: Mapping[Vec3D[float], ScaleGeometry]) -> BBox3D:
    """The nm box of the finest scale."""
    res, geo = next(iter(scales.items()))
    return BBox3D.from_coords(geo.voxel_offset, geo.voxel_end, res)
