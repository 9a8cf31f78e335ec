"""``apply``: a function block by block, from source layers into a destination layer.

Each task reads every source over its box padded by ``context`` voxels, calls ``fn``
with the padded numpy ``(C, X, Y, Z)`` arrays (positionally for a list of sources, by
name for a mapping), crops the padded result back to the box and writes it. ``fn`` is
a callable or the name of a registered processor (built with no arguments); to run on
other processes (``processes``, ``dask``) it must pickle — a module-level function, a
processor object or a name. A run is known by ``fn``'s identity, the same in every
process (:mod:`lamina.flows.identity`), so ``resume=True`` finds its journal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Unpack

import attrs
import numpy as np

from lamina.flows.checks import (
    FlowArgumentError,
    check_region,
    check_resolution,
    check_run_options,
    check_writable,
)
from lamina.flows.engine import run_tasks
from lamina.flows.grid import task_grid, volumetric_backend
from lamina.flows.identity import callable_identity
from lamina.flows.options import RunOptions, check_executor_reaches
from lamina.flows.progress import RunSummary, StorageChunks
from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = ["ApplyChunk", "ApplyTask", "apply"]


def _resolve(fn: Any) -> Callable[..., Any]:
    if isinstance(fn, str):
        from lamina.specs import get_builder

        found = get_builder(fn)
        if not isinstance(found, type):
            return found
        try:
            return found()  # type: ignore[no-any-return]
        except TypeError as exc:
            raise TypeError(
                f"the processor {fn!r} cannot be built without arguments ({exc}); pass it "
                f'built, e.g. lamina.build({{"@type": "{fn}", ...}}) or in a spec'
            ) from None
    if not callable(fn) and not _is_joint(fn):
        raise TypeError(
            f"fn must be a callable, a processor or the name of a registered processor; got "
            f"{type(fn).__name__} {fn!r}"
        )
    return fn  # type: ignore[no-any-return]


def _is_joint(fn: Any) -> bool:
    """A joint index/data processor (``process_index`` + ``process_data``)."""
    return hasattr(fn, "process_index") and hasattr(fn, "process_data")


@attrs.frozen
class ApplyTask:
    """One apply task: read the padded sources, call ``fn``, crop, write."""

    fn: Any
    sources: tuple[Any, ...] | dict[str, Any]
    dst: Any
    context: Vec3D[int]

    def __call__(self, idx: VolumetricIndex) -> int:
        fn: Any = _resolve(self.fn)
        padded = idx.padded(self.context)
        if _is_joint(fn):  # a joint processor: its read step on the one source
            (source,) = self.sources.values() if isinstance(self.sources, dict) else self.sources
            _, state = fn.process_index(padded, "read")
            result = fn.process_data(source[padded], "read", state)
        elif isinstance(self.sources, dict):
            result = fn(**{name: layer[padded] for name, layer in self.sources.items()})
        else:
            result = fn(*(layer[padded] for layer in self.sources))
        result = np.asarray(result)
        want = tuple(padded.shape)
        if result.ndim != 4 or tuple(result.shape[1:]) != want:
            raise ValueError(
                f"fn returned an array of shape {result.shape}; expected (C, {want[0]}, "
                f"{want[1]}, {want[2]}): the padded (C, X, Y, Z) block of task "
                f"{idx.pformat()} with context {self.context.pformat()}"
            )
        c = self.context
        cropped = result[:, c[0] : c[0] + idx.shape[0], c[1] : c[1] + idx.shape[1]]
        cropped = cropped[..., c[2] : c[2] + idx.shape[2]]
        self.dst[idx] = cropped
        return int(cropped.nbytes)


#: The old name of :class:`ApplyTask` (the same class), kept for callers.
ApplyChunk = ApplyTask


def _layer_name(layer: Any) -> str:
    backend = getattr(layer, "backend", None)
    return str(getattr(backend, "name", type(layer).__name__))


def apply(
    fn: Callable[..., Any] | str,
    sources: Any,
    dst: Any,
    bbox: BBox3D | None = None,
    resolution: RawVec3D | None = None,
    chunk_size: RawVec3D | None = None,
    context: int | RawVec3D = 0,
    **run: Unpack[RunOptions],
) -> RunSummary:
    """Write ``fn(sources...)`` into ``dst`` over ``bbox`` at ``resolution``, task by task.

    Every argument is checked before anything is written. The run is known by ``fn``'s
    identity (:func:`lamina.flows.identity.callable_identity`: a function by its module
    and name, a callable object by its class and a digest of its pickled state), so
    ``resume=True`` finds it from any process; ``run_id=`` names it instead.

    Args:
        fn: ``fn(*padded_arrays) -> padded array`` (or ``fn(**{name: array})`` when
            ``sources`` is a mapping), a processor (a joint processor's read step runs
            on the one source), or a registered processor's name.
        sources: a layer, a sequence of layers or a mapping name → layer.
        dst: the volumetric layer written (its write grid shapes the tasks).
        bbox: the region (nm); default: ``dst``'s bounds at ``resolution``.
        resolution: one of ``dst``'s scales; default: its finest.
        chunk_size: voxels of one task, a multiple of ``dst``'s write grid.
        context: voxels of padding around each task's box (one number or x, y, z).
        run: how it runs (:class:`lamina.flows.options.RunOptions`).
    """
    check_run_options("apply", run, apply)
    resolved = _resolve(fn)  # fail early on a bad name
    dst_backend = volumetric_backend(dst, "dst")
    check_executor_reaches(run, dst_backend)
    if isinstance(sources, Mapping):
        layers: tuple[Any, ...] | dict[str, Any] = dict(sources)
        names = list(layers)
    elif isinstance(sources, Sequence) and not isinstance(sources, str):
        layers = tuple(sources)
        names = [str(i) for i in range(len(layers))]
    else:
        layers = (sources,)
        names = ["0"]
    if not layers:
        raise FlowArgumentError("apply: sources is empty: give at least one layer to read")
    if _is_joint(resolved) and len(layers) != 1:
        raise FlowArgumentError(
            f"apply: a processor takes one source; got {len(layers)} ({', '.join(names)}): pass a "
            "function of several arrays instead"
        )
    res = (
        dst_backend.resolutions[0]
        if resolution is None
        else check_resolution(dst_backend, resolution, "resolution", "apply")
    )
    by_name = dict(zip(names, layers.values() if isinstance(layers, dict) else layers, strict=True))
    for name, layer in by_name.items():
        backend = getattr(layer, "backend", None)
        if isinstance(backend, VolumetricBackend):
            check_resolution(
                backend, res, f"resolution (read from source {name!r})", "apply", layer
            )
    pad = Vec3D(context, context, context) if isinstance(context, int) else Vec3D.from_seq(context)
    pad = pad.int()
    if not pad >= 0:
        raise FlowArgumentError(f"apply: context must be >= 0 voxels; got {pad.pformat()}")
    check_region("apply", bbox)
    region = dst_backend.get_bounds(res).bbox if bbox is None else bbox
    tasks = task_grid(dst_backend, region, res, chunk_size)
    check_writable("apply", dst, "dst")
    identity = callable_identity(fn)
    if identity is None:
        if run.get("resume") and run.get("run_id") is None:
            raise FlowArgumentError(
                f"apply: resume=True must find this run's journal, but fn (a "
                f"{type(fn).__qualname__}) cannot be pickled, so nothing identifies it from "
                "one process to the next. Name the run with run_id='…' (the same one as "
                "the run it resumes)"
            )
        identity = f"{type(fn).__module__}.{type(fn).__qualname__} (not picklable)"
    operation = ApplyTask(fn, layers, dst, pad)
    description = {
        "fn": identity,
        "sources": {name: _layer_name(layer) for name, layer in by_name.items()},
        "dst": dst_backend.name,
        "bbox": [list(region.start), list(region.end)],
        "resolution": list(res),
        "chunk_size": None if chunk_size is None else [int(v) for v in chunk_size],
        "context": list(pad),
    }
    return run_tasks(
        "apply",
        operation,
        tasks,
        description,
        layers=(*layers, dst),
        destinations=(dst,),
        chunks_per_task=StorageChunks(dst_backend, (res,)),
        **run,
    )
