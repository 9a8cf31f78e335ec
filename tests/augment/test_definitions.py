"""Each augmentation against its definition on known inputs (exact values where the draw is
a constant or seeded), and numpy and torch alike: the type and dtype given come back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from lamina_augment import (
    apply_to_random_boxes,
    apply_to_random_sections,
    brightness_aug,
    clamp_values_aug,
    contrast_aug,
    gamma_aug,
    gaussian_blur_aug,
    gaussian_noise_aug,
    missing_section_aug,
    normalize_intensity,
    square_tile_pattern_aug,
    uniform_distr,
)


def _line(*values: float) -> Any:
    return np.array(values, dtype=np.float32).reshape(1, len(values), 1, 1)


def test_brightness_adds_the_value_where_the_mask_says() -> None:
    assert brightness_aug(_line(0, 1, 2), 1.0).ravel().tolist() == [1, 2, 3]
    assert brightness_aug(_line(0, 1, 2), 1.0, mask_fn=lambda x: x == 2).ravel().tolist() == [
        0,
        1,
        3,
    ]
    assert brightness_aug(_line(0, 1, 2), 1.0, mask_fn=lambda x: x).ravel().tolist() == [0, 2, 4]
    drawn = brightness_aug(np.zeros((1, 4, 4, 2), np.float32), uniform_distr(2, 3), seed=1)
    assert 2 <= drawn.min() == drawn.max() < 3  # one draw per call


def test_clamp_applies_high_then_low_inside_the_mask() -> None:
    assert clamp_values_aug(
        _line(0, 1, 2), low_distr=1, mask_fn=lambda x: x < 2
    ).ravel().tolist() == [1, 1, 2]
    out = clamp_values_aug(_line(0, 1, 2), low_distr=1, high_distr=1, mask_fn=lambda x: x != 0)
    assert out.ravel().tolist() == [0, 1, 1]


def test_gamma_contrast_noise_normalize() -> None:
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 4, 4, 4)
    np.testing.assert_allclose(gamma_aug(ramp, 2.0), ramp.astype(np.float64) ** 2, rtol=1e-6)
    np.testing.assert_array_equal(gamma_aug(ramp, 1.0), ramp)
    np.testing.assert_allclose(contrast_aug(ramp, 0.0), np.full_like(ramp, ramp.mean()), rtol=1e-6)
    np.testing.assert_allclose(
        contrast_aug(ramp, 2.0, center=0.5), 0.5 + 2 * (ramp - 0.5), atol=1e-6
    )
    np.testing.assert_array_equal(gaussian_noise_aug(ramp, 0.0), ramp)
    noisy = gaussian_noise_aug(np.zeros((1, 64, 64, 16), np.float32), 0.5, seed=3)
    assert abs(float(noisy.std()) - 0.5) < 0.01
    assert abs(float(noisy.mean())) < 0.01
    normal = normalize_intensity(ramp * 7 + 3)
    assert abs(float(normal.mean())) < 1e-6
    assert abs(float(normal.std()) - 1) < 1e-5


def test_sections_boxes_missing_and_blur() -> None:
    ones = np.ones((1, 5, 5, 5), np.float32)
    out = apply_to_random_sections(ones, np.zeros_like, num_sections=2, seed=0)
    assert int((out == 0).sum()) == 50
    assert sorted({int(z) for z in np.nonzero(out == 0)[3]}).__len__() == 2
    box = apply_to_random_boxes(
        np.zeros((1, 8, 8, 8), np.float32),
        np.ones_like,
        box_size_px=1,
        allow_partial_boxes=False,
        seed=2,
    )
    assert int(box.sum()) == 1
    dense = apply_to_random_boxes(
        np.zeros((1, 16, 16, 8), np.float32),
        np.ones_like,
        box_size_px=[4, 4, 2],
        num_boxes=None,
        density=0.5,
        seed=4,
    )
    assert dense.mean() >= 0.5
    missing = missing_section_aug(ones, num_sections=3, fill=0.0, seed=5)
    assert int((missing.reshape(-1, 5) == 0).all(axis=0).sum()) == 3
    partly = missing_section_aug(
        np.ones((1, 32, 32, 4), np.float32), num_sections=4, partial=True, seed=6
    )
    assert 0 < int((partly == 0).sum()) < partly.size
    constant = np.full((1, 16, 16, 2), 3.0, np.float32)
    np.testing.assert_allclose(gaussian_blur_aug(constant, 2.0), constant, rtol=1e-6)
    impulse = np.zeros((1, 33, 33, 1), np.float32)
    impulse[0, 16, 16, 0] = 1
    blurred = gaussian_blur_aug(impulse, 2.0)
    assert abs(float(blurred.sum()) - 1) < 1e-5
    assert blurred[0, 16, 16, 0] == blurred.max() < 1


def test_square_tile_pattern() -> None:
    zeros = np.zeros((1, 8, 8, 1), np.float32)
    out = square_tile_pattern_aug(
        zeros, tile_size=1, tile_stride=2, max_brightness_change=1.0, preserve_data_val=None, seed=7
    )
    values = np.abs(out[0, :, :, 0])
    assert set(np.round(values, 6).ravel().tolist()) == {0.0, 1.0}
    on = np.argwhere(values > 0)
    assert len(on) == 16  # every other voxel in x and in y
    assert len({(int(x) % 2, int(y) % 2) for x, y in on}) == 1
    kept = np.zeros((1, 8, 8, 2), np.float32)
    kept[0, 3, 3, :] = -99
    out = square_tile_pattern_aug(
        kept, tile_size=1, tile_stride=1, max_brightness_change=0.5, preserve_data_val=-99, seed=8
    )
    assert (out[0, 3, 3] == -99).all()
    assert np.abs(np.abs(out[out != -99]) - 0.5).max() < 1e-6  # size = stride: all covered
    rotated = square_tile_pattern_aug(
        np.zeros((1, 16, 16, 1), np.float32),
        tile_size=2,
        tile_stride=4,
        max_brightness_change=1.0,
        rotation_degree=45.0,
        preserve_data_val=None,
        seed=9,
    )
    assert np.abs(rotated).max() == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", ["uint8", "float32", "int16"])
def test_the_type_and_dtype_given_come_back(dtype: str) -> None:
    data = (np.arange(64).reshape(1, 4, 4, 4) % 50).astype(dtype)
    out = brightness_aug(data, 2.4)
    assert out.dtype == np.dtype(dtype)
    expected = data.astype(np.float64) + 2.4
    if dtype != "float32":
        expected = np.rint(expected)
    np.testing.assert_allclose(out, expected.astype(dtype))
    saturated = brightness_aug(np.full((1, 2, 2, 2), 250, np.uint8), 10.0)
    assert (saturated == 255).all()  # clipped to the dtype, not wrapped


def test_torch_tensors_come_back_as_tensors() -> None:
    torch = pytest.importorskip("torch")
    data = torch.zeros((1, 4, 4, 4), dtype=torch.float16)
    out = brightness_aug(data, 1.5)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float16
    assert float(out.min()) == 1.5


def test_bad_values_name_the_argument() -> None:
    with pytest.raises(
        TypeError, match="brightness_aug: value_distr must be a number or a distribution"
    ):
        brightness_aug(np.zeros((1, 2, 2, 2)), "lots")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"must be \(C, X, Y, Z\)"):
        brightness_aug(np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match="prob must be between 0 and 1"):
        brightness_aug(np.zeros((1, 2, 2, 2)), 1.0, prob=1.5)
    with pytest.raises(ValueError, match="low must be <= high"):
        uniform_distr(3, 1)


def test_any_channel_count() -> None:
    data = np.random.default_rng(2).integers(0, 200, (3, 8, 8, 4)).astype(np.uint8)
    for out in (
        brightness_aug(data, 5.0),
        gamma_aug(data, 1.2),
        gaussian_blur_aug(data, 1.0),
        missing_section_aug(data, 1, seed=1),
        square_tile_pattern_aug(data, 2, 4, 10.0, seed=2),
    ):
        assert out.shape == (3, 8, 8, 4)
        assert out.dtype == np.uint8
    np.testing.assert_array_equal(brightness_aug(data, 5.0), data + 5)


def test_numpy_data_never_imports_torch() -> None:
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from lamina_augment import brightness_aug, MisalignProcessor, FlipRotateAug\n"
        "brightness_aug(np.zeros((1, 2, 2, 2), np.float32), 1.0)\n"
        "FlipRotateAug().process_data(np.zeros((1, 2, 2, 2)), 'read', None)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
