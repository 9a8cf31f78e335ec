"""``VolumetricIndex``: a box in nm plus the resolution its voxels are counted at.

The standard index of every volumetric backend. Unlike the reference system's index it
is frozen and hashable (it can be a dict key or set member, and no layer can change a
user's index behind their back — derived indices are new objects), and it checks that
the box is a whole number of voxels **when it is built**, not on first use.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import numpy as np

from lamina.volumetric.geometry import (
    _AXES,
    BBox3D,
    PadLike,
    RawVec3D,
    Vec3D,
    _positive_res,
    _tuple_new,
    _voxel,
    _voxel_extent,
)

__all__ = ["VolumetricIndex"]

_ZERO3I: Vec3D[int] = Vec3D(0, 0, 0)
_EMPTY_SLICES: tuple[slice, slice, slice] = (slice(0, 0), slice(0, 0), slice(0, 0))


@attrs.frozen(slots=True, init=False)
class VolumetricIndex:
    """A region to read or write: ``bbox`` (nm) at ``resolution`` (nm per voxel).

    ``resolution`` may be given as any 3-sequence of positive numbers; it is stored as a
    float ``Vec3D``. ``start``, ``stop`` and ``shape`` are the voxel extent at
    ``resolution``, computed once when the index is built. A box that is not a whole
    number of voxels raises ``ValueError`` at construction unless
    ``allow_slice_rounding=True``; then the voxel extent is the smallest one covering the
    box (start floored, stop ceiled) while ``bbox`` stays exactly as given.

    Equality and hashing compare ``resolution``, ``bbox``, ``chunk_id`` and
    ``allow_slice_rounding``: the same region with another chunk id is a different index.
    Voxel-unit edits (``padded``, ``translated`` …) count voxels at ``resolution`` and keep
    ``resolution``, ``chunk_id`` and ``allow_slice_rounding``; they return new indices
    (``attrs.evolve`` works too).

    An index over :meth:`BBox3D.empty` (what :meth:`intersection` returns for disjoint
    indices) has ``is_empty`` True and ``shape`` (0, 0, 0); ``start``, ``stop`` and
    ``to_slices`` raise :class:`~lamina.volumetric.geometry.EmptyBBoxError`.
    """

    resolution: Vec3D[float]
    bbox: BBox3D
    chunk_id: int = 0
    allow_slice_rounding: bool = False
    _start: Vec3D[int] | None = attrs.field(init=False, default=None, eq=False, repr=False)
    _stop: Vec3D[int] | None = attrs.field(init=False, default=None, eq=False, repr=False)
    _shape: Vec3D[int] = attrs.field(init=False, default=_ZERO3I, eq=False, repr=False)

    def __init__(
        self,
        resolution: RawVec3D,
        bbox: BBox3D,
        chunk_id: int = 0,
        allow_slice_rounding: bool = False,
    ) -> None:
        res = _positive_res(resolution)
        box: Any = bbox
        if type(box) is not BBox3D and not isinstance(box, BBox3D):
            raise TypeError(f"bbox must be a BBox3D, got {box!r} ({type(box).__name__})")
        cid: Any = chunk_id
        if type(cid) is not int:
            if isinstance(cid, bool) or not hasattr(cid, "__index__"):
                raise TypeError(f"chunk_id must be an int, got {cid!r}")
            cid = cid.__index__()
        flag: Any = allow_slice_rounding
        if flag is not True and flag is not False:
            if not isinstance(flag, np.bool_):
                raise TypeError(f"allow_slice_rounding must be a bool, got {flag!r}")
            flag = bool(flag)
        _set_resolution(self, res)
        _set_bbox(self, box)
        _set_chunk_id(self, cid)
        _set_allow_slice_rounding(self, flag)
        if box.bounds[0][0] > box.bounds[0][1]:  # the empty box
            _set_start(self, None)
            _set_stop(self, None)
            _set_shape(self, _ZERO3I)
        else:
            start, stop, shape = _voxel_extent(box, res, flag)
            _set_start(self, start)
            _set_stop(self, stop)
            _set_shape(self, shape)

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_coords(
        cls,
        start: RawVec3D,
        end: RawVec3D,
        resolution: RawVec3D,
        chunk_id: int = 0,
        allow_slice_rounding: bool = False,
    ) -> VolumetricIndex:
        """The index from voxel ``start`` to voxel ``end`` at ``resolution``."""
        res = _positive_res(resolution)
        return cls(
            resolution=res,
            bbox=BBox3D.from_coords(start, end, res),
            chunk_id=chunk_id,
            allow_slice_rounding=allow_slice_rounding,
        )

    def _with_bbox(self, bbox: BBox3D) -> VolumetricIndex:
        return VolumetricIndex(self.resolution, bbox, self.chunk_id, self.allow_slice_rounding)

    def with_bbox(self, bbox: BBox3D) -> VolumetricIndex:
        """A copy over ``bbox`` (same resolution, chunk id and rounding flag)."""
        return self._with_bbox(bbox)

    def with_resolution(self, resolution: RawVec3D) -> VolumetricIndex:
        """A copy counting voxels at ``resolution`` (same box, so the voxel shape changes)."""
        return VolumetricIndex(resolution, self.bbox, self.chunk_id, self.allow_slice_rounding)

    def with_chunk_id(self, chunk_id: int) -> VolumetricIndex:
        """A copy with another ``chunk_id``."""
        return VolumetricIndex(self.resolution, self.bbox, chunk_id, self.allow_slice_rounding)

    def with_allow_slice_rounding(self, allow_slice_rounding: bool) -> VolumetricIndex:
        """A copy with another rounding flag (validated again)."""
        return VolumetricIndex(self.resolution, self.bbox, self.chunk_id, allow_slice_rounding)

    # -- voxel extent -------------------------------------------------------------------------

    @property
    def is_empty(self) -> bool:
        """True for an index over the empty box."""
        return self._start is None

    @property
    def start(self) -> Vec3D[int]:
        """First voxel (inclusive) at ``resolution``."""
        if self._start is None:
            self.bbox._need_region("take the start of")
        return self._start  # type: ignore[return-value]

    @property
    def stop(self) -> Vec3D[int]:
        """Last voxel (exclusive) at ``resolution``."""
        if self._stop is None:
            self.bbox._need_region("take the stop of")
        return self._stop  # type: ignore[return-value]

    @property
    def shape(self) -> Vec3D[int]:
        """Voxel counts along x, y, z (zero for an empty index)."""
        return self._shape

    def to_slices(self) -> tuple[slice, slice, slice]:
        """Voxel slices (x, y, z) at ``resolution``."""
        s, e = self.start, self.stop
        return (slice(s[0], e[0]), slice(s[1], e[1]), slice(s[2], e[2]))

    def get_size(self) -> float:
        """Volume of the box in nm³."""
        return self.bbox.get_size()

    def pformat(self, resolution: RawVec3D | None = None) -> str:
        """``"(x0, y0, z0) - (x1, y1, z1)"`` in voxels at ``resolution`` (default: own)."""
        return self.bbox.pformat(self.resolution if resolution is None else resolution)

    # -- voxel-unit edits ------------------------------------------------------------------------

    def padded(self, pad: PadLike) -> VolumetricIndex:
        """Grown by ``pad`` voxels: a number, 3 numbers or 3 ``(before, after)`` pairs."""
        return self._with_bbox(self.bbox.padded(pad, self.resolution))

    def cropped(self, crop: PadLike) -> VolumetricIndex:
        """Shrunk by ``crop`` voxels (same forms as :meth:`padded`)."""
        return self._with_bbox(self.bbox.cropped(crop, self.resolution))

    def translated(self, offset: RawVec3D) -> VolumetricIndex:
        """Moved by ``offset`` voxels."""
        return self._with_bbox(self.bbox.translated(offset, self.resolution))

    def translated_start(self, offset: RawVec3D) -> VolumetricIndex:
        """Start moved by ``offset`` voxels; stop unchanged."""
        return self._with_bbox(self.bbox.translated_start(offset, self.resolution))

    def translated_end(self, offset: RawVec3D) -> VolumetricIndex:
        """Stop moved by ``offset`` voxels; start unchanged."""
        return self._with_bbox(self.bbox.translated_end(offset, self.resolution))

    def transposed(self, dim0: int, dim1: int, local: bool = False) -> VolumetricIndex:
        """Dimensions ``dim0`` and ``dim1`` swapped, in the box *and* the resolution, so
        the voxel extent is transposed too (see :meth:`BBox3D.transposed` for ``local``)."""
        bbox = self.bbox.transposed(dim0, dim1, local)
        res = list(self.resolution)
        res[dim0], res[dim1] = res[dim1], res[dim0]
        return VolumetricIndex(res, bbox, self.chunk_id, self.allow_slice_rounding)

    def split(self, num_splits: RawVec3D) -> list[VolumetricIndex]:
        """Split evenly into ``num_splits`` (x, y, z) parts, x varying fastest.

        Each voxel count must divide evenly unless ``allow_slice_rounding`` is set.
        """
        n = Vec3D.from_seq(num_splits, "num_splits")
        if not self.allow_slice_rounding and not self.is_empty:
            for d in range(3):
                if isinstance(n[d], int) and n[d] >= 1 and self.shape[d] % n[d]:
                    raise ValueError(
                        f"cannot split {self.shape[d]} voxels along {_AXES[d]} into {n[d]} "
                        "equal whole-voxel parts; pass allow_slice_rounding=True to allow "
                        "fractional parts"
                    )
        return [self._with_bbox(b) for b in self.bbox.split(n)]

    def snapped(
        self,
        grid_offset: RawVec3D,
        grid_size: RawVec3D,
        mode: Literal["shrink", "expand", "floor"],
    ) -> VolumetricIndex:
        """Snapped to the voxel grid ``grid_offset + k * grid_size`` (see
        :meth:`BBox3D.snapped`); offsets and sizes in voxels at ``resolution``."""
        res = self.resolution
        off = Vec3D.from_seq(grid_offset, "grid_offset") * res
        size = Vec3D.from_seq(grid_size, "grid_size") * res
        return self._with_bbox(self.bbox.snapped(off, size, mode))

    def __truediv__(self, other: RawVec3D | float) -> VolumetricIndex:
        """The box divided by ``other`` (resolution unchanged)."""
        return self._with_bbox(self.bbox / other)

    def __mul__(self, other: RawVec3D | float) -> VolumetricIndex:
        """The box multiplied by ``other`` (resolution unchanged)."""
        return self._with_bbox(self.bbox * other)

    # -- set operations ------------------------------------------------------------------------

    def intersects(self, other: VolumetricIndex) -> bool:
        """True when the boxes share volume (resolutions are not compared)."""
        return self.bbox.intersects(other.bbox)

    def intersection(self, other: VolumetricIndex) -> VolumetricIndex:
        """The overlap, at ``self.resolution`` (keeping chunk id and rounding flag); an
        empty index when there is none. Raises ``ValueError`` when the overlap is not whole
        voxels at ``self.resolution`` and rounding is not allowed."""
        return self._with_bbox(self.bbox.intersection(other.bbox))

    def supremum(self, other: VolumetricIndex) -> VolumetricIndex:
        """The smallest index containing both, at ``self.resolution``."""
        return self._with_bbox(self.bbox.supremum(other.bbox))

    def contained_in(self, other: VolumetricIndex) -> bool:
        """True when the box lies inside ``other``'s box."""
        return self.bbox.contained_in(other.bbox)

    def aligned(self, other: VolumetricIndex) -> tuple[bool, bool, bool, bool, bool, bool]:
        """Which faces coincide with ``other``'s (see :meth:`BBox3D.aligned`)."""
        return self.bbox.aligned(other.bbox)

    def contains(self, point: RawVec3D) -> bool:
        """True when voxel ``point`` (at ``resolution``) is inside (half-open)."""
        return self.bbox.contains(point, self.resolution)

    def line_intersects(self, p1: RawVec3D, p2: RawVec3D) -> bool:
        """True when the segment between voxel points ``p1`` and ``p2`` meets the box."""
        return self.bbox.line_intersects(p1, p2, self.resolution)

    def get_intersection_and_subindex(
        self, large: VolumetricIndex
    ) -> tuple[VolumetricIndex, tuple[slice, slice, slice]]:
        """The overlap with ``large`` and where it sits inside ``large``.

        Returns ``(intersection, slices)``: ``intersection`` is at ``self.resolution`` and
        ``slices`` locate it in an array covering ``large``'s box sampled at
        ``self.resolution`` — the offset is measured in nm and converted at
        ``self.resolution``, so it is right when the two resolutions differ. When the boxes
        do not overlap the intersection is empty and the slices are ``0:0``.
        """
        inter = self.intersection(large)
        if inter.is_empty:
            return inter, _EMPTY_SLICES
        res = self.resolution
        b = large.bbox.bounds
        flag = self.allow_slice_rounding
        origin = [_voxel(b[d][0], res[d], d, False, flag, large.bbox) for d in range(3)]
        s, e = inter.start, inter.stop
        return inter, (
            slice(s[0] - origin[0], e[0] - origin[0]),
            slice(s[1] - origin[1], e[1] - origin[1]),
            slice(s[2] - origin[2], e[2] - origin[2]),
        )


