"""Geometry of volumetric indexing: 3-vectors, bounding boxes in nm, and chunk striding.

Everything a volumetric index is made of lives here:

- :class:`Vec3D` — an immutable, hashable ``(x, y, z)`` vector with elementwise
  arithmetic. It is a ``tuple`` subclass, so it is cheap to build and hash, unpacks,
  pickles and converts to numpy like a tuple.
- :class:`BBox3D` — a frozen axis-aligned box whose bounds are kept in nanometres;
  voxel coordinates exist only relative to a resolution (``to_slices(resolution)``).
- :class:`BBoxStrider` — enumerates the chunk boxes that tile a box on a grid.

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

import builtins
import itertools
import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar, cast, overload

import attrs
import numpy as np
import numpy.typing as npt

from lamina.errors import LaminaError

__all__ = [
    "EPS",
    "BBox3D",
    "BBoxStrider",
    "Bounds3D",
    "EmptyBBoxError",
    "IntVec3D",
    "PadLike",
    "RawVec3D",
    "StriderMode",
    "Vec3D",
]

#: Tolerance (in nm for :meth:`BBox3D.snapped`, in voxels for :class:`BBoxStrider`)
#: under which a coordinate counts as lying on a grid line.
EPS: Final = 1e-4

#: Bounds are rounded to this many decimals on construction, so that nm values computed
#: as ``voxels * resolution`` compare equal however they were computed.
_DECIMALS: Final = 10

_AXES: Final = "xyz"

T_co = TypeVar("T_co", bound=float, covariant=True)

_tuple_new = tuple.__new__


class EmptyBBoxError(LaminaError, ValueError):
    """An empty box (the intersection of disjoint boxes) was used where a region is needed."""


# --------------------------------------------------------------------------------------
# scalars
# --------------------------------------------------------------------------------------


def _scalar(value: object, what: str, dim: int | None = None) -> Any:
    """``value`` as a Python ``int``/``float``; numpy scalars are unwrapped; else ValueError.

    ``what`` (and the dimension ``dim``, if given) name the value in the error message.
    """
    t = type(value)
    if t is int or t is float:
        return value
    if t is not bool and t is not np.bool_:
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            return value.item()
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
    label = what if dim is None else f"{what} ({_AXES[dim]})"
    raise ValueError(f"{label} must be a real number, got {value!r} ({t.__name__})")


def _fmt(value: float) -> str:
    """Short text for a coordinate: integral values without ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


# --------------------------------------------------------------------------------------
# Vec3D
# --------------------------------------------------------------------------------------


