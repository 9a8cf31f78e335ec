"""Functions to ``apply`` in tests, at module level so that worker processes of any
executor unpickle them by name: a translation-equivariant filter for the crop equality
of the subchunkable apply, and a pointwise map for its blend equality."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["affine", "mean3"]


def mean3(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The 3 x 3 x 3 mean of every voxel of ``(C, X, Y, Z)`` (its input's edges padded
    by repetition), in the input's dtype: what a small convolutional model does, and
    translation-equivariant, so cropping one voxel per side makes it exact per chunk."""
    padded = np.pad(a.astype(np.float64), ((0, 0), (1, 1), (1, 1), (1, 1)), mode="edge")
    out = np.zeros(a.shape, dtype=np.float64)
    x, y, z = a.shape[1:]
    for i in range(3):
        for j in range(3):
            for k in range(3):
                out += padded[:, i : i + x, j : j + y, k : k + z]
    result: npt.NDArray[Any] = (out / 27).astype(a.dtype)
    return result


def affine(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``2 a + 1`` in ``a``'s dtype (wrapping for integers): a pointwise function."""
    result: npt.NDArray[Any] = (a * 2 + 1).astype(a.dtype)
    return result
