"""Resampling of channels-first volumes ``(C, X, Y, Z)`` by a per-axis scale factor.

``resample(data, scale_factor, mode)`` is what a layer with ``data_resolution`` uses to
move data between the stored and the requested resolution. ``scale_factor[i]`` is the
output size over the input size along spatial axis ``i`` (x, y, z): ``(0.5, 0.5, 1)``
halves x and y.

What runs where:

* A factor of 1 on every axis returns ``data`` itself: no copy, no dtype change (W20, U1).
* Whole-number factors (``1/k`` down, ``k`` up, mixed over the axes) in the ``img``,
  ``area``, ``field``, ``segmentation``, ``mask``, ``nearest`` and ``nearest-exact``
  modes are computed exactly with numpy (tinybrain where its compiled kernels are
  faster: float means, mode pooling in x-fastest layouts); torch is not needed.
  Upsampling by ``k`` repeats each voxel ``k`` times in all of these modes (the reference
  interpolated ``img`` linearly; a repeat keeps values exact and needs no torch).
* ``nearest``, ``nearest-exact``, ``segmentation`` and ``mask`` never need torch, at any
  factor: they only pick or threshold values, so ids of any dtype stay exact (uint64 ids
  at or above 2**63 included, U6).
* ``img``, ``area`` and ``field`` at non-whole factors, ``bicubic``, and the linear modes
  except for the block means below, interpolate with ``torch.nn.functional.interpolate``;
  torch is imported only then and, if it is missing, :class:`TorchUnavailableError`
  says how to get it.

Mode by mode, for downsampling by blocks of ``kx * ky * kz`` voxels:

* ``img``, ``area``: the block mean. Integer dtypes are rounded half up, i.e. to
  ``floor(mean + 1/2)`` (also for negative values: -0.5 -> 0, -1.5 -> -1), not truncated
  as the reference does (W21). Floats are averaged in float64 and cast back.
* ``linear``, ``bilinear``, ``trilinear``: the block mean where that is what the
  reference computes (all blocks 2 wide, where it equals torch's linear interpolation,
  and its tinybrain shortcut for factors (1/2^i, 1/2^i, 1) and (1/2^i, 1/2^i, 1/2^i),
  i = 1..4, D8); otherwise torch's ``trilinear`` (``align_corners=False``) over x, y, z,
  whichever of the three names is given.
* ``bicubic``: torch's bicubic in x and y, plane by plane; the z factor must be 1.
* ``segmentation``: the most frequent value of each block, compared bit for bit. Ties:
  for 2x2x1 blocks tinybrain's COUNTLESS rule (with a, b, c, d the voxels at
  (0,0), (1,0), (0,1), (1,1): a if a == b or a == c, else b if b == c, else d); for every
  other block the tied value seen first in x-fastest order (x, then y, then z), which is
  also what tinybrain's 2x2x2 kernel picks. The result never depends on memory layout.
  At non-whole factors: the ``nearest-exact`` pick.
* ``mask``: 1 (in the input dtype) where any voxel of the block is ``> mask_value_thr``
  (strict), else 0; at non-whole factors, any voxel the output voxel overlaps. Upsampled
  masks are thresholded the same way (D12). (The reference thresholds the *mean*; the
  two agree for the usual threshold 0 on non-negative masks.)
* ``field``: 2-channel displacement fields (in voxels): the block mean (or repeat) in
  float64 times the x factor (x and y factors must be equal), cast back to the input
  dtype; at non-whole factors torch's trilinear interpolation, times the factor.
* ``nearest``: the first voxel of each block; ``nearest-exact``: the voxel at offset
  ``k // 2`` -- both as torch picks them, at any factor.

Volumes of 8 MiB and more are resampled in slabs along their slowest spatial axis, one
thread per slab (numpy releases the GIL; each slab holds whole blocks, so the result is
the same); ``LAMINA_RESAMPLE_THREADS`` sets the number of threads (default: the CPUs
this process may use; 1 turns threads off).

Shapes not divisible by a block size are refused unless ``allow_shape_rounding=True``
(a layer's ``allow_slice_rounding``). With it, an output axis has ``ceil(n * factor)``
voxels -- the size of an index whose start is floored and whose stop is ceiled -- the
blocks start at voxel 0 and the last one is partial: its mean, mode or "any" is taken
over the voxels it has, its ``nearest-exact`` pick is clamped into it. At non-whole
factors voxel ``i`` of the output samples the input at ``(i + 1/2) / factor - 1/2``
(``align_corners=False``), and the extra voxel, if any, continues past the end with the
edge value, as torch's clamping would.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt
import tinybrain

from lamina.volumetric.modes import InterpolationMode

__all__ = [
    "InterpolationMode",
    "TorchUnavailableError",
    "resample",
    "resample_threads",
]

NDArray = npt.NDArray[Any]


_MODES: Final = frozenset(get_args(InterpolationMode))
_AXES: Final = ("x", "y", "z")
_LINEAR: Final = frozenset({"linear", "bilinear", "trilinear"})
# Tolerance for recognising whole-number factors and whole output sizes: resolution
# ratios such as 4 / 12 are not exact in floating point.
_TOL: Final = 1e-9
# Input bytes per chunk in the numpy kernels: large enough that Python overhead per
# chunk is small, small enough that temporaries stay in cache (1 MiB measured best).
_CHUNK: Final = 1 << 20


class TorchUnavailableError(ImportError):
    """torch is needed for the interpolation asked for, and it is not installed."""


def _import_torch() -> Any:
    """The torch module (imported here only, never when this module is imported)."""
    import torch

    return torch


def _require_torch(mode: str, factors: tuple[float, float, float]) -> Any:
    """torch, or a :class:`TorchUnavailableError` that says how to install it."""
    try:
        return _import_torch()
    except ImportError as exc:
        raise TorchUnavailableError(
            f"resample(mode={mode!r}, scale_factor={factors}) interpolates with torch, "
            "which is not installed; install it with `pip install lamina[torch]`. "
            "Without torch: whole-number factors in the img, area and field modes, "
            "halving in the linear modes, and the nearest, nearest-exact, segmentation "
            "and mask modes at any factor."
        ) from exc


# --------------------------------------------------------------------------------------
# Arguments and the per-axis plan


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


# --------------------------------------------------------------------------------------
# Public entry point


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
    See the module documentation for what each mode computes.
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


# --------------------------------------------------------------------------------------
# Threads: numpy releases the GIL, so slabs of a large volume resample in parallel.

# Below this many input bytes a volume is resampled in the calling thread.
_PARALLEL_MIN_BYTES: Final = 8 << 20
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def resample_threads() -> int:
    """Threads a large resampling uses: ``LAMINA_RESAMPLE_THREADS``, else the CPU count."""
    value = os.environ.get("LAMINA_RESAMPLE_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(
                f"LAMINA_RESAMPLE_THREADS must be a whole number; got {value!r}"
            ) from None
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _tinybrain_runs(data: NDArray, plans: tuple[_Axis, ...], mode: str) -> bool:
    """Whether the whole call goes to tinybrain, which holds the GIL: threads cannot help."""
    ks = _down_blocks(plans)
    if any(p.kind in ("up", "frac") for p in plans):
        return False
    if mode == "segmentation":
        return data.dtype.itemsize in (1, 2, 4, 8) and _tinybrain_mode_applies(_unsigned(data), ks)
    if mode in ("img", "area") or (mode in _LINEAR and _linear_is_block_mean(plans)):
        return _tinybrain_mean_views(data, ks) is not None
    return False


def _forget_pool_after_fork() -> None:
    """A forked child inherits the pool object but not its threads: start afresh."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lamina-resample")
        return _pool