class Vec3D(tuple[T_co, ...], Generic[T_co]):
    """An immutable ``(x, y, z)`` vector of ints or floats with elementwise arithmetic.

    ``+ - * / // %`` work with scalars and 3-sequences (also reflected); ``/`` gives
    floats, ``//`` gives ints, int op int stays int. ``< <= > >=`` hold when they hold
    for *every* element (a partial order), while ``==`` and ``hash`` are the tuple's, so
    ``Vec3D(1, 2, 3) == Vec3D(1.0, 2.0, 3.0) == (1, 2, 3)``. Components are always
    Python scalars: numpy scalars are unwrapped. With a numpy *array* operand numpy's
    own broadcasting applies (the result is an array).
    """

    __slots__ = ()

    @overload
    def __new__(cls, x: builtins.int, y: builtins.int, z: builtins.int) -> Vec3D[builtins.int]: ...
    @overload
    def __new__(cls, x: _Real, y: _Real, z: _Real) -> Vec3D[builtins.float]: ...
    def __new__(cls, x: Any, y: Any, z: Any) -> Any:
        tx, ty, tz = type(x), type(y), type(z)
        if (tx is int or tx is float) and (ty is int or ty is float) and (tz is int or tz is float):
            return _tuple_new(cls, (x, y, z))
        return _tuple_new(
            cls, (_scalar(x, "Vec3D", 0), _scalar(y, "Vec3D", 1), _scalar(z, "Vec3D", 2))
        )

    @classmethod
    def from_seq(cls, value: RawVec3D, what: str = "value") -> Vec3D[Any]:
        """Build from any 3-sequence (list, tuple, numpy array, Vec3D) of real numbers.

        A ``Vec3D`` is returned as is. ``what`` names the argument in the ``ValueError``
        raised when ``value`` is not a sequence of exactly three real numbers.
        """
        t = type(value)
        if t is Vec3D:
            return cast("Vec3D[Any]", value)
        if (t is tuple or t is list) and len(value) == 3:
            x, y, z = value
            tx, ty, tz = type(x), type(y), type(z)
            if (
                (tx is int or tx is float)
                and (ty is int or ty is float)
                and (tz is int or tz is float)
            ):
                return _tuple_new(Vec3D, (x, y, z))
        elif isinstance(value, np.ndarray):
            if value.shape != (3,) or value.dtype.kind not in "iuf":
                raise ValueError(
                    f"{what} must be a 3-vector of real numbers, got an array of shape "
                    f"{value.shape} and dtype {value.dtype}"
                )
            x, y, z = value.tolist()
            return _tuple_new(Vec3D, (x, y, z))
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ValueError(
                f"{what} must be a sequence of 3 real numbers (x, y, z), got {value!r} "
                f"({type(value).__name__})"
            )
        if len(value) != 3:
            raise ValueError(
                f"{what} must have exactly 3 elements (x, y, z), got {len(value)}: {value!r}"
            )
        x, y, z = value
        return _tuple_new(Vec3D, (_scalar(x, what, 0), _scalar(y, what, 1), _scalar(z, what, 2)))

    def __getnewargs__(self) -> tuple[T_co, T_co, T_co]:
        return (self[0], self[1], self[2])

    def __repr__(self) -> str:
        return f"Vec3D({self[0]!r}, {self[1]!r}, {self[2]!r})"

    def pformat(self) -> str:
        """``"(x, y, z)"`` with integral values printed without ``.0``."""
        return f"({_fmt(self[0])}, {_fmt(self[1])}, {_fmt(self[2])})"

    @property
    def x(self) -> T_co:
        return self[0]

    @property
    def y(self) -> T_co:
        return self[1]

    @property
    def z(self) -> T_co:
        return self[2]

    # -- arithmetic ---------------------------------------------------------------------

    @overload  # type: ignore[override]
    def __add__(self: Vec3D[builtins.int], other: _IntOperand) -> Vec3D[builtins.int]: ...
    @overload
    def __add__(self, other: _Operand) -> Vec3D[builtins.float]: ...
    def __add__(self, other: Any) -> Any:
        o = other if type(other) is Vec3D else _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (a + d, b + e, c + f))

    @overload
    def __radd__(self: Vec3D[builtins.int], other: _IntOperand) -> Vec3D[builtins.int]: ...
    @overload
    def __radd__(self, other: _Operand) -> Vec3D[builtins.float]: ...
    def __radd__(self, other: Any) -> Any:
        o = _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (d + a, e + b, f + c))

    @overload
    def __sub__(self: Vec3D[builtins.int], other: _IntOperand) -> Vec3D[builtins.int]: ...
    @overload
    def __sub__(self, other: _Operand) -> Vec3D[builtins.float]: ...
    def __sub__(self, other: Any) -> Any:
        o = other if type(other) is Vec3D else _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (a - d, b - e, c - f))

    @overload
    def __rsub__(self: Vec3D[builtins.int], other: _IntOperand) -> Vec3D[builtins.int]: ...
    @overload
    def __rsub__(self, other: _Operand) -> Vec3D[builtins.float]: ...
    def __rsub__(self, other: Any) -> Any:
        o = _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (d - a, e - b, f - c))

    @overload  # type: ignore[override]
    def __mul__(self: Vec3D[builtins.int], other: _IntOperand) -> Vec3D[builtins.int]: ...
    @overload
    def __mul__(self, other: _Operand) -> Vec3D[builtins.float]: ...
    def __mul__(self, other: Any) -> Any:
        o = other if type(other) is Vec3D else _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (a * d, b * e, c * f))

    @overload  # type: ignore[override]
    def __rmul__(self: Vec3D[builtins.int], other: _IntOperand) -> Vec3D[builtins.int]: ...
    @overload
    def __rmul__(self, other: _Operand) -> Vec3D[builtins.float]: ...
    def __rmul__(self, other: Any) -> Any:
        o = _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (d * a, e * b, f * c))

    def __truediv__(self, other: _Operand) -> Vec3D[builtins.float]:
        o = other if type(other) is Vec3D else _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (a / d, b / e, c / f))

    def __rtruediv__(self, other: _Operand) -> Vec3D[builtins.float]:
        o = _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (d / a, e / b, f / c))

    def __floordiv__(self, other: _Operand) -> Vec3D[builtins.int]:
        o = other if type(other) is Vec3D else _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (int(a // d), int(b // e), int(c // f)))

    def __rfloordiv__(self, other: _Operand) -> Vec3D[builtins.int]:
        o = _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (int(d // a), int(e // b), int(f // c)))

    @overload
    def __mod__(self: Vec3D[builtins.int], other: _IntOperand) -> Vec3D[builtins.int]: ...
    @overload
    def __mod__(self, other: _Operand) -> Vec3D[builtins.float]: ...
    def __mod__(self, other: Any) -> Any:
        o = other if type(other) is Vec3D else _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (a % d, b % e, c % f))

    @overload
    def __rmod__(self: Vec3D[builtins.int], other: _IntOperand) -> Vec3D[builtins.int]: ...
    @overload
    def __rmod__(self, other: _Operand) -> Vec3D[builtins.float]: ...
    def __rmod__(self, other: Any) -> Any:
        o = _operand(other)
        if o is None:
            return NotImplemented
        a, b, c = self
        d, e, f = o
        return _tuple_new(Vec3D, (d % a, e % b, f % c))

    def __neg__(self) -> Vec3D[T_co]:
        a, b, c = self
        return _tuple_new(Vec3D, (-a, -b, -c))

    def __pos__(self) -> Vec3D[T_co]:
        return self

    def __abs__(self) -> Vec3D[T_co]:
        a, b, c = self
        return _tuple_new(Vec3D, (abs(a), abs(b), abs(c)))

    # -- partial-order comparisons -------------------------------------------------------

    def __lt__(self, other: _Operand) -> bool:
        o = other if type(other) is Vec3D else _operand(other)
        if o is None:
            return NotImplemented
        return self[0] < o[0] and self[1] < o[1] and self[2] < o[2]

    def __le__(self, other: _Operand) -> bool:
        o = other if type(other) is Vec3D else _operand(other)
        if o is None:
            return NotImplemented
        return self[0] <= o[0] and self[1] <= o[1] and self[2] <= o[2]

    def __gt__(self, other: _Operand) -> bool:
        o = other if type(other) is Vec3D else _operand(other)
        if o is None:
            return NotImplemented
        return self[0] > o[0] and self[1] > o[1] and self[2] > o[2]

    def __ge__(self, other: _Operand) -> bool:
        o = other if type(other) is Vec3D else _operand(other)
        if o is None:
            return NotImplemented
        return self[0] >= o[0] and self[1] >= o[1] and self[2] >= o[2]

    # -- rounding -----------------------------------------------------------------------

    @overload
    def __round__(self, ndigits: None = None) -> Vec3D[builtins.int]: ...
    @overload
    def __round__(self, ndigits: builtins.int) -> Vec3D[T_co]: ...
    def __round__(self, ndigits: builtins.int | None = None) -> Vec3D[Any]:
        a, b, c = self
        if ndigits is None:
            return _tuple_new(Vec3D, (round(a), round(b), round(c)))
        return _tuple_new(Vec3D, (round(a, ndigits), round(b, ndigits), round(c, ndigits)))

    def __floor__(self) -> Vec3D[builtins.int]:
        a, b, c = self
        return _tuple_new(Vec3D, (math.floor(a), math.floor(b), math.floor(c)))

    def __ceil__(self) -> Vec3D[builtins.int]:
        a, b, c = self
        return _tuple_new(Vec3D, (math.ceil(a), math.ceil(b), math.ceil(c)))

    def __trunc__(self) -> Vec3D[builtins.int]:
        a, b, c = self
        return _tuple_new(Vec3D, (math.trunc(a), math.trunc(b), math.trunc(c)))

    def isclose(
        self, other: _Operand, rtol: builtins.float = 1e-5, atol: builtins.float = 1e-8
    ) -> tuple[bool, bool, bool]:
        """Per element ``|a - b| <= atol + rtol * |b|`` (numpy's ``isclose`` rule)."""
        o = _operand(other)
        if o is None:
            raise ValueError(f"cannot compare a Vec3D with {other!r}")
        a, b, c = self
        d, e, f = o
        return (
            abs(a - d) <= atol + rtol * abs(d),
            abs(b - e) <= atol + rtol * abs(e),
            abs(c - f) <= atol + rtol * abs(f),
        )

    def allclose(
        self, other: _Operand, rtol: builtins.float = 1e-5, atol: builtins.float = 1e-8
    ) -> bool:
        """True when :meth:`isclose` holds for all three elements."""
        return all(self.isclose(other, rtol=rtol, atol=atol))

    # ``int``/``float`` are defined last so that annotations above see the builtins.
    def int(self) -> Vec3D[builtins.int]:
        """Elements converted with ``int()`` (truncation toward zero, like Python's)."""
        a, b, c = self
        return _tuple_new(Vec3D, (int(a), int(b), int(c)))

    def float(self) -> Vec3D[builtins.float]:
        """Elements converted to ``float``."""
        a, b, c = self
        if type(a) is float and type(b) is float and type(c) is float:
            return self
        return _tuple_new(Vec3D, (float(a), float(b), float(c)))


#: Vector of ints (voxel coordinates, sizes).
IntVec3D: TypeAlias = Vec3D[int]
#: Anything accepted where a 3-vector is expected: a Vec3D, a 3-tuple, a list, an array.
RawVec3D: TypeAlias = Vec3D[Any] | Sequence[float] | npt.NDArray[Any]

_Real: TypeAlias = float | np.integer[Any] | np.floating[Any]
_IntOperand: TypeAlias = int | Sequence[int]
_Operand: TypeAlias = float | Sequence[float]


def _operand(other: object) -> tuple[float, float, float] | None:
    """The other operand of an arithmetic op as 3 Python scalars, or None if unsupported."""
    t = type(other)
    if t is int or t is float:
        f = cast(float, other)
        return (f, f, f)
    if isinstance(other, Vec3D):
        return cast("tuple[float, float, float]", other)
    if isinstance(other, np.ndarray | bool | np.bool_):
        return None  # arrays: numpy's broadcasting applies (reflected op)
    if isinstance(other, np.generic | numbers.Real):
        try:
            s = _scalar(other, "operand")
        except ValueError:
            return None
        return (s, s, s)
    if isinstance(other, Sequence) and not isinstance(other, str | bytes) and len(other) == 3:
        try:
            return (
                _scalar(other[0], "operand"),
                _scalar(other[1], "operand"),
                _scalar(other[2], "operand"),
            )
        except ValueError:
            return None
    return None


#: Validated resolutions by value (Vec3D or tuple of int/float), so the per-read path does
#: not re-check the same few resolutions over and over.
_RES_CACHE: dict[tuple[float, ...], Vec3D[float]] = {}


def _positive_res(value: RawVec3D, what: str = "resolution") -> Vec3D[float]:
    """A resolution as a float Vec3D with every element > 0 (ValueError otherwise)."""
    t = type(value)
    key: Any = None
    if t is Vec3D:
        key = value
    elif t is tuple and len(value) == 3:
        a, b, c = value
        ta, tb, tc = type(a), type(b), type(c)
        if (ta is int or ta is float) and (tb is int or tb is float) and (tc is int or tc is float):
            key = value
    if key is not None:
        hit = _RES_CACHE.get(key)
        if hit is not None:
            return hit
    r: Vec3D[Any] = value if t is Vec3D else Vec3D.from_seq(value, what)  # type: ignore[assignment]
    a, b, c = r
    if not (a > 0 and b > 0 and c > 0 and math.isfinite(a + b + c)):
        raise ValueError(f"{what} must be finite and > 0 in every dimension, got {r.pformat()}")
    if not (type(a) is float and type(b) is float and type(c) is float):
        r = _tuple_new(Vec3D, (float(a), float(b), float(c)))
    if key is not None:
        if len(_RES_CACHE) >= 4096:
            _RES_CACHE.clear()
        _RES_CACHE[key] = r
    return r


def _vec(value: RawVec3D | float, what: str) -> Vec3D[Any]:
    """A 3-vector from a scalar (broadcast) or a 3-sequence."""
    v: Any = value
    if type(v) is Vec3D:
        return v
    if isinstance(v, numbers.Real | np.generic):
        s = _scalar(v, what)
        return _tuple_new(Vec3D, (s, s, s))
    return Vec3D.from_seq(v, what)


# --------------------------------------------------------------------------------------
# BBox3D
# --------------------------------------------------------------------------------------

Bounds3D: TypeAlias = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]

_INF: Final = math.inf
_EMPTY_BOUNDS: Final[Bounds3D] = ((_INF, -_INF), (_INF, -_INF), (_INF, -_INF))
_UNIT_RES: Final[Vec3D[float]] = _tuple_new(Vec3D, (1.0, 1.0, 1.0))
_ZERO3F: Final[Vec3D[float]] = _tuple_new(Vec3D, (0.0, 0.0, 0.0))

PadLike: TypeAlias = float | Sequence[float | Sequence[float]]


def _r10(value: float) -> float:
    """``value`` as a float rounded to 10 decimals (cheap when it is already integral)."""
    if type(value) is float:
        # ``float.is_integer`` is much cheaper than ``round``; integral values need no rounding.
        if value.is_integer():
            return value
        return round(value, _DECIMALS)
    f = float(value)
    return f if f.is_integer() else round(f, _DECIMALS)


def _check_bounds(b: Bounds3D) -> Bounds3D:
    """Reject NaN and start > end (W40) with the dimension and values named."""
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


def _convert_pprint_res(value: RawVec3D) -> Vec3D[float]:
    return _positive_res(value, "pprint_px_resolution")


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


def _pairs(arg: PadLike, what: str) -> tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any]]:
    """A pad/crop argument as ((before, after) × 3): a scalar, 3 numbers, or 3 pairs."""
    value: Any = arg
    t = type(value)
    if t is int or t is float:
        return ((value, value), (value, value), (value, value))
    if (t is tuple or t is list or t is Vec3D) and len(value) == 3:
        x, y, z = value
        tx, ty, tz = type(x), type(y), type(z)
        if (tx is int or tx is float) and (ty is int or ty is float) and (tz is int or tz is float):
            return ((x, x), (y, y), (z, z))
    if isinstance(value, numbers.Real | np.generic):
        s = _scalar(value, what)
        return ((s, s), (s, s), (s, s))
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise ValueError(
            f"{what} must be a number, 3 numbers or 3 (before, after) pairs, got {value!r}"
        )
    if len(value) != 3:
        raise ValueError(
            f"{what} must have 3 elements (x, y, z), each a number or a (before, after) pair, "
            f"got {len(value)}: {value!r}"
        )
    out = []
    for d in range(3):
        item = value[d]
        if isinstance(item, Sequence | np.ndarray) and not isinstance(item, str | bytes):
            if len(item) != 2:
                raise ValueError(
                    f"{what} for dimension {_AXES[d]} must be a number or a (before, after) "
                    f"pair, got {item!r}"
                )
            out.append((_scalar(item[0], what, d), _scalar(item[1], what, d)))
        else:
            s = _scalar(item, what, d)
            out.append((s, s))
    return (out[0], out[1], out[2])


