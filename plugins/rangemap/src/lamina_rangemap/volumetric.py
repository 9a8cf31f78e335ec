"""``RangeMapBackend``: a volume stitched from other volumetric layers, box by box.

Each range is a box in nm and a source layer. The source that *owns* a voxel is the
last range whose box holds it (TensorStore's overlay/stack rule: later layers take
precedence where they overlap). A read asks every source only for the part of the
index it owns — its box inside the index minus the boxes of every later range — and
pastes the parts together; what no box covers reads as ``fill_value``, or is an
:class:`~lamina_rangemap.errors.UncoveredRegionError` when there is none. A write is
split the same way and each part goes to its owner; a write reaching a region that no
box covers is refused before anything is written.

Sources are read and written through their own layers (``read_with_procs`` /
``write_with_procs``), so each keeps its resolutions, ``data_resolution`` and
processors. See the package README for every rule and decision.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar, Unpack

import attrs
import numpy as np
import numpy.typing as npt

from lamina.backend import Capabilities, ChangeKeyError
from lamina.errors import ReadonlyLayerError, UnknownResolutionError, UnsupportedOperationError
from lamina.volumetric.backend import VolumetricBackend, VolumetricChanges, warm_up_layers
from lamina.volumetric.data import check_volume_data, convert_dtype
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer
from lamina.volumetric.scales import sorted_resolutions
from lamina_rangemap.errors import RangeMapError, UncoveredRegionError
from lamina_rangemap.pairs import range_pairs

__all__ = ["RangeMapBackend", "VolumetricRange"]

#: One range: a box in nm and the layer that serves it.
VolumetricRange = tuple[BBox3D, VolumetricLayer]

# A box in voxels at one resolution: ((x0, x1), (y0, y1), (z0, z1)), half-open.
_Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

_AXES = "xyz"
_DECIMALS = 10
#: At most this many source parts are read at once (threads of one read).
MAX_CONCURRENT_READS = 8

# Options forwarded to every source's backend by ``with_changes``.
_FORWARDED = frozenset(
    {
        "enforce_chunk_aligned_writes",
        "overwrite_partial_chunks",
        "allow_cache",
        "use_compression",
        "cache_bytes_limit",
    }
)
_EXTENT_WHY = "the range map's extent is the bounding box of its ranges; change the boxes"
_REFUSED_CHANGES = {
    "name": (
        "a range map stores nothing of its own, so there is no other volume for a new name "
        "to address; build a range map over other source layers instead (e.g. each "
        "source's layer.with_changes(backend=layer.backend.with_changes(name=...)))"
    ),
    "voxel_offset_res": _EXTENT_WHY,
    "dataset_size_res": _EXTENT_WHY,
    "chunk_size_res": "the range map's chunking is its sources'; change the sources",
}

T = TypeVar("T")


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_worker = threading.local()


def _mark_worker() -> None:
    _worker.active = True


def _forget_pool() -> None:  # in a forked child the parent's threads do not exist
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=MAX_CONCURRENT_READS,
                thread_name_prefix="lamina-rangemap",
                initializer=_mark_worker,
            )
        return _pool


def run_all(tasks: Sequence[Callable[[], T]], concurrent: bool) -> list[T]:
    """Run ``tasks`` and return their results in order: on the shared threads of this
    module when ``concurrent`` and there is more than one, else one after another (as
    inside those threads, so that a range map among the sources of another never waits
    for threads its caller holds). The first error, in task order, is raised."""
    if not concurrent or len(tasks) < 2 or getattr(_worker, "active", False):
        return [task() for task in tasks]
    futures = [_shared_pool().submit(task) for task in tasks]
    return [future.result() for future in futures]


# -- boxes in voxels ---------------------------------------------------------------------
def _subtract(a: _Box, b: _Box) -> list[_Box]:
    """``a`` minus ``b`` as at most 6 disjoint boxes (slabs along x, then y, then z)."""
    if any(a[d][1] <= b[d][0] or b[d][1] <= a[d][0] for d in range(3)):
        return [a]
    out: list[_Box] = []
    rest = [a[0], a[1], a[2]]
    for d in range(3):
        lo, hi = rest[d]
        blo, bhi = b[d]
        if lo < blo:
            piece = list(rest)
            piece[d] = (lo, blo)
            out.append((piece[0], piece[1], piece[2]))
        if bhi < hi:
            piece = list(rest)
            piece[d] = (bhi, hi)
            out.append((piece[0], piece[1], piece[2]))
        rest[d] = (max(lo, blo), min(hi, bhi))
    return out


def _subtract_all(pieces: list[_Box], boxes: Iterable[_Box | None]) -> list[_Box]:
    for box in boxes:
        if box is None:
            continue
        pieces = [p for piece in pieces for p in _subtract(piece, box)]
        if not pieces:
            break
    return pieces


def _centre_voxel(q: float) -> int:
    """The first voxel whose centre is at or past ``q`` voxels (``q`` itself if integral)."""
    q = round(q, _DECIMALS)
    if q.is_integer():
        return int(q)
    return math.ceil(q - 0.5)


def _box_text(box: BBox3D) -> str:
    return f"{box.pformat((1, 1, 1))} nm"


def _voxel_box_text(box: _Box, res: Vec3D[float]) -> str:
    start = Vec3D(box[0][0], box[1][0], box[2][0])
    stop = Vec3D(box[0][1], box[1][1], box[2][1])
    nm = BBox3D.from_coords(start, stop, res)
    return f"{_box_text(nm)} = voxels {start.pformat()} - {stop.pformat()} at {res.pformat()} nm"


def _index_of(box: _Box, idx: VolumetricIndex) -> VolumetricIndex:
    return VolumetricIndex.from_coords(
        (box[0][0], box[1][0], box[2][0]),
        (box[0][1], box[1][1], box[2][1]),
        idx.resolution,
        chunk_id=idx.chunk_id,
        allow_slice_rounding=idx.allow_slice_rounding,
    )


def _slices_in(box: _Box, origin: Vec3D[int]) -> tuple[slice, slice, slice, slice]:
    return (
        slice(None),
        slice(box[0][0] - origin[0], box[0][1] - origin[0]),
        slice(box[1][0] - origin[1], box[1][1] - origin[1]),
        slice(box[2][0] - origin[2], box[2][1] - origin[2]),
    )


# -- checking the ranges -------------------------------------------------------------------
def _as_layer(value: Any, where: str) -> VolumetricLayer:
    if isinstance(value, VolumetricLayer):
        return value
    if isinstance(value, VolumetricBackend):
        return build_volumetric_layer(value)
    raise RangeMapError(
        f"{where}: a volumetric range maps a box to a lamina VolumetricLayer (or a "
        f"VolumetricBackend); got {type(value).__name__}: {value!r}"
    )


def _as_ranges(value: Any) -> tuple[VolumetricRange, ...]:
    """attrs converter: the ranges as a tuple of checked ``(BBox3D, VolumetricLayer)``."""
    out: list[VolumetricRange] = []
    for where, box, layer in range_pairs(value, "BBox3D"):
        if not isinstance(box, BBox3D):
            raise RangeMapError(
                f"{where}: the range of a volumetric range map is a BBox3D (nm); got "
                f"{type(box).__name__}: {box!r}"
            )
        if box.is_empty or not all(math.isfinite(v) for pair in box.bounds for v in pair):
            raise RangeMapError(f"{where}: the box must be finite and not empty; got {box!r}")
        out.append((box, _as_layer(layer, where)))
    return tuple(out)


def _source_label(i: int, box: BBox3D, layer: VolumetricLayer) -> str:
    return f"source {i} ({layer.name!r}, box {_box_text(box)})"


def _served_by(layer: VolumetricLayer) -> frozenset[Vec3D[float]] | None:
    """The resolutions a source serves; ``None`` when it may serve any (a source with a
    ``data_resolution`` resamples, and index processors may change the resolution)."""
    if layer.data_resolution is not None or layer.index_procs:
        return None
    return frozenset(layer.backend.resolutions)


def _plain_for_writes(layer: VolumetricLayer, res: Vec3D[float]) -> bool:
    """Whether a write at ``res`` reaches the source's backend unchanged, so that the
    backend's own checks can be made in advance."""
    data_res = layer.data_resolution
    return (
        not layer.index_procs
        and not layer.write_procs
        and (data_res is None or data_res == res)
        and type(layer)._write_to_backend is VolumetricLayer._write_to_backend
    )