def _in_threads(
    data: NDArray,
    plans: tuple[_Axis, ...],
    mode: InterpolationMode,
    factors: tuple[float, float, float],
    mask_value_thr: float,
) -> NDArray:
    """Resample in slabs along the slowest spatial axis, one thread per slab.

    Slabs hold whole blocks, so the result is the same as one call over the whole
    volume (each output voxel depends on its own block only). Fractional axes need the
    whole extent, so they are never split.
    """
    workers = resample_threads()
    if workers < 2 or data.nbytes < _PARALLEL_MIN_BYTES or _tinybrain_runs(data, plans, mode):
        return _dispatch(data, plans, mode, factors, mask_value_thr)
    axis = next((ax for ax in reversed(_spatial_order(data)) if plans[ax - 1].kind != "frac"), None)
    if axis is None:
        return _dispatch(data, plans, mode, factors, mask_value_thr)
    plan = plans[axis - 1]
    step = plan.k if plan.kind == "down" else 1
    blocks = -(-plan.n_in // step)
    if blocks < workers:
        return _dispatch(data, plans, mode, factors, mask_value_thr)
    bounds = [round(i * blocks / workers) for i in range(workers + 1)]
    jobs = []
    for b0, b1 in itertools.pairwise(bounds):
        lo, hi = b0 * step, min(plan.n_in, b1 * step)
        piece = data[(slice(None),) * axis + (slice(lo, hi),)]
        sliced = list(plans)
        sliced[axis - 1] = _plan_axis(_AXES[axis - 1], hi - lo, plan.factor, True)
        jobs.append((piece, tuple(sliced)))
    out_shape = (data.shape[0], *(p.n_out for p in plans))
    out = _empty_like_layout(data, out_shape, data.dtype)
    slabs, start = [], 0
    for _, piece_plans in jobs:
        stop = start + piece_plans[axis - 1].n_out
        slabs.append(out[(slice(None),) * axis + (slice(start, stop),)])
        start = stop

    def run(job: tuple[NDArray, tuple[_Axis, ...]], slab: NDArray) -> None:
        result = _dispatch(job[0], job[1], mode, factors, mask_value_thr, slab)
        if result is not slab:
            slab[...] = result

    pool = _thread_pool(workers)
    for future in [pool.submit(run, job, slab) for job, slab in zip(jobs, slabs, strict=True)]:
        future.result()
    return out


def _down_blocks(plans: tuple[_Axis, ...]) -> tuple[int, int, int]:
    """Block size per axis: ``k`` on downsampled axes, 1 elsewhere."""
    x, y, z = (p.k if p.kind == "down" else 1 for p in plans)
    return x, y, z


def _linear_is_block_mean(plans: tuple[_Axis, ...]) -> bool:
    """Whether linear-family resampling is the block mean here (see module docs)."""
    if any(p.kind not in ("same", "down") for p in plans):
        return False
    ks = [p.k for p in plans]
    if all(k in (1, 2) for k in ks):
        return True
    kx, ky, kz = ks
    return kx == ky and kx in (2, 4, 8, 16) and kz in (1, kx)


# --------------------------------------------------------------------------------------
# Layout helpers


def _empty_like_layout(ref: NDArray, shape: Sequence[int], dtype: Any) -> NDArray:
    """An uninitialised array of ``shape`` whose axes are ordered in memory like ``ref``'s."""
    order = sorted(
        range(ref.ndim),
        key=lambda ax: (0 if ref.shape[ax] == 1 else 1, -abs(ref.strides[ax]), ax),
    )
    if order == list(range(ref.ndim)):
        return np.empty(tuple(shape), dtype=dtype)
    tmp = np.empty(tuple(shape[ax] for ax in order), dtype=dtype)
    return tmp.transpose(np.argsort(order))


def _spatial_order(a: NDArray) -> list[int]:
    """Spatial axes (1, 2, 3) of a ``(C, X, Y, Z)`` array, fastest-varying first (size 1 last)."""
    return sorted((1, 2, 3), key=lambda ax: (a.shape[ax] == 1, abs(a.strides[ax]), ax))


def _unsigned(a: NDArray) -> NDArray:
    """``a`` viewed as the unsigned integer type of its width (exact bit patterns)."""
    if a.dtype.itemsize not in (1, 2, 4, 8):
        raise ValueError(
            f"resample: values of dtype {a.dtype} cannot be compared bit for bit "
            "(only 1, 2, 4 and 8-byte types)"
        )
    return a.view(f"u{a.dtype.itemsize}")


def _tinybrain_ok(a: NDArray) -> bool:
    """tinybrain's stride arithmetic is unsigned: only positive strides are safe."""
    return all(s > 0 or n == 1 for s, n in zip(a.strides, a.shape, strict=True))


# --------------------------------------------------------------------------------------
# The chunked block-reduction engine

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
        _run_chunks(src, dst, sub_ks, make_kernel(sub_ks))
    return out


def _run_chunks(src: NDArray, dst: NDArray, ks: tuple[int, int, int], kernel: _Kernel) -> None:
    """Apply ``kernel`` channel by channel, in slabs along the slowest spatial axis."""
    for c in range(src.shape[0]):
        s3, d3 = src[c], dst[c]
        axis = max(range(3), key=lambda ax: (s3.shape[ax] > 1, abs(s3.strides[ax])))
        k = ks[axis]
        per_row = k * (s3.size // max(1, s3.shape[axis])) * s3.itemsize
        rows = max(1, _CHUNK // max(1, per_row))
        for o0 in range(0, d3.shape[axis], rows):
            o1 = min(d3.shape[axis], o0 + rows)
            sin: list[slice] = [slice(None)] * 3
            sout: list[slice] = [slice(None)] * 3
            sin[axis] = slice(o0 * k, o1 * k)
            sout[axis] = slice(o0, o1)
            sub, out3 = s3[tuple(sin)], d3[tuple(sout)]
            ox, oy, oz = out3.shape
            kernel(sub.reshape(ox, ks[0], oy, ks[1], oz, ks[2]), out3, ks)


# --------------------------------------------------------------------------------------
# Means (img, area, linear family, field)


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
    scratch arrays are made once per chunk shape and reused (fresh large allocations
    page-fault, and Python overhead per chunk adds up).
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


def _resample_field(data: NDArray, plans: tuple[_Axis, ...], scale: float) -> NDArray:
    """Field: float64 block means (or repeats), times ``scale``, cast back."""
    ks = _down_blocks(plans)
    mean = (
        _block_reduce(data, ks, _float_mean_kernel, np.float64)
        if ks != (1, 1, 1)
        else data.astype(np.float64)
    )
    return _cast_back(_repeat(mean, plans) * scale, data.dtype)


def _cast_back(values: NDArray, dtype: np.dtype[Any]) -> NDArray:
    """Float results to ``dtype``: integers rounded half up and clipped to its range."""
    if dtype.kind == "f":
        return values.astype(dtype, copy=False)
    values = np.floor(values + 0.5)
    info = np.iinfo(dtype)
    lo, hi = float(info.min), float(info.max)
    if hi > info.max:  # 2**63 - 1 and 2**64 - 1 round up to a power of two as floats
        hi = float(np.nextafter(hi, -np.inf))
    np.clip(values, lo, hi, out=values)
    return values.astype(dtype)


# --------------------------------------------------------------------------------------
# Repeats and index picks (nearest modes, upsampling)


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


# --------------------------------------------------------------------------------------
# Segmentation


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


# --------------------------------------------------------------------------------------
# Mask


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


# --------------------------------------------------------------------------------------
# torch


def _resample_torch(
    data: NDArray,
    plans: tuple[_Axis, ...],
    mode: Literal["trilinear", "bicubic", "area"],
    asked: str,
    factors: tuple[float, float, float],
    field_scale: float | None,
) -> NDArray:
    """Interpolate with torch (``align_corners=False``) and cast back to ``data``'s dtype.

    Values are computed in float32, or float64 for 32/64-bit integers and float64 data
    (so integers up to 2**53 stay exact). The input is edge-padded at the end and the
    result cropped, so output sizes are ours (whole or rounded up) rather than torch's
    ``floor(n * f)``, while coordinates follow ``scale_factor`` exactly.
    """
    torch = _require_torch(asked, factors)
    functional = torch.nn.functional
    wide = data.dtype == np.float64 or (data.dtype.kind in "iu" and data.dtype.itemsize >= 4)
    work = data.astype(np.float64 if wide else np.float32)
    out_size = [p.n_out for p in plans]
    if mode == "area":
        src = torch.from_numpy(np.ascontiguousarray(work))[None]
        res = functional.interpolate(src, size=tuple(out_size), mode="area")[0]
    else:
        pad = [(0, 0)] + [
            (0, 0 if p.kind == "same" else math.ceil(1.0 / p.factor) + 1) for p in plans
        ]
        work = np.ascontiguousarray(np.pad(work, pad, mode="edge"))
        src = torch.from_numpy(work)
        if mode == "bicubic":
            res = functional.interpolate(
                src.permute(3, 0, 1, 2),
                scale_factor=(factors[0], factors[1]),
                mode="bicubic",
                align_corners=False,
                recompute_scale_factor=False,
            ).permute(1, 2, 3, 0)
        else:
            res = functional.interpolate(
                src[None],
                scale_factor=factors,
                mode="trilinear",
                align_corners=False,
                recompute_scale_factor=False,
            )[0]
        res = res[:, : out_size[0], : out_size[1], : out_size[2]]
    values: NDArray = res.contiguous().numpy()
    if tuple(values.shape[1:]) != tuple(out_size):  # pragma: no cover - torch contract
        raise RuntimeError(f"torch interpolation gave {values.shape}, expected {out_size}")
    if field_scale is not None:
        values = values * field_scale
    return _cast_back(values, data.dtype)
