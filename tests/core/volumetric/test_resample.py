"""Tests of lamina.volumetric.resample against straightforward references.

The references below loop over output voxels with Python integers (or float64 means)
and share no code with the module, so a shortcut taken by the implementation (tinybrain,
widening tricks, bitwise selects, chunking) is checked against plain arithmetic.
"""

from __future__ import annotations

import collections
import math
import subprocess
import sys
import zlib
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import lamina.volumetric.resample as rs
from lamina.volumetric.resample import TorchUnavailableError, resample, tinybrain_paths
from lamina.volumetric.resample import threads as rs_threads
from lamina.volumetric.resample import torch as rs_torch

NDArray = npt.NDArray[Any]

INT_DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]
LAYOUTS = ["C", "F"]

# Downsampling factors: power-of-two blocks (tinybrain's cases and beyond) and others.
DOWN_FACTORS = [
    (0.5, 0.5, 1),
    (0.5, 0.5, 0.5),
    (0.25, 0.25, 1),
    (0.5, 1, 1),
    (1, 1, 0.5),
    (1 / 3, 1 / 3, 1),
    (0.5, 1 / 3, 1),
    (1 / 6, 1 / 4, 1 / 3),
]
UP_FACTORS = [(2, 2, 1), (2, 2, 2), (3, 1, 2), (1, 3, 1)]
MIXED_FACTORS = [(0.5, 2, 1), (3, 0.5, 1 / 3), (2, 2, 0.5)]
SHAPE = (2, 12, 12, 6)


# --------------------------------------------------------------------------------------
# Data and layouts


def seed(*parts: Any) -> int:
    """A stable per-test seed (``hash`` of a str changes between runs)."""
    return zlib.crc32(repr(parts).encode())


def layout(a: NDArray, kind: str) -> NDArray:
    """``a`` in C order, or as the (C, X, Y, Z) view of a Fortran (X, Y, Z, C) array."""
    if kind == "C":
        return np.ascontiguousarray(a)
    f = np.asfortranarray(a.transpose(1, 2, 3, 0))
    out = f.transpose(3, 0, 1, 2)
    assert np.array_equal(out, a)
    return out


def random_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> NDArray:
    """Random values of ``dtype`` over its whole range, with its extremes planted."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if dt.kind == "f":
        a = rng.normal(0, 100, shape).astype(dt)
        a.flat[:3] = [0, -1.5, 2.5]
        return a
    info = np.iinfo(dt)
    a = rng.integers(int(info.min), int(info.max), shape, dtype=dt, endpoint=True)
    a[0, 0:2, 0:2, :] = info.max  # whole blocks at the extremes
    a[-1, 0:2, 0:2, :] = info.min
    return a


def label_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> NDArray:
    """Few distinct labels (so modes and ties happen), extremes included."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if dt.kind == "f":
        pool = np.array([0.0, -0.0, 1.5, -7.25, np.inf], dtype=dt)
    else:
        info = np.iinfo(dt)
        pool_ints = [0, 1, int(info.max), int(info.max) - 1, int(info.min)]
        if dt == np.uint64:
            pool_ints += [2**63 + 1, 2**64 - 5]
        pool = np.array(pool_ints, dtype=dt)
    return pool[rng.integers(0, len(pool), shape)]


# --------------------------------------------------------------------------------------
# References


def block_size(factors: tuple[float, ...]) -> tuple[int, int, int]:
    ks = [round(1 / f) if f < 1 else 1 for f in factors]
    return ks[0], ks[1], ks[2]


def repeats(factors: tuple[float, ...]) -> tuple[int, int, int]:
    rs_ = [round(f) if f > 1 else 1 for f in factors]
    return rs_[0], rs_[1], rs_[2]


def ref_reduce(data: NDArray, ks: tuple[int, int, int], fn: Any) -> NDArray:
    """Apply ``fn`` to each (possibly partial) block; returns an object array."""
    c = data.shape[0]
    shape = (c, *(math.ceil(n / k) for n, k in zip(data.shape[1:], ks, strict=True)))
    out = np.empty(shape, dtype=object)
    kx, ky, kz = ks
    for ch, i, j, m in np.ndindex(*shape):
        blk = data[ch, i * kx : (i + 1) * kx, j * ky : (j + 1) * ky, m * kz : (m + 1) * kz]
        out[ch, i, j, m] = fn(blk)
    return out


def ref_repeat(data: NDArray, ks: tuple[int, int, int]) -> NDArray:
    out = data
    for axis, k in enumerate(ks, start=1):
        out = np.repeat(out, k, axis=axis)
    return out


def mean_round_half_up(blk: NDArray) -> int:
    """floor(mean + 1/2) with exact Python integers."""
    vals = [int(v) for v in blk.ravel()]
    n = len(vals)
    return (2 * sum(vals) + n) // (2 * n)


def mean_float(blk: NDArray) -> float:
    return float(np.mean(blk.astype(np.float64)))


