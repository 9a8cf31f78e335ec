"""lamina-zarr: Zarr v2, Zarr v3 (sharded) and OME-Zarr multiscale images, and N5, as
lamina volumetric layers, on TensorStore.

``build_zarr_layer(path, ...)`` builds a :class:`lamina.VolumetricLayer`; ``ZarrBackend``
is its backend. Names are imported on first use, so ``import lamina_zarr`` imports
neither TensorStore nor zarr-python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "build_zarr_layer": "lamina_zarr.builder",
    "ZarrBackend": "lamina_zarr.backend",
    "ZarrInfoMismatchError": "lamina_zarr.creation",
    "ZarrNotFoundError": "lamina_zarr.nodes",
    "AxesError": "lamina_zarr.axes",
}

__all__ = [
    "AxesError",
    "ZarrBackend",
    "ZarrInfoMismatchError",
    "ZarrNotFoundError",
    "build_zarr_layer",
]

if TYPE_CHECKING:
    from lamina_zarr.axes import AxesError
    from lamina_zarr.backend import ZarrBackend
    from lamina_zarr.builder import build_zarr_layer
    from lamina_zarr.creation import ZarrInfoMismatchError
    from lamina_zarr.nodes import ZarrNotFoundError


__getattr__ = module_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
