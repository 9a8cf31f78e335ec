"""Segmentation: the most frequent label of each block, compared bit for bit.

Labels are viewed as unsigned integers of their width, so ids of any dtype stay exact.
2x2x1 blocks follow tinybrain's COUNTLESS rule, other small blocks are counted pairwise
and large blocks sorted; ties go to the value seen first in x-fastest order, so the
result never depends on the memory layout.
"""

from __future__ import annotations

import numpy as np

from lamina.volumetric.resample.arrays import NDArray, _unsigned
from lamina.volumetric.resample.blocks import _block_parts, _block_reduce, _Kernel
from lamina.volumetric.resample.nearest import _pick_indices, _repeat
from lamina.volumetric.resample.plan import _Axis, _down_blocks
from lamina.volumetric.resample.tinybrain_paths import _tinybrain_mode


def _resample_segmentation(
    data: NDArray, plans: tuple[_Axis, ...], out: NDArray | None = None
) -> NDArray:
    """Segmentation: block modes down, ``nearest-exact`` picks at other factors, repeats up."""
    bits = _unsigned(data)
    ks = _down_blocks(plans)
    out = bits
    if ks != (1, 1, 1):
        fast = _tinybrain_mode(bits, ks)
        dest = None if out is None else _unsigned(out)
        out = (
            fast
            if fast is not None
            else _block_reduce(
                bits, ks, lambda ks: _mode_kernel(ks, bits.dtype.itemsize), bits.dtype, dest
            )
        )
    for axis, p in enumerate(plans, start=1):
        if p.kind == "frac":
            out = np.take(out, _pick_indices(p, exact=True), axis=axis)
    return _repeat(out, plans).view(data.dtype)


def _select(mask: NDArray, if_true: NDArray, if_false: NDArray, out: NDArray) -> None:
    """``out = mask ? if_true : if_false`` for unsigned ints, branch-free (bitwise)."""
    if if_true.dtype.itemsize == 1:
        full = mask.view(np.uint8)
        np.negative(full, out=full)  # 1 -> 0xFF
    else:
        full = mask.astype(if_true.dtype)
        np.negative(full, out=full)
    np.bitwise_xor(if_true, if_false, out=out)
    out &= full
    out ^= if_false


class _CountlessMasked:
    """2x2x1 mode by the COUNTLESS rule: a if a==b or a==c, else b if b==c, else d.

    Three masked copies into ``out`` straight from the strided corner views (no compact
    copies of the corners), with the two mask buffers reused from chunk to chunk; the
    faster form for 4- and 8-byte labels.
    """

    def __init__(self) -> None:
        self._masks: dict[tuple[int, ...], tuple[NDArray, NDArray]] = {}

    def __call__(self, blk: NDArray, out: NDArray, ks: tuple[int, int, int]) -> None:
        masks = self._masks.get(out.shape)
        if masks is None:
            masks = self._masks[out.shape] = (
                np.empty(out.shape, np.bool_),
                np.empty(out.shape, np.bool_),
            )
        m1, m2 = masks
        a, b, c, d = (part.reshape(out.shape) for part in _block_parts(blk, ks))
        np.copyto(out, d)
        np.equal(b, c, out=m1)
        np.copyto(out, b, where=m1)
        np.equal(a, b, out=m1)
        np.equal(a, c, out=m2)
        m1 |= m2
        np.copyto(out, a, where=m1)


class _CountlessBitwise:
    """2x2x1 mode by the COUNTLESS rule (see :class:`_CountlessMasked`), for 1- and
    2-byte labels: branch-free bitwise selects on compact copies of the four corners,
    with scratch arrays reused from chunk to chunk (faster than masked copies there).
    """

    def __init__(self) -> None:
        self._scratch: dict[tuple[int, ...], list[NDArray]] = {}

    def __call__(self, blk: NDArray, out: NDArray, ks: tuple[int, int, int]) -> None:
        shape = out.shape
        bufs = self._scratch.get(shape)
        if bufs is None:
            bufs = self._scratch[shape] = [np.empty_like(out, blk.dtype) for _ in range(6)] + [
                np.empty_like(out, np.bool_) for _ in range(2)
            ]
        a, b, c, d, t, full, m1, m2 = bufs
        for dst, src in zip((a, b, c, d), _block_parts(blk, ks), strict=True):
            np.copyto(dst, src)
        # d = b if b == c else d
        np.equal(b, c, out=m1)
        _full_mask(m1, full)
        np.bitwise_xor(b, d, out=t)
        t &= full
        d ^= t
        # out = a if a == b or a == c else d
        np.equal(a, b, out=m1)
        np.equal(a, c, out=m2)
        m1 |= m2
        _full_mask(m1, full)
        np.bitwise_xor(a, d, out=t)
        t &= full
        np.bitwise_xor(d, t, out=out)


def _full_mask(mask: NDArray, out: NDArray) -> None:
    """``out`` = all bits set where ``mask``, else 0 (``out`` unsigned)."""
    if out.dtype.itemsize == 1:
        np.negative(mask.view(np.uint8), out=out)
    else:
        np.copyto(out, mask)
        np.negative(out, out=out)


def _first_mode_kernel(blk: NDArray, out: NDArray, ks: tuple[int, int, int]) -> None:
    """Mode of small blocks by pairwise counts; ties go to the value seen first."""
    parts = [p.copy(order="K") for p in _block_parts(blk, ks)]
    n = len(parts)
    counts = [np.zeros_like(parts[0], dtype=np.uint8) for _ in range(n)]
    eq = np.empty_like(parts[0], dtype=np.bool_)
    for t in range(n):
        for p in range(t + 1, n):
            np.equal(parts[t], parts[p], out=eq)
            counts[t] += eq
            counts[p] += eq
    best = counts[0]
    res = parts[0].copy()
    tmp = np.empty_like(res)
    for t in range(1, n):
        better = np.greater(counts[t], best)
        _select(better, parts[t], res, tmp)
        res, tmp = tmp, res
        np.maximum(best, counts[t], out=best)
    np.copyto(out, res)


def _sort_mode_kernel(blk: NDArray, out: NDArray, ks: tuple[int, int, int]) -> None:
    """Mode of large blocks by sorting; ties go to the value seen first."""
    n = ks[0] * ks[1] * ks[2]
    vals = np.stack([p.reshape(-1) for p in _block_parts(blk, ks)], axis=1)  # (M, n)
    order = np.argsort(vals, axis=1, kind="stable")
    srt = np.take_along_axis(vals, order, axis=1)
    pos = np.arange(n)
    start = np.ones(srt.shape, dtype=np.bool_)
    start[:, 1:] = srt[:, 1:] != srt[:, :-1]
    run_start = np.maximum.accumulate(np.where(start, pos, 0), axis=1)
    run_len = pos - run_start + 1
    first_seen = np.take_along_axis(order, run_start, axis=1)
    # Longest run first, then the run whose value appears earliest in the block.
    key = run_len * (n + 1) + (n - first_seen)
    best = np.argmax(key, axis=1)
    out[...] = np.take_along_axis(srt, best[:, None], axis=1).reshape(out.shape)


def _mode_kernel(ks: tuple[int, int, int], itemsize: int) -> _Kernel:
    """The block-mode kernel for ``ks`` blocks of ``itemsize``-byte labels."""
    n = ks[0] * ks[1] * ks[2]
    if ks == (2, 2, 1):
        return _CountlessBitwise() if itemsize <= 2 else _CountlessMasked()
    if n == 1:
        return lambda blk, out, ks: np.copyto(out, blk.reshape(out.shape))
    return _first_mode_kernel if n <= 16 else _sort_mode_kernel