def x_fastest(blk: NDArray) -> list[Any]:
    return list(blk.transpose(2, 1, 0).ravel())


def first_mode(blk: NDArray) -> Any:
    vals = x_fastest(blk)
    counts = collections.Counter(vals)
    top = max(counts.values())
    return next(v for v in vals if counts[v] == top)


def countless(blk: NDArray) -> Any:
    a, b, c, d = blk[0, 0, 0], blk[1, 0, 0], blk[0, 1, 0], blk[1, 1, 0]
    if a in (b, c):
        return a
    if b == c:
        return b
    return d


def seg_mode(blk: NDArray) -> Any:
    return countless(blk) if blk.shape == (2, 2, 1) else first_mode(blk)


def ref_img(data: NDArray, factors: tuple[float, ...]) -> NDArray:
    ks = block_size(factors)
    if data.dtype.kind == "f":
        red = ref_reduce(data, ks, mean_float).astype(np.float64).astype(data.dtype)
    else:
        red = ref_reduce(
            data.astype(object) if data.dtype == np.bool_ else data, ks, mean_round_half_up
        )
        red = np.array(red.tolist(), dtype=data.dtype)
    return ref_repeat(red, repeats(factors))


def ref_segmentation(data: NDArray, factors: tuple[float, ...]) -> NDArray:
    bits = data.view(f"u{data.dtype.itemsize}")
    red = ref_reduce(bits, block_size(factors), seg_mode)
    red = np.array(red.tolist(), dtype=bits.dtype).view(data.dtype)
    return ref_repeat(red, repeats(factors))


def ref_mask(data: NDArray, factors: tuple[float, ...], thr: float) -> NDArray:
    def any_above(blk: NDArray) -> int:
        vals = blk.ravel().tolist()  # Python ints / floats: exact comparisons
        return int(any(v > thr for v in vals))

    red = ref_reduce(data, block_size(factors), any_above)
    red = np.array(red.tolist(), dtype=np.int64).astype(data.dtype)
    return ref_repeat(red, repeats(factors))


def assert_same(actual: NDArray, expected: NDArray) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    if actual.dtype.kind == "f":
        rtol = 2e-3 if actual.dtype == np.float16 else 1e-6
        np.testing.assert_allclose(
            actual.astype(np.float64), expected.astype(np.float64), rtol=rtol
        )
    else:
        assert np.array_equal(actual, expected)


# --------------------------------------------------------------------------------------
# img / area / linear means


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("factors", DOWN_FACTORS + UP_FACTORS + MIXED_FACTORS)
@pytest.mark.parametrize("dtype", [*INT_DTYPES, *FLOAT_DTYPES, "bool"])
def test_img_matches_reference(dtype: str, factors: tuple[float, ...], kind: str) -> None:
    rng = np.random.default_rng(seed(dtype, factors, kind))
    data = layout(random_values(rng, SHAPE, dtype), kind)
    assert_same(resample(data, factors, "img"), ref_img(data, factors))


@pytest.mark.parametrize("factors", DOWN_FACTORS + UP_FACTORS)
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32"])
def test_area_is_block_mean_and_repeat(dtype: str, factors: tuple[float, ...]) -> None:
    data = random_values(np.random.default_rng(3), SHAPE, dtype)
    assert_same(resample(data, factors, "area"), ref_img(data, factors))


