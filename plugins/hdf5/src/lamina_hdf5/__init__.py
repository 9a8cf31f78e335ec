"""lamina-hdf5: HDF5 files as lamina volumetric layers, via h5py.

``build_h5_layer(path, dataset=None, ...)`` builds a :class:`lamina.VolumetricLayer`
over a lamina volume group or any 3-D/4-D dataset; ``H5Backend`` is its backend;
``lamina info FILE.h5`` describes a file's volumes. Names are imported on first use, so
``import lamina_hdf5`` does not import h5py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "build_h5_layer": "lamina_hdf5.builder",
    "H5Backend": "lamina_hdf5.backend",
    "VolumeSpec": "lamina_hdf5.layout",
    "H5InfoMismatchError": "lamina_hdf5.layout",
    "H5NotFoundError": "lamina_hdf5.layout",
    "H5LockTimeout": "lamina_hdf5.handles",
    "split_path": "lamina_hdf5.layout",
}

__all__ = [
    "H5Backend",
    "H5InfoMismatchError",
    "H5LockTimeout",
    "H5NotFoundError",
    "VolumeSpec",
    "build_h5_layer",
    "split_path",
]

if TYPE_CHECKING:
    from lamina_hdf5.backend import H5Backend
    from lamina_hdf5.builder import build_h5_layer
    from lamina_hdf5.handles import H5LockTimeout
    from lamina_hdf5.layout import H5InfoMismatchError, H5NotFoundError, VolumeSpec, split_path


__getattr__ = module_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
