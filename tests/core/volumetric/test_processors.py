"""Volumetric processors (the reference system's) and their fixed weak points."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import lamina
from lamina import (
    BBox3D,
    InvertProcessor,
    ROIMaskProcessor,
    Vec3D,
    VolumetricIndex,
    VolumetricIndexOverrider,
    VolumetricIndexPadder,
    VolumetricIndexScaler,
    VolumetricIndexTranslator,
    build_memory_volumetric_layer,
)

RES = Vec3D(4, 4, 40)
IDX = VolumetricIndex.from_coords((10, 20, 2), (14, 28, 4), RES, chunk_id=7)


def test_translator_counts_voxels_at_its_own_resolution_and_keeps_chunk_id() -> None:
    out = VolumetricIndexTranslator(offset=(1, 2, 1), resolution=(8, 8, 40))(IDX)
    assert out.resolution == RES
    assert out.start == Vec3D(12, 24, 3)  # 1 voxel at 8 nm = 2 voxels at 4 nm
    assert out.shape == IDX.shape
    assert out.chunk_id == 7  # kept (the reference reset it to 0)


def test_scaler_keeps_the_region_and_scales_the_resolution() -> None:
    out = VolumetricIndexScaler(res_change_mult=(2, 2, 1))(IDX)
    assert out.bbox == IDX.bbox
    assert out.resolution == Vec3D(8, 8, 40)
    assert out.shape == Vec3D(2, 4, 2)
    with pytest.raises(ValueError, match="whole number of voxels"):
        VolumetricIndexScaler(res_change_mult=(3, 1, 1))(IDX)
    rounded = VolumetricIndexScaler((3, 1, 1), allow_slice_rounding=True)(IDX)
    assert rounded.start[0] == 3
    assert rounded.stop[0] == 5


def test_overrider_replaces_only_what_is_given() -> None:
    out = VolumetricIndexOverrider(override_offset=(0, None, None), override_size=(None, 2, None))(
        IDX
    )
    assert out.start == Vec3D(0, 20, 2)
    assert out.shape == Vec3D(4, 2, 2)
    res_only = VolumetricIndexOverrider(override_resolution=(8, None, None))(IDX)
    assert res_only.start == IDX.start  # voxel coordinates kept, so the region changes
    assert res_only.resolution == Vec3D(8, 4, 40)
    assert res_only.bbox.bounds[0] == (80, 112)
    with pytest.raises(ValueError, match="3 entries"):
        VolumetricIndexOverrider(override_offset=(1, 2))


def test_padder_pads_in_index_voxels() -> None:
    out = VolumetricIndexPadder(pad=((1, 2), 0, 1))(IDX)
    assert out.start == Vec3D(9, 20, 1)
    assert out.stop == Vec3D(16, 28, 5)


@pytest.mark.parametrize(
    ("dtype", "values", "expected"),
    [
        ("uint8", [0, 1, 2, 255], [255, 254, 253, 0]),  # 255 - x, not the reference's 257 - x
        ("uint16", [0, 65535], [65535, 0]),
        ("int8", [-128, 0, 127], [127, -1, -128]),
        ("bool", [True, False], [False, True]),
    ],
)
def test_invert_is_a_true_inversion(dtype: str, values: list, expected: list) -> None:
    proc = InvertProcessor(invert=True)
    data = np.array(values, dtype=dtype)
    idx, state = proc.process_index(IDX, "read")
    assert idx is IDX
    np.testing.assert_array_equal(proc.process_data(data, "read", state), np.array(expected, dtype))
    assert InvertProcessor(invert=False).process_data(data, "read", None) is data


def test_invert_refuses_floats() -> None:
    with pytest.raises(NotImplementedError, match="float32"):
        InvertProcessor(invert=True).process_data(np.zeros(2, np.float32), "read", None)


def test_invert_through_a_layer() -> None:
    layer = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (64, 64, 80)),
        [RES],
        (16, 16, 2),
        default_desired_resolution=RES,
        read_procs=[InvertProcessor(invert=True)],
    )
    layer.backend.write(VolumetricIndex.from_coords((0, 0, 0), (16, 16, 2), RES), 10)
    assert (layer[RES, 0:16, 0:16, 0:2] == 245).all()


def test_roi_mask_marks_the_region_and_leaves_the_input_alone() -> None:
    proc = ROIMaskProcessor(
        start_coord=(11, 20, 0), end_coord=(13, 24, 10), resolution=RES, targets=["img"]
    )
    _, state = proc.process_index(IDX, "read")
    data = {"img": np.ones((1, 4, 8, 2), np.float32)}
    out = proc.process_data(data, "read", state)
    assert "img_mask" not in data  # the given dict is not changed
    mask = out["img_mask"]
    assert mask.dtype == np.uint8
    assert mask.shape == (1, 4, 8, 2)
    expected = np.zeros((1, 4, 8, 2), np.uint8)
    expected[:, 1:3, 0:4, :] = 1
    np.testing.assert_array_equal(mask, expected)


def test_roi_mask_with_upstream_pad_and_outside_roi() -> None:
    proc = ROIMaskProcessor((10, 20, 2), (11, 21, 3), RES, ["img"], upstream_pad=1)
    _, state = proc.process_index(IDX, "read")
    out = proc.process_data({"img": np.zeros((1, 6, 10, 4))}, "read", state)
    assert out["img_mask"].sum() == 1
    assert out["img_mask"][0, 1, 1, 1] == 1
    far = ROIMaskProcessor((100, 100, 100), (101, 101, 101), RES, ["img"])
    _, state = far.process_index(IDX, "read")
    assert not far.process_data({"img": np.zeros((1, 4, 8, 2))}, "read", state)["img_mask"].any()


def test_roi_mask_keeps_an_existing_mask_and_names_missing_targets() -> None:
    proc = ROIMaskProcessor((0, 0, 0), (1, 1, 1), RES, ["img", "seg"])
    existing = np.full((1, 4, 8, 2), 9, np.uint8)
    data = {"img": np.zeros((1, 4, 8, 2)), "seg": np.zeros((1, 4, 8, 2)), "img_mask": existing}
    out = proc.process_data(data, "read", None)
    assert out["img_mask"] is existing
    with pytest.raises(KeyError, match="seg"):
        proc.process_data({"img": np.zeros(2)}, "read", None)


def test_processors_are_registered_and_buildable_from_specs(lamina_host: object) -> None:
    proc = lamina.build({"@type": "InvertProcessor", "invert": True})
    assert isinstance(proc, InvertProcessor)
    translator = lamina.build(
        {"@type": "VolumetricIndexTranslator", "offset": [1, 0, 0], "resolution": [4, 4, 40]}
    )
    assert translator(IDX).start == Vec3D(11, 20, 2)
    for name in (
        "VolumetricIndexScaler",
        "VolumetricIndexOverrider",
        "VolumetricIndexPadder",
        "ROIMaskProcessor",
        "DataResolutionInterpolator",
    ):
        assert name in lamina.registered_names()


def test_joint_processors_are_thread_safe_through_a_layer() -> None:
    proc = ROIMaskProcessor((0, 0, 0), (2, 2, 2), RES, ["img"])
    errors: list[str] = []

    def work(k: int) -> None:
        idx = VolumetricIndex.from_coords((k, 0, 0), (k + 4, 4, 2), RES)
        for _ in range(200):
            _, state = proc.process_index(idx, "read")
            out = proc.process_data({"img": np.zeros((1, 4, 4, 2))}, "read", state)
            if out["img_mask"].sum() != max(0, 2 - k) * 2 * 2:
                errors.append(f"thread {k}: {out['img_mask'].sum()}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