# Slot setters used by __init__ (past the frozen __setattr__, without its overhead).
_set_resolution = VolumetricIndex.__dict__["resolution"].__set__
_set_bbox = VolumetricIndex.__dict__["bbox"].__set__
_set_chunk_id = VolumetricIndex.__dict__["chunk_id"].__set__
_set_allow_slice_rounding = VolumetricIndex.__dict__["allow_slice_rounding"].__set__
_set_start = VolumetricIndex.__dict__["_start"].__set__
_set_stop = VolumetricIndex.__dict__["_stop"].__set__
_set_shape = VolumetricIndex.__dict__["_shape"].__set__


def _index_with_extent(
    resolution: Vec3D[float],
    bbox: BBox3D,
    start: Vec3D[int],
    stop: Vec3D[int],
    allow_slice_rounding: bool,
) -> VolumetricIndex:
    """A ``VolumetricIndex`` whose voxel extent the caller has already computed exactly
    (the scheme's fast path for plain slices): no validation, no division."""
    idx = object.__new__(VolumetricIndex)
    _set_resolution(idx, resolution)
    _set_bbox(idx, bbox)
    _set_chunk_id(idx, 0)
    _set_allow_slice_rounding(idx, allow_slice_rounding)
    _set_start(idx, start)
    _set_stop(idx, stop)
    _set_shape(idx, _tuple_new(Vec3D, (stop[0] - start[0], stop[1] - start[1], stop[2] - start[2])))
    return idx