@pytest.mark.parametrize("mode", ["linear", "bilinear", "trilinear"])
@pytest.mark.parametrize(
    "factors", [(0.5, 0.5, 1), (0.5, 0.5, 0.5), (0.5, 1, 1), (0.25, 0.25, 1), (0.25, 0.25, 0.25)]
)
def test_linear_block_mean_cases_need_no_torch(
    mode: rs.InterpolationMode, factors: tuple[float, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rs_torch, "_import_torch", _no_torch)
    data = random_values(np.random.default_rng(4), (1, 8, 8, 4), "uint8")
    assert_same(resample(data, factors, mode), ref_img(data, factors))


@pytest.mark.parametrize("kind", ["C", "F", "Z1"])
@pytest.mark.parametrize("factors", [(0.5, 0.5, 1), (0.5, 0.5, 0.5)])
def test_means_round_half_up_not_truncate(kind: str, factors: tuple[float, ...]) -> None:
    # 2x2 blocks with means 0.75, 1.5 and 2.75 give 1, 2 and 3 (tinybrain alone: 0, 1, 2).
    blocks = [[[0, 1], [1, 1]], [[1, 2], [1, 2]], [[2, 3], [3, 3]]]
    depth = 2 if factors[2] == 0.5 else (1 if kind == "Z1" else 3)
    data = np.zeros((1, 6, 2, depth), dtype=np.uint8)
    for b, blk in enumerate(blocks):
        data[0, 2 * b : 2 * b + 2, :, :] = np.array(blk, dtype=np.uint8)[:, :, None]
    data = layout(data, "F" if kind == "F" else "C")
    out = resample(data, factors, "img")
    assert out[0, :, 0, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize("kind", ["C", "F", "Z1"])
def test_negative_means_round_half_up(kind: str) -> None:
    # floor(mean + 1/2): -1.5 -> -1, -0.5 -> 0, -0.75 -> -1, -1.25 -> -1, extremes stay.
    blocks = [[-1, -2, -1, -2], [-1, 0, 0, -1], [0, -1, -1, -1], [-1, -1, -1, -2], [-128] * 4]
    expected = [-1, 0, -1, -1, -128]
    depth = 1 if kind == "Z1" else 2
    data = np.zeros((1, 2 * len(blocks), 2, depth), dtype=np.int8)
    for b, vals in enumerate(blocks):
        data[0, 2 * b : 2 * b + 2, :, :] = np.array(vals, dtype=np.int8).reshape(2, 2)[:, :, None]
    data = layout(data, "F" if kind == "F" else "C")
    for dtype in ["int8", "int16", "int32", "int64"]:
        out = resample(data.astype(dtype), (0.5, 0.5, 1), "img")
        assert out[0, :, 0, 0].tolist() == expected


@pytest.mark.parametrize("kind", ["C", "F"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64", "int64"])
@pytest.mark.parametrize("factors", [(0.5, 0.5, 1), (0.5, 0.5, 0.5), (1 / 3, 1, 1)])
def test_means_at_dtype_extremes(dtype: str, factors: tuple[float, ...], kind: str) -> None:
    info = np.iinfo(dtype)
    data = np.full((1, 6, 6, 2), info.max, dtype=dtype)
    data[0, 0:3] = info.min
    data[0, 3, :, :] = info.max - 1  # blocks mixing max - 1 and max
    data = layout(data, kind)
    assert_same(resample(data, factors, "img"), ref_img(data, factors))


def test_uint8_two_by_two_random_exact_on_every_path() -> None:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (3, 32, 16, 8), dtype=np.uint8)
    for data in (base, layout(base, "F"), base[:, :, :, :1].copy(), base[:, :, :, ::-1]):
        for factors in [(0.5, 0.5, 1), (0.5, 0.5, 0.5)]:
            if data.shape[3] == 1 and factors[2] == 0.5:
                continue
            assert_same(resample(data, factors, "img"), ref_img(data, factors))


def test_float_means() -> None:
    data = np.array([1.0, 2.0, 4.0, 8.0], dtype=np.float32).reshape(1, 2, 2, 1)
    assert resample(data, (0.5, 0.5, 1), "img").tolist() == [[[[3.75]]]]
    assert resample(layout(data, "F"), (0.5, 0.5, 1), "img").dtype == np.float32


# --------------------------------------------------------------------------------------
# Segmentation


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("factors", DOWN_FACTORS + UP_FACTORS + MIXED_FACTORS)
@pytest.mark.parametrize(
    "dtype", ["uint8", "int8", "uint16", "uint32", "int32", "uint64", "int64", "float32", "bool"]
)
def test_segmentation_matches_reference(dtype: str, factors: tuple[float, ...], kind: str) -> None:
    rng = np.random.default_rng(seed(dtype, factors, kind, "seg"))
    data = layout(label_values(rng, SHAPE, dtype), kind)
    out = resample(data, factors, "segmentation")
    expected = ref_segmentation(data, factors)
    assert out.dtype == data.dtype
    assert np.array_equal(
        out.view(f"u{data.dtype.itemsize}"), expected.view(f"u{data.dtype.itemsize}")
    )


@pytest.mark.parametrize("kind", ["C", "F", "Z1"])
@pytest.mark.parametrize(
    "factors", [(0.5, 0.5, 1), (0.5, 0.5, 0.5), (0.25, 0.25, 1), (1 / 3, 1 / 3, 1), (2, 2, 1)]
)
def test_segmentation_full_range_uint64(kind: str, factors: tuple[float, ...]) -> None:
    big = np.array([2**64 - 1, 2**64 - 5, 2**63 + 1, 2**63, 2**63 - 1, 0], dtype=np.uint64)
    rng = np.random.default_rng(11)
    depth = 1 if kind == "Z1" else 6
    if kind == "Z1":
        factors = (factors[0], factors[1], 1)  # z cannot be halved at depth 1
    data = layout(big[rng.integers(0, len(big), (2, 12, 12, depth))], "F" if kind == "F" else "C")
    out = resample(data, factors, "segmentation")
    assert out.dtype == np.uint64
    assert np.array_equal(out, ref_segmentation(data, factors))
    assert set(out.ravel().tolist()) <= set(big.tolist())


def test_segmentation_ties() -> None:
    # 2x2x1 COUNTLESS: two pairs (a == b, c == d) -> a; all distinct -> d.
    pairs = np.array([[7, 7], [9, 9]], dtype=np.uint32).T.reshape(1, 2, 2, 1)  # a=b=7, c=d=9
    distinct = np.array([[1, 2], [3, 4]], dtype=np.uint32).reshape(1, 2, 2, 1)
    assert resample(pairs, (0.5, 0.5, 1), "segmentation").item() == 7
    assert resample(distinct, (0.5, 0.5, 1), "segmentation").item() == distinct[0, 1, 1, 0]
    # Other blocks: the tied value seen first in x-fastest order.
    blk = np.array([5, 6, 6, 5, 7, 7, 5, 6, 8], dtype=np.uint64)  # 5 and 6 three times each
    data = blk.reshape(1, 9, 1, 1)
    assert resample(data, (1 / 9, 1, 1), "segmentation").item() == 5
    rev = data[:, ::-1].copy()  # 8 6 5 7 7 5 6 6 5: 6 and 5 three times; 6 comes first
    assert resample(rev, (1 / 9, 1, 1), "segmentation").item() == 6


def test_segmentation_large_blocks_use_the_same_rule() -> None:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 3, (1, 8, 8, 2), dtype=np.uint16)  # 4x4x2 = 32 voxels per block
    factors = (0.25, 0.25, 0.5)
    assert np.array_equal(resample(data, factors, "segmentation"), ref_segmentation(data, factors))


# --------------------------------------------------------------------------------------
# Mask


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("factors", DOWN_FACTORS + UP_FACTORS + MIXED_FACTORS)
@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint64", "float32", "bool"])
def test_mask_matches_reference(dtype: str, factors: tuple[float, ...], kind: str) -> None:
    rng = np.random.default_rng(seed(dtype, factors, kind, "mask"))
    data = rng.integers(0, 2, SHAPE) * rng.integers(0, 2, SHAPE)  # sparse 0/1
    data = layout(data.astype(dtype), kind)
    assert_same(resample(data, factors, "mask"), ref_mask(data, factors, 0.0))


@pytest.mark.parametrize("thr", [0.5, -1.0, 2.0, 2.5, 1e30, -1e30])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "uint64"])
def test_mask_threshold_is_strict(dtype: str, thr: float) -> None:
    rng = np.random.default_rng(9)
    vals = (
        np.array([0, 1, 2, 3], dtype=dtype)
        if dtype != "float32"
        else np.array([0.0, 0.5, 0.51, 2.5], dtype=np.float32)
    )
    data = vals[rng.integers(0, 4, (1, 8, 8, 2))]
    for factors in [(0.5, 0.5, 1), (1 / 4, 1, 1), (2, 1, 1)]:
        out = resample(data, factors, "mask", mask_value_thr=thr)
        assert_same(out, ref_mask(data, factors, thr))


