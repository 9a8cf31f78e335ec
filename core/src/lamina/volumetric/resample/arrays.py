"""Array helpers of the resampler: memory layout and dtypes.

Results are allocated in the memory order of the input, so that the kernels keep
reading and writing along the fast axis whatever the layout; labels are compared through
an unsigned view of their bits; and every path casts float results back to the input
dtype the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

NDArray = npt.NDArray[Any]


def _empty_like_layout(ref: NDArray, shape: Sequence[int], dtype: Any) -> NDArray:
    """An uninitialised array of ``shape`` whose axes are ordered in memory like ``ref``'s."""
    order = sorted(
        range(ref.ndim),
        key=lambda ax: (0 if ref.shape[ax] == 1 else 1, -abs(ref.strides[ax]), ax),
    )
    if order == list(range(ref.ndim)):
        return np.empty(tuple(shape), dtype=dtype)
    tmp = np.empty(tuple(shape[ax] for ax in order), dtype=dtype)
    return tmp.transpose(np.argsort(order))


def _spatial_order(a: NDArray) -> list[int]:
    """Spatial axes (1, 2, 3) of a ``(C, X, Y, Z)`` array, fastest-varying first (size 1 last)."""
    return sorted((1, 2, 3), key=lambda ax: (a.shape[ax] == 1, abs(a.strides[ax]), ax))


def _unsigned(a: NDArray) -> NDArray:
    """``a`` viewed as the unsigned integer type of its width (exact bit patterns)."""
    if a.dtype.itemsize not in (1, 2, 4, 8):
        raise ValueError(
            f"resample: values of dtype {a.dtype} cannot be compared bit for bit "
            "(only 1, 2, 4 and 8-byte types)"
        )
    return a.view(f"u{a.dtype.itemsize}")


def _cast_back(values: NDArray, dtype: np.dtype[Any]) -> NDArray:
    """Float results to ``dtype``: integers rounded half up and clipped to its range."""
    if dtype.kind == "f":
        return values.astype(dtype, copy=False)
    values = np.floor(values + 0.5)
    info = np.iinfo(dtype)
    lo, hi = float(info.min), float(info.max)
    if hi > info.max:  # 2**63 - 1 and 2**64 - 1 round up to a power of two as floats
        hi = float(np.nextafter(hi, -np.inf))
    np.clip(values, lo, hi, out=values)
    return values.astype(dtype)
