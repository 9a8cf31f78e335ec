"""The volumetric backend contract suite.

Subclass :class:`VolumetricBackendTests` and implement ``make_backend(volume, path)``
(a fresh, empty backend for a :class:`TestVolume` — ``path`` is a fresh directory for
backends that store files) and the raw hooks ``raw_read``, ``raw_write`` and
``is_stored``, which must reach the storage without the backend's own ``read`` and
``write``, and ``damage_stored_chunk``. The suite covers round trips per dtype and
channel count, reads outside the bounds and of missing chunks, damaged chunks (an error,
never zeros), aligned and non-aligned writes, several resolutions, checks made before
anything is written (a refused write leaves stored data unchanged), readonly, pickling,
a spawned process and delete.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, ClassVar, cast

import attrs
import numpy as np
import numpy.typing as npt
import pytest

from lamina.errors import DamagedChunkError, UnknownResolutionError
from lamina.testing.contracts import BackendContract
from lamina.testing.flows import FlowArgumentTests
from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.geometry import BBox3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.layer import build_volumetric_layer

__all__ = ["TestVolume", "VolumetricBackendTests"]

_counter = itertools.count()


@attrs.frozen
class TestVolume:
    """The volume a suite test asks for. Its dataset end is deliberately off the chunk grid
    and its offset is not zero, so edge chunks and offsets are exercised."""

    __test__ = False  # not a pytest test class

    dtype: str = "uint8"
    num_channels: int = 1
    resolutions: tuple[tuple[float, float, float], ...] = ((4, 4, 40), (8, 8, 40))
    # In voxels at the finest resolution: offset (32, 64, 4), size (160, 96, 10).
    bbox: BBox3D = attrs.field(
        factory=lambda: BBox3D.from_coords((32, 64, 4), (192, 160, 14), (4, 4, 40))
    )
    chunk_size: tuple[int, int, int] = (32, 32, 4)

    @property
    def finest(self) -> Vec3D[float]:
        return Vec3D(*self.resolutions[0]).float()


def random_data(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> npt.NDArray[Any]:
    """Random values spanning ``dtype``'s range (floats in [-1e3, 1e3))."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.random(shape) * 2e3 - 1e3).astype(dt)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)


