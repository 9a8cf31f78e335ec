"""ZarrBackend passes the volumetric contract suite on real Zarr files: v3 with zstd, v3
sharded, v3 uncompressed and v2 with blosc on the default engine (lamina's own chunk
reader and TensorStore, by the size of the read), and v3 zstd, v3 sharded and v2 blosc
with every read by TensorStore, and by lamina's reader; zarr-python is the raw reader
and writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from zarr_support import damage_chunk, is_stored, new_layer, raw_read, raw_write

from lamina import VolumetricIndex
from lamina.testing import TestVolume, VolumetricBackendTests


class _ZarrContract(VolumetricBackendTests):
    options: ClassVar[dict[str, Any]] = {}
    dtypes = (*VolumetricBackendTests.dtypes, "int64", "float64", "bool")

    def make_backend(self, volume: TestVolume, path: Path) -> Any:
        return new_layer(f"{path}.ome.zarr", volume, **self.options).backend

    def raw_read(self, backend: Any, idx: VolumetricIndex) -> Any:
        return raw_read(backend, idx)

    def raw_write(self, backend: Any, idx: VolumetricIndex, data: Any) -> None:
        raw_write(backend, idx, data)

    def is_stored(self, backend: Any, idx: VolumetricIndex) -> bool:
        return is_stored(backend, idx)

    def damage_stored_chunk(self, backend: Any, idx: VolumetricIndex) -> bool:
        return damage_chunk(backend, idx)


class TestZarr3Zstd(_ZarrContract):
    options: ClassVar[dict[str, Any]] = {}


class TestZarr3Sharded(_ZarrContract):
    """Shards of 2 x 2 x 2 chunks, written chunk by chunk: every write of the suite is a
    read-modify-write of part of a shard (opted into)."""

    options: ClassVar[dict[str, Any]] = {"info_shard_size": (64, 64, 8)}

    def make_backend(self, volume: TestVolume, path: Path) -> Any:
        return super().make_backend(volume, path).with_changes(enforce_chunk_aligned_writes=False)

    def test_non_aligned_write_is_refused_when_enforced(self, backend: Any) -> None:
        enforced = backend.with_changes(enforce_chunk_aligned_writes=True)
        super().test_non_aligned_write_is_refused_when_enforced(enforced)

    def test_a_refused_write_leaves_the_stored_data_unchanged(self, backend: Any) -> None:
        enforced = backend.with_changes(enforce_chunk_aligned_writes=True)
        super().test_a_refused_write_leaves_the_stored_data_unchanged(enforced)


class TestZarr3Raw(_ZarrContract):
    options: ClassVar[dict[str, Any]] = {"info_encoding": "raw"}


class TestZarr2Blosc(_ZarrContract):
    options: ClassVar[dict[str, Any]] = {"zarr_format": 2, "info_encoding": "blosc"}


class TestZarr3ZstdOnTensorStore(_ZarrContract):
    options: ClassVar[dict[str, Any]] = {"engine": "tensorstore"}


class TestZarr3ShardedOnTensorStore(TestZarr3Sharded):
    options: ClassVar[dict[str, Any]] = {"info_shard_size": (64, 64, 8), "engine": "tensorstore"}


class TestZarr3ZstdOnLaminaReader(_ZarrContract):
    options: ClassVar[dict[str, Any]] = {"engine": "lamina"}


class TestZarr3ShardedOnLaminaReader(TestZarr3Sharded):
    options: ClassVar[dict[str, Any]] = {"info_shard_size": (64, 64, 8), "engine": "lamina"}


class TestZarr2BloscOnLaminaReader(_ZarrContract):
    options: ClassVar[dict[str, Any]] = {
        "zarr_format": 2,
        "info_encoding": "blosc",
        "engine": "lamina",
    }
