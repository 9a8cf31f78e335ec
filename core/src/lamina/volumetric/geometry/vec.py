"""The 3-vector: :class:`Vec3D` and the aliases of what is accepted as one.

``Vec3D`` is a ``tuple`` subclass, so it is cheap to build and hash, unpacks, pickles and
converts to numpy like a tuple; every other part of the geometry is built from it.
``_tuple_new`` builds one from values already known to be Python scalars, skipping the
checks of ``Vec3D(...)`` on hot paths.
"""

from __future__ import annotations

import builtins
import math
import numbers
from collections.abc import Sequence
from typing import Any, Generic, TypeAlias, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt

from lamina.volumetric.geometry.scalars import _fmt, _scalar

__all__ = ["IntVec3D", "RawVec3D", "Vec3D"]

T_co = TypeVar("T_co", bound=float, covariant=True)

_tuple_new = tuple.__new__


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