def test_mask_threshold_boundary_float() -> None:
    data = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.51, 0.0, 0.0], dtype=np.float32)
    out = resample(data.reshape(1, 8, 1, 1), (0.25, 1, 1), "mask", mask_value_thr=0.5)
    assert out.ravel().tolist() == [0.0, 1.0]


# --------------------------------------------------------------------------------------
# Field


@pytest.mark.parametrize("factors", [(0.5, 0.5, 1), (0.25, 0.25, 0.5), (1 / 3, 1 / 3, 1)])
def test_field_downsampling_scales_displacements(factors: tuple[float, ...]) -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(0, 5, (2, 12, 12, 2)).astype(np.float32)
    expected = ref_reduce(data, block_size(factors), mean_float).astype(np.float64) * factors[0]
    assert_same(resample(data, factors, "field"), expected.astype(np.float32))


@pytest.mark.parametrize("factors", [(2, 2, 1), (3, 3, 2)])
def test_field_upsampling_repeats_and_scales(factors: tuple[float, ...]) -> None:
    data = np.random.default_rng(2).normal(0, 5, (2, 3, 3, 2)).astype(np.float32)
    expected = ref_repeat(data, repeats(factors)) * np.float32(factors[0])
    assert_same(resample(data, factors, "field"), expected)


def test_integer_field_rounds() -> None:
    data = np.array([1, 2, 2, 2], dtype=np.int16).reshape(1, 2, 2, 1)
    data = np.concatenate([data, -data])  # means 1.75 and -1.75, times 0.5
    out = resample(data, (0.5, 0.5, 1), "field")
    assert out.dtype == np.int16
    assert out.ravel().tolist() == [1, -1]  # 0.875 -> 1, -0.875 -> -1


def test_field_limits() -> None:
    with pytest.raises(NotImplementedError, match="2-channel"):
        resample(np.zeros((3, 4, 4, 1), np.float32), (0.5, 0.5, 1), "field")
    with pytest.raises(NotImplementedError, match="equal x and y"):
        resample(np.zeros((2, 4, 4, 1), np.float32), (0.5, 1, 1), "field")


# --------------------------------------------------------------------------------------
# nearest / nearest-exact


