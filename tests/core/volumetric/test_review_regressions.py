"""Regression tests for problems found in review of the core (each names what it guards)."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import numpy as np
import pytest

import lamina
from lamina import (
    BBox3D,
    JointIndexDataProcessor,
    MemoryVolumetricBackend,
    ROIMaskProcessor,
    Vec3D,
    VolumetricIndex,
    build_memory_volumetric_layer,
)
from lamina.volumetric.data import convert_dtype
from lamina.volumetric.scales import ScaleGeometry


def ramp_volume(res: tuple[int, int, int], step: int) -> Any:
    """A layer over 1 nm and 2 nm scales whose x voxel i (at ``res``) holds ``step * i``."""
    layer = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (16, 16, 16)),
        [(1, 1, 1), (2, 2, 2)],
        chunk_size=(16, 16, 16),
        allow_slice_rounding=True,
    )
    n = 16 // res[0]
    ramp = (np.arange(n, dtype=np.uint8) * step).reshape(1, n, 1, 1)
    layer[Vec3D(*res), 0:n, 0:n, 0:n] = np.broadcast_to(ramp, (1, n, n, n)).copy()
    return layer


def test_rounded_read_upsamples_the_right_voxels() -> None:
    layer = ramp_volume((2, 2, 2), 1).with_changes(
        data_resolution=(2, 2, 2), interpolation_mode="nearest"
    )
    out = layer[Vec3D(1, 1, 1), 1:5, 0:2, 0:2]
    assert out[0, :, 0, 0].tolist() == [0, 1, 1, 2]


def test_rounded_read_downsamples_the_right_voxels() -> None:
    layer = ramp_volume((1, 1, 1), 10).with_changes(
        data_resolution=(1, 1, 1), interpolation_mode="img"
    )
    out = layer[Vec3D(2, 2, 2), BBox3D.from_coords((1, 0, 0), (3, 2, 2))]
    assert out[0, :, 0, 0].tolist() == [5, 25]


def _resample_in_child(queue: Any) -> None:
    from lamina.volumetric.resample import resample

    data = np.zeros((1, 256, 256, 256), np.uint8)
    queue.put(resample(data, (0.5, 0.5, 1), "img").shape)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_threaded_resampling_works_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    from lamina.volumetric.resample import resample

    monkeypatch.setenv("LAMINA_RESAMPLE_THREADS", "2")
    resample(np.zeros((1, 256, 256, 256), np.uint8), (0.5, 0.5, 1), "img")  # start the pool
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_resample_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert not child.is_alive(), "the forked child hung on the inherited thread pool"
    assert queue.get(timeout=5) == (1, 128, 128, 256)


@pytest.mark.parametrize(("mode", "value", "stored"), [("field", 2.0, 1.0), ("mask", 5, 1)])
def test_fills_through_data_resolution_follow_the_mode(mode: str, value: Any, stored: Any) -> None:
    layer = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (64, 64, 8)),
        [(4, 4, 1), (8, 8, 1)],
        chunk_size=(8, 8, 8),
        dtype="float32" if mode == "field" else "uint8",
        num_channels=2 if mode == "field" else 1,
        data_resolution=(8, 8, 1),
        interpolation_mode=mode,  # type: ignore[arg-type]
    )
    layer[Vec3D(4, 4, 1), 0:16, 0:16, 0:8] = value
    coarse = layer.backend.read(VolumetricIndex.from_coords((0, 0, 0), (8, 8, 8), (8, 8, 1)))
    assert np.all(coarse == stored)
    array = np.full((layer.backend.num_channels, 16, 16, 8), value, dtype=layer.backend.dtype)
    layer[Vec3D(4, 4, 1), 0:16, 0:16, 0:8] = array  # an array of the value stores the same
    same = layer.backend.read(VolumetricIndex.from_coords((0, 0, 0), (8, 8, 8), (8, 8, 1)))
    np.testing.assert_array_equal(same, coarse)


@pytest.mark.parametrize(
    ("value", "dtype"), [(2.0**64, "uint64"), (2.0**63, "int64"), (-(2.0**63) * 1.01, "int64")]
)
def test_floats_at_the_edge_of_64_bit_ranges_are_refused(value: float, dtype: str) -> None:
    with pytest.raises(ValueError, match="outside"):
        convert_dtype(np.full((1, 2, 2, 2), value), dtype)
    assert convert_dtype(np.full(3, 2.0**62), "int64").tolist() == [2**62] * 3


def test_write_with_procs_takes_scalars_through_data_resolution() -> None:
    layer = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (32, 32, 8)),
        [(1, 1, 1), (2, 2, 1)],
        chunk_size=(8, 8, 8),
        data_resolution=(2, 2, 1),
        interpolation_mode="img",
    )
    idx = VolumetricIndex.from_coords((0, 0, 0), (16, 16, 8), (1, 1, 1))
    layer.write_with_procs(idx, 4)
    assert (layer.read_with_procs(idx) == 4).all()


def test_rechunking_keeps_every_scale_extent() -> None:
    fine, coarse = Vec3D(1, 1, 1), Vec3D(2, 2, 2)
    backend = MemoryVolumetricBackend(
        dtype="uint8",
        num_channels=1,
        scales={
            fine: ScaleGeometry(
                voxel_offset=(0, 0, 0), chunk_size=(4, 4, 4), dataset_size=(10, 10, 10)
            ),
            coarse: ScaleGeometry(
                voxel_offset=(1, 1, 1), chunk_size=(4, 4, 4), dataset_size=(6, 6, 6)
            ),
        },
    )
    changed = backend.with_changes(chunk_size_res=((2, 2, 2), fine))
    assert changed.get_voxel_offset(coarse) == Vec3D(1, 1, 1)
    assert changed.get_dataset_size(coarse) == Vec3D(6, 6, 6)
    assert changed.get_chunk_size(coarse) == Vec3D(2, 2, 2)


def test_a_backend_may_honour_its_own_change_keys() -> None:
    class WithLevel(MemoryVolumetricBackend):
        supported_changes = MemoryVolumetricBackend.supported_changes | {"compression_level"}

    backend = WithLevel.from_bbox(BBox3D.from_coords((0, 0, 0), (8, 8, 8)), [(1, 1, 1)], (8, 8, 8))
    backend.check_changes({"compression_level": 3})  # no error
    with pytest.raises(KeyError, match="does not support with_changes\\(allow_cache"):
        backend.check_changes({"allow_cache": True})


def test_roi_mask_targets_must_not_be_a_bare_str() -> None:
    with pytest.raises(TypeError, match="list of layer names"):
        ROIMaskProcessor((0, 0, 0), (1, 1, 1), (1, 1, 1), "img")  # type: ignore[arg-type]


def test_joint_processors_are_refused_as_index_processors() -> None:
    class Joint(JointIndexDataProcessor[Any, Any]):
        def process_index(self, idx: Any, mode: Any) -> Any:
            return idx, None

        def process_data(self, data: Any, mode: Any, state: Any) -> Any:
            return data

    with pytest.raises(TypeError, match="read_procs or write_procs"):
        lamina.build_memory_layer(index_procs=[Joint()])


def test_interpolation_mode_is_checked_when_the_layer_is_built() -> None:
    with pytest.raises(ValueError, match="interpolation_mode must be one of"):
        build_memory_volumetric_layer(
            BBox3D.from_coords((0, 0, 0), (8, 8, 8)),
            [(1, 1, 1)],
            (8, 8, 8),
            data_resolution=(2, 2, 2),
            interpolation_mode="bogus",  # type: ignore[arg-type]
        )
