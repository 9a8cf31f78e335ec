"""The arguments of :func:`~lamina.volumetric.resample.resample`, checked, and the per-axis plan.

Each spatial axis is classified once -- same size, downsampled by whole blocks,
upsampled by whole repeats, or a fractional factor -- together with its output size; the
kernels and the splitting into slabs work from that plan, not from the raw factors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from lamina.volumetric.resample.arrays import NDArray

_AXES: Final = ("x", "y", "z")
_LINEAR: Final = frozenset({"linear", "bilinear", "trilinear"})
# Tolerance for recognising whole-number factors and whole output sizes: resolution
# ratios such as 4 / 12 are not exact in floating point.
_TOL: Final = 1e-9


@dataclass(frozen=True)
class _Axis:
    """What happens along one spatial axis."""

    kind: Literal["same", "down", "up", "frac"]
    factor: float
    k: int  # block size (down) or repeat count (up); 1 otherwise
    n_in: int
    n_out: int


def _check_data(data: Any) -> NDArray:
    if not isinstance(data, np.ndarray):
        raise ValueError(
            f"resample: data must be a numpy array shaped (C, X, Y, Z); got {type(data).__name__}"
        )
    if data.ndim != 4:
        raise ValueError(
            "resample: data must have 4 dimensions (C, X, Y, Z); "
            f"got {data.ndim} (shape {tuple(data.shape)})"
        )
    if data.dtype.kind not in "biuf":
        raise ValueError(
            f"resample: data must have a boolean, integer or floating-point dtype; got {data.dtype}"
        )
    return data


def _check_factors(scale_factor: Any) -> tuple[float, float, float]:
    try:
        values = list(scale_factor)
    except TypeError:
        raise ValueError(
            "resample: scale_factor must be a sequence of 3 numbers (x, y, z); "
            f"got {scale_factor!r}"
        ) from None
    if len(values) != 3:
        raise ValueError(
            "resample: scale_factor must have 3 values (x, y, z); "
            f"got {len(values)}: {scale_factor!r}"
        )
    out = []
    for axis, value in zip(_AXES, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ValueError(
                f"resample: scale_factor {axis} must be a number; got {value!r} in {scale_factor!r}"
            )
        f = float(value)
        if not math.isfinite(f) or f <= 0:
            raise ValueError(
                f"resample: scale_factor {axis} must be a finite number > 0; "
                f"got {value!r} in {scale_factor!r}"
            )
        out.append(f)
    return out[0], out[1], out[2]


def _plan_axis(axis: str, n: int, f: float, allow_rounding: bool) -> _Axis:
    """Classify one axis and compute its output size (or refuse a fractional one)."""
    if abs(f - 1.0) <= _TOL:
        return _Axis("same", 1.0, 1, n, n)
    if f < 1.0:
        k = round(1.0 / f)
        if k >= 2 and abs(k * f - 1.0) <= _TOL:
            if n % k and not allow_rounding:
                raise ValueError(
                    f"resample: {axis} size {n} is not divisible by the downsampling block "
                    f"{k} (scale factor {f:g}); pass allow_shape_rounding=True (on a layer: "
                    f"allow_slice_rounding=True) to round the output size up to {-(-n // k)}"
                )
            return _Axis("down", f, k, n, -(-n // k))
    else:
        k = round(f)
        if abs(f - k) <= _TOL * k:
            return _Axis("up", f, k, n, n * k)
    size = n * f
    whole = round(size)
    if abs(size - whole) <= 1e-6:
        return _Axis("frac", f, 1, n, whole)
    if not allow_rounding:
        raise ValueError(
            f"resample: {axis} size {n} times scale factor {f:g} is {size:g}, not a whole "
            "number of voxels; pass allow_shape_rounding=True (on a layer: "
            f"allow_slice_rounding=True) to round the output size up to {math.ceil(size)}"
        )
    return _Axis("frac", f, 1, n, math.ceil(size))


def _down_blocks(plans: tuple[_Axis, ...]) -> tuple[int, int, int]:
    """Block size per axis: ``k`` on downsampled axes, 1 elsewhere."""
    x, y, z = (p.k if p.kind == "down" else 1 for p in plans)
    return x, y, z


def _linear_is_block_mean(plans: tuple[_Axis, ...]) -> bool:
    """Whether linear-family resampling is the block mean here (see the
    :mod:`lamina.volumetric.resample` documentation)."""
    if any(p.kind not in ("same", "down") for p in plans):
        return False
    ks = [p.k for p in plans]
    if all(k in (1, 2) for k in ks):
        return True
    kx, ky, kz = ks
    return kx == ky and kx in (2, 4, 8, 16) and kz in (1, kx)
