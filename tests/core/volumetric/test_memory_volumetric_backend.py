"""The chunked in-memory volumetric backend passes the volumetric contract suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lamina import BBox3D, MemoryVolumetricBackend, Vec3D, VolumetricIndex
from lamina.testing import TestVolume, VolumetricBackendTests


class TestMemoryVolumetricBackend(VolumetricBackendTests):
    def make_backend(self, volume: TestVolume, path: Path) -> MemoryVolumetricBackend:
        return MemoryVolumetricBackend.from_bbox(
            volume.bbox,
            volume.resolutions,
            volume.chunk_size,
            dtype=volume.dtype,
            num_channels=volume.num_channels,
        )

    def raw_read(self, backend: Any, idx: VolumetricIndex) -> Any:
        out = np.zeros((backend.num_channels, *idx.shape), dtype=backend.dtype)
        store = backend._store
        for key, in_block, in_region in store.overlapping(idx.resolution, idx.start, idx.stop):
            block = store.blocks[idx.resolution].get(key)
            if block is not None:
                out[in_region] = block[in_block]
        return out

    def raw_write(self, backend: Any, idx: VolumetricIndex, data: Any) -> None:
        store = backend._store
        size = store.block_sizes[idx.resolution]
        for key, in_block, in_region in store.overlapping(idx.resolution, idx.start, idx.stop):
            block = store.blocks[idx.resolution].setdefault(
                key, np.zeros((backend.num_channels, *size), dtype=backend.dtype)
            )
            block[in_block] = data[in_region]

    def damage_stored_chunk(self, backend: Any, idx: VolumetricIndex) -> bool:
        return False  # blocks are numpy arrays: nothing encoded to damage

    def is_stored(self, backend: Any, idx: VolumetricIndex) -> bool:
        store = backend._store
        blocks = store.blocks[idx.resolution]
        return any(
            key in blocks and blocks[key][in_block].any()
            for key, in_block, _ in store.overlapping(idx.resolution, idx.start, idx.stop)
        )


def test_geometry_changes_keep_stored_voxels() -> None:
    backend = MemoryVolumetricBackend.from_bbox(
        BBox3D.from_coords((0, 0, 0), (64, 64, 8), (4, 4, 40)), [(4, 4, 40)], (32, 32, 4)
    )
    idx = VolumetricIndex.from_coords((0, 0, 0), (32, 32, 4), (4, 4, 40))
    backend.write(idx, 5)
    rechunked = backend.with_changes(chunk_size_res=((16, 16, 2), (4, 4, 40)))
    assert rechunked.get_chunk_size((4, 4, 40)) == Vec3D(16, 16, 2)
    assert (rechunked.read(idx) == 5).all()
    grown = backend.with_changes(dataset_size_res=((128, 64, 8), (4, 4, 40)))
    assert grown.get_dataset_size((4, 4, 40)) == Vec3D(128, 64, 8)
    moved = backend.with_changes(voxel_offset_res=((-32, 0, 0), (4, 4, 40)))
    assert moved.get_voxel_offset((4, 4, 40)) == Vec3D(-32, 0, 0)
    assert moved.get_dataset_size((4, 4, 40)) == Vec3D(96, 64, 8)


def test_unsupported_change_keys_are_refused() -> None:
    backend = MemoryVolumetricBackend.from_bbox(
        BBox3D.from_coords((0, 0, 0), (8, 8, 8)), [(1, 1, 1)], (8, 8, 8)
    )
    with pytest.raises(KeyError, match="allow_cache"):
        backend.with_changes(allow_cache=True)
    with pytest.raises(KeyError, match="chunk_siz"):
        backend.with_changes(chunk_siz=1)  # type: ignore[call-arg]


def test_volume_type_is_declared_and_kept() -> None:
    from lamina import build_memory_volumetric_layer

    layer = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (8, 8, 8)), [(1, 1, 1)], (8, 8, 8), volume_type="segmentation"
    )
    assert layer.backend.volume_type == "segmentation"
    assert layer.backend.with_changes(name="mem://other").volume_type == "segmentation"
    plain = MemoryVolumetricBackend.from_bbox(
        BBox3D.from_coords((0, 0, 0), (8, 8, 8)), [(1, 1, 1)], (8, 8, 8)
    )
    assert plain.volume_type is None
