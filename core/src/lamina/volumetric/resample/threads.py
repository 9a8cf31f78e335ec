"""Threads: numpy releases the GIL, so slabs of a large volume resample in parallel.

The slabs run on the process-wide pool ``"resample"`` of :mod:`lamina.concurrency`
(started on first need, grown when more threads are asked for, started again in a
forked child); ``LAMINA_RESAMPLE_THREADS`` sets the number of threads.
"""

from __future__ import annotations

import functools
import itertools
import os
from typing import Final

from lamina.concurrency import run_all, shared_pool
from lamina.volumetric.modes import InterpolationMode
from lamina.volumetric.resample.arrays import NDArray, _empty_like_layout, _spatial_order, _unsigned
from lamina.volumetric.resample.dispatch import _dispatch
from lamina.volumetric.resample.plan import (
    _AXES,
    _LINEAR,
    _Axis,
    _down_blocks,
    _linear_is_block_mean,
    _plan_axis,
)
from lamina.volumetric.resample.tinybrain_paths import (
    _tinybrain_mean_views,
    _tinybrain_mode_applies,
)

__all__ = ["resample_threads"]

# Below this many input bytes a volume is resampled in the calling thread.
_PARALLEL_MIN_BYTES: Final = 8 << 20


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

    tasks = [functools.partial(run, job, slab) for job, slab in zip(jobs, slabs, strict=True)]
    run_all(tasks, shared_pool("resample", workers))
    return out