def ref_pick(data: NDArray, factors: tuple[float, ...], exact: bool, out_shape: Any) -> NDArray:
    """Source index floor(i / f) or floor((i + 1/2) / f) in exact rationals, clamped."""
    idx = []
    for n, f, m in zip(data.shape[1:], factors, out_shape[1:], strict=True):
        fr = Fraction(f).limit_denominator(1000)
        src = [
            min(math.floor((Fraction(i) + (Fraction(1, 2) if exact else 0)) / fr), n - 1)
            for i in range(m)
        ]
        idx.append(np.array(src))
    return data[:, idx[0][:, None, None], idx[1][None, :, None], idx[2][None, None, :]]


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize(
    "factors",
    [*DOWN_FACTORS, *UP_FACTORS, *MIXED_FACTORS, (1.5, 1, 1), (5 / 12, 2.5, 1), (2 / 3, 0.75, 1.5)],
)
@pytest.mark.parametrize("dtype", ["uint64", "float32", "int8"])
def test_nearest_picks(mode: rs.InterpolationMode, factors: tuple[float, ...], dtype: str) -> None:
    rng = np.random.default_rng(1)
    data = random_values(rng, SHAPE, dtype)
    out = resample(data, factors, mode)
    expected = ref_pick(data, factors, mode == "nearest-exact", out.shape)
    assert out.shape == (2, *(round(n * f) for n, f in zip(SHAPE[1:], factors, strict=True)))
    assert_same(out, expected)
    assert not np.shares_memory(out, data)


def test_segmentation_at_other_factors_is_nearest_exact() -> None:
    big = np.array([2**64 - 1, 2**63 + 1, 5], dtype=np.uint64)
    data = big[np.random.default_rng(0).integers(0, 3, (1, 6, 4, 3))]
    for factors in [(1.5, 1, 1), (2 / 3, 0.75, 1), (0.5, 1.5, 2 / 3)]:
        # Whole blocks take the mode; the other axes pick like nearest-exact.
        whole = tuple(f if f < 1 and abs(1 / f - round(1 / f)) < 1e-9 else 1 for f in factors)
        other = tuple(1 if w != 1 else f for w, f in zip(whole, factors, strict=True))
        out = resample(data, factors, "segmentation")
        expected = ref_pick(ref_segmentation(data, whole), other, True, out.shape)
        assert np.array_equal(out, expected)


# --------------------------------------------------------------------------------------
# Shapes, rounding, identity, errors


@pytest.mark.parametrize("mode", ["img", "segmentation", "mask", "nearest", "field", "bicubic"])
@pytest.mark.parametrize("dtype", ["uint8", "uint64", "float32", "bool"])
def test_identity_returns_input(mode: rs.InterpolationMode, dtype: str) -> None:
    data = np.zeros((2, 3, 3, 3), dtype=dtype)
    assert resample(data, (1, 1, 1), mode) is data
    assert resample(data, (1.0, np.float32(1), np.int64(1)), mode) is data
    assert resample(data, [4.0 / 4.0, 12 / 12, 1], mode) is data


def test_non_divisible_shape_is_refused_with_a_clear_message() -> None:
    data = np.zeros((1, 5, 4, 1), np.uint8)
    with pytest.raises(ValueError, match="x size 5") as info:
        resample(data, (0.5, 0.5, 1), "img")
    msg = str(info.value)
    assert "block 2" in msg
    assert "0.5" in msg
    assert "allow_slice_rounding=True" in msg
    with pytest.raises(ValueError, match=r"y size 4 times scale factor 0\.3"):
        resample(data, (1, 0.3, 1), "nearest")


def test_shape_rounding_partial_blocks() -> None:
    data = np.arange(1, 6, dtype=np.uint8).reshape(1, 5, 1, 1)  # 1 2 3 4 5
    got = resample(data, (0.5, 1, 1), "img", allow_shape_rounding=True)
    assert got.ravel().tolist() == [2, 4, 5]  # 1.5 -> 2, 3.5 -> 4, last block is [5]
    seg = resample(
        np.array([1, 1, 2, 3, 3], np.uint8).reshape(1, 5, 1, 1),
        (1 / 3, 1, 1),
        "segmentation",
        allow_shape_rounding=True,
    )
    assert seg.ravel().tolist() == [1, 3]
    seg = resample(
        np.array([[4, 4, 7], [4, 5, 6], [8, 8, 9]], np.uint64).reshape(1, 3, 3, 1),
        (0.5, 0.5, 1),
        "segmentation",
        allow_shape_rounding=True,
    )
    assert seg[0, :, :, 0].tolist() == [[4, 7], [8, 9]]  # partial blocks 2x1, 1x2, 1x1
    ne = resample(data, (1 / 4, 1, 1), "nearest-exact", allow_shape_rounding=True)
    assert ne.ravel().tolist() == [3, 5]  # offsets 2 and 6, the latter clamped to 4
    mask = resample(
        np.array([0, 0, 0, 0, 1], np.uint8).reshape(1, 5, 1, 1),
        (0.25, 1, 1),
        "mask",
        allow_shape_rounding=True,
    )
    assert mask.ravel().tolist() == [0, 1]
    up = resample(data, (1.5, 1, 1), "nearest", allow_shape_rounding=True)
    assert up.shape == (1, 8, 1, 1)  # ceil(7.5)


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("mode", ["img", "segmentation", "mask"])
def test_shape_rounding_matches_reference(mode: rs.InterpolationMode, kind: str) -> None:
    rng = np.random.default_rng(8)
    data = layout(label_values(rng, (2, 7, 5, 3), "uint16"), kind)
    factors = (0.5, 1 / 3, 0.5)
    out = resample(data, factors, mode, allow_shape_rounding=True)
    assert out.shape == (2, 4, 2, 2)
    ref = {"img": ref_img, "segmentation": ref_segmentation}.get(mode)
    expected = ref(data, factors) if ref else ref_mask(data, factors, 0.0)
    assert_same(out, expected)