def _dim(arg: int, what: str = "dim") -> int:
    dim: Any = arg
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not 0 <= int(dim) <= 2:
        raise ValueError(f"{what} must be 0, 1 or 2 (x, y, z), got {dim!r}")
    return int(dim)


def _make_bbox(bounds: Bounds3D, unit: str, pprint_res: Vec3D[float]) -> BBox3D:
    """Build a BBox3D from already rounded and checked bounds, skipping the converters."""
    box = _object_new(BBox3D)
    _set_bounds(box, bounds)
    _set_unit(box, unit)
    _set_pprint_res(box, pprint_res)
    return box


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
        cls, start: RawVec3D, end: RawVec3D, resolution: RawVec3D = (1, 1, 1)
    ) -> BBox3D:
        """The box from voxel ``start`` to voxel ``end`` at ``resolution``."""
        res = _positive_res(resolution)
        s = Vec3D.from_seq(start, "start") * res
        e = Vec3D.from_seq(end, "end") * res
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


# --------------------------------------------------------------------------------------
# BBoxStrider
# --------------------------------------------------------------------------------------

StriderMode: TypeAlias = Literal["shrink", "expand", "exact"]


def _positive_vec(value: RawVec3D, what: str) -> Vec3D[Any]:
    v = Vec3D.from_seq(value, what)
    if not (v > 0 and math.isfinite(v[0] + v[1] + v[2])):
        raise ValueError(f"{what} must be finite and > 0 in every dimension, got {v.pformat()}")
    return v


