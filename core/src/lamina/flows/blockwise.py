"""``apply``: a function over a volume, task by task — plainly, or with the reference
system's subchunking (levels of processing chunks, crop and blend pads).

Plain (``apply(fn, sources, dst, chunk_size=…, context=…)``): each task reads every
source over its box padded by ``context`` voxels, calls ``fn`` with the padded
``(C, X, Y, Z)`` arrays, crops the result back to the box and writes it.

Subchunked (``processing_chunk_sizes=[…]`` and the other ``processing_*`` parameters,
:mod:`lamina.flows.subchunking`): the region, grown at its end to a whole number of
top-level chunks (``expand_bbox_processing``), is cut into top-level chunks, one task
each. A task reads each source once, over its chunk padded by every level's pads; in the
worker the chunk is cut into the levels below, ``fn`` runs once on each lowest-level
chunk's padded input (``batch_size`` of them per call when it takes a batch axis), and
the outputs are cropped and blended level by level in memory. Top-level outputs that
neither overlap nor leave the destination's write grid are written by their tasks;
others are stored as intermediaries and combined by a blend pass on the write grid
(:mod:`lamina.flows.intermediaries`).

``fn`` is resolved and called as :mod:`lamina.flows.calling` says. A run is known by
``fn``'s identity and its parameters, the same in every process
(:mod:`lamina.flows.identity`), so ``resume=True`` finds its journals (and its
intermediaries).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack

import attrs
import numpy as np
import numpy.typing as npt

from lamina.flows.calling import FnCall, is_joint, resolve_fn
from lamina.flows.checks import (
    FlowArgumentError,
    check_region,
    check_resolution,
    check_run_options,
    check_writable,
)
from lamina.flows.engine import run_tasks
from lamina.flows.grid import MAX_TASK_BYTES, region_inside, task_grid, volumetric_backend
from lamina.flows.identity import callable_identity, state_digest
from lamina.flows.intermediaries import BlendTask, TaskOutputs, TopGrid
from lamina.flows.journal import default_journal_dir
from lamina.flows.options import RunOptions, check_executor_reaches
from lamina.flows.progress import RunSummary, StorageChunks
from lamina.flows.subchunking import (
    Box,
    Evaluator,
    Level,
    Levels,
    accumulator_dtype,
    plan_levels,
    tiles,
)
from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = ["ApplyChunk", "ApplyTask", "apply"]


def _identity(array: Any) -> Any:
    return array


@attrs.frozen
class ApplyTask:
    """One top-level task: read the padded sources once, run ``fn`` on every
    lowest-level chunk, blend, and write the output (or store it for the blend pass).

    ``sources``: ``(keyword or None, layer)`` pairs; ``extras``: ``fn``'s other keyword
    arguments; ``grid`` and ``outputs``: where the output is stored (``None``: written).
    """

    fn: Any
    sources: tuple[tuple[str | None, Any], ...]
    dst: Any
    levels: Levels
    extras: Mapping[str, Any] = attrs.field(factory=dict)
    grid: TopGrid | None = None
    outputs: TaskOutputs | None = None
    batch_size: int | None = None

    def __call__(self, idx: VolumetricIndex) -> int:
        fn: Any = resolve_fn(self.fn)
        padded = idx.padded(Vec3D(*self.levels.input_pad))
        if is_joint(fn):  # a joint processor: its read step on the one source
            ((_, source),) = self.sources
            _, state = fn.process_index(padded, "read")
            arrays = [np.asarray(fn.process_data(source[padded], "read", state))]
            call = FnCall(_identity, (None,))
        else:
            arrays = [np.asarray(layer[padded]) for _, layer in self.sources]
            names = tuple(name for name, _ in self.sources)
            call = FnCall(fn, names, self.extras, self.batch_size)
        origin = tuple(padded.start)

        def bottom(regions: list[Box]) -> list[npt.NDArray[Any]]:
            cut = [
                tuple(slice(r[0][d] - origin[d], r[1][d] - origin[d]) for d in range(3))
                for r in regions
            ]
            return call([[a[(slice(None), *c)] for a in arrays] for c in cut])

        box: Box = (tuple(idx.start), tuple(idx.stop))  # type: ignore[assignment]
        output = Evaluator(self.levels, bottom).outputs(0, [box])[0]
        if self.outputs is None or self.grid is None:
            return self._write(idx, output)
        return self._store(box, output)

    def _write(self, idx: VolumetricIndex, output: npt.NDArray[Any]) -> int:
        """Write the output's part inside the destination's bounds (a region grown to
        whole top-level chunks may reach past the dataset's end)."""
        inside = idx.intersection(self.dst.backend.get_bounds(idx.resolution))
        if inside.bbox.is_empty:
            return 0
        lo = [inside.start[d] - idx.start[d] for d in range(3)]
        part = output[(slice(None), *(slice(lo[d], lo[d] + inside.shape[d]) for d in range(3)))]
        self.dst[inside] = part
        return int(part.nbytes)

    def _store(self, box: Box, output: npt.NDArray[Any]) -> int:
        assert self.grid is not None
        assert self.outputs is not None
        grid, top = self.grid, self.levels.top
        position = [(box[0][d] - grid.region[0][d]) // grid.chunk[d] for d in range(3)]
        n = position[0] + grid.counts[0] * (position[1] + grid.counts[1] * position[2])
        covered = grid.covered(n)
        start = [box[0][d] - top.blend[d] for d in range(3)]
        part = output[
            (
                slice(None),
                *(slice(covered[0][d] - start[d], covered[1][d] - start[d]) for d in range(3)),
            )
        ]
        if top.blend != (0, 0, 0) and top.mode != "max":
            weights = grid.weights(n, top.mode, accumulator_dtype(part.dtype).name)
            part = part * weights
        return self.outputs.save(n, part)


#: The old name of :class:`ApplyTask` (the same class), kept for callers.
ApplyChunk = ApplyTask


def _layer_name(layer: Any) -> str:
    backend = getattr(layer, "backend", None)
    return str(getattr(backend, "name", type(layer).__name__))


def _is_layer(value: Any) -> bool:
    return isinstance(getattr(value, "backend", None), VolumetricBackend)


def _sources(
    sources: Any, op_kwargs: Mapping[str, Any] | None
) -> tuple[list[tuple[str | None, Any]], dict[str, Any]]:
    """``(keyword or None, layer)`` pairs and the other keyword arguments of ``fn``."""
    pairs: list[tuple[str | None, Any]] = []
    if isinstance(sources, Mapping):
        pairs = [(str(name), layer) for name, layer in sources.items()]
    elif isinstance(sources, Sequence) and not isinstance(sources, str):
        pairs = [(None, layer) for layer in sources]
    elif sources is not None:
        pairs = [(None, sources)]
    extras: dict[str, Any] = {}
    for name, value in (op_kwargs or {}).items():
        if _is_layer(value):
            pairs.append((str(name), value))
        else:
            extras[str(name)] = value
    if not pairs:
        raise FlowArgumentError(
            f"apply: sources is {'empty' if sources is not None else 'missing'}: give at "
            "least one layer to read (a layer, a list or a mapping of layers, or layers in "
            "op_kwargs)"
        )
    return pairs, extras


def _one_of(flow_value: Any, reference_value: Any, names: str) -> Any:
    if flow_value is not None and reference_value is not None and flow_value != reference_value:
        raise FlowArgumentError(
            f"apply: {names} name the same thing; give one (got {flow_value!r} and "
            f"{reference_value!r})"
        )
    return reference_value if reference_value is not None else flow_value


def _expanded(region: VolumetricIndex, chunk: Sequence[int], expand: bool) -> Box:
    """The region as a box, its end grown to whole top-level chunks (or checked to be)."""
    lo = tuple(int(v) for v in region.start)
    shape = tuple(int(v) for v in region.shape)
    counts = [math.ceil(s / c) for s, c in zip(shape, chunk, strict=True)]
    hi = tuple(lo[d] + counts[d] * chunk[d] for d in range(3))
    if not expand and hi != tuple(lo[d] + shape[d] for d in range(3)):
        raise FlowArgumentError(
            f"apply: the region {region.pformat()} ({list(shape)} voxels) is not a whole "
            f"number of top-level chunks {list(chunk)}; with expand_bbox_processing=True "
            f"its end grows to {list(hi)}, or give a region of whole chunks"
        )
    return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])


