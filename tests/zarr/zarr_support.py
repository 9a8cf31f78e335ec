"""Raw helpers for the lamina-zarr tests: zarr-python and the files themselves, never the
backend's read or write."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina import VolumetricIndex
from lamina.testing import TestVolume


def new_layer(path: Path | str, volume: TestVolume | None = None, **kwargs: Any) -> Any:
    """A new lamina-zarr volume like ``volume`` (default: the suite's) at ``path``."""
    from lamina_zarr import build_zarr_layer

    volume = volume or TestVolume()
    params: dict[str, Any] = {
        "info_type": "image",
        "info_data_type": volume.dtype,
        "info_num_channels": volume.num_channels,
        "info_chunk_size": volume.chunk_size,
        "info_bbox": volume.bbox,
        "info_scales": list(volume.resolutions),
        "default_desired_resolution": volume.resolutions[0],
        "index_resolution": volume.resolutions[0],
    }
    params.update(kwargs)
    return build_zarr_layer(os.fspath(path), **params)


def zarr_array(backend: Any, idx: VolumetricIndex) -> Any:
    """zarr-python's array of the scale of ``idx``."""
    import zarr

    scale = backend.volume.scale(idx.resolution)
    return zarr.open_array(os.path.join(backend.path, scale.path), mode="r+")


def _selection(backend: Any, idx: VolumetricIndex) -> tuple[slice, ...]:
    scale = backend.volume.scale(idx.resolution)
    lo = [a - o for a, o in zip(idx.start, scale.voxel_offset, strict=True)]
    hi = [b - o for b, o in zip(idx.stop, scale.voxel_offset, strict=True)]
    by = {"x": slice(lo[0], hi[0]), "y": slice(lo[1], hi[1]), "z": slice(lo[2], hi[2])}
    by["c"] = slice(None)
    return tuple(by[a] for a in backend.volume.axes.letters)


def raw_read(backend: Any, idx: VolumetricIndex) -> npt.NDArray[Any]:
    """``idx`` as ``(C, X, Y, Z)`` read by zarr-python from a ``(c, z, y, x)`` array."""
    stored = np.asarray(zarr_array(backend, idx)[_selection(backend, idx)])
    return stored.transpose(0, 3, 2, 1)


def raw_write(backend: Any, idx: VolumetricIndex, data: npt.NDArray[Any]) -> None:
    zarr_array(backend, idx)[_selection(backend, idx)] = np.asarray(data).transpose(0, 3, 2, 1)


def chunk_files(backend: Any, idx: VolumetricIndex) -> list[Path]:
    """The stored chunk (or shard) files of the scale of ``idx``, metadata excluded."""
    scale = backend.volume.scale(idx.resolution)
    root = Path(backend.path) / scale.path
    skip = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}
    return [p for p in root.rglob("*") if p.is_file() and p.name not in skip]


def stored_key(backend: Any, idx: VolumetricIndex) -> Path:
    """The file of the chunk (or shard) holding ``idx``'s first voxel."""
    scale = backend.volume.scale(idx.resolution)
    grid = scale.write_grid
    cell = [(a - o) // g for a, o, g in zip(idx.start, scale.voxel_offset, grid, strict=True)]
    by = {"x": cell[0], "y": cell[1], "z": cell[2], "c": 0}
    parts = [str(by[a]) for a in backend.volume.axes.letters]
    root = Path(backend.path) / scale.path
    if backend.volume.format == 3:
        return root.joinpath("c", *parts)
    return root.joinpath(*parts)


def is_stored(backend: Any, idx: VolumetricIndex) -> bool:
    return stored_key(backend, idx).is_file()


def damage_chunk(backend: Any, idx: VolumetricIndex) -> bool:
    """Overwrite the stored chunk (or shard) of ``idx`` with bytes that do not decode."""
    path = stored_key(backend, idx)
    assert path.is_file(), path
    path.write_bytes(b"not a chunk" * 3)
    return True
