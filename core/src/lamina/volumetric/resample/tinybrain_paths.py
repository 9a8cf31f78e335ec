"""Where tinybrain's compiled kernels run instead of numpy's.

tinybrain pools 2x2x1 and 2x2x2 blocks faster than numpy for float means and for labels
in x-fastest layouts, but gives exactly the numpy kernels' answer only for some layouts
and dtypes; the checks of when it does and the calls are kept together here. tinybrain
holds the GIL, which the splitting into threads takes into account.
"""

from __future__ import annotations

import numpy as np
import tinybrain

from lamina.volumetric.resample.arrays import NDArray, _empty_like_layout, _spatial_order


def _tinybrain_ok(a: NDArray) -> bool:
    """tinybrain's stride arithmetic is unsigned: only positive strides are safe."""
    return all(s > 0 or n == 1 for s, n in zip(a.strides, a.shape, strict=True))


def _fortran_view(a3: NDArray, pooled: int) -> tuple[NDArray, tuple[int, ...]] | None:
    """``a3`` (X, Y, Z) transposed to be Fortran-contiguous with the pooled axes first.

    For 2x2x1 pooling (``pooled == 2``) x and y must be the two fastest axes; 2x2x2
    pooling is symmetric, so any order works. Returns the view and its axis order.
    """
    perm = tuple(sorted(range(3), key=lambda ax: (a3.shape[ax] == 1, abs(a3.strides[ax]), ax)))
    if pooled == 2 and set(perm[:2]) != {0, 1}:
        return None
    view = a3.transpose(perm)
    if not view.flags.f_contiguous or not _tinybrain_ok(view):
        return None
    return view, perm


def _tinybrain_mean_views(
    data: NDArray, ks: tuple[int, int, int]
) -> list[tuple[NDArray, tuple[int, ...]] | None] | None:
    """The per-channel views tinybrain's mean kernel can take, or None if it cannot run."""
    if data.dtype not in (np.float32, np.float64) or ks not in ((2, 2, 1), (2, 2, 2)):
        return None
    if any(n % 2 for n, k in zip(data.shape[1:], ks, strict=True) if k == 2):
        return None
    pooled = 3 if ks[2] == 2 else 2
    views = [_fortran_view(data[c], pooled) for c in range(data.shape[0])]
    return None if any(v is None for v in views) else views


def _tinybrain_mean(data: NDArray, ks: tuple[int, int, int]) -> NDArray | None:
    """2x2x1 / 2x2x2 float block means by tinybrain where the layout allows, else None.

    Floats only. tinybrain truncates integer means; rounding can be had by widening
    ``x`` to ``4x + 2`` (``8x + 4`` for 2x2x2), whose truncated mean is exactly
    ``sum + 2`` (``sum + 4``), then shifting right by 2 (3). Measured on 1024x1024x128
    uint8 and 512x512x128 8/16/32-bit volumes in C and Fortran order, that widening pass
    costs about as much as the whole numpy reduction, which came out as fast or faster in
    nearly every case, so integers take the numpy path.
    """
    views = _tinybrain_mean_views(data, ks)
    if views is None:
        return None
    pooled = 3 if ks[2] == 2 else 2
    out_shape = (data.shape[0], *(n // k for n, k in zip(data.shape[1:], ks, strict=True)))
    out = _empty_like_layout(data, out_shape, data.dtype)
    factor = (2, 2, 2) if pooled == 3 else (2, 2, 1)
    for c, fv in enumerate(views):
        assert fv is not None
        view, perm = fv
        out[c].transpose(perm)[...] = tinybrain.downsample_with_averaging(view, factor)[0]
    return out


def _tinybrain_mode_applies(bits: NDArray, ks: tuple[int, int, int]) -> bool:
    """Whether tinybrain's mode pooling gives exactly our answer for this layout."""
    if any(n % k for n, k in zip(bits.shape[1:], ks, strict=True)):
        return False
    if ks == (2, 2, 1):
        return set(_spatial_order(bits)[:2]) == {1, 2} and _tinybrain_ok(bits)
    if ks == (2, 2, 2):
        return all(bits[c].flags.f_contiguous for c in range(bits.shape[0]))
    return False


def _tinybrain_mode(bits: NDArray, ks: tuple[int, int, int]) -> NDArray | None:
    """tinybrain's mode pooling where it gives exactly our answer quickly, else None.

    2x2x1: COUNTLESS is symmetric in x and y, so any layout with x and y as the two
    fastest axes works (tinybrain reads through strides). 2x2x2: its tie rule is
    "first in memory order", which is ours only for x-fastest (Fortran) channels.
    """
    if not _tinybrain_mode_applies(bits, ks):
        return None
    if ks == (2, 2, 1):
        x_fast = abs(bits.strides[1]) <= abs(bits.strides[2])
        view = bits.transpose(1, 2, 3, 0) if x_fast else bits.transpose(2, 1, 3, 0)
        res = tinybrain.downsample_segmentation(view, (2, 2, 1))[0]
        res = res.reshape(view.shape[0] // 2, view.shape[1] // 2, *view.shape[2:])
        out: NDArray = res.transpose(3, 0, 1, 2) if x_fast else res.transpose(3, 1, 0, 2)
        return out
    if ks == (2, 2, 2):
        out_shape = (bits.shape[0], *(n // 2 for n in bits.shape[1:]))
        out = _empty_like_layout(bits, out_shape, bits.dtype)
        for c in range(bits.shape[0]):
            res = tinybrain.downsample_segmentation(bits[c], (2, 2, 2))[0]
            out[c] = res.reshape(out_shape[1:])
        return out
    return None