def _intermediaries_dir(given: Any, n_levels: int, journal_dir: Any, key: str) -> str:
    """Where the run's intermediaries go: ``level_intermediaries_dirs[0]`` (the levels
    below blend in memory and need none), else beside the journals; then the run's key."""
    top = given
    if isinstance(given, Sequence) and not isinstance(given, str):
        if len(given) != n_levels:
            raise FlowArgumentError(
                f"apply: level_intermediaries_dirs gives {len(given)} directories for "
                f"{n_levels} levels; give one per level (only the top level's is used: the "
                "levels below blend in the worker's memory)"
            )
        top = given[0]
    if top is None:
        base = Path(journal_dir) if journal_dir is not None else default_journal_dir()
        return str(base.expanduser() / "intermediaries" / key)
    text = str(top)
    if "://" in text and not text.startswith("file://"):
        raise FlowArgumentError(
            f"apply: level_intermediaries_dirs[0] must be a directory on a file system every "
            f"worker sees; got {text!r} (object storage is not supported for intermediaries)"
        )
    return str(Path(text.removeprefix("file://")).expanduser() / key)


def apply(
    fn: Callable[..., Any] | str,
    sources: Any = None,
    dst: Any = None,
    bbox: BBox3D | None = None,
    resolution: RawVec3D | None = None,
    chunk_size: RawVec3D | None = None,
    context: int | RawVec3D = 0,
    *,
    processing_chunk_sizes: Sequence[RawVec3D] | None = None,
    processing_crop_pads: RawVec3D | Sequence[RawVec3D] | None = None,
    processing_blend_pads: RawVec3D | Sequence[RawVec3D] | None = None,
    processing_blend_modes: str | Sequence[str] = "quadratic",
    expand_bbox_processing: bool = True,
    auto_divisibility: bool = False,
    dst_resolution: RawVec3D | None = None,
    op_kwargs: Mapping[str, Any] | None = None,
    level_intermediaries_dirs: str | Sequence[str | None] | None = None,
    skip_intermediaries: bool = False,
    keep_intermediaries: bool = False,
    max_reduction_chunk_size: RawVec3D | None = None,
    batch_size: int | None = None,
    **run: Unpack[RunOptions],
) -> RunSummary:
    """Write ``fn(sources...)`` into ``dst`` over ``bbox`` at ``resolution``, task by task.

    Every argument is checked before anything is written (see the module docstring for
    the plain and the subchunked form).

    Args:
        fn: a callable, a processor, a registered processor's name or an import string
            ``"package.module:function"``; a torch module runs without autograd.
        sources: a layer, a list of layers (passed by position) or a mapping name →
            layer (passed by name).
        dst: the volumetric layer written.
        bbox: the region (nm); default: ``dst``'s bounds at ``resolution``.
        resolution: one of ``dst``'s scales; default: its finest.
        dst_resolution: the reference system's name for ``resolution``.
        chunk_size: voxels of one task (plain form), a multiple of ``dst``'s write grid.
        context: voxels of padding around each task's box (plain form: the crop pad).
        processing_chunk_sizes: x, y, z of each level's chunks, largest first.
        processing_crop_pads, processing_blend_pads: voxels per level (or one x, y, z
            for every level).
        processing_blend_modes: ``"linear"``, ``"quadratic"``, ``"max"`` or ``"defer"``
            (top level only), one for every level or one per level.
        expand_bbox_processing: grow the region's end to whole top-level chunks.
        auto_divisibility: round the upper levels' chunks down to divisible sizes.
        op_kwargs: keyword arguments of ``fn``: layers are read, other values passed on.
        level_intermediaries_dirs: where the top level's intermediaries go (one entry
            per level, as in the reference; the levels below need none).
        skip_intermediaries: refuse a run that would need intermediaries.
        keep_intermediaries: keep them after the blend pass (``defer`` always does).
        max_reduction_chunk_size: voxels of one blend-pass task (a multiple of ``dst``'s
            write grid; default about 512 x 512 x 64).
        batch_size: how many lowest-level inputs one call of ``fn`` takes, stacked on a
            first axis (default: one, without that axis).
        run: how it runs (:class:`lamina.flows.options.RunOptions`).
    """
    check_run_options("apply", run, apply)
    resolved = resolve_fn(fn)  # fail early on a bad name
    if dst is None:
        raise FlowArgumentError("apply: dst is missing: give the volumetric layer to write")
    dst_backend = volumetric_backend(dst, "dst")
    check_executor_reaches(run, dst_backend)
    pairs, extras = _sources(sources, op_kwargs)
    if is_joint(resolved) and (len(pairs) != 1 or extras):
        raise FlowArgumentError(
            f"apply: a processor takes one source; got {len(pairs)} and {len(extras)} other "
            "arguments: pass a function of several arrays instead"
        )
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise FlowArgumentError(
            f"apply: batch_size must be an int >= 1 or None; got {batch_size!r}"
        )
    wanted = _one_of(resolution, dst_resolution, "resolution and dst_resolution")
    res = (
        dst_backend.resolutions[0]
        if wanted is None
        else check_resolution(dst_backend, wanted, "resolution", "apply")
    )
    for i, (name, layer) in enumerate(pairs):
        backend = getattr(layer, "backend", None)
        if isinstance(backend, VolumetricBackend):
            what = f"resolution (read from source {name or str(i)!r})"
            check_resolution(backend, res, what, "apply", layer)
    check_region("apply", bbox)
    region_index = region_inside(
        dst_backend, dst_backend.get_bounds(res).bbox if bbox is None else bbox, res
    )
    plan = _plan(
        dst_backend, region_index, res, chunk_size, context, processing_chunk_sizes,
        processing_crop_pads, processing_blend_pads, processing_blend_modes,
        expand_bbox_processing, auto_divisibility,
    )  # fmt: skip
    levels, tasks, grid = plan
    _check_task_memory(levels, pairs, dst_backend)
    direct = grid is None or (
        levels.top.blend == (0, 0, 0)
        and levels.top.mode != "defer"
        and all(dst_backend.is_write_aligned(_inside(t, dst_backend)) for t in tasks)
    )
    if not direct and skip_intermediaries:
        raise FlowArgumentError(
            "apply: skip_intermediaries=True, but the top level's outputs "
            + (
                f"overlap (processing_blend_pads[0] = {list(levels.top.blend)})"
                if levels.top.blend != (0, 0, 0)
                else f"are not on {dst_backend.name}'s write grid "
                f"({dst_backend.describe_write_grid(res)})"
            )
            + ", so tasks would write the same chunks: allow intermediaries, or choose "
            "top-level chunks on the write grid without a top-level blend pad"
        )
    blend_tasks: list[VolumetricIndex] = []
    if not direct:
        assert grid is not None
        written = VolumetricIndex.from_coords(*grid.region, res).intersection(
            dst_backend.get_bounds(res)
        )
        blend_tasks = task_grid(dst_backend, written.bbox, res, max_reduction_chunk_size)
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
    description: dict[str, Any] = {
        "fn": identity,
        "sources": {name or str(i): _layer_name(layer) for i, (name, layer) in enumerate(pairs)},
        "dst": dst_backend.name,
        "bbox": [list(region_index.bbox.start), list(region_index.bbox.end)],
        "resolution": list(res),
        "chunk_size": None if chunk_size is None else [int(v) for v in chunk_size],
        "context": list(levels.top.crop) if processing_chunk_sizes is None else None,
    }
    if processing_chunk_sizes is not None:
        description["levels"] = [attrs.asdict(level) for level in levels.levels]
        description["expand"] = bool(expand_bbox_processing)
    if extras:
        description["op_kwargs"] = state_digest(extras) or repr(sorted(extras))
    layers = (*(layer for _, layer in pairs), dst)
    if direct:
        operation = ApplyTask(fn, tuple(pairs), dst, levels, extras, batch_size=batch_size)
        return run_tasks(
            "apply", operation, tasks, description, layers=layers, destinations=(dst,),
            chunks_per_task=StorageChunks(dst_backend, (res,)), **run,
        )  # fmt: skip
    assert grid is not None
    return _run_with_intermediaries(
        ApplyTask(fn, tuple(pairs), dst, levels, extras, grid, None, batch_size),
        tasks, blend_tasks, description, level_intermediaries_dirs, keep_intermediaries,
        layers, dst_backend, res, run,
    )  # fmt: skip


