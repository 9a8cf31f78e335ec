"""Helpers for the lamina-layerset tests: members of every kind and raw access to them.

* ``memory_member`` / ``precomputed_member`` / ``dense_member`` build a volumetric layer
  for a contract-suite :class:`TestVolume` (in-memory, precomputed on local files, and a
  user's own ``lamina.VolumetricBackend`` subclass);
* ``raw_read`` / ``raw_write`` / ``is_stored`` reach a member's storage without going
  through the set (nor through the member's own ``read``/``write``);
* ``DenseBackend`` is what a user writes from scratch: one numpy array per resolution,
  with an optional delay per read and write (latency) and an optional failure.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import lamina
from lamina import BBox3D, Capabilities, Vec3D, VolumetricBackend, VolumetricIndex
from lamina.testing import TestVolume
from lamina.volumetric.scales import scales_from_bbox

_counter = itertools.count()


# -- a user's own backend -----------------------------------------------------------------------
class DenseBackend(VolumetricBackend):
    """One dense ``(C, X, Y, Z)`` array per resolution covering the dataset.

    ``delay`` seconds are slept in every read and write (standing for storage latency);
    ``fail`` (an exception instance) is raised by every read. Travels by value when
    pickled, like lamina's in-memory backends.
    """

    capabilities = Capabilities(shared_across_processes=False)
    supported_changes = frozenset({"name", "enforce_chunk_aligned_writes"})

    def __init__(
        self,
        volume: TestVolume,
        name: str | None = None,
        delay: float = 0.0,
        fail: Exception | None = None,
        enforce_chunk_aligned_writes: bool = True,
        arrays: dict[Vec3D[float], npt.NDArray[Any]] | None = None,
    ) -> None:
        self.volume = volume
        self._name = name or f"dense://volume-{next(_counter)}"
        self.delay = delay
        self.fail = fail
        self._enforce = enforce_chunk_aligned_writes
        self.scales = scales_from_bbox(volume.bbox, volume.resolutions, volume.chunk_size)
        if arrays is None:
            arrays = {
                res: np.zeros((volume.num_channels, *geo.dataset_size), dtype=volume.dtype)
                for res, geo in self.scales.items()
            }
        self.arrays = arrays
        self.reads = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.volume.dtype)

    @property
    def num_channels(self) -> int:
        return self.volume.num_channels

    @property
    def resolutions(self) -> tuple[Vec3D[float], ...]:
        return tuple(self.scales)

    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        return self._enforce

    def _geo(self, resolution: Any) -> Any:
        res = Vec3D(*resolution).float()
        if res not in self.scales:
            raise lamina.UnknownResolutionError(
                f"{self._name} has no scale at {res.pformat()}; it has "
                + ", ".join(r.pformat() for r in self.scales)
            )
        return self.scales[res]

    def get_voxel_offset(self, resolution: Any) -> Vec3D[int]:
        return self._geo(resolution).voxel_offset

    def get_chunk_size(self, resolution: Any) -> Vec3D[int]:
        return self._geo(resolution).chunk_size

    def get_dataset_size(self, resolution: Any) -> Vec3D[int]:
        return self._geo(resolution).dataset_size

    def _overlap(self, idx: VolumetricIndex) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
        geo = self._geo(idx.resolution)
        lo = [max(idx.start[d], geo.voxel_offset[d]) for d in range(3)]
        hi = [min(idx.stop[d], geo.voxel_offset[d] + geo.dataset_size[d]) for d in range(3)]
        if any(hi[d] <= lo[d] for d in range(3)):
            return None
        in_array = tuple(
            slice(lo[d] - geo.voxel_offset[d], hi[d] - geo.voxel_offset[d]) for d in range(3)
        )
        in_region = tuple(slice(lo[d] - idx.start[d], hi[d] - idx.start[d]) for d in range(3))
        return (slice(None), *in_array), (slice(None), *in_region)

    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        self.reads += 1
        if self.delay:
            time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        out = np.zeros((self.num_channels, *idx.shape), dtype=self.dtype)
        parts = self._overlap(idx)
        if parts is not None:
            out[parts[1]] = self.arrays[idx.resolution][parts[0]]
        return out

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        array = self.check_write(idx, data)
        self.assert_idx_within_bounds(idx, "Write inside the bounds.")
        if self.delay:
            time.sleep(self.delay)
        parts = self._overlap(idx)
        if parts is not None:
            self.arrays[idx.resolution][parts[0]] = array[parts[1]]

    def with_changes(self, **changes: Any) -> DenseBackend:  # type: ignore[override]
        self.check_changes(changes)
        new_volume = "name" in changes
        return DenseBackend(
            self.volume,
            name=changes.get("name", self._name),
            delay=self.delay,
            fail=self.fail,
            enforce_chunk_aligned_writes=changes.get("enforce_chunk_aligned_writes", self._enforce),
            arrays=None if new_volume else self.arrays,
        )

    def delete(self) -> None:
        for array in self.arrays.values():
            array[...] = 0


# -- members for a TestVolume ------------------------------------------------------------------
def memory_member(volume: TestVolume, path: Path | None = None, **layer_kwargs: Any) -> Any:
    return lamina.build_memory_volumetric_layer(
        volume.bbox,
        volume.resolutions,
        chunk_size=volume.chunk_size,
        dtype=volume.dtype,
        num_channels=volume.num_channels,
        **layer_kwargs,
    )


def precomputed_member(volume: TestVolume, path: Path, **layer_kwargs: Any) -> Any:
    return lamina.build_cv_layer(
        f"file://{path}",
        info_type="image"
        if np.dtype(volume.dtype).kind == "f" or volume.dtype == "uint8"
        else "segmentation",
        info_data_type=volume.dtype,
        info_num_channels=volume.num_channels,
        info_chunk_size=volume.chunk_size,
        info_bbox=volume.bbox,
        info_scales=volume.resolutions,
        **layer_kwargs,
    )


def dense_member(volume: TestVolume, path: Path | None = None, **backend_kwargs: Any) -> Any:
    return lamina.build_volumetric_layer(DenseBackend(volume, **backend_kwargs))


def is_memory(backend: Any) -> bool:
    return isinstance(backend, lamina.MemoryVolumetricBackend)


# -- raw access ------------------------------------------------------------------------------------
def _plain_cv(path: str, resolution: Any) -> Any:
    from cloudvolume import CloudVolume

    return CloudVolume(
        path,
        mip=[float(v) for v in resolution],
        bounded=False,
        fill_missing=True,
        progress=False,
        non_aligned_writes=True,
        compress=False,
    )


def raw_read(backend: Any, idx: VolumetricIndex) -> npt.NDArray[Any]:
    """What ``backend`` stores at ``idx``, read past its own ``read``."""
    if is_memory(backend):
        out = np.zeros((backend.num_channels, *idx.shape), dtype=backend.dtype)
        store = backend._store
        for key, in_block, in_region in store.overlapping(idx.resolution, idx.start, idx.stop):
            block = store.blocks[idx.resolution].get(key)
            if block is not None:
                out[in_region] = block[in_block]
        return out
    if isinstance(backend, DenseBackend):
        out = np.zeros((backend.num_channels, *idx.shape), dtype=backend.dtype)
        parts = backend._overlap(idx)
        if parts is not None:
            out[parts[1]] = backend.arrays[idx.resolution][parts[0]]
        return out
    x, y, z = idx.to_slices()
    cutout = _plain_cv(backend.name, idx.resolution)[x, y, z]
    return np.asarray(cutout).transpose(3, 0, 1, 2).copy()


def raw_write(backend: Any, idx: VolumetricIndex, data: npt.NDArray[Any]) -> None:
    """Store ``data`` at ``idx`` past ``backend.write``."""
    if is_memory(backend):
        store = backend._store
        size = store.block_sizes[idx.resolution]
        for key, in_block, in_region in store.overlapping(idx.resolution, idx.start, idx.stop):
            block = store.blocks[idx.resolution].setdefault(
                key, np.zeros((backend.num_channels, *size), dtype=backend.dtype)
            )
            block[in_block] = data[in_region]
        return
    if isinstance(backend, DenseBackend):
        parts = backend._overlap(idx)
        assert parts is not None
        backend.arrays[idx.resolution][parts[0]] = data[parts[1]]
        return
    x, y, z = idx.to_slices()
    _plain_cv(backend.name, idx.resolution)[x, y, z] = np.asfortranarray(
        np.asarray(data).transpose(1, 2, 3, 0)
    )


def is_stored(backend: Any, idx: VolumetricIndex) -> bool:
    """Whether anything is stored at ``idx`` (memory blocks, non-zero dense voxels, chunk
    files of a precomputed volume), looking at the storage only."""
    if is_memory(backend):
        store = backend._store
        blocks = store.blocks[idx.resolution]
        return any(
            key in blocks and blocks[key][in_block].any()
            for key, in_block, _ in store.overlapping(idx.resolution, idx.start, idx.stop)
        )
    if isinstance(backend, DenseBackend):
        parts = backend._overlap(idx)
        return parts is not None and bool(backend.arrays[idx.resolution][parts[0]].any())
    scale = next(
        s for s in backend.info["scales"] if tuple(map(float, s["resolution"])) == idx.resolution
    )
    directory = backend.name.removeprefix("file://") + "/" + scale["key"]
    if not os.path.isdir(directory):
        return False
    start, stop = idx.start, idx.stop
    for file in os.listdir(directory):
        bounds = [tuple(int(v) for v in part.split("-")) for part in file.split(".")[0].split("_")]
        if all(bounds[d][0] < stop[d] and start[d] < bounds[d][1] for d in range(3)):
            return True
    return False


def damage_chunk(backend: Any, idx: VolumetricIndex) -> bool:
    """Damage a precomputed member's stored chunk holding ``idx``'s first voxel; memory
    and dense members keep arrays: nothing to damage."""
    if is_memory(backend) or isinstance(backend, DenseBackend):
        return False
    from lamina_precomputed.testing import damage_chunk as damage_precomputed

    return damage_precomputed(backend, idx)


def small_volume(**changes: Any) -> TestVolume:
    """A small contract-style volume: offset (32, 64, 4), size (160, 96, 10) at 4x4x40."""
    return TestVolume(**changes)


RES = Vec3D(4.0, 4.0, 40.0)


def box(start: Any, stop: Any, res: Any = RES) -> VolumetricIndex:
    return VolumetricIndex.from_coords(start, stop, res)


def bbox_nm(start: Any, stop: Any, res: Any = RES) -> BBox3D:
    return BBox3D.from_coords(start, stop, res)
