"""Block means: the ``img``, ``area``, linear-family and ``field`` modes at whole factors.

Integers are summed exactly in the smallest wide enough type (64-bit values by a split
into quotient and remainder) and rounded half up; floats are summed in float64. Sums run
one block axis at a time, the slowest in memory first; tinybrain takes float 2x2x1 and
2x2x2 means where the layout allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lamina.volumetric.resample.arrays import NDArray, _cast_back, _empty_like_layout
from lamina.volumetric.resample.blocks import _block_parts, _block_reduce, _Kernel
from lamina.volumetric.resample.nearest import _repeat
from lamina.volumetric.resample.plan import _Axis, _down_blocks
from lamina.volumetric.resample.tinybrain_paths import _tinybrain_mean


def _accumulator(dtype: np.dtype[Any], n: int) -> np.dtype[Any] | None:
    """The smallest integer type holding a sum of ``n`` values plus ``n // 2``, if any."""
    info = np.iinfo(dtype)
    lo, hi = int(info.min) * n, int(info.max) * n + n // 2
    kind = "i" if dtype.kind == "i" else "u"
    for bits in (16, 32, 64):
        acc = np.iinfo(f"{kind}{bits // 8}")
        if bits > 8 * dtype.itemsize and acc.min <= lo and hi <= acc.max:
            return np.dtype(f"{kind}{bits // 8}")
    return None


class _BlockSums:
    """Block sums of ``blk`` (X', kx, Y', ky, Z', kz) as (X', Y', Z') ``acc_dtype`` arrays.

    Summed one block axis at a time, the slowest in memory first: those passes run over
    long contiguous rows, and each leaves less to add up in the next. The plan and the
    scratch arrays are made once per slab shape and reused (fresh large allocations
    page-fault, and Python overhead per slab adds up).
    """

    def __init__(self, acc_dtype: np.dtype[Any]) -> None:
        self.acc_dtype = acc_dtype
        self._plans: dict[tuple[Any, ...], list[tuple[NDArray, list[tuple[slice, ...]]]]] = {}

    def _plan(self, blk: NDArray) -> list[tuple[NDArray, list[tuple[slice, ...]]]]:
        shape = list(blk.shape)
        plan: list[tuple[NDArray, list[tuple[slice, ...]]]] = []
        axes = sorted(
            (ax for ax in (1, 3, 5) if shape[ax] > 1), key=lambda ax: -abs(blk.strides[ax])
        )
        for ax in axes or [1]:  # no block axis: a plain (casting) copy
            k = shape[ax]
            shape[ax] = 1
            lead = (slice(None),) * ax
            plan.append(
                (
                    _empty_like_layout(blk, shape, self.acc_dtype),
                    [(*lead, slice(i, i + 1)) for i in range(k)],
                )
            )
        return plan

    def __call__(self, blk: NDArray) -> NDArray:
        key = (blk.shape, blk.strides)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(blk)
        cur = blk
        for acc, index in plan:
            if len(index) > 1:  # the first pass also widens, inside the ufunc loop
                np.add(cur[index[0]], cur[index[1]], out=acc, dtype=acc.dtype)
                rest = index[2:]
            else:
                np.copyto(acc, cur[index[0]])
                rest = index[1:]
            for idx in rest:
                np.add(acc, cur[idx], out=acc)
            cur = acc
        return cur[:, 0, :, 0, :, 0]


def _int_mean_kernel(acc_dtype: np.dtype[Any]) -> Callable[[tuple[int, int, int]], _Kernel]:
    """Block means of integers, rounded half up, summed exactly in ``acc_dtype``."""

    def make(ks: tuple[int, int, int]) -> _Kernel:
        n = ks[0] * ks[1] * ks[2]
        shift = n.bit_length() - 1 if n & (n - 1) == 0 else None

        sums = _BlockSums(acc_dtype)

        def kernel(blk: NDArray, out: NDArray, ks: tuple[int, int, int]) -> None:
            acc = sums(blk)
            if n // 2:
                np.add(acc, n // 2, out=acc)
            if shift is not None:
                np.right_shift(acc, shift, out=out, casting="unsafe")
            else:
                np.floor_divide(acc, n, out=out, casting="unsafe")

        return kernel

    return make


def _int64_mean_kernel(ks: tuple[int, int, int]) -> _Kernel:
    """Block means of 64-bit integers, rounded half up, without overflow.

    Each value is split as ``q * n + r`` (floor division); the mean rounded half up is
    ``sum(q) + (sum(r) + n // 2) // n``. Intermediate wrap-around cancels out because the
    result is in range.
    """
    n = ks[0] * ks[1] * ks[2]
    shift = n.bit_length() - 1 if n & (n - 1) == 0 else None

    def kernel(blk: NDArray, out: NDArray, ks: tuple[int, int, int]) -> None:
        parts = _block_parts(blk, ks)
        q = np.zeros_like(out, dtype=blk.dtype)
        r = np.zeros_like(out, dtype=blk.dtype)
        for part in parts:
            if shift is not None:
                q += part >> shift
                r += part & (n - 1)
            else:
                q += part // n
                r += part % n
        r += n // 2
        r //= n
        np.add(q, r, out=out)

    return kernel


def _float_mean_kernel(ks: tuple[int, int, int]) -> _Kernel:
    """Block means accumulated in float64 (at least), cast to the output dtype."""
    n = ks[0] * ks[1] * ks[2]

    sums: _BlockSums | None = None

    def kernel(blk: NDArray, out: NDArray, ks: tuple[int, int, int]) -> None:
        nonlocal sums
        if sums is None:
            sums = _BlockSums(np.result_type(blk.dtype, np.float64))
        acc = sums(blk)
        np.divide(acc, n, out=out, casting="unsafe")

    return kernel


def _mean_down(data: NDArray, plans: tuple[_Axis, ...], out: NDArray | None = None) -> NDArray:
    """Block means over the downsampled axes (rounded half up for integers)."""
    ks = _down_blocks(plans)
    if ks == (1, 1, 1):
        return data
    fast = _tinybrain_mean(data, ks)
    if fast is not None:
        return fast
    n = ks[0] * ks[1] * ks[2]
    if data.dtype.kind == "f":
        return _block_reduce(data, ks, _float_mean_kernel, data.dtype, out)
    acc = _accumulator(data.dtype, n)
    if acc is None:
        return _block_reduce(data, ks, _int64_mean_kernel, data.dtype, out)
    return _block_reduce(data, ks, _int_mean_kernel(acc), data.dtype, out)


def _resample_field(data: NDArray, plans: tuple[_Axis, ...], scale: float) -> NDArray:
    """Field: float64 block means (or repeats), times ``scale``, cast back."""
    ks = _down_blocks(plans)
    mean = (
        _block_reduce(data, ks, _float_mean_kernel, np.float64)
        if ks != (1, 1, 1)
        else data.astype(np.float64)
    )
    return _cast_back(_repeat(mean, plans) * scale, data.dtype)