def _inside(task: VolumetricIndex, dst: VolumetricBackend) -> VolumetricIndex:
    return task.intersection(dst.get_bounds(task.resolution))


def _plan(
    dst: VolumetricBackend,
    region: VolumetricIndex,
    res: Vec3D[float],
    chunk_size: Any,
    context: Any,
    chunk_sizes: Any,
    crop_pads: Any,
    blend_pads: Any,
    blend_modes: Any,
    expand: bool,
    auto_divisibility: bool,
) -> tuple[Levels, list[VolumetricIndex], TopGrid | None]:
    """The levels and the top-level tasks (and their grid, for the subchunked form)."""
    pad = Vec3D(context, context, context) if isinstance(context, int) else Vec3D.from_seq(context)
    pad = pad.int()
    if not pad >= 0:
        raise FlowArgumentError(f"apply: context must be >= 0 voxels; got {pad.pformat()}")
    if chunk_sizes is None:
        if crop_pads is not None or blend_pads is not None:
            raise FlowArgumentError(
                "apply: processing_crop_pads and processing_blend_pads go with "
                "processing_chunk_sizes (one x, y, z per level); give it too, or use context"
            )
        tasks = task_grid(dst, region.bbox, res, chunk_size)
        size = tuple(int(v) for v in tasks[0].shape)
        level = Level(size, tuple(pad), (0, 0, 0), "quadratic")  # type: ignore[arg-type]
        return Levels((level,)), tasks, None
    if pad != Vec3D(0, 0, 0):
        raise FlowArgumentError(
            "apply: context is the crop pad of the plain form; with processing_chunk_sizes "
            "give processing_crop_pads instead"
        )
    levels = plan_levels(
        chunk_sizes,
        (0, 0, 0) if crop_pads is None else crop_pads,
        (0, 0, 0) if blend_pads is None else blend_pads,
        blend_modes,
        auto_divisibility,
    )
    if chunk_size is not None and tuple(int(v) for v in chunk_size) != levels.top.chunk:
        raise FlowArgumentError(
            f"apply: chunk_size {list(chunk_size)} and processing_chunk_sizes[0] "
            f"{list(levels.top.chunk)} both give the top-level task's size; give one"
        )
    box = _expanded(region, levels.top.chunk, expand)
    grid = TopGrid(box, levels.top.chunk, levels.top.blend)
    tasks = [VolumetricIndex.from_coords(lo, hi, res) for lo, hi in tiles(box, levels.top.chunk)]
    return levels, tasks, grid


