"""The sources of a volumetric range map: checking the ranges, and what each serves.

A range is a box in nm and the layer that serves it (a bare backend is taken as its
plain layer). The checks here run when a range map is built; the other helpers say
which resolutions a source serves and whether a write reaches its backend unchanged
(only then can the backend's own refusals be checked before anything is written).
"""

from __future__ import annotations

import math
from typing import Any

from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.geometry import BBox3D, Vec3D
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer
from lamina_rangemap.boxes import box_text
from lamina_rangemap.errors import RangeMapError
from lamina_rangemap.pairs import range_pairs

__all__ = [
    "VolumetricRange",
    "as_ranges",
    "plain_for_writes",
    "range_label",
    "served_by",
    "source_label",
]

#: One range: a box in nm and the layer that serves it.
VolumetricRange = tuple[BBox3D, VolumetricLayer]


def _as_layer(value: Any, where: str) -> VolumetricLayer:
    if isinstance(value, VolumetricLayer):
        return value
    if isinstance(value, VolumetricBackend):
        return build_volumetric_layer(value)
    raise RangeMapError(
        f"{where}: a volumetric range maps a box to a lamina VolumetricLayer (or a "
        f"VolumetricBackend); got {type(value).__name__}: {value!r}"
    )


def as_ranges(value: Any) -> tuple[VolumetricRange, ...]:
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


def source_label(i: int, box: BBox3D, layer: VolumetricLayer) -> str:
    return f"source {i} ({layer.name!r}, box {box_text(box)})"


def range_label(ranges: tuple[VolumetricRange, ...], i: int) -> str:
    """:func:`source_label` of range ``i``."""
    box, layer = ranges[i]
    return source_label(i, box, layer)


def served_by(layer: VolumetricLayer) -> frozenset[Vec3D[float]] | None:
    """The resolutions a source serves; ``None`` when it may serve any (a source with a
    ``data_resolution`` resamples, and index processors may change the resolution)."""
    if layer.data_resolution is not None or layer.index_procs:
        return None
    return frozenset(layer.backend.resolutions)


def plain_for_writes(layer: VolumetricLayer, res: Vec3D[float]) -> bool:
    """Whether a write at ``res`` reaches the source's backend unchanged, so that the
    backend's own checks can be made in advance."""
    data_res = layer.data_resolution
    return (
        not layer.index_procs
        and not layer.write_procs
        and (data_res is None or data_res == res)
        and type(layer)._write_to_backend is VolumetricLayer._write_to_backend
    )
