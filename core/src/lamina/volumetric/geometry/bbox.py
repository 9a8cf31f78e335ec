"""The box: :class:`BBox3D`, an axis-aligned region with bounds in nm, and the empty box.

The empty box
-------------
``BBox3D.intersection`` of boxes that do not overlap returns :meth:`BBox3D.empty`, one
canonical value whose bounds are ``((inf, -inf), (inf, -inf), (inf, -inf))`` — the
usual "empty interval" of interval arithmetic. It is never equal to a real box (not
even a zero-size box at the origin), ``.is_empty`` is ``True``, its ``shape`` is zero
and set operations treat it as the empty set (``supremum`` ignores it, it is
``contained_in`` every box, it ``contains`` no point). Everything that needs real
coordinates — ``start``, ``end``, ``to_slices``, ``padded``, ``translated``, scaling,
``snapped`` … — raises :class:`EmptyBBoxError` (a ``ValueError``), so a forgotten
"did they overlap?" check fails loudly instead of reading a bogus region.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Final, Literal

import attrs
import numpy as np
import numpy.typing as npt

from lamina.errors import LaminaError
from lamina.volumetric.geometry.args import PadLike, _dim, _pairs, _positive_res, _vec
from lamina.volumetric.geometry.bounds import (
    _EMPTY_BOUNDS,
    Bounds3D,
    _check_bounds,
    _convert_bounds,
    _slice_bounds,
    _voxel,
    _voxel_extent,
)
from lamina.volumetric.geometry.scalars import _DECIMALS, EPS, _fmt, _r10
from lamina.volumetric.geometry.vec import RawVec3D, Vec3D, _tuple_new

__all__ = ["BBox3D", "EmptyBBoxError"]

_UNIT_RES: Final[Vec3D[float]] = _tuple_new(Vec3D, (1.0, 1.0, 1.0))
_ZERO3F: Final[Vec3D[float]] = _tuple_new(Vec3D, (0.0, 0.0, 0.0))


class EmptyBBoxError(LaminaError, ValueError):
    """An empty box (the intersection of disjoint boxes) was used where a region is needed."""


def _convert_pprint_res(value: RawVec3D) -> Vec3D[float]:
    return _positive_res(value, "pprint_px_resolution")


def _make_bbox(bounds: Bounds3D, unit: str, pprint_res: Vec3D[float]) -> BBox3D:
    """Build a BBox3D from already rounded and checked bounds, skipping the converters."""
    box = _object_new(BBox3D)
    _set_bounds(box, bounds)
    _set_unit(box, unit)
    _set_pprint_res(box, pprint_res)
    return box


@attrs.frozen(slots=True, repr=False)
class BBox3D:
    """An axis-aligned box, half-open, with bounds in nanometres.

    ``bounds`` is ``((x0, x1), (y0, y1), (z0, z1))``: floats rounded to 10 decimals,
    start <= end in each dimension (else ``ValueError``). Voxel-unit operations take the
    resolution the voxels are counted at. ``pprint_px_resolution`` is only the default
    resolution of :meth:`pformat`; it is not part of equality or hashing. See the module
    docstring for the empty box returned by :meth:`intersection` of disjoint boxes.
    """

    bounds: Bounds3D = attrs.field(converter=_convert_bounds)
    unit: str = "nm"
    pprint_px_resolution: Vec3D[float] = attrs.field(
        default=_UNIT_RES, converter=_convert_pprint_res, eq=False
    )

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def empty(cls) -> BBox3D:
        """The empty box (what :meth:`intersection` returns for disjoint boxes)."""
        return _EMPTY

    @classmethod
    def from_slices(cls, slices: Sequence[slice], resolution: RawVec3D = (1, 1, 1)) -> BBox3D:
        """The box covered by voxel ``slices`` (x, y, z) at ``resolution`` (nm per voxel).

        Slices need both ends and no step other than 1; start <= stop.
        """
        res = _positive_res(resolution)
        sl: Any = slices
        ts = type(sl)
        if not ((ts is tuple or ts is list) and len(sl) == 3) and (
            isinstance(sl, slice | str) or not isinstance(sl, Sequence) or len(sl) != 3
        ):
            n = f"{len(sl)} items" if isinstance(sl, Sequence) else type(sl).__name__
            raise ValueError(f"expected 3 slices (x, y, z), got {sl!r} ({n})")
        return _make_bbox(
            (
                _slice_bounds(sl[0], res[0], 0),
                _slice_bounds(sl[1], res[1], 1),
                _slice_bounds(sl[2], res[2], 2),
            ),
            "nm",
            res,
        )

    @classmethod
    def from_coords(
        cls,
        start: RawVec3D | None = None,
        end: RawVec3D | None = None,
        resolution: RawVec3D = (1, 1, 1),
        *,
        start_coord: RawVec3D | None = None,
        end_coord: RawVec3D | None = None,
    ) -> BBox3D:
        """The box from voxel ``start`` to voxel ``end`` at ``resolution``
        (``start_coord`` and ``end_coord``: the reference system's names for them)."""
        first = start if start is not None else start_coord
        last = end if end is not None else end_coord
        twice = (start is not None and start_coord is not None) or (
            end is not None and end_coord is not None
        )
        if first is None or last is None or twice:
            raise TypeError(
                "BBox3D.from_coords takes start and end (or start_coord and end_coord, the "
                f"reference system's names), once each; got start={start!r}, end={end!r}, "
                f"start_coord={start_coord!r}, end_coord={end_coord!r}"
            )
        res = _positive_res(resolution)
        s = Vec3D.from_seq(first, "start") * res
        e = Vec3D.from_seq(last, "end") * res
        return cls(bounds=((s[0], e[0]), (s[1], e[1]), (s[2], e[2])), pprint_px_resolution=res)

    @classmethod
    def from_points(
        cls,
        points: Sequence[RawVec3D] | npt.NDArray[Any],
        resolution: RawVec3D,
        epsilon: float = 1e-4,
    ) -> BBox3D:
        """The smallest box holding voxel ``points``; ``epsilon`` voxels are added to the
        upper bound so that the points on the maximum are contained (half-open box)."""
        res = _positive_res(resolution)
        arr = np.asarray(points)
        if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0 or arr.dtype.kind not in "iuf":
            raise ValueError(
                f"points must be a non-empty N×3 collection of real numbers, got shape "
                f"{arr.shape} and dtype {arr.dtype}"
            )
        lo = Vec3D.from_seq(arr.min(axis=0)) * res
        hi = (Vec3D.from_seq(arr.max(axis=0)) + epsilon) * res
        return cls(
            bounds=((lo[0], hi[0]), (lo[1], hi[1]), (lo[2], hi[2])), pprint_px_resolution=res
        )

    def _derive(self, bounds: Sequence[tuple[float, float]]) -> BBox3D:
        """A box with new bounds (computed floats), keeping unit and pprint resolution."""
        (a, b), (c, d), (e, f) = bounds
        return _make_bbox(
            _check_bounds(((_r10(a), _r10(b)), (_r10(c), _r10(d)), (_r10(e), _r10(f)))),
            self.unit,
            self.pprint_px_resolution,
        )

    def _need_region(self, what: str) -> None:
        if self.bounds[0][0] > self.bounds[0][1]:
            raise EmptyBBoxError(
                f"cannot {what} the empty BBox3D (the intersection of boxes that do not "
                "overlap); check `.is_empty` before using it as a region"
            )

    # -- basic properties -------------------------------------------------------------------

    @property
    def is_empty(self) -> bool:
        """True only for :meth:`empty` (a zero-size real box is not empty)."""
        return self.bounds[0][0] > self.bounds[0][1]

    @property
    def start(self) -> Vec3D[float]:
        """Lower corner in nm."""
        self._need_region("take the start of")
        b = self.bounds
        return _tuple_new(Vec3D, (b[0][0], b[1][0], b[2][0]))

    @property
    def end(self) -> Vec3D[float]:
        """Upper corner (exclusive) in nm."""
        self._need_region("take the end of")
        b = self.bounds
        return _tuple_new(Vec3D, (b[0][1], b[1][1], b[2][1]))

    @property
    def shape(self) -> Vec3D[float]:
        """Extent in nm (zero for the empty box)."""
        if self.is_empty:
            return _ZERO3F
        b = self.bounds
        return _tuple_new(
            Vec3D,
            (
                _r10(b[0][1] - b[0][0]),
                _r10(b[1][1] - b[1][0]),
                _r10(b[2][1] - b[2][0]),
            ),
        )

    def get_size(self, resolution: RawVec3D | None = None) -> float:
        """Volume in nm³, or in voxels when ``resolution`` is given (0 for the empty box)."""
        sx, sy, sz = self.shape
        size = sx * sy * sz
        if resolution is not None:
            rx, ry, rz = _positive_res(resolution)
            size = size / (rx * ry * rz)
        return _r10(size)

    def __repr__(self) -> str:
        if self.is_empty:
            return "BBox3D.empty()"
        unit = "" if self.unit == "nm" else f", unit={self.unit!r}"
        (x0, x1), (y0, y1), (z0, z1) = self.bounds
        return (
            f"BBox3D(bounds=(({_fmt(x0)}, {_fmt(x1)}), ({_fmt(y0)}, {_fmt(y1)}), "
            f"({_fmt(z0)}, {_fmt(z1)})){unit})"
        )

    def pformat(self, resolution: RawVec3D | None = None) -> str:
        """``"(x0, y0, z0) - (x1, y1, z1)"`` in voxels at ``resolution`` (default
        ``pprint_px_resolution``), not rounded to whole voxels, for pasting into
        Neuroglancer; ``"<empty>"`` for the empty box."""
        if self.is_empty:
            return "<empty>"
        res = self.pprint_px_resolution if resolution is None else _positive_res(resolution)
        s = self.start / res
        e = self.end / res
        return f"{round(s, _DECIMALS).pformat()} - {round(e, _DECIMALS).pformat()}"

    # -- voxel conversion --------------------------------------------------------------------

    def get_slice(
        self,
        dim: int,
        resolution: RawVec3D | float,
        allow_slice_rounding: bool = False,
        round_to_int: bool = True,
    ) -> slice:
        """The voxel slice of dimension ``dim`` at ``resolution`` (a 3-vector or the
        resolution of that dimension).

        Not a whole number of voxels → ``ValueError`` unless ``allow_slice_rounding``
        (then start is floored and stop ceiled: the slice covers the box).
        ``round_to_int=False`` returns the raw float voxel coordinates instead.
        """
        d = _dim(dim)
        self._need_region("take slices of")
        r = _positive_res(_vec(resolution, "resolution"))[d]
        lo, hi = self.bounds[d]
        if not round_to_int:
            return slice(_r10(lo / r), _r10(hi / r))
        return slice(
            _voxel(lo, r, d, False, allow_slice_rounding, self),
            _voxel(hi, r, d, True, allow_slice_rounding, self),
        )

    def to_slices(
        self, resolution: RawVec3D, allow_slice_rounding: bool = False
    ) -> tuple[slice, slice, slice]:
        """Voxel slices (x, y, z) at ``resolution``; rounding as in :meth:`get_slice`."""
        self._need_region("take slices of")
        start, stop, _ = _voxel_extent(self, _positive_res(resolution), allow_slice_rounding)
        return (slice(start[0], stop[0]), slice(start[1], stop[1]), slice(start[2], stop[2]))

    def to_voxel_coords(
        self, resolution: RawVec3D, allow_slice_rounding: bool = False
    ) -> tuple[Vec3D[int], Vec3D[int]]:
        """Voxel ``(start, stop)`` at ``resolution``; rounding as in :meth:`get_slice`."""
        self._need_region("take voxel coordinates of")
        start, stop, _ = _voxel_extent(self, _positive_res(resolution), allow_slice_rounding)
        return start, stop

    # -- voxel-unit edits --------------------------------------------------------------------

    def padded(self, pad: PadLike, resolution: RawVec3D) -> BBox3D:
        """Grown by ``pad`` voxels at ``resolution``: a number, 3 numbers, or 3
        ``(before, after)`` pairs. Negative pads shrink."""
        self._need_region("pad")
        res = _positive_res(resolution)
        p = _pairs(pad, "pad")
        b = self.bounds
        return self._derive(
            [(b[d][0] - p[d][0] * res[d], b[d][1] + p[d][1] * res[d]) for d in range(3)]
        )

    def cropped(self, crop: PadLike, resolution: RawVec3D) -> BBox3D:
        """Shrunk by ``crop`` voxels at ``resolution`` (same forms as :meth:`padded`)."""
        self._need_region("crop")
        res = _positive_res(resolution)
        c = _pairs(crop, "crop")
        b = self.bounds
        return self._derive(
            [(b[d][0] + c[d][0] * res[d], b[d][1] - c[d][1] * res[d]) for d in range(3)]
        )

    def translated(self, offset: RawVec3D, resolution: RawVec3D) -> BBox3D:
        """Moved by ``offset`` voxels at ``resolution``."""
        self._need_region("translate")
        o = Vec3D.from_seq(offset, "offset") * _positive_res(resolution)
        b = self.bounds
        return self._derive([(b[d][0] + o[d], b[d][1] + o[d]) for d in range(3)])

    def translated_start(self, offset: RawVec3D, resolution: RawVec3D) -> BBox3D:
        """Start moved by ``offset`` voxels at ``resolution``; end unchanged."""
        self._need_region("translate")
        o = Vec3D.from_seq(offset, "offset") * _positive_res(resolution)
        b = self.bounds
        return self._derive([(b[d][0] + o[d], b[d][1]) for d in range(3)])

    def translated_end(self, offset: RawVec3D, resolution: RawVec3D) -> BBox3D:
        """End moved by ``offset`` voxels at ``resolution``; start unchanged."""
        self._need_region("translate")
        o = Vec3D.from_seq(offset, "offset") * _positive_res(resolution)
        b = self.bounds
        return self._derive([(b[d][0], b[d][1] + o[d]) for d in range(3)])

    def with_start(self, start: RawVec3D, resolution: RawVec3D) -> BBox3D:
        """Start set to voxel ``start`` at ``resolution``; end unchanged."""
        self._need_region("set the start of")
        s = Vec3D.from_seq(start, "start") * _positive_res(resolution)
        b = self.bounds
        return self._derive([(s[d], b[d][1]) for d in range(3)])

    def with_end(self, end: RawVec3D, resolution: RawVec3D) -> BBox3D:
        """End set to voxel ``end`` at ``resolution``; start unchanged."""
        self._need_region("set the end of")
        e = Vec3D.from_seq(end, "end") * _positive_res(resolution)
        b = self.bounds
        return self._derive([(b[d][0], e[d]) for d in range(3)])

    def split(self, num_splits: RawVec3D) -> list[BBox3D]:
        """Split evenly into ``num_splits`` (x, y, z) parts, x varying fastest."""
        self._need_region("split")
        n = Vec3D.from_seq(num_splits, "num_splits")
        if not all(isinstance(v, int) and v >= 1 for v in n):
            raise ValueError(f"num_splits must be 3 positive integers, got {n.pformat()}")
        b = self.bounds
        edges = [
            [b[d][0] + (b[d][1] - b[d][0]) * i / n[d] for i in range(n[d])] + [b[d][1]]
            for d in range(3)
        ]
        return [
            self._derive(
                (
                    (edges[0][i], edges[0][i + 1]),
                    (edges[1][j], edges[1][j + 1]),
                    (edges[2][k], edges[2][k + 1]),
                )
            )
            for k, j, i in itertools.product(range(n[2]), range(n[1]), range(n[0]))
        ]

    def transposed(self, dim0: int, dim1: int, local: bool = False) -> BBox3D:
        """Swap dimensions ``dim0`` and ``dim1``.

        ``local=False`` swaps the two coordinate ranges (a transpose of space);
        ``local=True`` keeps the start where it is and swaps only the extents.
        """
        self._need_region("transpose")
        d0, d1 = _dim(dim0, "dim0"), _dim(dim1, "dim1")
        b = list(self.bounds)
        if local:
            (s0, e0), (s1, e1) = b[d0], b[d1]
            b[d0], b[d1] = (s0, s0 + (e1 - s1)), (s1, s1 + (e0 - s0))
        else:
            b[d0], b[d1] = b[d1], b[d0]
        return self._derive(b)

    def snapped(
        self,
        grid_offset: RawVec3D,
        grid_size: RawVec3D,
        mode: Literal["shrink", "expand", "floor"],
    ) -> BBox3D:
        """Snap to the grid ``grid_offset + k * grid_size`` (all in nm).

        ``expand`` floors the start and ceils the end, ``shrink`` ceils the start and
        floors the end (whole grid cells only; none → the empty box), ``floor`` floors
        both. Coordinates within ``EPS`` nm of a grid line count as on it.
        """
        self._need_region("snap")
        if mode not in ("shrink", "expand", "floor"):
            raise ValueError(f"mode must be 'shrink', 'expand' or 'floor', got {mode!r}")
        off = Vec3D.from_seq(grid_offset, "grid_offset")
        size = Vec3D.from_seq(grid_size, "grid_size")
        if not size > 0:
            raise ValueError(f"grid_size must be > 0 in every dimension, got {size.pformat()}")

        def down(v: float, d: int) -> float:
            return float(off[d] + math.floor((v - off[d] + EPS) / size[d]) * size[d])

        def up(v: float, d: int) -> float:
            return float(off[d] + math.ceil((v - off[d] - EPS) / size[d]) * size[d])

        b = self.bounds
        if mode == "expand":
            nb = [(down(b[d][0], d), up(b[d][1], d)) for d in range(3)]
        elif mode == "floor":
            nb = [(down(b[d][0], d), down(b[d][1], d)) for d in range(3)]
        else:
            nb = [(up(b[d][0], d), down(b[d][1], d)) for d in range(3)]
            if any(lo > hi for lo, hi in nb):
                return _EMPTY
        return self._derive(nb)

    # -- scaling -------------------------------------------------------------------------------

    def __truediv__(self, other: RawVec3D | float) -> BBox3D:
        """Coordinates divided elementwise by a positive scalar or 3-vector."""
        self._need_region("scale")
        v = _vec(other, "divisor")
        if not v > 0:
            raise ValueError(f"a BBox3D can only be divided by positive values, got {other!r}")
        b = self.bounds
        return self._derive([(b[d][0] / v[d], b[d][1] / v[d]) for d in range(3)])

    def __mul__(self, other: RawVec3D | float) -> BBox3D:
        """Coordinates multiplied elementwise by a positive scalar or 3-vector."""
        self._need_region("scale")
        v = _vec(other, "factor")
        if not v > 0:
            raise ValueError(f"a BBox3D can only be multiplied by positive values, got {other!r}")
        b = self.bounds
        return self._derive([(b[d][0] * v[d], b[d][1] * v[d]) for d in range(3)])

    # -- set operations ---------------------------------------------------------------------------

    def _same_unit(self, other: BBox3D) -> None:
        if not isinstance(other, BBox3D):
            raise TypeError(f"expected a BBox3D, got {other!r} ({type(other).__name__})")
        if self.unit != other.unit:
            raise ValueError(f"BBox3D units differ: {self.unit!r} and {other.unit!r}")

    def intersects(self, other: BBox3D) -> bool:
        """True when the boxes share volume (touching faces do not count)."""
        self._same_unit(other)
        a, b = self.bounds, other.bounds
        return (
            a[0][0] < b[0][1] and b[0][0] < a[0][1]
            and a[1][0] < b[1][1] and b[1][0] < a[1][1]
            and a[2][0] < b[2][1] and b[2][0] < a[2][1]
        )  # fmt: skip

    def intersection(self, other: BBox3D) -> BBox3D:
        """The overlap of the two boxes; :meth:`empty` when they do not intersect."""
        if not self.intersects(other):
            return _EMPTY
        a, b = self.bounds, other.bounds
        return _make_bbox(
            tuple((max(a[d][0], b[d][0]), min(a[d][1], b[d][1])) for d in range(3)),  # type: ignore[arg-type]
            self.unit,
            self.pprint_px_resolution,
        )

    def supremum(self, other: BBox3D) -> BBox3D:
        """The smallest box containing both (the empty box is ignored)."""
        self._same_unit(other)
        if other.is_empty:
            return self
        if self.is_empty:
            return other
        a, b = self.bounds, other.bounds
        return _make_bbox(
            tuple((min(a[d][0], b[d][0]), max(a[d][1], b[d][1])) for d in range(3)),  # type: ignore[arg-type]
            self.unit,
            self.pprint_px_resolution,
        )

    def contained_in(self, other: BBox3D) -> bool:
        """True when this box lies inside ``other`` (the empty box lies in every box)."""
        self._same_unit(other)
        if self.is_empty:
            return True
        if other.is_empty:
            return False
        a, b = self.bounds, other.bounds
        return all(b[d][0] <= a[d][0] and a[d][1] <= b[d][1] for d in range(3))

    def aligned(self, other: BBox3D) -> tuple[bool, bool, bool, bool, bool, bool]:
        """Whether each face coincides with ``other``'s:
        ``(x_start, x_stop, y_start, y_stop, z_start, z_stop)``."""
        self._same_unit(other)
        self._need_region("align")
        other._need_region("align to")
        a, b = self.bounds, other.bounds
        return (
            a[0][0] == b[0][0], a[0][1] == b[0][1],
            a[1][0] == b[1][0], a[1][1] == b[1][1],
            a[2][0] == b[2][0], a[2][1] == b[2][1],
        )  # fmt: skip

    def contains(self, point: RawVec3D, resolution: RawVec3D = (1, 1, 1)) -> bool:
        """True when voxel ``point`` at ``resolution`` is inside (half-open: start <= p < end)."""
        p = Vec3D.from_seq(point, "point") * _positive_res(resolution)
        if self.is_empty:
            return False
        b = self.bounds
        return all(b[d][0] <= _r10(p[d]) < b[d][1] for d in range(3))

    def line_intersects(self, p1: RawVec3D, p2: RawVec3D, resolution: RawVec3D = (1, 1, 1)) -> bool:
        """True when the segment between voxel points ``p1`` and ``p2`` (at ``resolution``)
        meets the closed box (Liang–Barsky clipping)."""
        res = _positive_res(resolution)
        a = Vec3D.from_seq(p1, "p1") * res
        z = Vec3D.from_seq(p2, "p2") * res
        if self.is_empty:
            return False
        t0, t1 = 0.0, 1.0
        for d in range(3):
            lo, hi = self.bounds[d]
            delta = z[d] - a[d]
            if delta == 0:
                if a[d] < lo or a[d] > hi:
                    return False
                continue
            ta, tb = (lo - a[d]) / delta, (hi - a[d]) / delta
            if ta > tb:
                ta, tb = tb, ta
            t0, t1 = max(t0, ta), min(t1, tb)
            if t0 > t1:
                return False
        return True


# Slot setters: build boxes without the converters (and past the frozen __setattr__).
_object_new = object.__new__
_set_bounds = BBox3D.__dict__["bounds"].__set__
_set_unit = BBox3D.__dict__["unit"].__set__
_set_pprint_res = BBox3D.__dict__["pprint_px_resolution"].__set__

_EMPTY: Final[BBox3D] = _make_bbox(_EMPTY_BOUNDS, "nm", _UNIT_RES)