@pytest.mark.parametrize(
    ("data", "factors", "mode", "match"),
    [
        (np.zeros((4, 4, 4)), (1, 1, 1), "img", "4 dimensions"),
        (np.zeros((1, 4, 4, 4, 1)), (1, 1, 1), "img", "got 5"),
        ([[[[1]]]], (1, 1, 1), "img", "numpy array"),
        (np.zeros((1, 2, 2, 2), dtype=object), (1, 1, 1), "img", "dtype"),
        (np.zeros((1, 2, 2, 2)), (1, 1, 1), "cubic", "mode must be one of"),
        (np.zeros((1, 2, 2, 2)), (1, 1), "img", "3 values"),
        (np.zeros((1, 2, 2, 2)), 0.5, "img", "sequence of 3"),
        (np.zeros((1, 2, 2, 2)), (0, 1, 1), "img", "x must be a finite number > 0"),
        (np.zeros((1, 2, 2, 2)), (1, -0.5, 1), "img", "y must be a finite number > 0"),
        (np.zeros((1, 2, 2, 2)), (1, 1, float("nan")), "img", "z must be a finite"),
        (np.zeros((1, 2, 2, 2)), (1, 1, "2"), "img", "z must be a number"),
    ],
)
def test_bad_arguments(data: Any, factors: Any, mode: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resample(data, factors, mode)


def test_bad_mask_threshold() -> None:
    for thr in [None, "0", float("nan")]:
        with pytest.raises(ValueError, match="mask_value_thr"):
            resample(np.zeros((1, 2, 2, 1)), (0.5, 0.5, 1), "mask", mask_value_thr=thr)  # type: ignore[arg-type]


def test_bicubic_needs_z_factor_one() -> None:
    with pytest.raises(NotImplementedError, match="z factor must be 1"):
        resample(np.zeros((1, 4, 4, 4), np.float32), (2, 2, 2), "bicubic")


def test_result_keeps_dtype_and_layout_is_valid() -> None:
    data = layout(random_values(np.random.default_rng(0), (1, 8, 8, 4), "uint16"), "F")
    out = resample(data, (0.5, 0.5, 1), "img")
    assert out.dtype == np.uint16
    assert out.flags.writeable
    assert not np.shares_memory(out, data)


def test_empty_arrays() -> None:
    out = resample(np.zeros((0, 4, 4, 2), np.uint8), (0.5, 0.5, 1), "img")
    assert out.shape == (0, 2, 2, 2)


# --------------------------------------------------------------------------------------
# torch: optional


def _no_torch() -> Any:
    raise ModuleNotFoundError("No module named 'torch'")


@pytest.mark.parametrize(
    ("factors", "mode"),
    [
        ((1.5, 1.5, 1), "img"),
        ((2, 2, 1), "bilinear"),
        ((1 / 3, 1 / 3, 1), "trilinear"),
        ((0.4, 0.4, 1), "area"),
        ((2, 2, 1), "bicubic"),
        ((1.5, 1.5, 1), "field"),
    ],
)
def test_torch_missing_names_the_extra(
    factors: tuple[float, ...], mode: rs.InterpolationMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rs_torch, "_import_torch", _no_torch)
    data = np.zeros((2, 30, 30, 2), np.float32)
    with pytest.raises(TorchUnavailableError, match=r"pip install lamina\[torch\]") as info:
        resample(data, factors, mode)
    assert isinstance(info.value, ImportError)
    assert repr(mode) in str(info.value)


def test_exact_modes_never_ask_for_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rs_torch, "_import_torch", _no_torch)
    data = np.arange(2 * 10 * 10 * 2, dtype=np.uint64).reshape(2, 10, 10, 2) + np.uint64(2**63)
    for mode in ["nearest", "nearest-exact", "segmentation", "mask"]:
        for factors in [(1.5, 0.4, 1), (0.5, 0.5, 1), (2, 2, 1)]:
            resample(data, factors, mode)
    for mode in ["img", "area", "field"]:
        resample(data, (0.5, 0.5, 1), mode)
        resample(data, (2, 2, 3), mode)


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, lamina.volumetric.resample; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _torch_reference(data: NDArray, factors: tuple[float, ...], mode: str) -> NDArray:
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    # The precision lamina computes in: float32 up to 16-bit data.
    work = np.float64 if data.dtype.itemsize >= 4 and data.dtype != np.float32 else np.float32
    src = torch.from_numpy(data.astype(work))[None]
    out_size = [math.floor(n * f + 1e-6) for n, f in zip(data.shape[1:], factors, strict=True)]
    if mode == "area":
        res = functional.interpolate(src, size=out_size, mode="area")
    else:
        res = functional.interpolate(src, size=out_size, mode="trilinear", align_corners=False)
    values: NDArray = res[0].numpy()
    return values


