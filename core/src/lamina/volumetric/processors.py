"""Volumetric processors, registered by name under the reference system's names.

Index processors (``idx -> idx``): ``VolumetricIndexTranslator``,
``VolumetricIndexScaler``, ``VolumetricIndexOverrider``, ``VolumetricIndexPadder``.
Joint processors: ``InvertProcessor`` and ``ROIMaskProcessor``.

Differences from the reference, each a fixed weak point (docs/behaviour.md#weak-points-fixed):
index processors keep the index's ``chunk_id`` (the reference reset it to 0);
``InvertProcessor`` is a true inversion for every integer dtype (the reference's gave
257 - x on uint8 only); ``ROIMaskProcessor`` returns a new dict instead of changing the
one it was given, and a missing target is a ``KeyError`` naming it (not an ``assert``).
All are frozen values, safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lamina.processors import JointIndexDataProcessor, Mode
from lamina.volumetric.converters import to_vec3
from lamina.volumetric.geometry import BBox3D, PadLike, Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = [
    "InvertProcessor",
    "ROIMaskProcessor",
    "VolumetricIndexOverrider",
    "VolumetricIndexPadder",
    "VolumetricIndexScaler",
    "VolumetricIndexTranslator",
]


def _optional3(value: Sequence[float | None] | None) -> tuple[float | None, ...] | None:
    """An override: ``None``, or 3 entries each a number or ``None`` (keep the index's)."""
    if value is None:
        return None
    items = tuple(value)
    if len(items) != 3:
        raise ValueError(f"an override must have 3 entries (x, y, z; None keeps); got {value!r}")
    return items


def _targets(value: Any) -> tuple[str, ...]:
    """Layer-set keys: a sequence of str (a bare str would be split into letters)."""
    if isinstance(value, str):
        raise TypeError(f"targets must be a list of layer names; got the str {value!r}")
    items = tuple(value)
    if not all(isinstance(t, str) for t in items):
        raise TypeError(f"targets must be layer names (str); got {items!r}")
    return items


@attrs.frozen
class VolumetricIndexTranslator:
    """Shift the index by ``offset`` voxels counted at ``resolution``."""

    offset: Vec3D[float] = attrs.field(converter=to_vec3)
    resolution: Vec3D[float] = attrs.field(converter=to_vec3)
    allow_slice_rounding: bool = False

    def __call__(self, idx: VolumetricIndex) -> VolumetricIndex:
        bbox = idx.bbox.translated(self.offset, self.resolution)
        return VolumetricIndex(idx.resolution, bbox, idx.chunk_id, self.allow_slice_rounding)


@attrs.frozen
class VolumetricIndexScaler:
    """Keep the region (nm), multiply the resolution element-wise by ``res_change_mult``."""

    res_change_mult: Vec3D[float] = attrs.field(converter=to_vec3)
    allow_slice_rounding: bool = False

    def __call__(self, idx: VolumetricIndex) -> VolumetricIndex:
        return VolumetricIndex(
            idx.resolution * self.res_change_mult,
            idx.bbox,
            idx.chunk_id,
            self.allow_slice_rounding,
        )


@attrs.frozen
class VolumetricIndexOverrider:
    """Replace the voxel offset, voxel size and/or resolution of the index.

    Each override is three entries, ``None`` keeping the index's own. The result is
    built from voxel coordinates at the (overridden) resolution, so overriding only the
    resolution keeps voxel coordinates and changes the physical region.
    """

    override_offset: tuple[float | None, ...] | None = attrs.field(
        default=None, converter=_optional3
    )
    override_size: tuple[float | None, ...] | None = attrs.field(default=None, converter=_optional3)
    override_resolution: tuple[float | None, ...] | None = attrs.field(
        default=None, converter=_optional3
    )

    def __call__(self, idx: VolumetricIndex) -> VolumetricIndex:
        def pick(override: tuple[float | None, ...] | None, own: Vec3D[Any]) -> list[Any]:
            if override is None:
                return list(own)
            return [own[d] if override[d] is None else override[d] for d in range(3)]

        start = pick(self.override_offset, idx.start)
        size = pick(self.override_size, idx.shape)
        res = pick(self.override_resolution, idx.resolution)
        stop = [start[d] + size[d] for d in range(3)]
        return VolumetricIndex.from_coords(start, stop, res, chunk_id=idx.chunk_id)


@attrs.frozen
class VolumetricIndexPadder:
    """Pad the index by ``pad`` voxels at its resolution: per dim an int or (before, after)."""

    pad: PadLike

    def __call__(self, idx: VolumetricIndex) -> VolumetricIndex:
        return idx.padded(self.pad)


def invert(data: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The true inversion of ``data``: ``max - x`` for unsigned integers (255 − x for
    uint8), ``-1 - x`` for signed ones (min ↔ max), logical not for bools."""
    if data.dtype.kind == "u":
        inverted: npt.NDArray[Any] = np.iinfo(data.dtype).max - data
        return inverted
    if data.dtype.kind in "ib":
        flipped: npt.NDArray[Any] = np.invert(data)
        return flipped
    raise NotImplementedError(
        f"InvertProcessor inverts integer and bool data; got {data.dtype}. For floats, "
        "say what inversion means with a processor of your own (e.g. lambda d: 1 - d)."
    )


@attrs.frozen
class InvertProcessor(JointIndexDataProcessor[Any, Any]):
    """Invert the data when ``invert`` is True (255 − x on uint8; the reference: 257 − x)."""

    invert: bool
    prob: float = 1.0

    def process_index(self, idx: Any, mode: Mode) -> tuple[Any, Any]:
        return idx, None

    def process_data(self, data: Any, mode: Mode, state: Any) -> Any:
        return invert(data) if self.invert else data


@attrs.frozen
class ROIMaskProcessor(JointIndexDataProcessor[Mapping[str, Any], VolumetricIndex]):
    """Add ``"<target>_mask"`` (uint8, 1 inside the region of interest) beside each target.

    For layer-set data (``{name: (C, X, Y, Z)}``). The ROI is ``start_coord`` to
    ``end_coord`` voxels at ``resolution``; the data is taken to cover the index padded
    by ``upstream_pad`` voxels. A mask that is already present is kept. The given dict
    is not changed: a new one is returned.
    """

    start_coord: Vec3D[float] = attrs.field(converter=to_vec3)
    end_coord: Vec3D[float] = attrs.field(converter=to_vec3)
    resolution: Vec3D[float] = attrs.field(converter=to_vec3)
    targets: tuple[str, ...] = attrs.field(converter=_targets)
    upstream_pad: PadLike | None = None
    prob: float = 1.0

    @property
    def roi(self) -> BBox3D:
        return BBox3D.from_coords(self.start_coord, self.end_coord, self.resolution)

    def process_index(
        self, idx: VolumetricIndex, mode: Mode
    ) -> tuple[VolumetricIndex, tuple[slice, ...] | None]:
        frame = idx if self.upstream_pad is None else idx.padded(self.upstream_pad)
        inside = frame.bbox.intersection(self.roi)
        if inside.is_empty:
            return idx, None
        part = VolumetricIndex(frame.resolution, inside, allow_slice_rounding=True)
        slices = tuple(
            slice(part.start[d] - frame.start[d], part.stop[d] - frame.start[d]) for d in range(3)
        )
        return idx, slices

    def process_data(self, data: Mapping[str, Any], mode: Mode, state: Any) -> dict[str, Any]:
        missing = [t for t in self.targets if t not in data]
        if missing:
            raise KeyError(
                f"ROIMaskProcessor targets {missing} are not in the data; it has {sorted(data)}"
            )
        result = dict(data)
        for target in self.targets:
            key = f"{target}_mask"
            if key in result:
                continue
            values = np.asarray(result[target])
            mask = np.zeros(values.shape, dtype=np.uint8)
            if state is not None:
                mask[(..., *state)] = 1
            result[key] = mask
        return result
