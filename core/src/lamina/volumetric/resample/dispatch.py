"""Which kernel resamples a volume, by mode and per-axis plan.

Called once per volume, or once per slab when the volume is split into threads, with
the arguments already checked; the kernels live in one module per family of modes.
"""

from __future__ import annotations

import numpy as np

from lamina.volumetric.modes import InterpolationMode
from lamina.volumetric.resample.arrays import NDArray
from lamina.volumetric.resample.mask import _resample_mask
from lamina.volumetric.resample.means import _mean_down, _resample_field
from lamina.volumetric.resample.nearest import _repeat, _resample_nearest
from lamina.volumetric.resample.plan import _LINEAR, _Axis, _linear_is_block_mean
from lamina.volumetric.resample.segmentation import _resample_segmentation
from lamina.volumetric.resample.torch import _resample_torch


def _dispatch(
    data: NDArray,
    plans: tuple[_Axis, ...],
    mode: InterpolationMode,
    factors: tuple[float, float, float],
    mask_value_thr: float,
    out: NDArray | None = None,
) -> NDArray:
    """Resample ``data`` along ``plans`` in ``mode`` (arguments already checked).

    ``out`` is a hint: the block-reduction paths write into it when it fits; callers
    check whether the result ``is out``.
    """
    if mode in ("nearest", "nearest-exact"):
        return _resample_nearest(data, plans, exact=mode == "nearest-exact")
    if mode == "segmentation":
        return _resample_segmentation(data, plans, out)
    if mode == "mask":
        return _resample_mask(data, plans, mask_value_thr)

    # Averaging and interpolating modes: booleans are computed as 0/1 bytes.
    work = data.view(np.uint8) if data.dtype == np.bool_ else data
    frac = any(p.kind == "frac" for p in plans)
    if mode == "field":
        scale = factors[0]
        out = (
            _resample_torch(work, plans, "trilinear", mode, factors, scale)
            if frac
            else _resample_field(work, plans, scale)
        )
    elif mode in ("img", "area") and not frac:
        out = _repeat(_mean_down(work, plans, out if work is data else None), plans)
    elif mode in _LINEAR and _linear_is_block_mean(plans):
        out = _mean_down(work, plans, out if work is data else None)
    elif mode == "area":
        out = _resample_torch(work, plans, "area", mode, factors, None)
    elif mode == "bicubic":
        out = _resample_torch(work, plans, "bicubic", mode, factors, None)
    else:  # img / linear family at non-whole factors, or linear upsampling
        out = _resample_torch(work, plans, "trilinear", mode, factors, None)
    return out != 0 if data.dtype == np.bool_ else out