def _chunk_size(value: RawVec3D) -> Vec3D[Any]:
    return _positive_vec(value, "chunk_size")


def _stride(value: RawVec3D) -> Vec3D[Any]:
    return _positive_vec(value, "stride")


def _optional_vec(value: RawVec3D | None) -> Vec3D[Any] | None:
    return None if value is None else Vec3D.from_seq(value, "vector")


@attrs.frozen(slots=True)
class BBoxStrider:
    """Enumerates chunk boxes of ``chunk_size`` voxels every ``stride`` voxels over ``bbox``.

    Chunk starts lie on the grid ``stride_start_offset + k * stride`` (voxels at
    ``resolution``; by default the grid starts at the bbox start). Modes:

    - ``expand``: chunks start at the last grid point <= the bbox start and continue
      until the bbox is covered (the chunks may reach outside it; with
      ``stride > chunk_size`` the gaps stay uncovered and no chunk starts past the end);
    - ``shrink``: only chunks lying entirely inside the bbox;
    - ``exact``: like ``expand`` (needs ``stride == chunk_size``) but each chunk is
      cropped to the bbox, giving full chunks inside and partial chunks at the edges.

    Chunks are ordered x fastest, then y, then z. With ``max_superchunk_size`` (needs
    ``stride == chunk_size``) neighbouring chunks are merged into superchunks of the
    largest whole number of chunks that fits in it; superchunks cover exactly the
    chunks the strider would otherwise produce (the last ones are cropped).
    """

    bbox: BBox3D
    resolution: Vec3D[float] = attrs.field(converter=_positive_res)
    chunk_size: Vec3D[Any] = attrs.field(converter=_chunk_size)
    stride: Vec3D[Any] = attrs.field(converter=_stride)
    max_superchunk_size: Vec3D[Any] | None = attrs.field(default=None, converter=_optional_vec)
    stride_start_offset: Vec3D[Any] | None = attrs.field(default=None, converter=_optional_vec)
    mode: StriderMode = "expand"

    # derived (voxels at ``resolution``)
    _first: tuple[float, float, float] = attrs.field(init=False, eq=False, repr=False)
    _step: tuple[float, float, float] = attrs.field(init=False, eq=False, repr=False)
    _size: tuple[float, float, float] = attrs.field(init=False, eq=False, repr=False)
    _shape: Vec3D[int] = attrs.field(init=False, eq=False, repr=False)
    _crop: tuple[tuple[float, float], ...] | None = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.bbox, BBox3D):
            raise TypeError(f"bbox must be a BBox3D, got {self.bbox!r}")
        if self.bbox.is_empty:
            raise EmptyBBoxError("cannot stride over the empty BBox3D")
        if self.mode not in ("shrink", "expand", "exact"):
            raise ValueError(f"mode must be 'shrink', 'expand' or 'exact', got {self.mode!r}")
        chunk, stride, res = self.chunk_size, self.stride, self.resolution
        if self.mode == "exact" and chunk != stride:
            raise ValueError(
                f"mode 'exact' needs stride == chunk_size, got stride {stride.pformat()} and "
                f"chunk_size {chunk.pformat()}"
            )
        start = [_r10(self.bbox.bounds[d][0] / res[d]) for d in range(3)]
        end = [_r10(self.bbox.bounds[d][1] / res[d]) for d in range(3)]
        origin = start if self.stride_start_offset is None else list(self.stride_start_offset)

        first: list[float] = []
        counts: list[int] = []
        for d in range(3):
            k = (start[d] - origin[d]) / stride[d]
            if self.mode == "shrink":
                f = origin[d] + math.ceil(k - EPS) * stride[d]
                n = max(math.floor((end[d] - f - chunk[d]) / stride[d] + EPS) + 1, 0)
            else:
                f = origin[d] + math.floor(k + EPS) * stride[d]
                # as few chunks as cover the bbox, but none starting at or after its end
                # (which only matters when stride > chunk_size leaves gaps)
                n = math.ceil((end[d] - f - chunk[d]) / stride[d] - EPS) + 1
                n = max(min(n, math.ceil((end[d] - f) / stride[d] - EPS)), 1)
            first.append(f)
            counts.append(n)

        step: list[float] = list(stride)
        size: list[float] = list(chunk)
        crop: list[tuple[float, float]] | None = None
        if self.max_superchunk_size is not None:
            sup = self.max_superchunk_size
            if chunk != stride:
                raise ValueError(
                    f"max_superchunk_size needs stride == chunk_size, got stride "
                    f"{stride.pformat()} and chunk_size {chunk.pformat()}"
                )
            if not sup >= chunk:
                raise ValueError(
                    f"max_superchunk_size must be >= chunk_size in every dimension, got "
                    f"{sup.pformat()} < {chunk.pformat()}"
                )
            m = [math.floor(sup[d] / chunk[d] + EPS) for d in range(3)]
            crop = [(first[d], first[d] + counts[d] * chunk[d]) for d in range(3)]
            step = [m[d] * chunk[d] for d in range(3)]
            size = step
            counts = [math.ceil(counts[d] / m[d]) for d in range(3)]
        if self.mode == "exact":
            crop = [(start[d], end[d]) for d in range(3)]

        object.__setattr__(self, "_first", tuple(first))
        object.__setattr__(self, "_step", tuple(step))
        object.__setattr__(self, "_size", tuple(size))
        object.__setattr__(self, "_shape", Vec3D(counts[0], counts[1], counts[2]))
        object.__setattr__(self, "_crop", None if crop is None else tuple(crop))

    @property
    def shape(self) -> Vec3D[int]:
        """Number of chunks along x, y and z."""
        return self._shape

    @property
    def num_chunks(self) -> int:
        """Total number of chunks."""
        sx, sy, sz = self._shape
        return sx * sy * sz

    def __len__(self) -> int:
        return self.num_chunks

    def get_nth_chunk_bbox(self, n: int) -> BBox3D:
        """The ``n``-th chunk box (x fastest, then y, then z), computed directly."""
        num = self.num_chunks
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"chunk number must be an int, got {n!r}")
        if not 0 <= n < num:
            raise IndexError(f"chunk number {n} out of range: this strider has {num} chunks")
        sx, sy, _ = self._shape
        idx = (n % sx, (n // sx) % sy, n // (sx * sy))
        res = self.resolution
        bounds = []
        for d in range(3):
            lo = self._first[d] + idx[d] * self._step[d]
            hi = lo + self._size[d]
            if self._crop is not None:
                lo, hi = max(lo, self._crop[d][0]), min(hi, self._crop[d][1])
            bounds.append((_r10(lo * res[d]), _r10(hi * res[d])))
        return _make_bbox(_check_bounds((bounds[0], bounds[1], bounds[2])), self.bbox.unit, res)

    def get_all_chunk_bboxes(self) -> list[BBox3D]:
        """Every chunk box, in order."""
        return [self.get_nth_chunk_bbox(i) for i in range(self.num_chunks)]

    def __iter__(self) -> Iterator[BBox3D]:
        return (self.get_nth_chunk_bbox(i) for i in range(self.num_chunks))
