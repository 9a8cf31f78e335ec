"""Vec3D and BBox3D (the reference system's, with an explicit empty box and checked bounds)."""

from __future__ import annotations

import copy
import math
import pickle

import attrs
import numpy as np
import pytest

from lamina.volumetric.geometry import (
    BBox3D,
    EmptyBBoxError,
    IntVec3D,
    Vec3D,
)

# ======================================================================================
# Vec3D
# ======================================================================================


class TestVec3DBasics:
    def test_fields_indexing_slicing_iteration(self) -> None:
        v = Vec3D(1, 2, 3)
        assert (v.x, v.y, v.z) == (1, 2, 3)
        assert (v[0], v[1], v[2], v[-1]) == (1, 2, 3, 3)
        assert v[1:] == (2, 3)
        assert list(v) == [1, 2, 3]
        assert len(v) == 3
        x, y, z = v
        assert (x, y, z) == (1, 2, 3)

    def test_numpy_scalars_are_unwrapped(self) -> None:
        v = Vec3D(np.int64(1), np.float32(2.5), np.uint8(3))
        assert [type(e) for e in v] == [int, float, int]
        assert v == Vec3D(1, 2.5, 3)

    @pytest.mark.parametrize("bad", ["a", None, True, np.bool_(True), 1 + 2j, [1]])
    def test_non_numeric_component_is_a_value_error(self, bad: object) -> None:
        with pytest.raises(ValueError, match=r"Vec3D \(y\) must be a real number"):
            Vec3D(1, bad, 3)  # type: ignore[call-overload]

    def test_generic_subscription_and_alias(self) -> None:
        assert Vec3D[int](1, 2, 3) == Vec3D(1, 2, 3)
        assert IntVec3D(1, 2, 3) == Vec3D(1, 2, 3)
        assert type(Vec3D[float](1.0, 2.0, 3.0)) is Vec3D

    def test_repr_and_pformat(self) -> None:
        assert repr(Vec3D(1, 2.5, 3)) == "Vec3D(1, 2.5, 3)"
        assert Vec3D(4.0, 4.0, 40.0).pformat() == "(4, 4, 40)"
        assert Vec3D(0.5, -1, 2).pformat() == "(0.5, -1, 2)"


