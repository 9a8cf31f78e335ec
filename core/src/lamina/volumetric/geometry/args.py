"""Checked arguments: resolutions, vectors, pads and dimensions given by a caller.

Every method of a box or strider takes these in several forms (a scalar, a 3-sequence,
an array, pairs); the helpers here turn them into validated values, with a
``ValueError`` that names the argument, so that the methods stay short. Resolutions are
checked once per distinct value (the read path asks for the same few again and again).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np

from lamina.volumetric.geometry.scalars import _AXES, _scalar
from lamina.volumetric.geometry.vec import RawVec3D, Vec3D, _tuple_new

__all__ = ["PadLike"]

PadLike: TypeAlias = float | Sequence[float | Sequence[float]]


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
