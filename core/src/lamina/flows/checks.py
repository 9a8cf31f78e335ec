"""The checks every flow makes before it changes anything.

A flow that fails must leave its volumes as they were. An unknown keyword, executor or
resolution, a bad worker count, a task size off the destination's write grid, an empty
box or a lossy dtype found only after a destination was created, a scale was added or a
chunk was written leaves a change behind that the next, corrected run silently builds
on. So each flow checks all of its arguments first, with these helpers, and only then
creates or changes anything. The command line runs the same checks before it creates
a destination, against the geometry the new volume will have (:func:`backend_like`);
``downsample`` checks against the scales it will add (:func:`planned_scales`).
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, get_args

import attrs
import numpy as np

from lamina.errors import (
    LaminaError,
    ReadonlyLayerError,
    UnknownResolutionError,
    UnsupportedOperationError,
)
from lamina.flows.options import RunOptions
from lamina.plugins.contributions import VolumeTemplate
from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.memory import MemoryVolumetricBackend
from lamina.volumetric.modes import InterpolationMode

__all__ = [
    "RUN_OPTION_NAMES",
    "FlowArgumentError",
    "FlowKeywordError",
    "backend_like",
    "check_dtypes",
    "check_keywords",
    "check_mode",
    "check_region",
    "check_resolution",
    "check_run_options",
    "check_writable",
    "planned_scales",
]

#: The keywords every flow takes to say how it runs (:class:`RunOptions`).
RUN_OPTION_NAMES: tuple[str, ...] = tuple(RunOptions.__annotations__)

_MODES = frozenset(get_args(InterpolationMode))


class FlowArgumentError(LaminaError, ValueError):
    """An argument a flow cannot run with, found before anything was changed."""


class FlowKeywordError(LaminaError, TypeError):
    """A keyword a flow does not take (the message names the closest one it does)."""


def check_keywords(flow: str, given: Iterable[str], function: Callable[..., Any]) -> None:
    """Refuse a keyword that is neither a parameter of ``function`` nor a run option.

    Flows take their run options as ``**run``, so Python itself accepts any keyword;
    without this check a misspelt one (``levls=2``) would fail only when the run starts,
    after the flow had changed the volume.
    """
    unknown = [key for key in given if key not in RUN_OPTION_NAMES]
    if not unknown:
        return
    params = [
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    valid = [*params, *RUN_OPTION_NAMES]
    key = unknown[0]
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    raise FlowKeywordError(
        f"{flow}() got an unexpected keyword argument {key!r}{hint} It takes "
        f"{', '.join(valid)}. Nothing was changed."
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_run_options(
    flow: str, run: Mapping[str, Any], function: Callable[..., Any] | None = None
) -> None:
    """Check the run options (:class:`RunOptions`) before anything runs: the keywords
    (against ``function``'s parameters, when given), the executor (one registered), the
    worker count (``>= 1``), the retries (``>= 0``) and the types of the others."""
    if function is not None:
        check_keywords(flow, run, function)
    executor = run.get("executor", "serial")
    if not isinstance(executor, str):
        raise FlowArgumentError(
            f"{flow}: executor must be the name of a registered executor (serial, threads, "
            f"processes, …); got {executor!r}"
        )
    from lamina.plugins.manager import get_host

    get_host().lookup("executors", executor)  # UnknownNameError naming the registered ones
    workers = run.get("workers")
    if workers is not None and (not _is_int(workers) or workers < 1):
        raise FlowArgumentError(
            f"{flow}: workers must be a positive int or None (None: the usable CPUs); got "
            f"{workers!r}"
        )
    retries = run.get("retries", 3)
    if not _is_int(retries) or retries < 0:
        raise FlowArgumentError(
            f"{flow}: retries must be an int >= 0 (0: never retry); got {retries!r}"
        )
    for name, allowed, expected in (
        ("resume", (bool,), "True or False"),
        ("progress", (bool, type(None)), "True, False or None"),
        ("scheduler", (str, type(None)), "a scheduler's address or None"),
        ("journal_dir", (str, os.PathLike, type(None)), "a directory or None"),
    ):
        if name in run and not isinstance(run[name], allowed):
            raise FlowArgumentError(f"{flow}: {name} must be {expected}; got {run[name]!r}")
    run_id = run.get("run_id")
    if run_id is not None and (
        not isinstance(run_id, str) or not run_id.strip() or not run_id.isprintable()
    ):
        raise FlowArgumentError(
            f"{flow}: run_id must be a non-empty name on one line (it names the run's "
            f"journal); got {run_id!r}"
        )


def check_resolution(
    backend: VolumetricBackend,
    resolution: RawVec3D,
    what: str,
    flow: str,
    layer: Any = None,
) -> Vec3D[float]:
    """``resolution`` as a float vector, refused unless ``backend`` stores it (a
    ``layer`` that resamples, with a ``data_resolution``, reads at any resolution, and so
    does a backend with no scales, such as a constant)."""
    res = Vec3D.from_seq(resolution, what).float()
    known = backend.resolutions
    resamples = getattr(layer, "data_resolution", None) is not None
    if known and res not in known and not resamples:
        raise UnknownResolutionError(
            f"{flow}: {what} {res.pformat()} nm is not a scale of {backend.name}; its scales "
            f"are {', '.join(r.pformat() for r in known)}. Nothing was changed."
        )
    return res


def check_region(flow: str, bbox: Any, what: str = "bbox") -> None:
    """Refuse a region that is not a :class:`BBox3D` or that is empty (zero size on an
    axis); ``None`` (the whole volume) passes. Whether it lies inside the volume and on
    its grid is :func:`lamina.flows.grid.task_grid`'s check."""
    if bbox is None:
        return
    if not isinstance(bbox, BBox3D):
        raise FlowArgumentError(
            f"{flow}: {what} must be a BBox3D (nm), e.g. BBox3D.from_coords(start, end, "
            f"resolution); got {type(bbox).__name__} {bbox!r}"
        )
    if bbox.is_empty or not all(s > 0 for s in bbox.shape):
        shown = bbox.pformat((1, 1, 1)) if not bbox.is_empty else "<empty>"
        raise FlowArgumentError(
            f"{flow}: {what} {shown} nm is empty: its end must be beyond its start on every "
            "axis. Nothing was changed."
        )


def check_mode(flow: str, mode: Any, num_channels: int) -> None:
    """Refuse an interpolation mode the resampler does not know (``None`` passes: the
    flow picks the one the volume's type implies)."""
    if mode is None:
        return
    if mode not in _MODES:
        close = difflib.get_close_matches(str(mode), sorted(_MODES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise FlowArgumentError(
            f"{flow}: mode must be one of {', '.join(sorted(_MODES))}; got {mode!r}{hint}"
        )
    if mode == "field" and num_channels != 2:
        raise FlowArgumentError(
            f"{flow}: mode 'field' resamples 2-channel (x, y) displacement fields; this "
            f"volume has {num_channels} channel(s)"
        )


def check_dtypes(flow: str, src: VolumetricBackend, dst: VolumetricBackend) -> None:
    """Refuse a destination of another kind of dtype than the source's (floats into
    integers, signed or unsigned integers into booleans: ``np.can_cast(src, dst,
    "same_kind")`` fails), or whose channel count differs. Narrower types of the same
    kind (uint64 labels into uint32) are let through: each write checks that its values
    fit, as every lamina write does."""
    if not np.can_cast(src.dtype, dst.dtype, "same_kind"):
        raise FlowArgumentError(
            f"{flow}: the source {src.name} is {src.dtype} and the destination {dst.name} is "
            f"{dst.dtype}: {src.dtype} values are not {dst.dtype} values, so the copy "
            f"would lose them. Write into a {src.dtype} volume (or a wider type), or convert "
            "the data with apply(fn, ...)"
        )
    if src.num_channels != dst.num_channels:
        raise FlowArgumentError(
            f"{flow}: the source {src.name} has {src.num_channels} channel(s) and the "
            f"destination {dst.name} has {dst.num_channels}; they must match"
        )


def check_writable(flow: str, layer: Any, what: str) -> None:
    """Refuse a readonly layer, or one whose backend cannot write, before anything is
    changed (a readonly destination would otherwise fail on every task)."""
    backend = getattr(layer, "backend", None)
    name = getattr(backend, "name", type(layer).__name__)
    if getattr(layer, "readonly", False):
        raise ReadonlyLayerError(
            f"{flow}: {what} ({name}) is readonly; build it with readonly=False (or "
            "layer.with_changes(readonly=False)) to write to it. Nothing was changed."
        )
    capabilities = getattr(backend, "capabilities", None)
    if capabilities is not None and not capabilities.writable:
        raise UnsupportedOperationError(
            f"{flow}: {what} ({name}, {type(backend).__name__}) does not support writes. "
            "Nothing was changed."
        )


def backend_like(template: VolumeTemplate, name: str) -> VolumetricBackend:
    """The geometry a volume created like ``template`` will have, with no data: what a
    flow's checks run against before a destination is created (``lamina copy`` to a
    new path). Its write grid is the template's shard size, else its chunk size."""
    from lamina.volumetric.scales import scales_from_bbox

    bbox = BBox3D.from_coords(template.bbox_start, template.bbox_end)
    shard = None if template.shard_size is None else Vec3D(*template.shard_size)
    return _StandIn(
        dtype=template.data_type,
        num_channels=template.num_channels,
        scales=scales_from_bbox(bbox, template.resolutions, template.chunk_size),
        name=name,
        shard=shard,
    )


@attrs.frozen
class _StandIn(MemoryVolumetricBackend):
    """A new volume's geometry, whose write grid is its shard box when it has one."""

    shard: Vec3D[int] | None = attrs.field(default=None, kw_only=True)

    def get_write_grid_size(self, resolution: RawVec3D) -> Vec3D[int]:
        if self.shard is not None:
            return self.shard
        return super().get_write_grid_size(resolution)

    def describe_write_grid(self, resolution: RawVec3D) -> str:
        if self.shard is not None:
            return f"shard box {self.shard.pformat()}"
        return super().describe_write_grid(resolution)


def planned_scales(
    backend: VolumetricBackend, resolutions: Sequence[Vec3D[float]]
) -> dict[Vec3D[float], VolumetricBackend]:
    """For each of ``resolutions``, the backend whose geometry it will have once
    ``backend.add_resolutions(resolutions)`` has run, computed without writing: ``backend``
    itself where it has the scale already, else one holding the new scale as
    ``add_resolutions`` makes it (the finest scale's bounds in nm and chunk size,
    unsharded; :func:`lamina.volumetric.scales.scale_geometry`)."""
    from lamina.volumetric.memory import MemoryVolumetricBackend
    from lamina.volumetric.scales import scales_from_bbox

    new = [r for r in resolutions if r not in backend.resolutions]
    if not new:
        return {r: backend for r in resolutions}
    finest = backend.resolutions[0]
    offset = backend.get_voxel_offset(finest)
    bbox = BBox3D.from_coords(offset, offset + backend.get_dataset_size(finest), finest)
    planned = MemoryVolumetricBackend(
        dtype=backend.dtype,
        num_channels=backend.num_channels,
        scales=scales_from_bbox(bbox, new, backend.get_chunk_size(finest)),
        name=backend.name,
        enforce_chunk_aligned_writes=backend.enforce_chunk_aligned_writes,
    )
    return {r: backend if r in backend.resolutions else planned for r in resolutions}
