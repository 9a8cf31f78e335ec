"""One call of a function augmentation: its generator (:mod:`lamina_augment.randomness`),
its ``prob`` coin, and numpy/torch in and out (:mod:`lamina_augment.arrays`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina_augment.arrays import as_numpy
from lamina_augment.randomness import applies, call_generator

__all__ = ["run_augmentation"]

Body = Callable[[npt.NDArray[Any], np.random.Generator], npt.NDArray[Any]]


def run_augmentation(
    name: str, data: Any, prob: float, seed: int | None, body: Body, *, in_float: bool = True
) -> Any:
    """``body(array, rng)`` on ``data`` with probability ``prob`` (else ``data`` itself),
    given back as the type and dtype ``data`` has. ``body`` gets a copy of its own: in
    float32 for data of 16 bits or less and float32 (exact for them), float64 otherwise;
    or, with ``in_float=False`` (an augmentation that only moves or fills voxels), in
    the data's own dtype."""
    rng = call_generator(seed, name=name)
    if not applies(rng, prob):
        return data
    array, restore = as_numpy(data, f"{name}: data")
    work = array.astype(working_dtype(array.dtype)) if in_float else array.copy()
    return restore(body(work, rng))


def working_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The float type an augmentation computes in for ``dtype``."""
    small = dtype.itemsize <= 2 or dtype == np.float32
    return np.dtype(np.float32 if small and dtype.kind in "biuf" else np.float64)


def mask_of(mask_fn: Callable[[Any], Any] | None, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The weights where a change applies: ``mask_fn(data)`` (booleans or weights), else
    1 (broadcast, no memory)."""
    if mask_fn is None:
        return np.ones((1, 1, 1, 1), dtype=array.dtype)
    mask = np.asarray(mask_fn(array), dtype=array.dtype)
    return np.broadcast_to(mask, array.shape)
