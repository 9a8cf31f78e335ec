"""The HDF5 path opener (for ``lamina info`` & co). It imports nothing heavy: h5py is
imported when a path is opened."""

from __future__ import annotations

import os
from typing import Any

from lamina.plugins.contributions import PathOpener, VolumeTemplate

__all__ = ["HDF5_OPENER", "recognises_hdf5"]

_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


def recognises_hdf5(path: str) -> bool:
    """``FILE.h5``, ``FILE.hdf5``, ``FILE.hdf`` (and ``.he5``), optionally followed by
    ``:/GROUP`` or, as ``h5ls`` writes it, ``/GROUP``; or ``hdf5://FILE``."""
    if path.startswith("hdf5://"):
        return True
    if "://" in path and not path.startswith("file://"):
        return False
    head = path.split(":/", 1)[0] if ":/" in path else path
    if head.lower().endswith(_SUFFIXES):
        return True
    parts = head.split("/")
    return any("/".join(parts[:cut]).lower().endswith(_SUFFIXES) for cut in range(1, len(parts)))


class H5FileDescription:
    """A file holding several volumes, for ``lamina info FILE.h5``: ``describe()`` gives
    each volume's own description (its dtype, channel count, type and scales)."""

    def __init__(self, path: str, volumes: list[Any]) -> None:
        self.name = path
        self.volumes = volumes

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.name,
            "format": "HDF5 file (lamina-hdf5)",
            "volumes": [{"volume": b.dataset, **b.describe()} for b in self.volumes],
        }


def open_hdf5(path: str, **options: Any) -> Any:
    """The HDF5 volume at ``path`` as a layer (readonly unless asked otherwise); a file
    with several volumes and no ``:/GROUP`` opens as a :class:`H5FileDescription`."""
    from lamina_hdf5.builder import build_h5_layer
    from lamina_hdf5.layout import split_path

    if path.startswith("hdf5://"):
        path = path[len("hdf5://") :]
    options.setdefault("readonly", True)
    file_path, inner = split_path(path)
    if inner is None and not options.get("dataset") and os.path.isfile(file_path):
        from lamina_hdf5.backend import H5Backend
        from lamina_hdf5.handles import reading
        from lamina_hdf5.layout import find_volumes

        with reading(os.path.realpath(file_path), keep_open=False) as f:
            volumes = find_volumes(f)
        if len(volumes) > 1:
            return H5FileDescription(file_path, [H5Backend(file_path, v) for v in volumes])
    return build_h5_layer(path, **options)


def _strip(path: str) -> str:
    return path[len("hdf5://") :] if path.startswith("hdf5://") else path


def hdf5_exists(path: str) -> bool:
    """Whether the file exists and holds the volume ``path`` names (``FILE:/GROUP``; a
    bare ``FILE`` when it holds any volume)."""
    from lamina_hdf5.handles import reading
    from lamina_hdf5.layout import find_volumes, split_path

    file_path, inner = split_path(_strip(path))
    if not os.path.isfile(file_path):
        return False
    with reading(os.path.realpath(file_path), keep_open=False) as f:
        return inner in f if inner is not None else bool(find_volumes(f))


def create_hdf5(path: str, like: VolumeTemplate) -> Any:
    """A new lamina volume (group) at ``FILE.h5:/GROUP`` (default group ``volume``) like
    the template, uncompressed, as a writable layer."""
    from lamina_hdf5.builder import build_h5_layer

    return build_h5_layer(_strip(path), **like.builder_kwargs())


HDF5_OPENER = PathOpener(
    recognises=recognises_hdf5,
    open=open_hdf5,
    forms=("FILE.h5", "FILE.hdf5", "FILE.hdf", "FILE.h5:/GROUP", "hdf5://FILE"),
    exists=hdf5_exists,
    create=create_hdf5,
)
