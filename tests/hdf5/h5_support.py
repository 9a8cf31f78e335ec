"""Raw helpers for the lamina-hdf5 tests: plain h5py, never the backend's read/write."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np
from lamina_hdf5 import VolumeSpec
from lamina_hdf5.layout import res_to_key

from lamina import VolumetricIndex
from lamina.testing import TestVolume


def spec_for(volume: TestVolume, compression: str | None = None) -> VolumeSpec:
    from lamina.volumetric.geometry import Vec3D
    from lamina.volumetric.scales import sorted_resolutions

    return VolumeSpec(
        scales=sorted_resolutions(volume.resolutions),
        type="image",
        data_type=volume.dtype,
        num_channels=volume.num_channels,
        chunk_size=Vec3D(*volume.chunk_size),
        bbox=volume.bbox,
        compression=compression,
    )


def _dataset(f: h5py.File, backend: Any, idx: VolumetricIndex) -> h5py.Dataset:
    return f[backend.dataset][res_to_key(idx.resolution)]


def _zyx(ds: h5py.Dataset, idx: VolumetricIndex) -> tuple[slice, ...]:
    off = ds.attrs["voxel_offset"]  # z, y, x
    start = [idx.start[2] - off[0], idx.start[1] - off[1], idx.start[0] - off[2]]
    stop = [idx.stop[2] - off[0], idx.stop[1] - off[1], idx.stop[0] - off[2]]
    spatial = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
    return spatial if ds.ndim == 3 else (slice(None), *spatial)


def raw_read(backend: Any, idx: VolumetricIndex) -> np.ndarray:
    with h5py.File(backend.file_path, "r") as f:
        ds = _dataset(f, backend, idx)
        data = ds[_zyx(ds, idx)]
    if data.ndim == 3:
        data = data[np.newaxis]
    return np.ascontiguousarray(data.transpose(0, 3, 2, 1))


def raw_write(backend: Any, idx: VolumetricIndex, data: Any) -> None:
    arr = np.asarray(data).transpose(0, 3, 2, 1)
    with h5py.File(backend.file_path, "r+") as f:
        ds = _dataset(f, backend, idx)
        ds[_zyx(ds, idx)] = arr if ds.ndim == 4 else arr[0]


def is_stored(backend: Any, idx: VolumetricIndex) -> bool:
    """Whether any allocated chunk of the scale overlaps ``idx``."""
    import os

    if not os.path.isfile(backend.file_path):
        return False
    with h5py.File(backend.file_path, "r") as f:
        if backend.dataset not in f:
            return False
        ds = _dataset(f, backend, idx)
        sel = _zyx(ds, idx)[-3:]
        for i in range(ds.id.get_num_chunks()):
            info = ds.id.get_chunk_info(i)
            origin = info.chunk_offset[-3:]
            if all(
                o < s.stop and o + c > s.start
                for o, c, s in zip(origin, ds.chunks[-3:], sel, strict=True)
            ):
                return True
    return False


def damage_chunk(backend: Any, idx: VolumetricIndex) -> bool:
    """Overwrite, with plain file IO, the stored bytes of the chunk holding ``idx``'s first
    voxel. Only a filtered (compressed) chunk can fail to decode: for an uncompressed
    dataset any bytes are valid values, so there is nothing to damage (``False``)."""
    with h5py.File(backend.file_path, "r") as f:
        ds = _dataset(f, backend, idx)
        if not ds.compression:
            return False
        first = [s.start for s in _zyx(ds, idx)[-3:]]
        for i in range(ds.id.get_num_chunks()):
            info = ds.id.get_chunk_info(i)
            origin = info.chunk_offset[-3:]
            if all(o <= v < o + c for o, v, c in zip(origin, first, ds.chunks[-3:], strict=True)):
                offset, size = info.byte_offset, info.size
                break
        else:
            raise AssertionError(f"no chunk of {backend.file_path} holds {idx.start}")
    with open(backend.file_path, "r+b") as raw:
        raw.seek(offset)
        raw.write(b"\xff" * size)
    return True
