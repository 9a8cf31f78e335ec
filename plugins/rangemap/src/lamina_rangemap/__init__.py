"""lamina-rangemap: layers that map index ranges to other layers.

``build_range_mapped_layer(ranges, fill_value=None, ...)`` builds a volumetric layer
from ``(BBox3D, layer)`` ranges (``RangeMapBackend``) or a key-value layer from
``((start, end), layer)`` / ``("prefix", layer)`` ranges (``RangeMapDBBackend``); later
ranges take precedence where they overlap. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "build_range_mapped_layer": "lamina_rangemap.builder",
    "range_kind": "lamina_rangemap.builder",
    "RangeMapBackend": "lamina_rangemap.volumetric",
    "RangeMapDBBackend": "lamina_rangemap.keyvalue",
    "KeyRange": "lamina_rangemap.keyvalue",
    "RangeMapError": "lamina_rangemap.errors",
    "UncoveredRegionError": "lamina_rangemap.errors",
    "UnmappedKeyError": "lamina_rangemap.errors",
}

__all__ = [
    "KeyRange",
    "RangeMapBackend",
    "RangeMapDBBackend",
    "RangeMapError",
    "UncoveredRegionError",
    "UnmappedKeyError",
    "build_range_mapped_layer",
    "range_kind",
]

if TYPE_CHECKING:
    from lamina_rangemap.builder import build_range_mapped_layer, range_kind
    from lamina_rangemap.errors import RangeMapError, UncoveredRegionError, UnmappedKeyError
    from lamina_rangemap.keyvalue import KeyRange, RangeMapDBBackend
    from lamina_rangemap.volumetric import RangeMapBackend


__getattr__ = module_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
