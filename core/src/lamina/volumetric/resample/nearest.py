"""Repeats and index picks: the ``nearest`` modes, and upsampling by whole factors.

Upsampling by ``k`` repeats each voxel ``k`` times in every mode, in one copy;
``nearest`` and ``nearest-exact`` pick the source voxels torch picks, computed in
float64 so that factors that are ratios of resolutions land on whole voxels.
"""

from __future__ import annotations

import numpy as np

from lamina.volumetric.resample.arrays import NDArray, _empty_like_layout
from lamina.volumetric.resample.plan import _TOL, _Axis


def _repeat(data: NDArray, plans: tuple[_Axis, ...]) -> NDArray:
    """Repeat voxels ``k`` times along every upsampled axis, in one copy."""
    ks = [p.k if p.kind == "up" else 1 for p in plans]
    if ks == [1, 1, 1]:
        return data
    c, x, y, z = data.shape
    expanded = np.broadcast_to(
        data[:, :, None, :, None, :, None], (c, x, ks[0], y, ks[1], z, ks[2])
    )
    out = _empty_like_layout(data, (c, x * ks[0], y * ks[1], z * ks[2]), data.dtype)
    out.reshape(c, x, ks[0], y, ks[1], z, ks[2])[...] = expanded
    return out


def _pick_indices(p: _Axis, exact: bool) -> NDArray:
    """Source voxel of each output voxel for torch's ``nearest`` / ``nearest-exact``.

    ``floor(i / f)`` or ``floor((i + 1/2) / f)``, clamped to the input. Computed in
    float64 with a small tolerance, so that factors that are ratios of resolutions land
    on whole voxels as intended (torch's float32 index arithmetic can be one voxel off
    at such boundaries).
    """
    dst = np.arange(p.n_out, dtype=np.float64)
    if exact:
        dst += 0.5
    src = np.floor(dst / p.factor + _TOL).astype(np.intp)
    np.minimum(src, p.n_in - 1, out=src)
    return src


def _resample_nearest(data: NDArray, plans: tuple[_Axis, ...], exact: bool) -> NDArray:
    """``nearest`` / ``nearest-exact``: strided picks, index picks and repeats."""
    out = data
    copied = False
    for axis, p in enumerate(plans, start=1):
        if p.kind == "down":
            offset = p.k // 2 if exact else 0
            if (p.n_out - 1) * p.k + offset < p.n_in:
                sl: list[slice] = [slice(None)] * 4
                sl[axis] = slice(offset, offset + (p.n_out - 1) * p.k + 1, p.k)
                out = out[tuple(sl)]
            else:  # partial last block shorter than the offset: clamp into it
                idx = np.minimum(np.arange(p.n_out) * p.k + offset, p.n_in - 1)
                out, copied = np.take(out, idx, axis=axis), True
        elif p.kind == "frac":
            out, copied = np.take(out, _pick_indices(p, exact), axis=axis), True
    if any(p.kind == "up" for p in plans):
        return _repeat(out, plans)
    return out if copied else out.copy(order="K")
