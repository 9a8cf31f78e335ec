"""The block-reduction engine: a kernel applied to every ``kx * ky * kz`` block.

Means, mode pooling and mask thresholds all reduce blocks of voxels to one value. The
engine cuts the volume into slabs (so that temporaries stay in cache), handles a
partial last block per axis, and hands each slab to the kernel as a
``(X', kx, Y', ky, Z', kz)`` view.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from lamina.volumetric.resample.arrays import NDArray, _empty_like_layout

# Input bytes per slab in the numpy kernels: large enough that Python overhead per
# slab is small, small enough that temporaries stay in cache (1 MiB measured best).
_SLAB_BYTES: Final = 1 << 20

# A kernel reduces ``blk`` (X', kx, Y', ky, Z', kz) into ``out`` (X', Y', Z').
_Kernel = Callable[[NDArray, NDArray, tuple[int, int, int]], None]


def _block_parts(blk: NDArray, ks: tuple[int, int, int]) -> list[NDArray]:
    """The voxels of every block, one strided view per offset, x fastest."""
    kx, ky, kz = ks
    return [blk[:, i, :, j, :, m] for m in range(kz) for j in range(ky) for i in range(kx)]


def _segments(n: int, k: int) -> list[tuple[slice, slice, int]]:
    """(input slice, output slice, block size) covering an axis; the last may be partial."""
    whole = n // k
    segs = []
    if whole:
        segs.append((slice(0, whole * k), slice(0, whole), k))
    if n % k:
        segs.append((slice(whole * k, n), slice(whole, whole + 1), n % k))
    return segs


def _block_reduce(
    data: NDArray,
    ks: tuple[int, int, int],
    make_kernel: Callable[[tuple[int, int, int]], _Kernel],
    out_dtype: Any,
    out: NDArray | None = None,
) -> NDArray:
    """Reduce ``kx * ky * kz`` blocks of ``data`` (into ``out`` if given); a partial last
    block per axis is allowed."""
    c = data.shape[0]
    out_shape = (c, *(-(-n // k) for n, k in zip(data.shape[1:], ks, strict=True)))
    if out is None or out.shape != out_shape or out.dtype != np.dtype(out_dtype):
        out = _empty_like_layout(data, out_shape, out_dtype)
    per_axis = [_segments(n, k) for n, k in zip(data.shape[1:], ks, strict=True)]
    for combo in itertools.product(*per_axis):
        src = data[(slice(None), *(s[0] for s in combo))]
        dst = out[(slice(None), *(s[1] for s in combo))]
        sub_ks = (combo[0][2], combo[1][2], combo[2][2])
        _run_slabs(src, dst, sub_ks, make_kernel(sub_ks))
    return out


def _run_slabs(src: NDArray, dst: NDArray, ks: tuple[int, int, int], kernel: _Kernel) -> None:
    """Apply ``kernel`` channel by channel, in slabs along the slowest spatial axis."""
    for c in range(src.shape[0]):
        s3, d3 = src[c], dst[c]
        axis = max(range(3), key=lambda ax: (s3.shape[ax] > 1, abs(s3.strides[ax])))
        k = ks[axis]
        per_row = k * (s3.size // max(1, s3.shape[axis])) * s3.itemsize
        rows = max(1, _SLAB_BYTES // max(1, per_row))
        for o0 in range(0, d3.shape[axis], rows):
            o1 = min(d3.shape[axis], o0 + rows)
            sin: list[slice] = [slice(None)] * 3
            sout: list[slice] = [slice(None)] * 3
            sin[axis] = slice(o0 * k, o1 * k)
            sout[axis] = slice(o0, o1)
            sub, out3 = s3[tuple(sin)], d3[tuple(sout)]
            ox, oy, oz = out3.shape
            kernel(sub.reshape(ox, ks[0], oy, ks[1], oz, ks[2]), out3, ks)