class TestVec3DFromSeq:
    @pytest.mark.parametrize(
        "value", [(1, 2, 3), [1, 2, 3], np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0])]
    )
    def test_accepts_3_sequences(self, value: object) -> None:
        v = Vec3D.from_seq(value)  # type: ignore[arg-type]
        assert type(v) is Vec3D
        assert v == (1, 2, 3)
        assert all(type(e) in (int, float) for e in v)

    def test_returns_a_vec3d_unchanged(self) -> None:
        v = Vec3D(1, 2, 3)
        assert Vec3D.from_seq(v) is v

    def test_numpy_elements_unwrapped(self) -> None:
        v = Vec3D.from_seq([np.int32(1), np.float64(2.5), 3])
        assert [type(e) for e in v] == [int, float, int]

    @pytest.mark.parametrize(
        ("value", "match"),
        [
            ((1, 2), r"resolution must have exactly 3 elements .* got 2: \(1, 2\)"),
            ([1, 2, 3, 4], r"resolution must have exactly 3 elements .* got 4"),
            (5, r"resolution must be a sequence of 3 real numbers .* got 5 \(int\)"),
            ("abc", r"resolution must be a sequence of 3 real numbers .* got 'abc'"),
            ((1, "b", 3), r"resolution \(y\) must be a real number, got 'b' \(str\)"),
            (np.zeros((2, 3)), r"resolution must be a 3-vector .* shape \(2, 3\)"),
            (np.array(["a", "b", "c"]), r"resolution must be a 3-vector .* dtype <U1"),
        ],
    )
    def test_bad_input_names_what_was_given(self, value: object, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            Vec3D.from_seq(value, "resolution")  # type: ignore[arg-type]


class TestVec3DImmutabilityAndHashing:
    def test_cannot_be_changed(self) -> None:
        v = Vec3D(1, 2, 3)
        with pytest.raises(TypeError):
            v[0] = 5  # type: ignore[index]
        with pytest.raises(AttributeError):
            v.x = 5  # type: ignore[misc]
        with pytest.raises(AttributeError):
            v.w = 5  # type: ignore[attr-defined]
        assert v == (1, 2, 3)

    def test_value_equality_and_hash(self) -> None:
        assert Vec3D(1, 2, 3) == Vec3D(1.0, 2.0, 3.0)
        assert hash(Vec3D(1, 2, 3)) == hash(Vec3D(1.0, 2.0, 3.0))
        assert Vec3D(1, 2, 3) != Vec3D(1, 2, 4)
        assert len({Vec3D(1, 2, 3), Vec3D(1.0, 2.0, 3.0), Vec3D(3, 2, 1)}) == 2
        assert {Vec3D(1, 2, 3): "a"}[Vec3D(1.0, 2.0, 3.0)] == "a"

    @pytest.mark.parametrize(
        "clone", [copy.copy, copy.deepcopy, lambda v: pickle.loads(pickle.dumps(v))]
    )
    def test_copies_and_pickles(self, clone: object) -> None:
        v = Vec3D(1, 2.5, 3)
        w = clone(v)  # type: ignore[operator]
        assert type(w) is Vec3D
        assert w == v


class TestVec3DArithmetic:
    def test_int_ops_stay_int(self) -> None:
        v = Vec3D(1, 2, 3)
        for r in (v + v, v - 1, v * 2, 2 * v, v % 2, 7 - v, v + (1, 1, 1), [1, 1, 1] + v):  # noqa: RUF005
            assert all(type(e) is int for e in r), r
        assert v + v == (2, 4, 6)
        assert v - 1 == (0, 1, 2)
        assert 7 - v == (6, 5, 4)
        assert v * (1, 2, 3) == (1, 4, 9)
        assert v % 2 == (1, 0, 1)
        assert 7 % v == (0, 1, 1)

    def test_mixed_ops_give_float(self) -> None:
        r = Vec3D(1, 2, 3) * 0.5
        assert r == (0.5, 1.0, 1.5)
        assert all(type(e) is float for e in r)

    def test_truediv_is_always_float(self) -> None:
        r = Vec3D(2, 4, 6) / 2
        assert r == (1, 2, 3)
        assert all(type(e) is float for e in r)
        assert 6 / Vec3D(1, 2, 3) == (6.0, 3.0, 2.0)
        assert Vec3D(1, 2, 3) / Vec3D(2, 2, 2) == (0.5, 1.0, 1.5)

    def test_floordiv_is_always_int(self) -> None:
        r = Vec3D(2.5, -3.5, 7.0) // 2
        assert r == (1, -2, 3)
        assert all(type(e) is int for e in r)
        r2 = 7 // Vec3D(2.0, 3.0, 4.0)
        assert r2 == (3, 2, 1)
        assert all(type(e) is int for e in r2)

    def test_reflected_ops_with_tuples_and_lists(self) -> None:
        v = Vec3D(1, 2, 3)
        # a plain tuple on the left must not concatenate
        assert (1, 1, 1) + v == (2, 3, 4)  # noqa: RUF005
        assert type((1, 1, 1) + v) is Vec3D  # noqa: RUF005
        assert [10, 10, 10] - v == (9, 8, 7)
        assert (2, 2, 2) * v == (2, 4, 6)

    def test_numpy_scalar_operand_is_unwrapped(self) -> None:
        r = Vec3D(1, 2, 3) * np.float64(2)
        assert type(r) is Vec3D
        assert all(type(e) is float for e in r)
        r2 = Vec3D(1, 2, 3) + np.int64(1)
        assert all(type(e) is int for e in r2)

    def test_numpy_array_operand_uses_numpy_broadcasting(self) -> None:
        r = Vec3D(1, 2, 3) + np.array([1, 1, 1])
        assert isinstance(r, np.ndarray)
        np.testing.assert_array_equal(r, [2, 3, 4])

    def test_unary(self) -> None:
        v = Vec3D(1, -2, 3)
        assert -v == (-1, 2, -3)
        assert abs(v) == (1, 2, 3)
        assert +v == v
        assert type(-v) is Vec3D

    @pytest.mark.parametrize("other", ["abc", (1, 2), (1, 2, 3, 4), None, True, ("a", 1, 2)])
    def test_unsupported_operands_raise_type_error(self, other: object) -> None:
        with pytest.raises(TypeError):
            Vec3D(1, 2, 3) + other  # type: ignore[operator]

    def test_division_by_zero(self) -> None:
        with pytest.raises(ZeroDivisionError):
            Vec3D(1, 2, 3) / (1, 0, 1)


class TestVec3DComparisonsAndRounding:
    def test_partial_order_is_all_elementwise(self) -> None:
        a, b = Vec3D(1, 2, 3), Vec3D(2, 3, 4)
        assert a < b
        assert a <= b
        assert b > a
        assert b >= a
        d = Vec3D(2, 0, 0)  # lexicographically after a, but not elementwise
        assert not a < d
        assert not a <= d
        assert not d > a
        assert not d >= a
        c = Vec3D(0, 5, 3)  # neither below nor above a
        assert not (a < c)
        assert not (a > c)
        assert not (a <= c)
        assert not (a >= c)
        assert a <= Vec3D(1, 2, 3)
        assert not a < Vec3D(1, 2, 3)
        assert a > 0
        assert a >= 1
        assert not a > 1
        assert a < (5, 5, 5)

    def test_round_floor_ceil_trunc_give_ints(self) -> None:
        v = Vec3D(1.5, -2.5, 3.7)
        assert round(v) == (2, -2, 4)  # banker's rounding, like round()
        assert math.floor(v) == (1, -3, 3)
        assert math.ceil(v) == (2, -2, 4)
        assert math.trunc(v) == (1, -2, 3)
        for r in (round(v), math.floor(v), math.ceil(v), math.trunc(v)):
            assert type(r) is Vec3D
            assert all(type(e) is int for e in r)

    def test_round_with_digits_keeps_type(self) -> None:
        r = round(Vec3D(1.234, 2.345, 3.456), 1)
        assert r == (1.2, 2.3, 3.5)
        assert all(type(e) is float for e in r)
        assert all(type(e) is int for e in round(Vec3D(1, 2, 3), 1))

    def test_int_and_float_conversion(self) -> None:
        assert Vec3D(1.9, -1.9, 2.0).int() == (1, -1, 2)
        assert all(type(e) is int for e in Vec3D(1.9, -1.9, 2.0).int())
        f = Vec3D(1, 2, 3).float()
        assert f == (1.0, 2.0, 3.0)
        assert all(type(e) is float for e in f)

    def test_isclose_allclose(self) -> None:
        a = Vec3D(1.0, 2.0, 3.0)
        assert a.isclose((1.0 + 1e-9, 2.1, 3.0)) == (True, False, True)
        assert a.allclose((1.0 + 1e-9, 2.0 - 1e-7, 3.0))
        assert not a.allclose((1.0, 2.0, 3.001))
        assert Vec3D(0.0, 0.0, 0.0).allclose((1e-9, -1e-9, 0.0))  # atol 1e-8
        assert not Vec3D(0.0, 0.0, 0.0).allclose((1e-7, 0.0, 0.0))
        assert Vec3D(1e6, 1e6, 1e6).allclose((1e6 + 5, 1e6, 1e6))  # rtol 1e-5
        assert Vec3D(1.0, 1.0, 1.0).allclose(1.0 + 1e-9)  # scalar operand
        with pytest.raises(ValueError, match="cannot compare"):
            a.isclose("abc")  # type: ignore[arg-type]


# ======================================================================================
# BBox3D
# ======================================================================================


def box(x: tuple[float, float], y: tuple[float, float], z: tuple[float, float]) -> BBox3D:
    return BBox3D(bounds=(x, y, z))


class TestBBox3DConstruction:
    def test_bounds_are_floats_rounded_to_10_decimals(self) -> None:
        b = box((0.1 + 0.2, 1), (0, 2), (0, 3))
        assert b.bounds == ((0.3, 1.0), (0.0, 2.0), (0.0, 3.0))
        assert all(type(v) is float for pair in b.bounds for v in pair)
        assert b == box((0.3, 1), (0, 2), (0, 3))
        assert hash(b) == hash(box((0.3, 1), (0, 2), (0, 3)))
        assert BBox3D(bounds=((1.00000000004, 2), (0, 1), (0, 1))).bounds[0][0] == 1.0

    def test_start_end_shape_unit(self) -> None:
        b = box((1, 4), (2, 7), (-3, 9))
        assert b.unit == "nm"
        assert b.start == Vec3D(1, 2, -3)
        assert type(b.start) is Vec3D
        assert b.end == Vec3D(4, 7, 9)
        assert b.shape == Vec3D(3, 5, 12)

    def test_from_slices_geometry(self) -> None:
        # documented example: (Vec3D(1, 2, 3), 0:1, 0:2, 0:3) → bbox nm (0..1, 0..4, 0..9)
        b = BBox3D.from_slices((slice(0, 1), slice(0, 2), slice(0, 3)), Vec3D(1, 2, 3))
        assert b.bounds == ((0, 1), (0, 4), (0, 9))

    def test_from_slices_defaults_and_forms(self) -> None:
        b = BBox3D.from_slices([slice(-2, 3), slice(0, 2, 1), slice(np.int64(1), 5)])
        assert b.bounds == ((-2, 3), (0, 2), (1, 5))
        assert BBox3D.from_slices((slice(0, 10),) * 3, [0.1, 0.1, 0.1]).bounds == ((0, 1),) * 3

    @pytest.mark.parametrize(
        ("slices", "match"),
        [
            ((slice(0, 10, 2), slice(0, 1), slice(0, 1)), r"strided .* dimension x .*step 2"),
            ((slice(0, 1), slice(0, None), slice(0, 1)), r"open slices .* dimension y"),
            ((slice(0, 1), slice(0, 1), slice(None, 4)), r"open slices .* dimension z"),
            ((slice(0, 1), slice(0, 1)), r"expected 3 slices .*2 items"),
            ((slice(0, 1),) * 4, r"expected 3 slices .*4 items"),
            (slice(0, 1), r"expected 3 slices"),
            ((slice(0, 1), 5, slice(0, 1)), r"expected a slice for dimension y, got 5"),
            ((slice(5, 1), slice(0, 1), slice(0, 1)), r"start must be <= stop; dimension x is 5:1"),
            ((slice("a", 1), slice(0, 1), slice(0, 1)), r"slice start \(x\) must be a real"),
        ],
    )
    def test_from_slices_bad_input(self, slices: object, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            BBox3D.from_slices(slices)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("res", "match"),
        [((1, 1), "exactly 3 elements"), ((1, 0, 1), "> 0"), ((1, -4, 1), "> 0")],
    )
    def test_bad_resolution(self, res: object, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            BBox3D.from_slices((slice(0, 1),) * 3, res)  # type: ignore[arg-type]

    def test_from_coords(self) -> None:
        b = BBox3D.from_coords((1, 2, 3), (4, 5, 6), (4, 4, 40))
        assert b.bounds == ((4, 16), (8, 20), (120, 240))
        assert BBox3D.from_coords((0, 0, 0), (3, 3, 3), (0.1, 0.1, 0.1)).end == (0.3, 0.3, 0.3)
        with pytest.raises(ValueError, match="start must have exactly 3 elements"):
            BBox3D.from_coords((1, 2), (4, 5, 6))
        with pytest.raises(ValueError, match="end must have exactly 3 elements"):
            BBox3D.from_coords((1, 2, 3), (4, 5, 6, 7))

    def test_start_after_end_names_dimension_and_values(self) -> None:
        with pytest.raises(ValueError, match=r"dimension y has start 5 > end 2 \(nm\)"):
            BBox3D.from_coords((0, 5, 0), (1, 2, 1))
        with pytest.raises(ValueError, match=r"dimension z has start 9 > end 1"):
            box((0, 1), (0, 1), (9, 1))

    @pytest.mark.parametrize(
        ("bounds", "match"),
        [
            (((0, 1), (0, 1)), "3 .start, end. pairs"),
            (((0, 1), (0, 1), (0, 1, 2)), "dimension z must be a .start, end. pair"),
            (((0, 1), (0, 1), 5), "dimension z must be a .start, end. pair"),
            ("abc", "must be"),
            (((0, 1), (0, "b"), (0, 1)), r"BBox3D end \(y\) must be a real number"),
            (((0, math.nan), (0, 1), (0, 1)), "NaN"),
        ],
    )
    def test_bad_bounds(self, bounds: object, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            BBox3D(bounds=bounds)  # type: ignore[arg-type]

    def test_from_points(self) -> None:
        pts = [(1, 2, 3), (4, 0, 5), (2, 2, 2)]
        b = BBox3D.from_points(pts, (2, 2, 1))
        assert b.start == (2, 0, 2)
        assert b.end == pytest.approx((8.0002, 4.0002, 5.0001))
        for p in pts:
            assert b.contains(p, (2, 2, 1))
        b0 = BBox3D.from_points(np.array(pts), (1, 1, 1), epsilon=0)
        assert b0.bounds == ((1, 4), (0, 2), (2, 5))
        assert not b0.contains((4, 0, 5))  # half-open: epsilon is what makes max points inside
        with pytest.raises(ValueError, match="non-empty N×3"):
            BBox3D.from_points([], (1, 1, 1))
        with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
            BBox3D.from_points([(1, 2), (3, 4)], (1, 1, 1))

    def test_frozen_hashable_evolvable(self) -> None:
        b = box((0, 1), (0, 1), (0, 1))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            b.bounds = ((0, 2), (0, 2), (0, 2))  # type: ignore[misc]
        assert {b: 1}[box((0, 1), (0, 1), (0, 1))] == 1
        e = attrs.evolve(b, bounds=((0, 2), (0, 2), (0, 2)))
        assert e.shape == (2, 2, 2)
        assert b.shape == (1, 1, 1)
        with pytest.raises(ValueError, match="start 3 > end 2"):
            attrs.evolve(b, bounds=((3, 2), (0, 2), (0, 2)))

    def test_pickle_roundtrip(self) -> None:
        b = BBox3D.from_coords((1, 2, 3), (4, 5, 6), (4, 4, 40))
        c = pickle.loads(pickle.dumps(b))
        assert c == b
        assert c.pprint_px_resolution == (4, 4, 40)

    def test_pprint_resolution_not_part_of_equality(self) -> None:
        a = BBox3D.from_coords((0, 0, 0), (4, 4, 1), (1, 1, 40))
        b = BBox3D(bounds=((0, 4), (0, 4), (0, 40)))
        assert a == b
        assert hash(a) == hash(b)
        assert a.pformat() == "(0, 0, 0) - (4, 4, 1)"
        assert b.pformat() == "(0, 0, 0) - (4, 4, 40)"

    def test_repr(self) -> None:
        assert repr(box((0, 1.5), (0, 2), (0, 3))) == "BBox3D(bounds=((0, 1.5), (0, 2), (0, 3)))"
        assert "unit='um'" in repr(BBox3D(bounds=((0, 1),) * 3, unit="um"))


class TestBBox3DSlices:
    def test_integral(self) -> None:
        b = BBox3D.from_coords((1, 2, 3), (5, 6, 7), (4, 4, 40))
        assert b.to_slices((4, 4, 40)) == (slice(1, 5), slice(2, 6), slice(3, 7))
        assert b.to_slices((2, 2, 20)) == (slice(2, 10), slice(4, 12), slice(6, 14))
        assert b.get_slice(2, (4, 4, 40)) == slice(3, 7)
        assert b.get_slice(0, 4) == slice(1, 5)  # a scalar resolution for that dimension
        assert b.to_voxel_coords((4, 4, 40)) == (Vec3D(1, 2, 3), Vec3D(5, 6, 7))
        assert all(type(s.start) is int and type(s.stop) is int for s in b.to_slices((4, 4, 40)))

    def test_float_noise_is_absorbed(self) -> None:
        b = BBox3D.from_coords((0, 0, 0), (3, 7, 9), (0.1, 0.1, 0.1))
        assert b.to_slices((0.1, 0.1, 0.1)) == (slice(0, 3), slice(0, 7), slice(0, 9))

    def test_non_integral_raises_naming_dimension_voxels_and_flag(self) -> None:
        b = box((0, 8), (2, 8), (0, 40))
        with pytest.raises(ValueError, match="allow_slice_rounding=True") as info:
            b.to_slices((4, 4, 40))
        msg = str(info.value)
        assert "dimension y" in msg
        assert "start is 2 nm = 0.5 voxels" in msg
        with pytest.raises(ValueError, match=r"dimension z: its stop is 40 nm = 0\.25 voxels"):
            box((0, 8), (0, 8), (0, 40)).get_slice(2, (4, 4, 160))

    def test_rounding_floors_start_and_ceils_stop(self) -> None:
        b = box((1, 7), (-3, -1), (0, 40))
        assert b.to_slices((2, 2, 40), allow_slice_rounding=True) == (
            slice(0, 4),
            slice(-2, 0),
            slice(0, 1),
        )
        assert b.get_slice(0, (2, 2, 40), allow_slice_rounding=True) == slice(0, 4)

    def test_round_to_int_false_returns_raw_floats(self) -> None:
        b = box((1, 7), (0, 2), (0, 40))
        assert b.get_slice(0, (2, 2, 40), round_to_int=False) == slice(0.5, 3.5)

    def test_bad_dim(self) -> None:
        with pytest.raises(ValueError, match="dim must be 0, 1 or 2"):
            box((0, 1), (0, 1), (0, 1)).get_slice(3, (1, 1, 1))


class TestBBox3DVoxelEdits:
    base = BBox3D.from_coords((10, 20, 30), (20, 30, 40), (2, 2, 5))

    def test_padded(self) -> None:
        res = (2, 2, 5)
        assert self.base.padded(1, res).to_slices(res) == (
            slice(9, 21),
            slice(19, 31),
            slice(29, 41),
        )
        assert self.base.padded((1, 0, 2), res).to_slices(res) == (
            slice(9, 21),
            slice(20, 30),
            slice(28, 42),
        )
        assert self.base.padded(((1, 2), 0, (0, 3)), res).to_slices(res) == (
            slice(9, 22),
            slice(20, 30),
            slice(30, 43),
        )
        with pytest.raises(ValueError, match="dimension x has start"):
            self.base.padded((-6, 0, 0), res)
        with pytest.raises(ValueError, match=r"pad must have 3 elements"):
            self.base.padded((1, 2), res)

    def test_cropped(self) -> None:
        res = (2, 2, 5)
        assert self.base.cropped((1, (2, 3), 0), res).to_slices(res) == (
            slice(11, 19),
            slice(22, 27),
            slice(30, 40),
        )
        with pytest.raises(ValueError, match="dimension y has start"):
            self.base.cropped((0, 6, 0), res)

    def test_translations(self) -> None:
        res = (2, 2, 5)
        assert self.base.translated((1, -2, 3), res).to_slices(res) == (
            slice(11, 21),
            slice(18, 28),
            slice(33, 43),
        )
        assert self.base.translated_start((1, -2, 3), res).to_slices(res) == (
            slice(11, 20),
            slice(18, 30),
            slice(33, 40),
        )
        assert self.base.translated_end((1, -2, 3), res).to_slices(res) == (
            slice(10, 21),
            slice(20, 28),
            slice(30, 43),
        )
        with pytest.raises(ValueError, match="dimension z has start"):
            self.base.translated_end((0, 0, -11), res)

    def test_with_start_and_end(self) -> None:
        res = (2, 2, 5)
        assert self.base.with_start((0, 0, 0), res).to_slices(res) == (
            slice(0, 20),
            slice(0, 30),
            slice(0, 40),
        )
        assert self.base.with_end((11, 21, 31), res).to_slices(res) == (
            slice(10, 11),
            slice(20, 21),
            slice(30, 31),
        )
        with pytest.raises(ValueError, match="start must be <= end"):
            self.base.with_end((5, 30, 40), res)

    def test_edits_return_new_boxes(self) -> None:
        before = self.base.bounds
        self.base.padded(3, (1, 1, 1))
        self.base.translated((1, 1, 1), (1, 1, 1))
        assert self.base.bounds == before

    def test_split_even_x_fastest(self) -> None:
        b = box((0, 4), (0, 6), (0, 2))
        parts = b.split((2, 3, 1))
        assert len(parts) == 6
        assert [p.start for p in parts] == [
            (0, 0, 0),
            (2, 0, 0),
            (0, 2, 0),
            (2, 2, 0),
            (0, 4, 0),
            (2, 4, 0),
        ]
        assert all(p.shape == (2, 2, 2) for p in parts)
        assert b.split((1, 1, 2))[1].bounds == ((0, 4), (0, 6), (1, 2))
        # uneven float splits still tile the box exactly
        thirds = box((0, 1), (0, 1), (0, 1)).split((3, 1, 1))
        assert thirds[0].end[0] == thirds[1].start[0]
        assert thirds[-1].end[0] == 1
        with pytest.raises(ValueError, match="num_splits must be 3 positive integers"):
            b.split((0, 1, 1))

    def test_transposed(self) -> None:
        b = box((0, 2), (10, 15), (100, 107))
        assert b.transposed(0, 1).bounds == ((10, 15), (0, 2), (100, 107))
        assert b.transposed(0, 2, local=True).bounds == ((0, 7), (10, 15), (100, 102))
        assert b.transposed(1, 1).bounds == b.bounds
        with pytest.raises(ValueError, match="dim1 must be 0, 1 or 2"):
            b.transposed(0, 3)

    def test_scaling(self) -> None:
        b = box((2, 4), (6, 8), (10, 20))
        assert (b / 2).bounds == ((1, 2), (3, 4), (5, 10))
        assert (b / (2, 1, 10)).bounds == ((1, 2), (6, 8), (1, 2))
        assert (b * Vec3D(1, 2, 0.5)).bounds == ((2, 4), (12, 16), (5, 10))
        with pytest.raises(ValueError, match="positive"):
            b * (1, 0, 1)
        with pytest.raises(ValueError, match="positive"):
            b / -1


class TestBBox3DSnapping:
    # documented example: offset (1, 2, 3) and chunk (3, 5, 7) voxels at resolution (2, 2, 1)
    res = Vec3D(2, 2, 1)
    off = Vec3D(1, 2, 3) * res
    size = Vec3D(3, 5, 7) * res

    def test_aligned_box_is_unchanged_by_every_mode(self) -> None:
        b = BBox3D.from_coords((1, -8, -18), (4, 12, -11), self.res)
        for mode in ("expand", "shrink"):
            assert b.snapped(self.off, self.size, mode) == b  # type: ignore[arg-type]
        assert b.snapped(self.off, self.size, "floor") == b

    def test_unaligned_box(self) -> None:
        b = BBox3D.from_coords((0, 0, 0), (13, 13, 13), self.res)
        expand = b.snapped(self.off, self.size, "expand")
        assert expand.to_slices(self.res) == (slice(-2, 13), slice(-3, 17), slice(-4, 17))
        shrink = b.snapped(self.off, self.size, "shrink")
        assert shrink.to_slices(self.res) == (slice(1, 13), slice(2, 12), slice(3, 10))
        floor = b.snapped(self.off, self.size, "floor")
        assert floor.to_slices(self.res) == (slice(-2, 13), slice(-3, 12), slice(-4, 10))
        assert b.snapped(self.off, self.size, "expand") != b

    def test_eps_tolerance(self) -> None:
        b = box((10 + 5e-5, 20 - 5e-5), (0, 10), (0, 10))
        assert b.snapped((0, 0, 0), (10, 10, 10), "shrink").bounds[0] == (10, 20)
        assert b.snapped((0, 0, 0), (10, 10, 10), "expand").bounds[0] == (10, 20)
        c = box((10 + 5e-4, 20), (0, 10), (0, 10))  # beyond EPS: a real offset
        assert c.snapped((0, 0, 0), (10, 10, 10), "expand").bounds[0] == (10, 20)
        assert c.snapped((0, 0, 0), (10, 10, 10), "shrink").bounds[0] == (20, 20)

    def test_shrink_without_a_whole_cell_is_empty(self) -> None:
        b = box((1, 9), (0, 10), (0, 10))
        assert b.snapped((0, 0, 0), (10, 10, 10), "shrink").is_empty

    def test_bad_mode_and_grid(self) -> None:
        b = box((0, 1), (0, 1), (0, 1))
        with pytest.raises(ValueError, match="mode must be 'shrink', 'expand' or 'floor'"):
            b.snapped((0, 0, 0), (1, 1, 1), "round")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="grid_size must be > 0"):
            b.snapped((0, 0, 0), (1, 0, 1), "expand")


class TestBBox3DSetOperations:
    a = box((0, 10), (0, 10), (0, 10))

    def test_intersects(self) -> None:
        assert self.a.intersects(box((5, 15), (5, 15), (5, 15)))
        assert self.a.intersects(box((2, 3), (2, 3), (2, 3)))
        assert not self.a.intersects(box((10, 15), (0, 10), (0, 10)))  # touching face
        assert not self.a.intersects(box((0, 10), (-5, 0), (0, 10)))
        assert not self.a.intersects(box((20, 30), (20, 30), (20, 30)))

    def test_intersection(self) -> None:
        c = self.a.intersection(box((5, 15), (-5, 3), (2, 4)))
        assert c.bounds == ((5, 10), (0, 3), (2, 4))
        assert self.a.intersection(self.a) == self.a

    def test_supremum(self) -> None:
        s = self.a.supremum(box((5, 15), (-5, 3), (20, 30)))
        assert s.bounds == ((0, 15), (-5, 10), (0, 30))

    def test_contained_in(self) -> None:
        assert box((1, 2), (1, 2), (1, 2)).contained_in(self.a)
        assert self.a.contained_in(self.a)
        assert not box((1, 11), (1, 2), (1, 2)).contained_in(self.a)

    def test_aligned(self) -> None:
        assert self.a.aligned(box((0, 5), (3, 10), (0, 10))) == (
            True,
            False,
            False,
            True,
            True,
            True,
        )

    def test_contains_is_half_open(self) -> None:
        assert self.a.contains((0, 0, 0))
        assert self.a.contains((9.99, 5, 5))
        assert not self.a.contains((10, 5, 5))
        assert not self.a.contains((-0.01, 5, 5))
        assert self.a.contains((4, 4, 4), (2, 2, 2))  # (8, 8, 8) nm
        assert not self.a.contains((5, 4, 4), (2, 2, 2))  # (10, 8, 8) nm

    def test_line_intersects(self) -> None:
        assert self.a.line_intersects((-5, 5, 5), (15, 5, 5))  # straight through
        assert self.a.line_intersects((1, 1, 1), (2, 2, 2))  # entirely inside
        assert self.a.line_intersects((-5, -5, -5), (1, 1, 1))  # ends inside
        assert not self.a.line_intersects((-5, 5, 5), (-1, 5, 5))  # stops short
        assert not self.a.line_intersects((11, 0, 0), (11, 10, 10))  # parallel outside
        assert not self.a.line_intersects((-5, 6, 5), (6, 17, 5))  # diagonal passing a corner
        assert not self.a.line_intersects((-5, 12, 5), (12, -5, 30))  # passes above in z
        assert self.a.line_intersects((-1, -1, -1), (1, 1, 1), (5, 5, 5))  # scaled to nm

    def test_get_size(self) -> None:
        b = box((0, 2), (0, 3), (0, 40))
        assert b.get_size() == 240
        assert b.get_size((1, 1, 40)) == 6

    def test_units_must_match(self) -> None:
        um = BBox3D(bounds=((0, 1), (0, 1), (0, 1)), unit="um")
        for op in (self.a.intersects, self.a.intersection, self.a.supremum, self.a.contained_in):
            with pytest.raises(ValueError, match="units differ"):
                op(um)
        with pytest.raises(TypeError, match="expected a BBox3D"):
            self.a.intersection((0, 1))  # type: ignore[arg-type]

    def test_pformat_in_voxels(self) -> None:
        b = BBox3D.from_slices((slice(0, 10), slice(5, 15), slice(2, 3)), (4, 4, 40))
        assert b.pformat() == "(0, 5, 2) - (10, 15, 3)"  # at the creation resolution
        assert b.pformat((8, 8, 40)) == "(0, 2.5, 2) - (5, 7.5, 3)"
        assert b.pformat((1, 1, 1)) == "(0, 20, 80) - (40, 60, 120)"


class TestEmptyBox:
    """Disjoint intersection is an explicit empty box, not a zero box at the origin."""

    a = box((0, 10), (0, 10), (0, 10))
    far = box((20, 30), (20, 30), (20, 30))
    zero_at_origin = box((0, 0), (0, 0), (0, 0))

    def test_disjoint_intersection_is_empty(self) -> None:
        e = self.a.intersection(self.far)
        assert e.is_empty
        assert e == BBox3D.empty()
        assert self.a.intersection(box((10, 20), (0, 10), (0, 10))).is_empty  # touching

    def test_never_equal_to_a_real_zero_size_box(self) -> None:
        e = self.a.intersection(self.far)
        assert e != self.zero_at_origin
        assert not self.zero_at_origin.is_empty
        assert hash(e) != hash(self.zero_at_origin)
        assert len({e, self.zero_at_origin}) == 2

    @pytest.mark.parametrize(
        "use",
        [
            lambda e: e.start,
            lambda e: e.end,
            lambda e: e.to_slices((1, 1, 1)),
            lambda e: e.get_slice(0, (1, 1, 1)),
            lambda e: e.to_voxel_coords((1, 1, 1)),
            lambda e: e.padded(1, (1, 1, 1)),
            lambda e: e.cropped(1, (1, 1, 1)),
            lambda e: e.translated((1, 1, 1), (1, 1, 1)),
            lambda e: e.with_start((1, 1, 1), (1, 1, 1)),
            lambda e: e.split((2, 1, 1)),
            lambda e: e.transposed(0, 1),
            lambda e: e.snapped((0, 0, 0), (1, 1, 1), "expand"),
            lambda e: e * 2,
            lambda e: e / 2,
            lambda e: e.aligned(box((0, 1), (0, 1), (0, 1))),
        ],
    )
    def test_using_it_as_a_region_raises_a_clear_error(self, use: object) -> None:
        e = BBox3D.empty()
        with pytest.raises(EmptyBBoxError, match=r"empty BBox3D .*check `\.is_empty`"):
            use(e)  # type: ignore[operator]
        assert issubclass(EmptyBBoxError, ValueError)

    def test_set_semantics(self) -> None:
        e = BBox3D.empty()
        assert e.shape == (0, 0, 0)
        assert e.get_size() == 0
        assert not e.intersects(self.a)
        assert not self.a.intersects(e)
        assert e.intersection(self.a).is_empty
        assert self.a.intersection(e).is_empty
        assert e.supremum(self.a) == self.a
        assert self.a.supremum(e) == self.a
        assert e.supremum(e).is_empty
        assert e.contained_in(self.a)
        assert not self.a.contained_in(e)
        assert not e.contains((0, 0, 0))
        assert not e.line_intersects((-100, -100, -100), (100, 100, 100))

    def test_text_and_pickle(self) -> None:
        e = BBox3D.empty()
        assert repr(e) == "BBox3D.empty()"
        assert e.pformat() == "<empty>"
        assert pickle.loads(pickle.dumps(e)).is_empty
        assert BBox3D(bounds=e.bounds).is_empty  # the canonical bounds rebuild it