@pytest.mark.parametrize(
    ("factors", "mode"),
    [
        ((1.5, 1.5, 1), "img"),
        ((0.4, 0.4, 1), "img"),
        ((2, 2, 1), "trilinear"),
        ((1 / 3, 1, 1), "linear"),
        ((1.5, 0.5, 2), "bilinear"),
    ],
)
def test_torch_trilinear_rounds_back(
    factors: tuple[float, ...], mode: rs.InterpolationMode
) -> None:
    data = random_values(np.random.default_rng(0), (2, 30, 30, 3), "uint8")
    expected = np.clip(np.floor(_torch_reference(data, factors, "trilinear") + 0.5), 0, 255)
    out = resample(data, factors, mode)
    assert out.dtype == np.uint8
    assert np.array_equal(out, expected.astype(np.uint8))


def test_torch_area_and_field() -> None:
    data = random_values(np.random.default_rng(0), (2, 10, 10, 2), "float32")
    expected = _torch_reference(data, (0.4, 0.4, 1), "area")
    np.testing.assert_allclose(resample(data, (0.4, 0.4, 1), "area"), expected, rtol=1e-5)
    expected = _torch_reference(data, (1.5, 1.5, 1), "trilinear") * 1.5
    np.testing.assert_allclose(resample(data, (1.5, 1.5, 1), "field"), expected, rtol=1e-5)


def test_torch_bicubic_plane_by_plane() -> None:
    torch = pytest.importorskip("torch")
    data = random_values(np.random.default_rng(0), (1, 6, 6, 3), "float32")
    out = resample(data, (2, 2, 1), "bicubic")
    planes = torch.from_numpy(data.transpose(3, 0, 1, 2).copy())
    ref = torch.nn.functional.interpolate(planes, scale_factor=2, mode="bicubic")
    np.testing.assert_allclose(out, ref.numpy().transpose(1, 2, 3, 0), rtol=1e-5, atol=1e-5)


def test_torch_shape_rounding_extends_with_edge_values() -> None:
    pytest.importorskip("torch")
    data = random_values(np.random.default_rng(0), (1, 5, 4, 1), "float32")
    out = resample(data, (1.5, 1, 1), "img", allow_shape_rounding=True)
    assert out.shape == (1, 8, 4, 1)
    np.testing.assert_allclose(out[0, -1], data[0, -1], rtol=1e-6)


@pytest.mark.parametrize("factors", [(1.5, 1, 1), (0.4, 2.5, 1), (0.5, 0.5, 1), (3, 3, 1)])
def test_nearest_agrees_with_torch(factors: tuple[float, ...]) -> None:
    torch = pytest.importorskip("torch")
    data = random_values(np.random.default_rng(0), (1, 10, 10, 2), "int32")
    src = torch.from_numpy(data.astype(np.float64))[None]
    for mode in ["nearest", "nearest-exact"]:
        ref = torch.nn.functional.interpolate(src, scale_factor=factors, mode=mode)
        assert np.array_equal(resample(data, factors, mode), ref[0].numpy().astype(np.int32))


def test_layouts_take_the_expected_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """tinybrain runs where the layout suits it; every path is checked above against the
    references, in both layouts, so this only guards that both paths stay exercised."""
    calls: list[str] = []
    real_avg = tinybrain_paths.tinybrain.downsample_with_averaging
    real_seg = tinybrain_paths.tinybrain.downsample_segmentation

    def avg(*args: Any, **kwargs: Any) -> Any:
        calls.append("avg")
        return real_avg(*args, **kwargs)

    def seg(*args: Any, **kwargs: Any) -> Any:
        calls.append("seg")
        return real_seg(*args, **kwargs)

    monkeypatch.setattr(tinybrain_paths.tinybrain, "downsample_with_averaging", avg)
    monkeypatch.setattr(tinybrain_paths.tinybrain, "downsample_segmentation", seg)
    base = random_values(np.random.default_rng(0), (2, 8, 8, 4), "uint8")
    floats = base.astype(np.float32)
    cases = [
        (floats, (0.5, 0.5, 1), "img", False),  # C order, z fastest: numpy
        (layout(floats, "F"), (0.5, 0.5, 1), "img", True),
        (floats[:, :, :, :1].copy(), (0.5, 0.5, 1), "img", True),  # z = 1
        (floats, (0.5, 0.5, 0.5), "img", True),  # 2x2x2 is symmetric
        (floats, (0.25, 0.25, 1), "img", False),
        (layout(base, "F"), (0.5, 0.5, 1), "img", False),  # integers: numpy is as fast
        (base, (0.5, 0.5, 1), "segmentation", False),
        (layout(base, "F"), (0.5, 0.5, 1), "segmentation", True),
        (base[:, :, :, :1].copy(), (0.5, 0.5, 1), "segmentation", True),
        (base, (0.5, 0.5, 0.5), "segmentation", False),  # its tie order is x-fastest
        (layout(base, "F"), (0.5, 0.5, 0.5), "segmentation", True),
    ]
    for data, factors, mode, tiny in cases:
        calls.clear()
        resample(data, factors, mode)
        assert bool(calls) == tiny, (data.strides, factors, mode)


