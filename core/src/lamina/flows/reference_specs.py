"""The reference system's spec vocabulary for its inference flow, so that its specs run
with ``lamina run``.

* ``build_subchunkable_apply_flow``: its subchunkable apply, with its parameter names,
  run by :func:`lamina.flows.apply`. Its parameters that only tune its own scheduler
  (``fn_semaphores``, ``allow_cache_up_to_level``, ``op_worker_type``,
  ``reduction_worker_type``, ``print_summary``, ``generate_ng_link``) are accepted and
  change nothing; those lamina does not implement (a nonzero ``processing_gap``,
  ``shrink_processing_chunk``, ``op``) are refused, naming what to use instead.
* ``BBox3D.from_coords`` (registered with the geometry) takes the reference's
  ``start_coord``/``end_coord`` beside lamina's ``start``/``end``.
* ``{"@type": "lambda", "lambda_str": "lambda src: src"}``: a function written in the
  spec. A spec file is code: a lambda is evaluated only when the user opts in
  (``lamina run --allow-lambda``, ``lamina.build(spec, allow_lambda=True)``), and is
  otherwise refused before anything runs.
* ``{"@type": "mazepa.execute", "target": FLOW}``, the reference's way to run a flow:
  ``lamina run`` runs ``FLOW`` (:func:`unwrap_execute`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

import attrs
import numpy as np

from lamina.errors import SpecError
from lamina.flows.checks import FlowArgumentError
from lamina.flows.grid import volumetric_backend
from lamina.flows.options import RunOptions
from lamina.flows.progress import RunSummary
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D

__all__ = [
    "SpecLambda",
    "build_lambda",
    "build_subchunkable_apply_flow",
    "lambda_refusal",
    "unwrap_execute",
]


@attrs.frozen
class SpecLambda:
    """A spec's ``lambda`` (its text), evaluated on first call in each process. It
    pickles as its text, so it runs on every executor."""

    lambda_str: str
    _function: Any = attrs.field(default=None, eq=False, repr=False, init=False)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        function = self._function
        if function is None:
            namespace = {"np": np, "numpy": np, "math": math}
            function = eval(self.lambda_str, namespace)
            object.__setattr__(self, "_function", function)
        return function(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        return {"lambda_str": self.lambda_str}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        object.__setattr__(self, "lambda_str", state["lambda_str"])
        object.__setattr__(self, "_function", None)


def lambda_refusal(lambda_str: Any) -> str:
    """Why a spec's lambda is not evaluated, and what to do."""
    return (
        f"this spec holds a lambda ({lambda_str!r}): a spec file is code, and lamina "
        "evaluates lambdas only when you allow it. Run it with "
        "'lamina run --allow-lambda SPEC' (in Python: lamina.build(spec, "
        "allow_lambda=True)) if you trust the file, or name a registered processor "
        "or an import string 'package.module:function' as fn instead; nothing was run"
    )


def build_lambda(lambda_str: str) -> SpecLambda:
    """A spec's function ``{"@type": "lambda", "lambda_str": "lambda src: ..."}``, if
    the user allowed lambdas (see the module docstring).

    Args:
        lambda_str: the text of a Python ``lambda`` (``numpy`` is there as ``np``).
    """
    from lamina.specs import lambdas_allowed

    if not isinstance(lambda_str, str) or not lambda_str.lstrip().startswith("lambda"):
        raise SpecError(
            f"lambda_str must be the text of a lambda, 'lambda ...'; got {lambda_str!r}"
        )
    if not lambdas_allowed():
        raise SpecError(lambda_refusal(lambda_str))
    try:
        compile(lambda_str, "<spec lambda>", "eval")
    except SyntaxError as exc:
        raise SpecError(f"lambda_str {lambda_str!r} is not valid Python: {exc.msg}") from None
    return SpecLambda(lambda_str)


def unwrap_execute(spec: Any) -> Any:
    """The flow a ``{"@type": "mazepa.execute", "target": ...}`` spec runs (other specs
    unchanged)."""
    while isinstance(spec, Mapping) and spec.get("@type") == "mazepa.execute":
        if "target" not in spec:
            raise SpecError("a mazepa.execute spec names the flow it runs as 'target'")
        spec = spec["target"]
    return spec


