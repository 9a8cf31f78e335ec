"""The volumetric range map passes the volumetric contract suite, over in-memory sources
and over precomputed sources on local files.

Three overlapping ranges split the suite's volume (offset (32, 64, 4), size
(160, 96, 10) voxels at 4 × 4 × 40 nm): A holds x 32–128, B x 96–192 (B wins on
96–128), and a patch C over A at x 64–96, y 96–128, z 8–14. Each source is a full-size
volume, so every source also holds data outside its box that the range map must
neither show nor overwrite. Regions outside every box read as the fill value 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from lamina_rangemap import RangeMapBackend
from rangemap_support import damage_chunk, is_stored, owner_map, raw_read, raw_write

import lamina
from lamina import BBox3D, MemoryVolumetricBackend, VolumetricIndex, build_volumetric_layer
from lamina.testing import TestVolume, VolumetricBackendTests

FINE = (4, 4, 40)
BOXES = (
    BBox3D.from_coords((32, 64, 4), (128, 160, 14), FINE),  # A
    BBox3D.from_coords((96, 64, 4), (192, 160, 14), FINE),  # B, over A's end
    BBox3D.from_coords((64, 96, 8), (96, 128, 14), FINE),  # C, a patch over A
)
# Each source holds this outside its box; the range map must never show it.
FOREIGN = 77


class _RangeMapContract(VolumetricBackendTests):
    def make_source(self, volume: TestVolume, path: Path, i: int) -> Any:
        raise NotImplementedError

    def make_backend(self, volume: TestVolume, path: Path) -> RangeMapBackend:
        ranges = [(box, self.make_source(volume, path, i)) for i, box in enumerate(BOXES)]
        backend = RangeMapBackend(ranges=ranges, fill_value=0)
        # Fill every source outside the voxels it owns with FOREIGN (raw, below the map).
        whole = VolumetricIndex(volume.finest, volume.bbox)
        owner = owner_map(list(BOXES), whole)
        for i, (_, layer) in enumerate(backend.ranges):
            data = np.full((volume.num_channels, *whole.shape), FOREIGN, dtype=volume.dtype)
            data[:, owner == i] = 0
            layer.backend.write(whole, data)
        return backend

    def raw_read(self, backend: Any, idx: VolumetricIndex) -> Any:
        return raw_read(backend, idx)

    def raw_write(self, backend: Any, idx: VolumetricIndex, data: Any) -> None:
        raw_write(backend, idx, data)

    def is_stored(self, backend: Any, idx: VolumetricIndex) -> bool:
        return is_stored(backend, idx)

    def damage_stored_chunk(self, backend: Any, idx: VolumetricIndex) -> bool:
        return damage_chunk(backend, idx)

    # -- beyond the suite: the foreign data stays where it is ------------------------------
    def test_foreign_data_is_neither_read_nor_overwritten(self, backend: Any) -> None:
        volume = TestVolume()
        whole = VolumetricIndex(volume.finest, volume.bbox)
        assert not backend.read(whole).any()
        backend.write(whole, np.full((1, *whole.shape), 5, dtype=backend.dtype))
        owner = owner_map(list(BOXES), whole)
        for i, (_, layer) in enumerate(backend.ranges):
            stored = layer.backend.read(whole)[0]
            assert (stored[owner == i] == 5).all()
            assert (stored[owner != i] == FOREIGN).all()


class TestOverMemorySources(_RangeMapContract):
    def make_source(self, volume: TestVolume, path: Path, i: int) -> Any:
        backend = MemoryVolumetricBackend.from_bbox(
            volume.bbox,
            volume.resolutions,
            volume.chunk_size,
            dtype=volume.dtype,
            num_channels=volume.num_channels,
        )
        return build_volumetric_layer(backend)


class TestOverPrecomputedSources(_RangeMapContract):
    # CloudVolume writes are slower: the suite's per-dtype round trip on fewer dtypes.
    dtypes = ("uint8", "int16", "uint64", "float32")

    def make_source(self, volume: TestVolume, path: Path, i: int) -> Any:
        return lamina.build_cv_layer(
            str(path / f"source-{i}"),
            info_scales=list(volume.resolutions),
            info_type="image",
            info_data_type=volume.dtype,
            info_num_channels=volume.num_channels,
            info_chunk_size=volume.chunk_size,
            info_bbox=volume.bbox,
        )

    def test_sources_are_precomputed_volumes(self, backend: Any, tmp_path: Path) -> None:
        for _, layer in backend.ranges:
            assert type(layer.backend).__name__ == "CVBackend"
            assert (Path(layer.name.removeprefix("file://")) / "info").is_file()
