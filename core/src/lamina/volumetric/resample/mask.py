"""Mask: 1 where any voxel a block (or an output voxel's footprint) covers is above a threshold.

The threshold is strict and exact for every dtype, and the result is written in the
input dtype, so a mask resampled at any factor stays a 0/1 mask of its own type.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.volumetric.resample.arrays import NDArray
from lamina.volumetric.resample.blocks import _block_parts, _block_reduce, _Kernel
from lamina.volumetric.resample.nearest import _repeat
from lamina.volumetric.resample.plan import _TOL, _Axis, _down_blocks


def _threshold(data: NDArray, thr: float) -> NDArray:
    """``data > thr`` (strict), exact for every dtype."""
    if data.dtype == np.bool_:
        data = data.view(np.uint8)
    if data.dtype.kind == "f":
        above: NDArray = np.greater(data, np.float64(thr))
        return above
    info = np.iinfo(data.dtype)
    cut = math.floor(thr)  # for integers, x > thr exactly when x > floor(thr)
    if cut < info.min:
        return np.ones(data.shape, dtype=np.bool_)
    if cut >= info.max:
        return np.zeros(data.shape, dtype=np.bool_)
    above = np.greater(data, data.dtype.type(cut))
    return above


def _any_bins(m: NDArray, p: _Axis, axis: int) -> NDArray:
    """Along ``axis``: whether any voxel of each output voxel's footprint is set.

    Output voxel ``i`` covers input ``[i / f, (i + 1) / f)``, i.e. voxels
    ``floor(i / f)`` to ``ceil((i + 1) / f) - 1`` (at least one, clamped to the input).
    """
    i = np.arange(p.n_out, dtype=np.float64)
    start = np.floor(i / p.factor + _TOL).astype(np.intp)
    stop = np.ceil((i + 1) / p.factor - _TOL).astype(np.intp)
    np.minimum(start, p.n_in - 1, out=start)
    stop = np.clip(stop, start + 1, p.n_in)
    shape = list(m.shape)
    shape[axis] = 1
    counts = np.concatenate(
        [np.zeros(shape, dtype=np.int64), np.cumsum(m, axis=axis, dtype=np.int64)], axis=axis
    )
    hits: NDArray = np.take(counts, stop, axis=axis) > np.take(counts, start, axis=axis)
    return hits


def _resample_mask(data: NDArray, plans: tuple[_Axis, ...], thr: float) -> NDArray:
    """Mask: 1 where any voxel covered is ``> thr``, else 0, in the input dtype."""
    ks = _down_blocks(plans)
    if ks != (1, 1, 1):
        out = _block_reduce(data, ks, lambda ks: _threshold_any_kernel(thr), data.dtype)
    else:
        out = _threshold(data, thr)
    if any(p.kind == "frac" for p in plans):
        m = out.astype(np.bool_, copy=False)
        for axis, p in enumerate(plans, start=1):
            if p.kind == "frac":
                m = _any_bins(m, p, axis)
        out = m
    out = out.astype(data.dtype, copy=False)
    return _repeat(out, plans)


def _threshold_any_kernel(thr: float) -> _Kernel:
    def kernel(blk: NDArray, out: NDArray, ks: tuple[int, int, int]) -> None:
        parts = _block_parts(blk, ks)
        acc = _threshold(parts[0], thr)
        for part in parts[1:]:
            acc |= _threshold(part, thr)
        np.copyto(out, acc)

    return kernel
