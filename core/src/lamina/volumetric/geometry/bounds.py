"""Box bounds in nm and their voxel coordinates.

A :class:`~lamina.volumetric.geometry.BBox3D` keeps its bounds in nanometres only;
voxels exist relative to a resolution. The checks and converters of the bounds, and the
conversions between nm bounds and voxel slices (exact, or floored/ceiled on request),
live here, apart from the class, so that the index can use them on its hot path too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import numpy as np

from lamina.volumetric.geometry.scalars import _AXES, _DECIMALS, _fmt, _r10, _scalar
from lamina.volumetric.geometry.vec import Vec3D, _tuple_new

if TYPE_CHECKING:
    from lamina.volumetric.geometry.bbox import BBox3D

__all__ = ["Bounds3D"]

Bounds3D: TypeAlias = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]

_INF: Final = math.inf
_EMPTY_BOUNDS: Final[Bounds3D] = ((_INF, -_INF), (_INF, -_INF), (_INF, -_INF))


def _check_bounds(b: Bounds3D) -> Bounds3D:
    """Reject NaN and start > end, with the dimension and values named."""
    if b == _EMPTY_BOUNDS:
        return _EMPTY_BOUNDS
    for d in range(3):
        lo, hi = b[d]
        if lo != lo or hi != hi:
            raise ValueError(f"BBox3D bounds must not be NaN; dimension {_AXES[d]} is ({lo}, {hi})")
        if lo > hi:
            raise ValueError(
                f"BBox3D start must be <= end in every dimension; dimension {_AXES[d]} has "
                f"start {_fmt(lo)} > end {_fmt(hi)} (nm)"
            )
    return b


def _convert_bounds(bounds: Sequence[Sequence[float]]) -> Bounds3D:
    """attrs converter: ((x0, x1), (y0, y1), (z0, z1)) as floats rounded to 10 decimals."""
    value: Any = bounds
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise ValueError(
            f"BBox3D bounds must be ((x0, x1), (y0, y1), (z0, z1)), got {value!r} "
            f"({type(value).__name__})"
        )
    if len(value) != 3:
        raise ValueError(
            f"BBox3D bounds must have 3 (start, end) pairs (x, y, z), got {len(value)}: {value!r}"
        )
    out = []
    for d in range(3):
        pair = value[d]
        if isinstance(pair, str | bytes) or not isinstance(pair, Sequence | np.ndarray):
            raise ValueError(
                f"BBox3D bounds for dimension {_AXES[d]} must be a (start, end) pair, got {pair!r}"
            )
        if len(pair) != 2:
            raise ValueError(
                f"BBox3D bounds for dimension {_AXES[d]} must be a (start, end) pair, "
                f"got {len(pair)} values: {pair!r}"
            )
        lo = _r10(_scalar(pair[0], "BBox3D start", d))
        hi = _r10(_scalar(pair[1], "BBox3D end", d))
        out.append((lo, hi))
    return _check_bounds((out[0], out[1], out[2]))


def _slice_bounds(s: object, r: float, d: int) -> tuple[float, float]:
    """nm bounds of the voxel slice ``s`` of dimension ``d`` at resolution ``r``."""
    if type(s) is not slice:
        raise ValueError(
            f"expected a slice for dimension {_AXES[d]}, got {s!r} ({type(s).__name__})"
        )
    if s.step is not None and s.step != 1:
        raise ValueError(
            f"strided slices are not supported: dimension {_AXES[d]} is {s!r} (step {s.step!r})"
        )
    lo, hi = s.start, s.stop
    if lo is None or hi is None:
        raise ValueError(
            f"open slices are not supported: dimension {_AXES[d]} is {s!r}; give both the "
            "start and the stop, e.g. 0:100"
        )
    if type(lo) is not int:
        lo = _scalar(lo, "slice start", d)
    if type(hi) is not int:
        hi = _scalar(hi, "slice stop", d)
    if lo > hi:
        raise ValueError(
            f"slice start must be <= stop; dimension {_AXES[d]} is {_fmt(lo)}:{_fmt(hi)}"
        )
    a = lo * r
    b = hi * r
    return (
        a if a.is_integer() else round(a, _DECIMALS),
        b if b.is_integer() else round(b, _DECIMALS),
    )


def _voxel(value: float, r: float, d: int, is_stop: bool, allow_rounding: bool, box: Any) -> int:
    """``value`` nm as a whole number of voxels of size ``r`` (floor start / ceil stop)."""
    q = value / r
    if q.is_integer():
        return int(q)
    if not math.isfinite(q):
        raise ValueError(f"{box!r} is unbounded in dimension {_AXES[d]}; it has no voxel slices")
    q = round(q, _DECIMALS)
    if q.is_integer():
        return int(q)
    if not allow_rounding:
        which = "stop" if is_stop else "start"
        raise ValueError(
            f"{box!r} is not a whole number of voxels at resolution {_fmt(r)} nm in "
            f"dimension {_AXES[d]}: its {which} is {_fmt(value)} nm = {q!r} voxels. "
            "Pass allow_slice_rounding=True to round it (the start is floored and the stop "
            "ceiled, which expands the region to whole voxels)."
        )
    return math.ceil(q) if is_stop else math.floor(q)


def _voxel_extent(
    box: BBox3D, res: Vec3D[float], allow_rounding: bool
) -> tuple[Vec3D[int], Vec3D[int], Vec3D[int]]:
    """Voxel start, stop and shape of a non-empty ``box`` at the validated ``res``."""
    (x0, x1), (y0, y1), (z0, z1) = box.bounds
    rx, ry, rz = res
    # Fast path: exact division (the common case); anything else goes through _voxel.
    a, b, c, d, e, f = x0 / rx, y0 / ry, z0 / rz, x1 / rx, y1 / ry, z1 / rz
    if (
        a.is_integer() and b.is_integer() and c.is_integer()
        and d.is_integer() and e.is_integer() and f.is_integer()
    ):  # fmt: skip
        ia, ib, ic, id_, ie, if_ = int(a), int(b), int(c), int(d), int(e), int(f)
    else:
        ia = _voxel(x0, rx, 0, False, allow_rounding, box)
        ib = _voxel(y0, ry, 1, False, allow_rounding, box)
        ic = _voxel(z0, rz, 2, False, allow_rounding, box)
        id_ = _voxel(x1, rx, 0, True, allow_rounding, box)
        ie = _voxel(y1, ry, 1, True, allow_rounding, box)
        if_ = _voxel(z1, rz, 2, True, allow_rounding, box)
    return (
        _tuple_new(Vec3D, (ia, ib, ic)),
        _tuple_new(Vec3D, (id_, ie, if_)),
        _tuple_new(Vec3D, (id_ - ia, ie - ib, if_ - ic)),
    )
