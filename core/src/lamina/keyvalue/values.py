"""The values a key-value row may hold, checked and copied the same way by every backend.

A value is ``None``, ``bool``, ``int`` (any size), ``float`` (every float, ``-0.0``,
``inf`` and ``nan`` included), ``str``, ``bytes``, a numpy array of a boolean, integer,
floating or complex dtype (dtype and shape kept, 0-d included), or a list or a dict
(with str keys) of values, nested to any depth.

Normalisation, done before anything is stored:

* tuples become lists (a tuple reads back as a list);
* numpy scalars become the Python scalar of the same value (``np.int64(3)`` → ``3``,
  ``np.float32(0.5)`` → ``0.5``); subclasses of ``int``/``float``/``str``/``bytes``
  (enums, ``np.str_``) become the base type;
* lists, dicts and arrays are copied, so a caller changing them afterwards does not
  change what was stored.

Anything else (sets, complex numbers, objects, object or string arrays, array
subclasses such as masked arrays) is refused with a ``ValueError`` naming the type and
where it was found.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "ARRAY_KINDS",
    "copy_value",
    "normalize_value",
    "values_equal",
]

#: numpy dtype kinds a stored array may have: bool, signed, unsigned, float, complex.
ARRAY_KINDS = "biufc"

_SCALARS = (bool, int, float, str, bytes)

_WHAT = (
    "a value is None, bool, int, float, str, bytes, a numpy array of a bool, int, float "
    "or complex dtype, or a list or dict (str keys) of values"
)


def normalize_value(value: Any, where: str = "value") -> Any:
    """Return a checked, normalised copy of ``value`` (see the module docstring).

    ``where`` names the value in error messages (e.g. ``"row 'k', field 'a'"``).
    """
    kind = type(value)
    if value is None or kind in _SCALARS:
        return value
    if kind is list or kind is tuple:
        return [normalize_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(
                    f"{where}: dict keys must be str; got {type(key).__name__} key {key!r}"
                )
            out[str.__str__(key)] = normalize_value(item, f"{where}[{key!r}]")
        return out
    if kind is np.ndarray:
        if value.dtype.kind not in ARRAY_KINDS:
            raise ValueError(
                f"{where}: a numpy array of dtype {value.dtype} cannot be stored; "
                "stored arrays have a bool, int, float or complex dtype"
            )
        return value.copy()
    if isinstance(value, np.ndarray):
        raise ValueError(
            f"{where}: a {kind.__name__} (numpy array subclass) cannot be stored as is; "
            "convert it with np.asarray (a masked array loses its mask) first"
        )
    if isinstance(value, np.bool_ | np.integer | np.floating):
        return value.item()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    raise ValueError(f"{where} of type {kind.__name__} cannot be stored; {_WHAT}")


def copy_value(value: Any) -> Any:
    """Return a copy of an already normalised value (containers and arrays copied)."""
    kind = type(value)
    if kind is list:
        return [copy_value(v) for v in value]
    if kind is dict:
        return {k: copy_value(v) for k, v in value.items()}
    if kind is np.ndarray:
        return value.copy()
    return value


def values_equal(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are the same stored value, strictly.

    Types must match (``1``, ``1.0`` and ``True`` are three different values), floats
    compare by value with ``-0.0 != 0.0`` and ``nan == nan``, arrays compare dtype, shape
    and elements, lists and dicts compare item by item.
    """
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is float:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return bool(a == b and math.copysign(1.0, a) == math.copysign(1.0, b))
    if kind is list:
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if kind is dict:
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if kind is np.ndarray:
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind in "fc":
            same_bits = np.signbit(a.real) == np.signbit(b.real)
            return bool(np.array_equal(a, b, equal_nan=True) and np.all(same_bits))
        return bool(np.array_equal(a, b))
    return bool(a == b)
