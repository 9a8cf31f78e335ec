"""Scalars of the geometry: coordinates as plain Python numbers, rounded alike.

Vectors and boxes hold Python ``int``/``float`` only (numpy scalars are unwrapped on the
way in) and nm bounds are rounded to a fixed number of decimals, so that values computed
in different ways compare and hash equal. The helpers here do that, for every module of
the package.
"""

from __future__ import annotations

import numbers
from typing import Any, Final

import numpy as np

__all__ = ["EPS"]

#: Tolerance (in nm for :meth:`BBox3D.snapped`, in voxels for :class:`BBoxStrider`)
#: under which a coordinate counts as lying on a grid line.
EPS: Final = 1e-4

#: Bounds are rounded to this many decimals on construction, so that nm values computed
#: as ``voxels * resolution`` compare equal however they were computed.
_DECIMALS: Final = 10

_AXES: Final = "xyz"


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


def _r10(value: float) -> float:
    """``value`` as a float rounded to 10 decimals (cheap when it is already integral)."""
    if type(value) is float:
        # ``float.is_integer`` is much cheaper than ``round``; integral values need no rounding.
        if value.is_integer():
            return value
        return round(value, _DECIMALS)
    f = float(value)
    return f if f.is_integer() else round(f, _DECIMALS)
