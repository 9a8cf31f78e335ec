"""Hook module announced by the ``lamina`` entry point.

It imports nothing heavy: h5py is imported when a layer is built or a path is opened,
never during plugin discovery.
"""

from __future__ import annotations

from typing import Any

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar
from lamina_hdf5.cli import HDF5_OPENER


def build_h5_layer(*args: Any, **kwargs: Any) -> Any:
    """Build a layer over an HDF5 volume (see ``lamina_hdf5.builder.build_h5_layer``)."""
    from lamina_hdf5.builder import build_h5_layer as build

    return build(*args, **kwargs)


def H5Backend(*args: Any, **kwargs: Any) -> Any:
    """The HDF5 backend (see ``lamina_hdf5.backend.H5Backend``)."""
    from lamina_hdf5.backend import H5Backend as backend

    return backend(*args, **kwargs)


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_h5_layer", build_h5_layer)


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("H5Backend", H5Backend)


@hookimpl
def lamina_register_path_openers(registry: Registrar) -> None:
    registry.register("hdf5", HDF5_OPENER)
