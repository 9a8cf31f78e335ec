"""numpy and torch alike: an augmentation works on a numpy array and gives back the type,
dtype (and device) it was given, channels first ``(C, X, Y, Z)``; torch is never imported
for numpy data (a tensor is recognised by its type's module)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina.volumetric.data import is_torch_tensor

__all__ = ["as_numpy", "to_dtype"]


def to_dtype(values: npt.NDArray[Any], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """``values`` (an augmentation's float result, changed in place) as ``dtype``:
    rounded and clipped to its range for integers."""
    if values.dtype == dtype:
        return values
    out: npt.NDArray[Any]
    if dtype.kind in "iu":  # in place on the augmentation's own float copy
        info = np.iinfo(dtype)
        np.rint(values, out=values)
        low, high = values.dtype.type(info.min), values.dtype.type(info.max)
        np.clip(values, low, high, out=values)
        out = values.astype(dtype)
    elif dtype.kind == "b":
        out = values > 0.5
    else:
        out = values.astype(dtype)
    return out


@functools.lru_cache(maxsize=64)
def _numpy_restorer(dtype: np.dtype[Any]) -> Callable[[npt.NDArray[Any]], Any]:
    """Turns a result back into a numpy array of ``dtype`` (one per dtype, cached)."""
    return functools.partial(to_dtype, dtype=dtype)


def as_numpy(
    data: Any, what: str = "data"
) -> tuple[npt.NDArray[Any], Callable[[npt.NDArray[Any]], Any]]:
    """``data`` as a 4-D numpy array, and the function that turns a result back into the
    type, dtype and device of ``data``."""
    if type(data) is np.ndarray and data.ndim == 4:  # the common case, on every call
        return data, _numpy_restorer(data.dtype)
    if is_torch_tensor(data):
        import torch

        array = data.detach().cpu().numpy()

        def back_to_torch(result: npt.NDArray[Any]) -> Any:
            typed = to_dtype(np.asarray(result), array.dtype)
            return torch.from_numpy(np.ascontiguousarray(typed)).to(data.device)

        restore: Callable[[npt.NDArray[Any]], Any] = back_to_torch
    else:
        array = np.asarray(data)

        def back_to_numpy(result: npt.NDArray[Any]) -> Any:
            return to_dtype(np.asarray(result), array.dtype)

        restore = back_to_numpy
    if array.ndim != 4:
        raise ValueError(f"{what} must be (C, X, Y, Z), channels first; got shape {array.shape}")
    return array, restore