def _bbox(
    bbox: BBox3D | None,
    start_coord: RawVec3D | None,
    end_coord: RawVec3D | None,
    coord_resolution: RawVec3D | None,
    auto_bbox: bool,
) -> BBox3D | None:
    coords = (start_coord, end_coord, coord_resolution)
    given = [bbox is not None, any(c is not None for c in coords), auto_bbox]
    if sum(given) > 1:
        raise FlowArgumentError(
            "build_subchunkable_apply_flow: give the region one way: bbox, or start_coord, "
            "end_coord and coord_resolution, or auto_bbox=True"
        )
    if auto_bbox or bbox is not None:
        return bbox
    if any(c is None for c in coords):
        raise FlowArgumentError(
            "build_subchunkable_apply_flow: the region is missing: give bbox, or "
            "start_coord, end_coord and coord_resolution (all three), or auto_bbox=True "
            "(the destination's bounds)"
        )
    return BBox3D.from_coords(start_coord, end_coord, coord_resolution)  # type: ignore[arg-type]


def build_subchunkable_apply_flow(
    dst: Any,
    dst_resolution: RawVec3D,
    processing_chunk_sizes: Sequence[RawVec3D],
    processing_gap: RawVec3D = (0, 0, 0),
    processing_crop_pads: RawVec3D | Sequence[RawVec3D] = (0, 0, 0),
    processing_blend_pads: RawVec3D | Sequence[RawVec3D] = (0, 0, 0),
    processing_blend_modes: str | Sequence[str] = "quadratic",
    level_intermediaries_dirs: Sequence[str | None] | None = None,
    skip_intermediaries: bool = False,
    max_reduction_chunk_size: RawVec3D | None = None,
    expand_bbox_resolution: bool = False,
    expand_bbox_backend: bool = False,
    expand_bbox_processing: bool = True,
    shrink_processing_chunk: bool = False,
    auto_divisibility: bool = False,
    allow_cache_up_to_level: int | None = None,
    op_worker_type: str | None = None,
    reduction_worker_type: str | None = None,
    print_summary: bool = True,
    generate_ng_link: bool = False,
    fn: Any = None,
    fn_semaphores: Sequence[str] | None = None,
    op: Any = None,
    op_args: Sequence[Any] = (),
    op_kwargs: Mapping[str, Any] | None = None,
    bbox: BBox3D | None = None,
    start_coord: RawVec3D | None = None,
    end_coord: RawVec3D | None = None,
    coord_resolution: RawVec3D | None = None,
    auto_bbox: bool = False,
    dst_tighten_bounds: bool = False,
    keep_intermediaries: bool = False,
    batch_size: int | None = None,
    **run: Unpack[RunOptions],
) -> RunSummary:
    """The reference system's subchunkable apply flow, run by :func:`lamina.flows.apply`
    (see the module docstring for the parameters that change nothing or are refused).

    Args:
        dst: the volumetric layer written.
        dst_resolution: the resolution (nm) of the processing and of ``dst``'s scale.
        processing_chunk_sizes: x, y, z of each level's chunks, largest first.
        processing_gap: must be (0, 0, 0): gaps between chunks are not supported.
        processing_crop_pads, processing_blend_pads: voxels per level (or one x, y, z
            for every level).
        processing_blend_modes: ``"linear"``, ``"quadratic"``, ``"max"`` or ``"defer"``
            (top level only): one for every level, or one per level.
        level_intermediaries_dirs: where the top level's intermediaries go, one entry per
            level (the levels below blend in memory).
        skip_intermediaries: refuse a run that would need intermediaries.
        max_reduction_chunk_size: the most voxels one blend-pass task covers (rounded
            down to the destination's write grid).
        expand_bbox_resolution: grow the box to whole voxels at ``dst_resolution``.
        expand_bbox_backend: grow the box to ``dst``'s chunk grid.
        expand_bbox_processing: grow the box's end to whole top-level chunks.
        shrink_processing_chunk: not supported (refused when true).
        auto_divisibility: round the upper levels' chunks down to divisible sizes.
        allow_cache_up_to_level, op_worker_type: the reference's scheduler tuning;
            accepted, no effect (as are the next four).
        reduction_worker_type, print_summary: accepted, no effect.
        generate_ng_link, fn_semaphores: accepted, no effect.
        fn: the function run on every lowest-level chunk (a callable, a processor, a
            registered name, an import string, or a spec's lambda).
        op: not supported (give ``fn``).
        op_args: must be empty.
        op_kwargs: ``fn``'s keyword arguments: layers are read, other values passed on.
        bbox: the region (nm), or ``start_coord``, ``end_coord`` and
            ``coord_resolution``, or ``auto_bbox=True`` (``dst``'s bounds).
        start_coord, end_coord, coord_resolution: the region's corners in voxels at
            ``coord_resolution``.
        auto_bbox: the region is ``dst``'s bounds at ``dst_resolution``.
        dst_tighten_bounds: no longer supported (refused when true), as in the reference.
        keep_intermediaries: keep the intermediaries after the blend pass.
        batch_size: how many lowest-level inputs one call of ``fn`` takes.
        run: how it runs (:class:`lamina.flows.options.RunOptions`).
    """
    from lamina.flows.blockwise import apply

    flow = "build_subchunkable_apply_flow"
    if op is not None:
        raise FlowArgumentError(f"{flow}: op is not supported by lamina; give fn (a function)")
    if fn is None:
        raise FlowArgumentError(f"{flow}: fn is missing: the function run on every chunk")
    if list(op_args):
        raise FlowArgumentError(f"{flow}: op_args must be empty; give fn's inputs in op_kwargs")
    if Vec3D.from_seq(processing_gap, "processing_gap") != Vec3D(0, 0, 0):
        raise FlowArgumentError(
            f"{flow}: a nonzero processing_gap is not supported by lamina; give (0, 0, 0)"
        )
    if shrink_processing_chunk:
        raise FlowArgumentError(
            f"{flow}: shrink_processing_chunk is not supported by lamina; give "
            "processing_chunk_sizes that fit the region, or use expand_bbox_processing"
        )
    if dst_tighten_bounds:
        raise FlowArgumentError(
            f"{flow}: dst_tighten_bounds is no longer supported (as in the reference): set the "
            "destination's bounds with build_cv_layer(info_bbox=...)"
        )
    if dst is None:
        raise FlowArgumentError(f"{flow}: dst is missing: lamina writes into a layer")
    if auto_divisibility and not expand_bbox_processing:
        raise FlowArgumentError(f"{flow}: auto_divisibility requires expand_bbox_processing=True")
    if expand_bbox_backend and (expand_bbox_processing or auto_divisibility):
        raise FlowArgumentError(
            f"{flow}: expand_bbox_backend cannot be used with expand_bbox_processing or "
            "auto_divisibility (as in the reference)"
        )
    backend = volumetric_backend(dst, "dst")
    res = Vec3D.from_seq(dst_resolution, "dst_resolution").float()
    region = _bbox(bbox, start_coord, end_coord, coord_resolution, auto_bbox)
    if region is not None and expand_bbox_resolution:
        region = region.snapped((0, 0, 0), res, "expand")
    if region is not None and expand_bbox_backend:
        offset = backend.get_voxel_offset(res) * res
        region = region.snapped(offset, backend.get_chunk_size(res) * res, "expand")
    reduction = None
    if max_reduction_chunk_size is not None:  # an upper bound, on the write grid
        cell = backend.get_write_grid_size(res)
        wanted = Vec3D.from_seq(max_reduction_chunk_size, "max_reduction_chunk_size").int()
        reduction = tuple(max(c, w // c * c) for w, c in zip(wanted, cell, strict=True))
    return apply(
        fn,
        None,
        dst,
        bbox=region,
        resolution=res,
        processing_chunk_sizes=processing_chunk_sizes,
        processing_crop_pads=processing_crop_pads,
        processing_blend_pads=processing_blend_pads,
        processing_blend_modes=processing_blend_modes,
        expand_bbox_processing=expand_bbox_processing,
        auto_divisibility=auto_divisibility,
        op_kwargs=op_kwargs,
        level_intermediaries_dirs=level_intermediaries_dirs,
        skip_intermediaries=skip_intermediaries,
        keep_intermediaries=keep_intermediaries,
        max_reduction_chunk_size=reduction,
        batch_size=batch_size,
        **run,
    )