class VolumetricBackendTests(FlowArgumentTests, BackendContract):
    """Contract of every volumetric backend; subclass it in the backend's tests."""

    #: The dtypes the backend stores (override for formats with fewer).
    dtypes: ClassVar[tuple[str, ...]] = (
        "uint8",
        "int8",
        "uint16",
        "int16",
        "uint32",
        "int32",
        "uint64",
        "float32",
    )
    num_samples = 4

    # -- hooks for the backend's tests ----------------------------------------------------------
    def make_backend(self, volume: TestVolume, path: Path) -> VolumetricBackend:
        """A fresh, empty backend storing ``volume`` (under ``path`` if it stores files)."""
        raise NotImplementedError("subclass the suite and implement make_backend")

    def damage_stored_chunk(self, backend: VolumetricBackend, idx: VolumetricIndex) -> bool:
        """Damage, without the backend's methods, the stored chunk holding ``idx``'s first
        voxel so that it no longer decodes (a file cut short, a body that is not its
        encoding). Return ``False`` when the storage holds no encoded chunks that could be
        damaged (arrays kept in memory); the suite then checks nothing more."""
        raise NotImplementedError("subclass the suite and implement damage_stored_chunk")

    @pytest.fixture
    def make(self, tmp_path: Path) -> Any:
        def make(volume: TestVolume | None = None) -> VolumetricBackend:
            return self.make_backend(volume or TestVolume(), tmp_path / f"v{next(_counter)}")

        return make

    @pytest.fixture
    def backend(self, make: Any) -> VolumetricBackend:
        backend: VolumetricBackend = make()
        return backend

    # -- the scheme's samples -------------------------------------------------------------------
    def sample(self, i: int, backend: Any) -> tuple[Any, Any]:
        """Chunk ``i`` of the finest scale (distinct regions, random data)."""
        res = TestVolume().finest
        offset = backend.get_voxel_offset(res)
        chunk = backend.get_chunk_size(res)
        start = offset + Vec3D(i * chunk[0], 0, 0)
        idx = VolumetricIndex.from_coords(start, start + chunk, res)
        data = random_data((backend.num_channels, *idx.shape), backend.dtype, seed=i)
        return idx, data

    def assert_data_equal(self, actual: Any, expected: Any) -> None:
        assert isinstance(actual, np.ndarray), type(actual)
        assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
        np.testing.assert_array_equal(actual, expected)

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def index(
        backend: VolumetricBackend, start: Any, stop: Any, res: Any = None
    ) -> VolumetricIndex:
        """The index from ``offset + start`` to ``offset + stop`` voxels at ``res``."""
        res = Vec3D(*(res or TestVolume().finest)).float()
        offset = backend.get_voxel_offset(res)
        return VolumetricIndex.from_coords(offset + Vec3D(*start), offset + Vec3D(*stop), res)

    # -- geometry -------------------------------------------------------------------------------
    def test_geometry_matches_the_volume(self, backend: VolumetricBackend) -> None:
        volume = TestVolume()
        assert backend.dtype == np.dtype(volume.dtype)
        assert backend.num_channels == volume.num_channels
        assert [tuple(r) for r in backend.resolutions] == [
            tuple(float(v) for v in r) for r in volume.resolutions
        ]
        fine, coarse = (Vec3D(*r) for r in volume.resolutions)
        assert backend.get_voxel_offset(fine) == Vec3D(32, 64, 4)
        assert backend.get_dataset_size(fine) == Vec3D(160, 96, 10)
        assert backend.get_voxel_offset(coarse) == Vec3D(16, 32, 4)
        assert backend.get_dataset_size(coarse) == Vec3D(80, 48, 10)
        assert backend.get_chunk_size(fine) == Vec3D(*volume.chunk_size)
        bounds = backend.get_bounds(fine)
        assert bounds.start == Vec3D(32, 64, 4)
        assert bounds.stop == Vec3D(192, 160, 14)

    def test_unknown_resolution_names_the_known_ones(self, backend: VolumetricBackend) -> None:
        idx = VolumetricIndex.from_coords((0, 0, 0), (1, 1, 1), (3, 3, 3))
        with pytest.raises(UnknownResolutionError, match=r"\(4, 4, 40\)"):
            backend.read(idx)

    # -- round trips ----------------------------------------------------------------------------
    @pytest.mark.parametrize("num_channels", [1, 3])
    def test_round_trip_per_dtype_and_channel_count(self, make: Any, num_channels: int) -> None:
        for dtype in self.dtypes:
            backend = make(TestVolume(dtype=dtype, num_channels=num_channels))
            idx = self.index(backend, (0, 0, 0), (64, 32, 8))
            data = random_data((num_channels, *idx.shape), dtype, seed=num_channels)
            backend.write(idx, data)
            self.assert_data_equal(backend.read(idx), data)
            self.assert_data_equal(self.raw_read(backend, idx), data)

    def test_several_resolutions_are_independent(self, backend: VolumetricBackend) -> None:
        fine, coarse = (Vec3D(*r).float() for r in TestVolume().resolutions)
        fine_idx = self.index(backend, (0, 0, 0), (32, 32, 4), fine)
        coarse_idx = self.index(backend, (0, 0, 0), (32, 32, 4), coarse)
        a = random_data((1, *fine_idx.shape), backend.dtype, seed=1)
        b = random_data((1, *coarse_idx.shape), backend.dtype, seed=2)
        backend.write(fine_idx, a)
        backend.write(coarse_idx, b)
        self.assert_data_equal(backend.read(fine_idx), a)
        self.assert_data_equal(backend.read(coarse_idx), b)

    def test_partial_edge_chunks_are_aligned(self, backend: VolumetricBackend) -> None:
        # The dataset ends at x = 160 voxels from the offset: the last chunk is partial.
        idx = self.index(backend, (128, 64, 8), (160, 96, 10))
        data = random_data((1, *idx.shape), backend.dtype, seed=3)
        backend.write(idx, data)
        self.assert_data_equal(backend.read(idx), data)

    def test_scalar_write_fills_the_region(self, backend: VolumetricBackend) -> None:
        idx = self.index(backend, (0, 0, 0), (32, 32, 4))
        backend.write(idx, np.asarray(7).reshape(1))
        expected = np.full((1, *idx.shape), 7, dtype=backend.dtype)
        self.assert_data_equal(backend.read(idx), expected)

    # -- zeros where nothing is -----------------------------------------------------------------
    def test_missing_chunks_read_as_zeros(self, backend: VolumetricBackend) -> None:
        idx = self.index(backend, (0, 0, 0), (64, 64, 8))
        out = backend.read(idx)
        self.assert_data_equal(out, np.zeros((1, *idx.shape), dtype=backend.dtype))

    def test_reads_outside_the_bounds_are_zeros(self, backend: VolumetricBackend) -> None:
        inside = self.index(backend, (0, 0, 0), (32, 32, 4))
        data = random_data((1, *inside.shape), backend.dtype, seed=4)
        data[data == 0] = 1
        backend.write(inside, data)
        around = self.index(backend, (-8, -8, -2), (40, 40, 6))
        out = backend.read(around)
        assert out.shape == (1, 48, 48, 8)
        self.assert_data_equal(out[:, 8:40, 8:40, 2:6], data)
        outside = out.copy()
        outside[:, 8:40, 8:40, 2:6] = 0
        assert not outside.any()

    @pytest.mark.parametrize("order", ["C", "F"])
    def test_read_into_writes_every_voxel_of_what_read_returns(
        self, backend: VolumetricBackend, order: str
    ) -> None:
        """``read_into`` fills ``out`` (either memory layout, garbage before) with what
        ``read`` returns: stored data, zeros for missing chunks and outside the bounds."""
        inside = self.index(backend, (0, 0, 0), (32, 32, 4))
        data = random_data((1, *inside.shape), backend.dtype, seed=5)
        backend.write(inside, data)
        around = self.index(backend, (-8, -8, -2), (72, 40, 6))  # a missing chunk too
        shape = (backend.num_channels, *around.shape)
        if order == "F":
            out = np.full((*shape[1:], shape[0]), 7, backend.dtype, order="F").transpose(3, 0, 1, 2)
        else:
            out = np.full(shape, 7, backend.dtype)
        backend.read_into(around, out)
        self.assert_data_equal(np.ascontiguousarray(out), backend.read(around))
        with pytest.raises(ValueError, match="read_into's out must have shape"):
            backend.read_into(around, np.zeros((shape[0], 1, 1, 1), backend.dtype))

    # -- what is refused, before anything is written --------------------------------------------
    def test_non_aligned_write_is_refused_when_enforced(self, backend: VolumetricBackend) -> None:
        assert backend.enforce_chunk_aligned_writes
        idx = self.index(backend, (1, 0, 0), (33, 32, 4))
        with pytest.raises(ValueError, match="not aligned to the chunk grid"):
            backend.write(idx, random_data((1, *idx.shape), backend.dtype))
        assert not self.is_stored(backend, idx)

    def test_non_aligned_write_when_opted_out(self, backend: VolumetricBackend) -> None:
        if not backend.capabilities.non_aligned_writes:
            with pytest.raises(KeyError):
                backend.with_changes(enforce_chunk_aligned_writes=False)
            return
        loose = backend.with_changes(enforce_chunk_aligned_writes=False)
        assert not loose.enforce_chunk_aligned_writes
        whole = self.index(backend, (0, 0, 0), (64, 64, 8))
        base = random_data((1, *whole.shape), backend.dtype, seed=5)
        backend.write(whole, base)
        part = self.index(backend, (5, 7, 1), (41, 50, 6))
        patch = random_data((1, *part.shape), backend.dtype, seed=6)
        loose.write(part, patch)
        expected = base.copy()
        expected[:, 5:41, 7:50, 1:6] = patch
        self.assert_data_equal(backend.read(whole), expected)

    def test_write_outside_the_bounds_is_refused(self, backend: VolumetricBackend) -> None:
        idx = self.index(backend, (128, 0, 0), (192, 32, 4))  # x beyond the end at 160
        with pytest.raises(ValueError, match="bounds"):
            backend.write(idx, random_data((1, *idx.shape), backend.dtype))
        assert not self.is_stored(backend, self.index(backend, (128, 0, 0), (160, 32, 4)))

    @pytest.mark.parametrize(
        ("shape", "match"),
        [((1, 32, 32, 3), "spatial shape"), ((2, 32, 32, 4), "channel"), ((32, 32, 4), "4-D")],
    )
    def test_wrong_shape_is_refused(
        self, backend: VolumetricBackend, shape: tuple[int, ...], match: str
    ) -> None:
        idx = self.index(backend, (0, 0, 0), (32, 32, 4))
        with pytest.raises(ValueError, match=match):
            backend.write(idx, np.ones(shape, dtype=backend.dtype))
        assert not self.is_stored(backend, idx)

    def test_lossy_dtype_conversion_is_refused(self, backend: VolumetricBackend) -> None:
        idx = self.index(backend, (0, 0, 0), (32, 32, 4))
        if backend.dtype.kind in "iu":
            bad = np.full((1, *idx.shape), 0.5, dtype=np.float64)
        else:
            bad = np.full((1, *idx.shape), 1e300, dtype=np.float64)
        with pytest.raises(ValueError, match="without losing data"):
            backend.write(idx, bad)
        assert not self.is_stored(backend, idx)

    def test_lossless_dtype_conversion_is_done(self, backend: VolumetricBackend) -> None:
        idx = self.index(backend, (0, 0, 0), (32, 32, 4))
        data = np.full((1, *idx.shape), 100, dtype=np.int64)  # fits every stored dtype
        backend.write(idx, data)
        self.assert_data_equal(backend.read(idx), data.astype(backend.dtype))

    # -- changes --------------------------------------------------------------------------------
    def test_with_changes_refuses_known_keys_it_does_not_honour(
        self, backend: VolumetricBackend
    ) -> None:
        from lamina.volumetric.backend import CHANGE_KEYS

        for key in sorted(CHANGE_KEYS - backend.supported_changes):
            with pytest.raises(KeyError, match=key):
                cast(Any, backend).with_changes(**{key: None})

    def test_with_changes_name_addresses_another_volume(self, backend: VolumetricBackend) -> None:
        if "name" not in backend.supported_changes:
            pytest.skip("backend does not support with_changes(name=...)")
        idx, data = self.sample(0, backend)
        backend.write(idx, data)
        other = backend.with_changes(name=backend.name + "-other")
        assert other.name != backend.name
        assert not other.read(idx).any()
        self.assert_data_equal(backend.read(idx), data)

    # -- through a volumetric layer -------------------------------------------------------------
    def test_layer_index_forms_read_the_same_region(self, backend: VolumetricBackend) -> None:
        res = TestVolume().finest
        idx = self.index(backend, (0, 0, 0), (32, 32, 4))
        data = random_data((1, *idx.shape), backend.dtype, seed=7)
        layer = build_volumetric_layer(backend, default_desired_resolution=res)
        s = tuple(slice(a, b) for a, b in zip(idx.start, idx.stop, strict=True))
        layer[(res, *s)] = data
        self.assert_data_equal(layer[idx], data)
        self.assert_data_equal(layer[idx.bbox], data)
        self.assert_data_equal(layer[res, idx.bbox], data)
        self.assert_data_equal(layer[res, s], data)
        index_layer = build_volumetric_layer(
            backend, index_resolution=res, default_desired_resolution=res
        )
        self.assert_data_equal(index_layer[s], data)

    def test_readonly_volumetric_layer_refuses_writes(self, backend: VolumetricBackend) -> None:
        res = TestVolume().finest
        layer = build_volumetric_layer(backend, default_desired_resolution=res, readonly=True)
        idx = self.index(backend, (0, 0, 0), (32, 32, 4))
        with pytest.raises(IOError, match="readonly"):
            layer[idx] = 1
        assert not self.is_stored(backend, idx)

    # -- nothing lost, nothing invented ---------------------------------------------------------
    def test_a_damaged_chunk_is_an_error_not_the_fill_value(
        self, backend: VolumetricBackend
    ) -> None:
        idx = self.index(backend, (0, 0, 0), (32, 32, 4))
        backend.write(idx, random_data((1, *idx.shape), backend.dtype, seed=8))
        if not self.damage_stored_chunk(backend, idx):
            pytest.skip(f"{type(backend).__name__} stores no encoded chunks to damage")
        with pytest.raises(DamagedChunkError):
            backend.read(idx)

    def test_a_refused_write_leaves_the_stored_data_unchanged(
        self, backend: VolumetricBackend
    ) -> None:
        whole = self.index(backend, (0, 0, 0), (64, 64, 8))
        stored = random_data((1, *whole.shape), backend.dtype, seed=9)
        backend.write(whole, stored)
        lossy = 0.5 if backend.dtype.kind in "iu" else 1e300
        region = self.index(backend, (0, 0, 0), (32, 32, 4))
        refused: list[tuple[VolumetricIndex, Any, str]] = [
            (self.index(backend, (1, 0, 0), (33, 32, 4)), None, "not aligned"),
            (self.index(backend, (128, 0, 0), (192, 32, 4)), None, "bounds"),
            (region, np.ones((1, 32, 32, 3)), "spatial shape"),
            (region, np.ones((2, 32, 32, 4)), "channel"),
            (region, np.full((1, 32, 32, 4), lossy), "without losing data"),
        ]
        for idx, data, match in refused:
            payload = random_data((1, *idx.shape), backend.dtype) if data is None else data
            with pytest.raises(ValueError, match=match):
                backend.write(idx, payload)
        self.assert_data_equal(self.raw_read(backend, whole), stored)
        self.assert_data_equal(backend.read(whole), stored)