def _check_task_memory(
    levels: Levels, pairs: Sequence[tuple[str | None, Any]], dst: VolumetricBackend
) -> None:
    """Refuse, before anything runs, a top-level task whose inputs and output would not
    fit in :data:`~lamina.flows.grid.MAX_TASK_BYTES`."""
    top = levels.top
    padded = math.prod(c + 2 * p for c, p in zip(top.chunk, levels.input_pad, strict=True))
    per_voxel = 8 * dst.num_channels  # the output, blended in up to float64
    for _, layer in pairs:
        backend = getattr(layer, "backend", None)
        if isinstance(backend, VolumetricBackend):
            per_voxel += backend.num_channels * backend.dtype.itemsize
    if padded * per_voxel > MAX_TASK_BYTES:
        raise FlowArgumentError(
            f"apply: one top-level task of {list(top.chunk)} voxels, read with pads of "
            f"{list(levels.input_pad)}, would hold about {padded * per_voxel / 2**30:.1f} GiB "
            f"in memory (at most {MAX_TASK_BYTES / 2**30:.0f} GiB): give smaller "
            "processing_chunk_sizes[0] (or chunk_size)"
        )


def _run_with_intermediaries(
    operation: ApplyTask,
    tasks: list[VolumetricIndex],
    blend_tasks: list[VolumetricIndex],
    description: dict[str, Any],
    given_dirs: Any,
    keep: bool,
    layers: tuple[Any, ...],
    dst_backend: VolumetricBackend,
    res: Vec3D[float],
    run: RunOptions,
) -> RunSummary:
    """The first pass (each top-level task stores its output), then the blend pass."""
    assert operation.grid is not None
    top = operation.levels.top
    named = run.get("run_id")
    key_text = named if named is not None else json.dumps(description, sort_keys=True)
    key = "apply-" + hashlib.sha256(str(key_text).encode()).hexdigest()[:16]
    directory = _intermediaries_dir(
        given_dirs, len(operation.levels.levels), run.get("journal_dir"), key
    )
    outputs = TaskOutputs(directory)
    first = run_tasks(
        "apply", attrs.evolve(operation, outputs=outputs), tasks,
        {**description, "intermediaries": directory}, layers=layers, **run,
    )  # fmt: skip
    combine = "place" if top.blend == (0, 0, 0) else "max" if top.mode == "max" else "sum"
    blend = BlendTask(outputs, operation.grid, combine, operation.dst, dst_backend.dtype.str)
    blend_run = dict(run)
    if named is not None:
        blend_run["run_id"] = f"{named}-blend"
    second = run_tasks(
        "apply-blend", blend, blend_tasks, {**description, "intermediaries": directory},
        layers=(operation.dst,), destinations=(operation.dst,),
        chunks_per_task=StorageChunks(dst_backend, (res,)), **blend_run,  # type: ignore[arg-type]
    )  # fmt: skip
    if not keep and top.mode != "defer":
        outputs.remove()
    return RunSummary(
        first.tasks,
        first.skipped,
        second.bytes,
        first.seconds + second.seconds,
        journal_found=first.journal_found,
        journal=first.journal,
        storage_chunks=second.storage_chunks,
    )
