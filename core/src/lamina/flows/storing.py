"""``store``: a Dask or numpy array written into a layer, task by task.

The array is ``(C, X, Y, Z)`` (or ``(X, Y, Z)``, one channel), placed at ``bbox`` (default:
from the destination's voxel offset, the array's size). The region is cut into tasks on
the destination's write grid, as every flow's is, so no two tasks write one chunk,
whatever the array's own blocks are: each task computes the part of the array it writes
(a Dask array's blocks that straddle two tasks are computed by both; task sizes that are
whole multiples of the array's blocks avoid that), in the destination's memory order
(:func:`lamina.arrays.dask_array.materialize`: a layer's blocks are read in that order,
never transposed on the way), and writes it. A layer's own array (``layer.to_dask()``,
read straight from its backend) is read task box by task box, one read each, without a
dask graph per task (``LayerArray.read_box``). Runs on every executor,
with retries, the journal (``resume=True``), the progress bar and the summary.
"""

from __future__ import annotations

import hashlib
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
from lamina.flows.options import RunOptions, check_executor_reaches
from lamina.flows.progress import RunSummary, StorageChunks
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = ["StoreTask", "store"]


@attrs.frozen
class StoreTask:
    """One task: the array's part over the task's box, computed and written."""

    array: Any
    dst: Any
    origin: tuple[int, int, int]

    def __call__(self, idx: VolumetricIndex) -> int:
        box = tuple(
            slice(idx.start[d] - self.origin[d], idx.stop[d] - self.origin[d]) for d in range(3)
        )
        order = self.dst.backend.memory_order
        read_box = getattr(self.array, "read_box", None)  # a layer's array: one read
        part = read_box(box, order) if read_box is not None else None
        if part is None:
            part = self.array[(slice(None), *box)]
        if hasattr(part, "__dask_graph__"):  # a Dask array: its part, computed here in
            from lamina.arrays.dask_array import materialize  # the destination's order

            part = materialize(part, order)
        data = np.asarray(part)
        self.dst[idx] = data
        return int(data.nbytes)


def _identity(array: Any) -> str:
    """What names the array in the run's journal: a Dask array's name (a hash of its
    graph), a digest of a numpy array's bytes."""
    name = getattr(array, "name", None)
    if isinstance(name, str) and hasattr(array, "dask"):
        return f"dask:{name}"
    digest = hashlib.blake2b(np.ascontiguousarray(array).view(np.uint8).data, digest_size=12)
    return f"numpy:{array.dtype}:{list(array.shape)}:{digest.hexdigest()}"


def store(
    array: Any,
    dst: Any,
    bbox: BBox3D | None = None,
    resolution: RawVec3D | None = None,
    chunk_size: RawVec3D | None = None,
    **run: Unpack[RunOptions],
) -> RunSummary:
    """Write ``array`` into ``dst`` (see the module docstring); every argument is checked
    before anything is written.

    Args:
        array: a Dask or numpy array ``(C, X, Y, Z)`` (or ``(X, Y, Z)``).
        dst: the volumetric layer written.
        bbox: where the array goes (nm); default: from ``dst``'s voxel offset at
            ``resolution``, the array's size.
        resolution: one of ``dst``'s scales; default: its finest.
        chunk_size: voxels of one task, a multiple of ``dst``'s write grid.
        run: how it runs (:class:`lamina.flows.options.RunOptions`).
    """
    check_run_options("store", run, store)
    backend = volumetric_backend(dst, "dst")
    check_executor_reaches(run, backend)
    if getattr(array, "ndim", None) == 3:
        array = array[None]
    if getattr(array, "ndim", None) != 4 or not hasattr(array, "dtype"):
        raise FlowArgumentError(
            f"store: array must be a Dask or numpy array of (C, X, Y, Z) (or (X, Y, Z)); got "
            f"{type(array).__name__} of shape {getattr(array, 'shape', '?')}"
        )
    if array.shape[0] != backend.num_channels:
        raise FlowArgumentError(
            f"store: array has {array.shape[0]} channel(s) and {backend.name} has "
            f"{backend.num_channels}; they must match"
        )
    if not np.can_cast(array.dtype, backend.dtype, "same_kind"):
        raise FlowArgumentError(
            f"store: array is {array.dtype} and {backend.name} is {backend.dtype}: "
            f"{array.dtype} values are not {backend.dtype} values. Convert the array first "
            "(array.astype(...)) or write into a volume of its dtype"
        )
    res = (
        backend.resolutions[0]
        if resolution is None
        else check_resolution(backend, resolution, "resolution", "store")
    )
    size = Vec3D(*(int(s) for s in array.shape[1:]))
    if bbox is None:
        start = backend.get_voxel_offset(res)
        bbox = BBox3D.from_coords(start, start + size, res)
    check_region("store", bbox)
    region = VolumetricIndex(resolution=res, bbox=bbox)
    if tuple(region.shape) != tuple(size):
        raise FlowArgumentError(
            f"store: bbox {region.pformat()} is {list(region.shape)} voxels at "
            f"{res.pformat()} nm, and the array is {list(size)}: they must match"
        )
    tasks = task_grid(backend, bbox, res, chunk_size)
    check_writable("store", dst, "dst")
    origin = (int(region.start[0]), int(region.start[1]), int(region.start[2]))
    description = {
        "array": _identity(array),
        "dst": backend.name,
        "bbox": [list(bbox.start), list(bbox.end)],
        "resolution": list(res),
        "chunk_size": None if chunk_size is None else [int(v) for v in chunk_size],
    }
    return run_tasks(
        "store",
        StoreTask(array, dst, origin),
        tasks,
        description,
        layers=(dst,),
        destinations=(dst,),
        chunks_per_task=StorageChunks(backend, (res,)),
        **run,
    )
