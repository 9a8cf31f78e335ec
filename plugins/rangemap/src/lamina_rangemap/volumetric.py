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

This module holds the backend class: what the volume is (dtype, resolutions, bounds,
grids), its options and changes. The parts live beside it: the ranges and what each
source serves in :mod:`~lamina_rangemap.sources`, voxel boxes in
:mod:`~lamina_rangemap.boxes`, who owns which voxels in :mod:`~lamina_rangemap.ownership`,
the read in :mod:`~lamina_rangemap.reads`, the write and its checks in
:mod:`~lamina_rangemap.writes`, the shared reading threads in
:mod:`~lamina_rangemap.threads`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Unpack

import attrs
import numpy as np
import numpy.typing as npt

from lamina.backend import Capabilities, ChangeKeyError
from lamina.errors import UnknownResolutionError, UnsupportedOperationError
from lamina.volumetric.backend import VolumetricBackend, VolumetricChanges, warm_up_layers
from lamina.volumetric.data import check_volume_data, convert_dtype
from lamina.volumetric.geometry import RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.scales import sorted_resolutions
from lamina_rangemap.boxes import box_text, centre_voxel
from lamina_rangemap.errors import RangeMapError
from lamina_rangemap.ownership import Plan, plan_parts
from lamina_rangemap.reads import stitch
from lamina_rangemap.sources import (
    VolumetricRange,
    as_ranges,
    range_label,
    served_by,
    source_label,
)
from lamina_rangemap.threads import MAX_CONCURRENT_READS, run_all  # keyvalue.py imports it here
from lamina_rangemap.writes import write_split

__all__ = ["MAX_CONCURRENT_READS", "RangeMapBackend", "VolumetricRange", "run_all"]

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

    ranges: tuple[VolumetricRange, ...] = attrs.field(converter=as_ranges)
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
                    f"{source_label(i, box, layer)}: {values[i]}"
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
                f"{source_label(i, box, layer)}: "
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
        parts = [f"{box_text(box)} -> {layer.name}" for box, layer in self.ranges]
        if len(parts) > 4:
            parts = [*parts[:3], f"... ({len(parts)} ranges)"]
        return f"rangemap[{'; '.join(parts)}]"

    def _label(self, i: int) -> str:
        return range_label(self.ranges, i)

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
        served = [served_by(layer) for _, layer in self.ranges]
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
            limit = served_by(layer)
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
        start = Vec3D(*(centre_voxel(b[d][0] / res[d]) for d in range(3)))
        stop = Vec3D(*(centre_voxel(b[d][1] / res[d]) for d in range(3)))
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

    # -- the plan of one read or write, and IO ---------------------------------------------
    def plan(self, idx: VolumetricIndex) -> Plan:
        """Which source reads or writes which part of ``idx``, and what no box covers.

        Returns ``(parts, uncovered)``: ``parts`` lists, in range order, each source that
        owns part of ``idx`` with its disjoint voxel boxes at ``idx.resolution`` (its box
        inside ``idx`` minus the boxes of every later range); ``uncovered`` the voxel
        boxes of ``idx`` that no range covers.
        """
        return plan_parts(self.ranges, idx)

    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        """Stitch ``idx`` from the sources that own its parts (later ranges first where
        boxes overlap); what no box covers is ``fill_value`` (else an error)."""
        self._check_resolution(idx.resolution)
        return stitch(
            self.ranges,
            idx,
            name=self.name,
            fill=self._fill,
            num_channels=self.num_channels,
            dtype=self.dtype,
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
        write_split(self.ranges, idx, array, name=self.name, res=res)

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
            lines.append(f"  range {i}: {box_text(box)} -> {layer.name}")
        return "\n".join(lines)