def test_torch_path_keeps_32_bit_integers_exact() -> None:
    pytest.importorskip("torch")
    for dtype, value in [("uint32", 2**32 - 1), ("int32", -(2**31) + 1), ("uint32", 2**31 + 1)]:
        data = np.full((1, 4, 4, 2), value, dtype=dtype)
        out = resample(data, (1.5, 1.5, 1), "img")
        assert out.dtype == np.dtype(dtype)
        assert (out == value).all()


def test_float_means_in_awkward_layouts() -> None:
    data = random_values(np.random.default_rng(6), (2, 6, 6, 4), "float32")
    flipped = layout(data, "F")[:, ::-1, :, ::-1]  # negative strides: numpy path
    assert_same(resample(flipped, (0.5, 0.5, 1), "img"), ref_img(flipped, (0.5, 0.5, 1)))
    odd = layout(data, "F")[:, :5]  # partial blocks when rounding: numpy path
    out = resample(odd, (0.5, 0.5, 1), "img", allow_shape_rounding=True)
    assert_same(out, ref_img(odd, (0.5, 0.5, 1)))


def test_segmentation_refuses_dtypes_without_a_bit_view() -> None:
    if np.dtype(np.longdouble).itemsize not in (10, 12, 16):
        pytest.skip("long double is plain double here")
    with pytest.raises(ValueError, match="bit for bit"):
        resample(np.zeros((1, 2, 2, 1), np.longdouble), (0.5, 0.5, 1), "segmentation")


# -- threads -------------------------------------------------------------------------------
_THREAD_CASES = [
    ((2, 37, 20, 9), (0.5, 0.5, 1), True),
    ((2, 40, 20, 8), (0.5, 0.5, 0.5), False),
    ((2, 10, 12, 8), (2, 1, 2), False),
    ((2, 30, 12, 9), (1 / 3, 0.5, 1), True),
]


@pytest.mark.parametrize(
    ("mode", "order", "shape", "factor", "rounding"),
    [
        (mode, order, *case)
        for mode in ("img", "segmentation", "mask", "nearest-exact", "field")
        for order in ("C", "F")
        for case in _THREAD_CASES
        if mode != "field" or case[1][0] == case[1][1]  # fields need equal x, y factors
    ],
)
def test_threaded_slabs_give_the_single_thread_result(
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    order: str,
    shape: tuple[int, ...],
    factor: tuple[float, ...],
    rounding: bool,
) -> None:
    import lamina.volumetric.resample as rs

    rng = np.random.default_rng(3)
    dtype = np.float32 if mode == "field" else np.uint8
    data = np.asarray(rng.integers(0, 5, size=shape), dtype=dtype, order=order)
    monkeypatch.setenv("LAMINA_RESAMPLE_THREADS", "1")
    single = rs.resample(data, factor, mode, allow_shape_rounding=rounding)  # type: ignore[arg-type]
    monkeypatch.setenv("LAMINA_RESAMPLE_THREADS", "3")
    monkeypatch.setattr(rs_threads, "_PARALLEL_MIN_BYTES", 0)
    calls: list[int] = []
    real = rs_threads._dispatch
    monkeypatch.setattr(rs_threads, "_dispatch", lambda d, *a: calls.append(d.size) or real(d, *a))
    threaded = rs.resample(data, factor, mode, allow_shape_rounding=rounding)  # type: ignore[arg-type]
    assert len(calls) == 3  # really split into three slabs
    assert threaded.dtype == single.dtype
    np.testing.assert_array_equal(threaded, single)


def test_resample_threads_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import lamina.volumetric.resample as rs

    monkeypatch.setenv("LAMINA_RESAMPLE_THREADS", "2")
    assert rs.resample_threads() == 2
    monkeypatch.setenv("LAMINA_RESAMPLE_THREADS", "many")
    with pytest.raises(ValueError, match="LAMINA_RESAMPLE_THREADS"):
        rs.resample_threads()