@attrs.frozen
class RangeMapBackend(VolumetricBackend):
    """A volume made of other volumetric layers: ``ranges`` maps boxes (nm) to layers.

    Args:
        ranges: ``(BBox3D, VolumetricLayer)`` pairs (a ``VolumetricBackend`` is taken as
            ``build_volumetric_layer(backend)``). Later ranges take precedence where
            boxes overlap. Every source must have the same dtype and channel count.
        fill_value: what a region no box covers reads as; ``None`` (the default) makes
            such a read an :class:`~lamina_rangemap.errors.UncoveredRegionError`.

    Geometry: the bounds are the bounding box of the boxes; the resolutions are those
    every source serves; the chunk size at a resolution exists where every source
    storing it has the same chunk grid; ``volume_type`` where the sources agree.
    ``with_changes`` forwards option keys to every source; ``delete`` is refused.
    """

    supported_changes = _FORWARDED

    ranges: tuple[VolumetricRange, ...] = attrs.field(converter=_as_ranges)
    fill_value: Any = None
    _name: str = attrs.field(init=False, repr=False, eq=False)
    capabilities: Capabilities = attrs.field(init=False, repr=False, eq=False)
    _fill: Any = attrs.field(init=False, repr=False, eq=False)
    # Caches: the bounds in voxels per resolution, and the resolutions checked as served.
    _voxel_cache: dict[Vec3D[float], tuple[Vec3D[int], Vec3D[int]]] = attrs.field(
        init=False, repr=False, eq=False, factory=dict
    )
    _served: set[Vec3D[float]] = attrs.field(init=False, repr=False, eq=False, factory=set)

    def __attrs_post_init__(self) -> None:
        layers = [layer for _, layer in self.ranges]
        for what, values in (
            ("dtype", [layer.backend.dtype for layer in layers]),
            ("num_channels", [layer.backend.num_channels for layer in layers]),
        ):
            if len(set(values)) > 1:
                listing = "; ".join(
                    f"{_source_label(i, box, layer)}: {values[i]}"
                    for i, (box, layer) in enumerate(self.ranges)
                )
                raise RangeMapError(
                    f"the sources of a range map must have one {what}; they have: {listing}"
                )
        fill = None
        if self.fill_value is not None:
            value = self.fill_value
            if isinstance(value, str | bytes) or not isinstance(value, int | float | np.generic):
                raise RangeMapError(
                    f"fill_value must be a number (or None); got {type(value).__name__}: {value!r}"
                )
            try:
                fill = convert_dtype(np.asarray([value]), layers[0].backend.dtype)[0]
            except ValueError as exc:
                raise RangeMapError(
                    f"fill_value {value!r} cannot be stored in the sources' dtype "
                    f"{layers[0].backend.dtype}: {exc}"
                ) from None
        object.__setattr__(self, "_fill", fill)
        if not self.resolutions:
            listing = "; ".join(
                f"{_source_label(i, box, layer)}: "
                f"{', '.join(r.pformat() for r in layer.backend.resolutions)}"
                for i, (box, layer) in enumerate(self.ranges)
            )
            raise RangeMapError(f"the sources of a range map share no resolution: {listing}")
        object.__setattr__(self, "_name", self._make_name())
        caps = [layer.backend.capabilities for layer in layers]
        object.__setattr__(
            self,
            "capabilities",
            Capabilities(
                writable=any(
                    not layer.readonly and c.writable for layer, c in zip(layers, caps, strict=True)
                ),
                deletable=False,
                picklable=all(c.picklable for c in caps),
                shared_across_processes=all(c.shared_across_processes for c in caps),
                thread_safe=all(c.thread_safe for c in caps),
                non_aligned_writes=all(c.non_aligned_writes for c in caps),
            ),
        )

    def _make_name(self) -> str:
        parts = [f"{_box_text(box)} -> {layer.name}" for box, layer in self.ranges]
        if len(parts) > 4:
            parts = [*parts[:3], f"... ({len(parts)} ranges)"]
        return f"rangemap[{'; '.join(parts)}]"

    def _label(self, i: int) -> str:
        box, layer = self.ranges[i]
        return _source_label(i, box, layer)

    # -- what the volume is ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.ranges[0][1].backend.dtype

    @property
    def num_channels(self) -> int:
        return self.ranges[0][1].backend.num_channels

    @property
    def resolutions(self) -> tuple[Vec3D[float], ...]:
        """The resolutions every source serves, finest first. A source serves the
        resolutions its backend stores; one with a ``data_resolution`` (it resamples) or
        index processors serves any."""
        served = [_served_by(layer) for _, layer in self.ranges]
        candidates: set[Vec3D[float]] = set()
        for _, layer in self.ranges:
            candidates.update(layer.backend.resolutions)
        for limit in served:
            if limit is not None:
                candidates &= limit
        return sorted_resolutions(candidates)

    def _check_resolution(self, resolution: RawVec3D) -> Vec3D[float]:
        if type(resolution) is Vec3D and resolution in self._served:
            return resolution
        res = Vec3D.from_seq(resolution, "resolution").float()
        if res in self._served:
            return res
        for i, (_, layer) in enumerate(self.ranges):
            limit = _served_by(layer)
            if limit is not None and res not in limit:
                known = ", ".join(r.pformat() for r in self.resolutions)
                raise UnknownResolutionError(
                    f"{self.name} has no scale at resolution {res.pformat()} nm: "
                    f"{self._label(i)} does not store it. The range map's resolutions (those "
                    f"every source serves) are: {known}"
                )
        self._served.add(res)
        return res

    def _extent(self, resolution: RawVec3D) -> tuple[Vec3D[int], Vec3D[int]]:
        """Voxel start and stop of the bounding box of the ranges (centre rule)."""
        res = self._check_resolution(resolution)
        cached = self._voxel_cache.get(res)
        if cached is not None:
            return cached
        bounds = self.ranges[0][0]
        for box, _ in self.ranges[1:]:
            bounds = bounds.supremum(box)
        b = bounds.bounds
        start = Vec3D(*(_centre_voxel(b[d][0] / res[d]) for d in range(3)))
        stop = Vec3D(*(_centre_voxel(b[d][1] / res[d]) for d in range(3)))
        self._voxel_cache[res] = (start, stop)
        return start, stop

    def get_voxel_offset(self, resolution: RawVec3D) -> Vec3D[int]:
        """The first voxel of the bounding box of the ranges at ``resolution``."""
        return self._extent(resolution)[0]

    def get_dataset_size(self, resolution: RawVec3D) -> Vec3D[int]:
        """The voxel size of the bounding box of the ranges at ``resolution``; regions
        inside it that no box covers read as ``fill_value``."""
        start, stop = self._extent(resolution)
        return stop - start

    def get_chunk_size(self, resolution: RawVec3D) -> Vec3D[int]:
        """The chunk size shared by every source that stores ``resolution``.

        The sources must have one chunk grid there — the same chunk size, and voxel
        offsets on one grid with the range map's own offset — else
        :class:`~lamina_rangemap.errors.RangeMapError` lists each source's grid.
        """
        return self._common_grid(resolution, "chunk", lambda b, res: b.get_chunk_size(res))

    def get_write_grid_size(self, resolution: RawVec3D) -> Vec3D[int]:
        """The write grid shared by every source that stores ``resolution`` (their chunk
        size, or the shard box of sharded sources); the same rules as the chunk size."""
        return self._common_grid(resolution, "write", lambda b, res: b.get_write_grid_size(res))

    def _common_grid(
        self,
        resolution: RawVec3D,
        what: str,
        size_of: Callable[[VolumetricBackend, Vec3D[float]], Vec3D[int]],
    ) -> Vec3D[int]:
        res = self._check_resolution(resolution)
        offset = self.get_voxel_offset(res)
        grids: list[tuple[int, Vec3D[int], Vec3D[int]]] = []
        for i, (_, layer) in enumerate(self.ranges):
            if res in layer.backend.resolutions:
                grids.append((i, size_of(layer.backend, res), layer.backend.get_voxel_offset(res)))
        if not grids:
            raise UnknownResolutionError(
                f"no source of {self.name} stores resolution {res.pformat()} nm, so the range "
                f"map has no {what} grid there"
            )
        size = grids[0][1]
        if all(
            g[1] == size and all((g[2][d] - offset[d]) % size[d] == 0 for d in range(3))
            for g in grids
        ):
            return size
        listing = "; ".join(
            f"{self._label(i)}: {what} {'size' if what == 'chunk' else 'grid'} "
            f"{cell.pformat()} from voxel offset {off.pformat()}"
            for i, cell, off in grids
        )
        raise RangeMapError(
            f"the sources of {self.name} have no common {what} grid at {res.pformat()} nm "
            f"(the range map starts at voxel {offset.pformat()}): {listing}. A range map has "
            f"a {what} grid only where every source has the same one; cut its writes by "
            "each source's own grid instead."
        )

    @property
    def volume_type(self) -> Literal["image", "segmentation"] | None:
        """The sources' volume type when they agree, else ``None``."""
        types = {layer.backend.volume_type for _, layer in self.ranges}
        return types.pop() if len(types) == 1 else None

    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        """True when any source enforces chunk-aligned writes (a write may be refused)."""
        return any(layer.backend.enforce_chunk_aligned_writes for _, layer in self.ranges)

    @property
    def overwrite_partial_chunks(self) -> bool:
        return any(layer.backend.overwrite_partial_chunks for _, layer in self.ranges)

    @property
    def allow_cache(self) -> bool:
        return all(layer.backend.allow_cache for _, layer in self.ranges)

    @property
    def use_compression(self) -> bool:
        return all(layer.backend.use_compression for _, layer in self.ranges)

    @property
    def is_local(self) -> bool:
        return all(layer.backend.is_local for _, layer in self.ranges)

    def clear_cache(self) -> None:
        for _, layer in self.ranges:
            layer.backend.clear_cache()

    # -- the plan of one read or write --------------------------------------------------------
    def _clip(self, i: int, extent: _Box, res: Vec3D[float], rounding: bool) -> _Box | None:
        """Range ``i``'s box in voxels at ``res``, clipped to ``extent``; ``None`` if they
        do not overlap. An edge inside the extent must be on the voxel grid unless
        ``rounding`` (then a voxel belongs to the box holding its centre)."""
        box = self.ranges[i][0]
        b = box.bounds
        out: list[tuple[int, int]] = []
        for d in range(3):
            lo, hi = extent[d]
            q0, q1 = b[d][0] / res[d], b[d][1] / res[d]
            if q1 <= lo or q0 >= hi:
                return None
            edges = []
            for q, which in ((q0, "start"), (q1, "end")):
                if q <= lo:
                    edges.append(lo)
                elif q >= hi:
                    edges.append(hi)
                else:
                    qr = round(q, _DECIMALS)
                    if not qr.is_integer() and not rounding:
                        raise RangeMapError(
                            f"the box of {self._label(i)} is not on the voxel grid at "
                            f"{res.pformat()} nm: its {which} in {_AXES[d]} is "
                            f"{b[d][0 if which == 'start' else 1]!r} nm = {qr!r} voxels (the box "
                            f"is {box.pformat(res)} in voxels). Give boxes on the voxel grid of "
                            "every resolution you read, or build the layer with "
                            "allow_slice_rounding=True (a voxel then belongs to the boxes "
                            "holding its centre)."
                        )
                    edges.append(_centre_voxel(qr))
            if edges[0] >= edges[1]:
                return None
            out.append((edges[0], edges[1]))
        return (out[0], out[1], out[2])

    def plan(self, idx: VolumetricIndex) -> tuple[list[tuple[int, list[_Box]]], list[_Box]]:
        """Which source reads or writes which part of ``idx``, and what no box covers.

        Returns ``(parts, uncovered)``: ``parts`` lists, in range order, each source that
        owns part of ``idx`` with its disjoint voxel boxes at ``idx.resolution`` (its box
        inside ``idx`` minus the boxes of every later range); ``uncovered`` the voxel
        boxes of ``idx`` that no range covers.
        """
        res = idx.resolution
        start, stop = idx.start, idx.stop
        extent: _Box = ((start[0], stop[0]), (start[1], stop[1]), (start[2], stop[2]))
        if not idx.allow_slice_rounding:  # the common case: idx inside one box, none later
            bbox = idx.bbox
            for i in range(len(self.ranges) - 1, -1, -1):
                range_box = self.ranges[i][0]
                if bbox.contained_in(range_box):
                    return [(i, [extent])], []
                if range_box.intersects(bbox):
                    break
        clipped = [
            self._clip(i, extent, res, idx.allow_slice_rounding) for i in range(len(self.ranges))
        ]
        parts: list[tuple[int, list[_Box]]] = []
        for i, box in enumerate(clipped):
            if box is None:
                continue
            pieces = _subtract_all([box], clipped[i + 1 :])
            if pieces:
                parts.append((i, pieces))
        return parts, _subtract_all([extent], clipped)

    def _uncovered_text(self, uncovered: list[_Box], res: Vec3D[float]) -> str:
        shown = "; ".join(_voxel_box_text(b, res) for b in uncovered[:6])
        more = f" and {len(uncovered) - 6} more" if len(uncovered) > 6 else ""
        return shown + more

    # -- IO ------------------------------------------------------------------------------------
    def _read_part(self, i: int, idx: VolumetricIndex) -> npt.NDArray[Any]:
        layer = self.ranges[i][1]
        try:
            data = layer.read_with_procs(idx)
        except Exception as exc:
            exc.add_note(f"while reading {idx.pformat()} at {idx.resolution.pformat()} nm "
                         f"from {self._label(i)} of {self.name}")  # fmt: skip
            raise
        if not isinstance(data, np.ndarray) or data.ndim != 4 or data.shape[1:] != idx.shape:
            shape = getattr(data, "shape", None)
            raise RangeMapError(
                f"{self._label(i)} returned {type(data).__name__} of shape {shape} for "
                f"{idx.pformat()} at {idx.resolution.pformat()} nm; a source must return a "
                f"(C, X, Y, Z) numpy array of spatial shape {tuple(idx.shape)}"
            )
        return data

    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        """Stitch ``idx`` from the sources that own its parts (later ranges first where
        boxes overlap); what no box covers is ``fill_value`` (else an error)."""
        self._check_resolution(idx.resolution)
        shape = tuple(idx.shape)
        if 0 in shape:
            return np.zeros((self.num_channels, *shape), dtype=self.dtype)
        parts, uncovered = self.plan(idx)
        if uncovered and self._fill is None:
            raise UncoveredRegionError(
                f"the read of {idx.pformat()} at {idx.resolution.pformat()} nm from "
                f"{self.name} reaches regions no range covers: "
                f"{self._uncovered_text(uncovered, idx.resolution)}. "
                "Read inside the ranges, or build the range map with fill_value= to read "
                "such regions as that value."
            )
        if not uncovered and len(parts) == 1 and len(parts[0][1]) == 1:
            return self._read_part(parts[0][0], idx)  # one source owns all of it
        tasks = [(i, _index_of(piece, idx), piece) for i, pieces in parts for piece in pieces]
        concurrent = all(self.ranges[i][1].backend.capabilities.thread_safe for i, _, _ in tasks)
        datas = run_all(
            [functools.partial(self._read_part, i, part) for i, part, _ in tasks], concurrent
        )
        channels = {data.shape[0] for data in datas} or {self.num_channels}
        if len(channels) > 1:
            listing = "; ".join(
                f"{self._label(i)}: {data.shape[0]}"
                for (i, _, _), data in zip(tasks, datas, strict=True)
            )
            raise RangeMapError(
                f"the sources returned different channel counts for {idx.pformat()}: {listing}"
            )
        dtype = np.result_type(*(data.dtype for data in datas)) if datas else self.dtype
        out_shape = (channels.pop(), *shape)
        # np.zeros, not np.empty: fresh zeroed pages are cheaper to fill than faulted ones
        if uncovered and self._fill != 0:
            out = np.full(out_shape, self._fill, dtype)
        else:
            out = np.zeros(out_shape, dtype)
        origin = idx.start
        for (_, _, piece), data in zip(tasks, datas, strict=True):
            out[_slices_in(piece, origin)] = data
        return out

    def _check_part_writable(self, i: int, idx: VolumetricIndex) -> None:
        layer = self.ranges[i][1]
        if layer.readonly:
            raise ReadonlyLayerError(
                f"the write to {idx.pformat()} at {idx.resolution.pformat()} nm reaches "
                f"{self._label(i)}, which is readonly; nothing was written"
            )
        if not layer.backend.capabilities.writable:
            raise UnsupportedOperationError(
                f"the write to {idx.pformat()} at {idx.resolution.pformat()} nm reaches "
                f"{self._label(i)}, whose backend does not support writes; nothing was written"
            )

    def _precheck_part(self, i: int, part: VolumetricIndex) -> None:
        """The source backend's own refusals, made before anything is written."""
        backend = self.ranges[i][1].backend
        res = part.resolution
        if res not in backend.resolutions:
            known = ", ".join(r.pformat() for r in backend.resolutions)
            raise UnknownResolutionError(
                f"{self._label(i)} has no scale at {res.pformat()} nm (it has: {known}); "
                "nothing was written"
            )
        if backend.enforce_chunk_aligned_writes and not backend.is_write_aligned(part):
            try:
                backend.assert_idx_is_write_aligned(part)
            except ValueError as exc:
                raise ValueError(
                    f"{self._label(i)} refuses its part of the write: {exc} Nothing was "
                    "written. (Box edges inside a source's volume must lie on its chunk grid "
                    "for aligned writes.)"
                ) from None
        if not backend.is_within_bounds(part):
            raise ValueError(
                f"{self._label(i)} refuses its part of the write: {part.pformat()} at "
                f"{res.pformat()} nm reaches outside its dataset bounds "
                f"({backend.get_bounds(res).pformat()}); nothing was written. Keep each box "
                "inside its source's bounds."
            )

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        """Split the write among the sources owning its parts. Everything that can be
        checked is checked before anything is written: shape, channels, lossless dtype,
        coverage, readonly sources, and — for sources whose writes reach their backend
        unchanged — resolution, chunk alignment and bounds."""
        res = self._check_resolution(idx.resolution)
        array = convert_dtype(check_volume_data(data, idx.shape, self.num_channels), self.dtype)
        if 0 in tuple(idx.shape):
            return
        parts, uncovered = self.plan(idx)
        if uncovered:
            raise UncoveredRegionError(
                f"the write to {idx.pformat()} at {res.pformat()} nm reaches outside the "
                f"bounds of every range of {self.name}: "
                f"{self._uncovered_text(uncovered, res)} is not covered by any box; nothing "
                "was written. Write inside the ranges (or add a range for that region)."
            )
        plain: dict[int, bool] = {}
        for i, pieces in parts:
            self._check_part_writable(i, idx)
            plain[i] = _plain_for_writes(self.ranges[i][1], res)
            if plain[i]:
                for piece in pieces:
                    self._precheck_part(i, _index_of(piece, idx))
        # Sources whose writes could not be checked in advance go first: if one of them
        # refuses, nothing else has been written.
        origin = idx.start
        for i, pieces in sorted(parts, key=lambda p: plain[p[0]]):
            layer = self.ranges[i][1]
            for piece in pieces:
                part = _index_of(piece, idx)
                try:
                    layer.write_with_procs(part, array[_slices_in(piece, origin)])
                except Exception as exc:
                    exc.add_note(
                        f"while writing {part.pformat()} at {res.pformat()} nm to "
                        f"{self._label(i)} of {self.name}"
                    )
                    raise

    # -- changes and lifetime -----------------------------------------------------------------
    def with_changes(self, **changes: Unpack[VolumetricChanges]) -> RangeMapBackend:  # type: ignore[override]
        """Options (``enforce_chunk_aligned_writes``, ``overwrite_partial_chunks``,
        ``allow_cache``, ``use_compression``, ``cache_bytes_limit``) are forwarded to every
        source's backend — all or none: a source that does not support one raises a
        ``KeyError`` naming it. ``name`` and the geometry keys are refused (``KeyError``)."""
        for key, why in _REFUSED_CHANGES.items():
            if key in changes:
                raise ChangeKeyError(
                    f"RangeMapBackend does not support with_changes({key}=...): {why}"
                )
        self.check_changes(dict(changes))
        if not changes:
            return self
        ranges: list[VolumetricRange] = []
        for i, (box, layer) in enumerate(self.ranges):
            try:
                backend = layer.backend.with_changes(**changes)
            except KeyError as exc:
                raise ChangeKeyError(
                    f"with_changes({', '.join(changes)}) cannot be forwarded to "
                    f"{self._label(i)}: {exc}. Nothing was changed."
                ) from None
            ranges.append((box, layer.with_changes(backend=backend)))
        return RangeMapBackend(ranges=ranges, fill_value=self.fill_value)

    def warm_up(self) -> None:
        """Every source's ``warm_up`` (see ``VolumetricBackend.warm_up``)."""
        warm_up_layers(layer for _, layer in self.ranges)

    def delete(self) -> None:
        """Refused: a range map does not own its sources (they may hold data outside
        their boxes and serve other layers). Delete each source layer if that is meant."""
        raise UnsupportedOperationError(
            f"{self.name} does not delete its sources' data: they may hold data outside "
            "their boxes or serve other layers. Delete each source layer itself "
            "(source.delete()) if that is what you mean."
        )

    def pformat(self) -> str:
        lines = [f"{self.name}: {self.dtype}, {self.num_channels} channel(s)"]
        for res in self.resolutions:
            try:
                chunk = self.get_chunk_size(res).pformat()
            except (RangeMapError, UnknownResolutionError):
                chunk = "differs by source"
            lines.append(
                f"  {res.pformat()} nm: offset {self.get_voxel_offset(res).pformat()}, "
                f"size {self.get_dataset_size(res).pformat()}, chunk {chunk}"
            )
        fill = "error" if self.fill_value is None else repr(self.fill_value)
        lines.append(f"  uncovered regions read as: {fill}")
        for i, (box, layer) in enumerate(self.ranges):
            lines.append(f"  range {i}: {_box_text(box)} -> {layer.name}")
        return "\n".join(lines)
