"""A range map's read: each source reads the parts it owns, and they are pasted together.

Each source is read through its own layer (``read_with_procs``, or ``read_into`` the
result's part when every source has the range map's dtype and channel count: one copy
fewer), so that it keeps its resolutions, ``data_resolution`` and processors. The parts
are read at once on the shared threads when every source involved is thread-safe,
unless all are local volumes read directly (memory copies, which threads only slow
down). What no box covers reads as the fill value, or is an
:class:`~lamina_rangemap.errors.UncoveredRegionError` when there is none; a source that
returns the wrong shape or channel count is an error rather than a silently wrong
volume.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina.volumetric.data import new_volume_array
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.layer import VolumetricLayer
from lamina_rangemap.boxes import index_of, slices_in, uncovered_text
from lamina_rangemap.errors import RangeMapError, UncoveredRegionError
from lamina_rangemap.ownership import plan_parts
from lamina_rangemap.sources import VolumetricRange, range_label
from lamina_rangemap.threads import run_all

__all__ = ["read_part", "stitch"]


def read_part(
    ranges: tuple[VolumetricRange, ...], name: str, i: int, idx: VolumetricIndex
) -> npt.NDArray[Any]:
    """Source ``i``'s data for ``idx``, checked to be a ``(C, X, Y, Z)`` array of its
    shape; ``name`` (the range map's) goes into the note of a source's error."""
    layer = ranges[i][1]
    try:
        data = layer.read_with_procs(idx)
    except Exception as exc:
        exc.add_note(f"while reading {idx.pformat()} at {idx.resolution.pformat()} nm "
                     f"from {range_label(ranges, i)} of {name}")  # fmt: skip
        raise
    if not isinstance(data, np.ndarray) or data.ndim != 4 or data.shape[1:] != idx.shape:
        shape = getattr(data, "shape", None)
        raise RangeMapError(
            f"{range_label(ranges, i)} returned {type(data).__name__} of shape {shape} for "
            f"{idx.pformat()} at {idx.resolution.pformat()} nm; a source must return a "
            f"(C, X, Y, Z) numpy array of spatial shape {tuple(idx.shape)}"
        )
    return data


def stitch(
    ranges: tuple[VolumetricRange, ...],
    idx: VolumetricIndex,
    *,
    name: str,
    fill: Any,
    num_channels: int,
    dtype: np.dtype[Any],
) -> npt.NDArray[Any]:
    """Stitch ``idx`` from the sources that own its parts (later ranges first where
    boxes overlap); what no box covers is ``fill`` (``None``: an error). ``name``,
    ``num_channels`` and ``dtype`` are the range map's."""
    shape = tuple(idx.shape)
    if 0 in shape:
        return np.zeros((num_channels, *shape), dtype=dtype)
    parts, uncovered = plan_parts(ranges, idx)
    if uncovered and fill is None:
        raise UncoveredRegionError(
            f"the read of {idx.pformat()} at {idx.resolution.pformat()} nm from "
            f"{name} reaches regions no range covers: "
            f"{uncovered_text(uncovered, idx.resolution)}. "
            "Read inside the ranges, or build the range map with fill_value= to read "
            "such regions as that value."
        )
    if not uncovered and len(parts) == 1 and len(parts[0][1]) == 1:
        return read_part(ranges, name, parts[0][0], idx)  # one source owns all of it
    tasks = [(i, index_of(piece, idx), piece) for i, pieces in parts for piece in pieces]
    concurrent = _concurrent([ranges[i][1] for i, _, _ in tasks])
    sources = [ranges[i][1] for i, _, _ in tasks]
    if sources and all(
        isinstance(layer, VolumetricLayer)
        and layer.backend.num_channels == num_channels
        and layer.backend.dtype == dtype
        for layer in sources
    ):  # every part read straight into its place in the result: no second copy
        order = "F" if all(layer.backend.memory_order == "F" for layer in sources) else "C"
        # read_into writes every voxel of its part: only uncovered regions need a fill
        out = _output((num_channels, *shape), dtype, fill if uncovered else None, order)
        origin = idx.start
        run_all(
            [
                functools.partial(
                    read_part_into, ranges, name, i, part, out[slices_in(piece, origin)]
                )
                for i, part, piece in tasks
            ],
            concurrent,
        )
        return out
    datas = run_all(
        [functools.partial(read_part, ranges, name, i, part) for i, part, _ in tasks], concurrent
    )
    channels = {data.shape[0] for data in datas} or {num_channels}
    if len(channels) > 1:
        listing = "; ".join(
            f"{range_label(ranges, i)}: {data.shape[0]}"
            for (i, _, _), data in zip(tasks, datas, strict=True)
        )
        raise RangeMapError(
            f"the sources returned different channel counts for {idx.pformat()}: {listing}"
        )
    out_dtype = np.result_type(*(data.dtype for data in datas)) if datas else dtype
    out_shape = (channels.pop(), *shape)
    fortran = bool(datas) and all(d.transpose(1, 2, 3, 0).flags.f_contiguous for d in datas)
    out = _output(out_shape, out_dtype, fill if uncovered else 0, "F" if fortran else "C")
    origin = idx.start
    for (_, _, piece), data in zip(tasks, datas, strict=True):
        out[slices_in(piece, origin)] = data
    return out


def _concurrent(layers: list[Any]) -> bool:
    """Whether to read the parts at once: when every source is thread-safe, unless every
    one is a local volume read directly (no processors, no resampling): such reads are
    memory copies that threads only slow down on a few cores (4 local parts at once took
    1.6x the time of one after another on 2 cores; bench/bench_rangemap.py)."""
    if not all(layer.backend.capabilities.thread_safe for layer in layers):
        return False
    return not all(
        getattr(layer.backend, "is_local", False) and getattr(layer, "reads_directly", False)
        for layer in layers
    )


def read_part_into(
    ranges: tuple[VolumetricRange, ...],
    name: str,
    i: int,
    idx: VolumetricIndex,
    out: npt.NDArray[Any],
) -> None:
    """Source ``i``'s data for ``idx`` read into ``out`` (see :func:`read_part`)."""
    try:
        ranges[i][1].read_into(idx, out)
    except Exception as exc:
        exc.add_note(f"while reading {idx.pformat()} at {idx.resolution.pformat()} nm "
                     f"from {range_label(ranges, i)} of {name}")  # fmt: skip
        raise


def _output(
    shape: tuple[int, ...], dtype: np.dtype[Any], fill: Any, order: str
) -> npt.NDArray[Any]:
    """The array the parts go into, ``fill`` where none lands (``None``: every voxel is
    written by a part), in the parts' memory layout (``order``), so that filling it
    copies memory in order rather than transposing it (several times slower on large
    reads)."""
    return new_volume_array(shape, dtype, order, fill)
