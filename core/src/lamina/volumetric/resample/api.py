"""The entry point, :func:`resample`.

It checks the arguments, returns early where there is nothing to compute (every factor
1, an empty volume), and hands the rest to the thread splitting, which calls the
kernels; what each mode computes is described in :mod:`lamina.volumetric.resample`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, get_args

import numpy as np

from lamina.volumetric.modes import InterpolationMode
from lamina.volumetric.resample.arrays import NDArray
from lamina.volumetric.resample.plan import _AXES, _TOL, _check_data, _check_factors, _plan_axis
from lamina.volumetric.resample.threads import _in_threads

__all__ = ["resample"]

_MODES: Final = frozenset(get_args(InterpolationMode))


def resample(
    data: NDArray,
    scale_factor: Sequence[float],
    mode: InterpolationMode,
    *,
    mask_value_thr: float = 0.0,
    allow_shape_rounding: bool = False,
) -> NDArray:
    """``data`` ``(C, X, Y, Z)`` resampled by ``scale_factor`` (output / input size per axis).

    Returns a new array of ``data``'s dtype, or ``data`` itself when every factor is 1.
    See the :mod:`lamina.volumetric.resample` documentation for what each mode computes.
    """
    data = _check_data(data)
    if mode not in _MODES:
        raise ValueError(f"resample: mode must be one of {', '.join(sorted(_MODES))}; got {mode!r}")
    factors = _check_factors(scale_factor)
    if isinstance(mask_value_thr, bool) or not isinstance(
        mask_value_thr, int | float | np.integer | np.floating
    ):
        raise ValueError(f"resample: mask_value_thr must be a number; got {mask_value_thr!r}")
    if math.isnan(mask_value_thr):
        raise ValueError("resample: mask_value_thr must be a number, not NaN")
    plans = tuple(
        _plan_axis(axis, n, f, allow_shape_rounding)
        for axis, n, f in zip(_AXES, data.shape[1:], factors, strict=True)
    )
    if all(p.kind == "same" for p in plans):
        return data
    if mode == "field":
        if data.shape[0] != 2:
            raise NotImplementedError(
                "resample: field mode supports 2-channel (x, y) displacement fields only; "
                f"got {data.shape[0]} channels"
            )
        if abs(factors[0] - factors[1]) > _TOL * max(factors[0], factors[1]):
            raise NotImplementedError(
                "resample: field mode needs equal x and y scale factors (displacements are "
                f"scaled by one factor); got {factors}"
            )
    if mode == "bicubic" and plans[2].kind != "same":
        raise NotImplementedError(
            f"resample: bicubic interpolates in x and y only; the z factor must be 1, got {factors}"
        )
    out_shape = (data.shape[0], *(p.n_out for p in plans))
    if data.size == 0 or 0 in out_shape:
        return np.empty(out_shape, dtype=data.dtype)

    return _in_threads(data, plans, mode, factors, float(mask_value_thr))
