"""numpy and torch alike: an augmentation works on a numpy array and gives back the type,
dtype (and device) it was given, channels first ``(C, X, Y, Z)``; torch is never imported
for numpy data (a tensor is recognised by its type's module)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina.volumetric.data import cast_rounded, is_torch_tensor

__all__ = ["as_numpy"]


@functools.lru_cache(maxsize=64)
def _numpy_restorer(dtype: np.dtype[Any]) -> Callable[[npt.NDArray[Any]], Any]:
    """Turns a result back into a numpy array of ``dtype`` (one per dtype, cached)."""
    return functools.partial(cast_rounded, dtype=dtype, in_place=True)


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
            typed = cast_rounded(np.asarray(result), array.dtype, in_place=True)
            return torch.from_numpy(np.ascontiguousarray(typed)).to(data.device)

        restore: Callable[[npt.NDArray[Any]], Any] = back_to_torch
    else:
        array = np.asarray(data)

        def back_to_numpy(result: npt.NDArray[Any]) -> Any:
            return cast_rounded(np.asarray(result), array.dtype, in_place=True)

        restore = back_to_numpy
    if array.ndim != 4:
        raise ValueError(f"{what} must be (C, X, Y, Z), channels first; got shape {array.shape}")
    return array, restore
