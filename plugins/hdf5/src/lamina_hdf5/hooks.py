"""Hook module announced by the ``lamina`` entry point: every name by import string, so
discovering plugins imports neither h5py nor anything else of this distribution."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_h5_layer", "lamina_hdf5.builder:build_h5_layer")


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("H5Backend", "lamina_hdf5.backend:H5Backend")


@hookimpl
def lamina_register_path_openers(registry: Registrar) -> None:
    registry.register("hdf5", "lamina_hdf5.opener:HDF5_OPENER")
