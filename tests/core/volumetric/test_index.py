"""VolumetricIndex: the reference's index, frozen, hashable, checked when built, never changed
behind a user's back, with an explicit empty intersection and sub-indices right across
resolutions."""

from __future__ import annotations

import copy
import pickle

import attrs
import numpy as np
import pytest

from lamina.volumetric.geometry import BBox3D, EmptyBBoxError, Vec3D
from lamina.volumetric.index import VolumetricIndex

RES = (4, 4, 40)


def idx(
    start: tuple[int, int, int],
    end: tuple[int, int, int],
    res: object = RES,
    **kwargs: object,
) -> VolumetricIndex:
    return VolumetricIndex.from_coords(start, end, res, **kwargs)  # type: ignore[arg-type]


class TestConstruction:
    @pytest.mark.parametrize("res", [(1, 2, 3), [1, 2, 3], np.array([1, 2, 3]), Vec3D(1, 2, 3)])
    def test_resolution_becomes_a_float_vec3d(self, res: object) -> None:
        i = VolumetricIndex(res, BBox3D.from_coords((0, 0, 0), (1, 2, 3), (1, 2, 3)))  # type: ignore[arg-type]
        assert type(i.resolution) is Vec3D
        assert i.resolution == (1.0, 2.0, 3.0)
        assert all(type(r) is float for r in i.resolution)

    def test_float_vec3d_resolution_is_kept(self) -> None:
        res = Vec3D(4.0, 4.0, 40.0)
        i = VolumetricIndex(res, BBox3D.from_coords((0, 0, 0), (1, 1, 1), res))
        assert i.resolution == res

    def test_defaults(self) -> None:
        i = idx((0, 0, 0), (1, 1, 1))
        assert i.chunk_id == 0
        assert i.allow_slice_rounding is False

    def test_voxel_geometry(self) -> None:
        # documented: (Vec3D(1, 2, 3), 0:1, 0:2, 0:3) → bbox nm (0..1, 0..4, 0..9) at (1, 2, 3)
        bbox = BBox3D.from_slices((slice(0, 1), slice(0, 2), slice(0, 3)), Vec3D(1, 2, 3))
        i = VolumetricIndex(Vec3D(1, 2, 3), bbox)
        assert i.bbox.bounds == ((0, 1), (0, 4), (0, 9))
        assert i.start == Vec3D(0, 0, 0)
        assert i.stop == Vec3D(1, 2, 3)
        assert i.shape == Vec3D(1, 2, 3)
        assert all(type(v) is int for v in (*i.start, *i.stop, *i.shape))
        assert i.to_slices() == (slice(0, 1), slice(0, 2), slice(0, 3))

    def test_fractional_voxels_raise_at_construction(self) -> None:
        # the same bbox read at (8, 8, 8) is fractional: the reference's lazy error is now eager
        bbox = BBox3D.from_slices((slice(0, 1), slice(0, 2), slice(0, 3)), Vec3D(1, 2, 3))
        with pytest.raises(ValueError, match="dimension x") as info:
            VolumetricIndex((8, 8, 8), bbox)
        assert "0.125 voxels" in str(info.value)
        assert "allow_slice_rounding=True" in str(info.value)

    def test_rounding_floors_start_and_ceils_stop_keeping_the_bbox(self) -> None:
        bbox = BBox3D.from_slices((slice(0, 1), slice(0, 2), slice(0, 3)), Vec3D(1, 2, 3))
        i = VolumetricIndex((8, 8, 8), bbox, allow_slice_rounding=True)
        assert i.start == (0, 0, 0)
        assert i.stop == (1, 1, 2)
        assert i.shape == (1, 1, 2)
        assert i.bbox == bbox  # the box itself is not snapped
        j = VolumetricIndex((2, 2, 2), BBox3D(bounds=((-3, 3), (1, 7), (0, 2))), 0, True)
        assert j.to_slices() == (slice(-2, 2), slice(0, 4), slice(0, 1))

    def test_from_coords(self) -> None:
        i = VolumetricIndex.from_coords((1, 2, 3), (5, 6, 7), RES, chunk_id=4)
        assert i.bbox.bounds == ((4, 20), (8, 24), (120, 280))
        assert i.start == (1, 2, 3)
        assert i.stop == (5, 6, 7)
        assert i.shape == (4, 4, 4)
        assert i.chunk_id == 4
        with pytest.raises(ValueError, match=r"dimension z has start 280 > end 120"):
            VolumetricIndex.from_coords((1, 2, 7), (5, 6, 3), RES)

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"resolution": (4, 4)}, ValueError, "resolution must have exactly 3 elements"),
            ({"resolution": (4, 0, 40)}, ValueError, "resolution must be finite and > 0"),
            ({"resolution": "abc"}, ValueError, "resolution must be a sequence"),
            ({"bbox": ((0, 1), (0, 1), (0, 1))}, TypeError, "bbox must be a BBox3D"),
            ({"chunk_id": True}, TypeError, "chunk_id must be an int"),
            ({"chunk_id": 1.5}, TypeError, "chunk_id must be an int"),
            ({"allow_slice_rounding": "yes"}, TypeError, "allow_slice_rounding must be a bool"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, object], error: type, match: str) -> None:
        args: dict[str, object] = {
            "resolution": RES,
            "bbox": BBox3D.from_coords((0, 0, 0), (1, 1, 1), RES),
        }
        args.update(kwargs)
        with pytest.raises(error, match=match):
            VolumetricIndex(**args)  # type: ignore[arg-type]

    def test_numpy_chunk_id_and_flag_are_converted(self) -> None:
        bbox = BBox3D.from_coords((0, 0, 0), (1, 1, 1), RES)
        i = VolumetricIndex(RES, bbox, np.int64(3), np.bool_(True))  # type: ignore[arg-type]
        assert type(i.chunk_id) is int
        assert i.chunk_id == 3
        assert i.allow_slice_rounding is True


class TestImmutabilityAndEquality:
    def test_frozen(self) -> None:
        i = idx((0, 0, 0), (2, 2, 2))
        for name, value in [
            ("resolution", Vec3D(1.0, 1.0, 1.0)),
            ("bbox", BBox3D.empty()),
            ("chunk_id", 3),
            ("allow_slice_rounding", True),
        ]:
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                setattr(i, name, value)
        assert i.chunk_id == 0
        assert i.shape == (2, 2, 2)

    def test_hashable_and_usable_as_key(self) -> None:
        a = idx((0, 0, 0), (2, 2, 2))
        b = VolumetricIndex([4.0, 4.0, 40.0], BBox3D(bounds=((0, 8), (0, 8), (0, 80))))
        assert a == b
        assert hash(a) == hash(b)
        assert {a: "x"}[b] == "x"
        assert len({a, b, idx((0, 0, 0), (2, 2, 3))}) == 2

    def test_equality_includes_chunk_id_and_rounding_flag(self) -> None:
        a = idx((0, 0, 0), (2, 2, 2))
        assert a != idx((0, 0, 0), (2, 2, 2), chunk_id=1)
        assert a != idx((0, 0, 0), (2, 2, 2), allow_slice_rounding=True)
        assert a != VolumetricIndex((2, 2, 20), a.bbox)  # same box, other resolution
        assert a == idx((0, 0, 0), (2, 2, 2))

    def test_voxel_extent_is_computed_once(self) -> None:
        i = idx((1, 2, 3), (4, 5, 6))
        assert i.shape is i.shape
        assert i.start is i.start
        assert i.stop is i.stop

    @pytest.mark.parametrize(
        "clone", [copy.copy, copy.deepcopy, lambda v: pickle.loads(pickle.dumps(v))]
    )
    def test_copies_and_pickles(self, clone: object) -> None:
        i = idx((1, 2, 3), (4, 5, 6), chunk_id=9, allow_slice_rounding=True)
        j = clone(i)  # type: ignore[operator]
        assert j == i
        assert j.shape == (3, 3, 3)
        assert j.start == (1, 2, 3)

    def test_attrs_evolve_recomputes_the_extent(self) -> None:
        i = idx((0, 0, 0), (2, 2, 2))
        j = attrs.evolve(i, bbox=BBox3D.from_coords((0, 0, 0), (5, 5, 5), RES))
        assert j.shape == (5, 5, 5)
        assert i.shape == (2, 2, 2)
        with pytest.raises(ValueError, match="not a whole number of voxels"):
            attrs.evolve(i, resolution=(3, 3, 3))

    def test_repr(self) -> None:
        r = repr(idx((0, 0, 0), (1, 1, 1)))
        assert r.startswith("VolumetricIndex(resolution=Vec3D(4.0, 4.0, 40.0), bbox=BBox3D(")
        assert "chunk_id=0" in r
        assert "_shape" not in r


class TestDerivedIndices:
    base = idx((10, 20, 3), (20, 30, 6), chunk_id=7, allow_slice_rounding=True)

    def _kept(self, other: VolumetricIndex) -> None:
        assert other.resolution == self.base.resolution
        assert other.chunk_id == 7
        assert other.allow_slice_rounding is True

    def test_padded_cropped_translated(self) -> None:
        cases = {
            "padded": (self.base.padded((1, (2, 3), 0)), ((9, 18, 3), (21, 33, 6))),
            "cropped": (self.base.cropped(((1, 2), 3, 1)), ((11, 23, 4), (18, 27, 5))),
            "translated": (self.base.translated((1, -2, 3)), ((11, 18, 6), (21, 28, 9))),
            "translated_start": (self.base.translated_start((1, 2, 1)), ((11, 22, 4), (20, 30, 6))),
            "translated_end": (self.base.translated_end((1, 2, 1)), ((10, 20, 3), (21, 32, 7))),
        }
        for name, (got, (start, stop)) in cases.items():
            assert (got.start, got.stop) == (start, stop), name
            self._kept(got)

    def test_user_index_is_never_mutated(self) -> None:
        before = (self.base.bbox, self.base.shape, self.base.chunk_id)
        self.base.padded(5)
        self.base.translated((1, 1, 1))
        self.base.with_resolution((2, 2, 20))
        self.base.with_allow_slice_rounding(False)
        self.base.with_chunk_id(99)
        assert (self.base.bbox, self.base.shape, self.base.chunk_id) == before
        assert self.base.allow_slice_rounding is True

    def test_transposed_swaps_box_and_resolution(self) -> None:
        i = idx((0, 0, 0), (10, 20, 3))
        t = i.transposed(0, 2)
        assert t.resolution == (40, 4, 4)
        assert t.shape == (3, 20, 10)
        assert t.bbox.bounds == ((0, 120), (0, 80), (0, 40))
        tl = idx((10, 0, 2), (20, 20, 5)).transposed(0, 2, local=True)
        assert tl.bbox.bounds == ((40, 160), (0, 80), (80, 120))
        assert tl.shape == (3, 20, 10)

    def test_split(self) -> None:
        i = idx((0, 0, 0), (10, 20, 3), chunk_id=2)
        parts = i.split((2, 4, 1))
        assert len(parts) == 8
        assert all(p.shape == (5, 5, 3) and p.chunk_id == 2 for p in parts)
        assert [p.start for p in parts[:3]] == [(0, 0, 0), (5, 0, 0), (0, 5, 0)]
        with pytest.raises(ValueError, match="cannot split 10 voxels along x into 3"):
            i.split((3, 1, 1))
        assert len(i.with_allow_slice_rounding(True).split((3, 1, 1))) == 3

    def test_snapped_to_the_grid(self) -> None:
        # documented example: offset (1, 2, 3), chunk (3, 5, 7) at (2, 2, 1)
        res = (2, 2, 1)
        aligned = idx((1, -8, -18), (4, 12, -11), res)
        for mode in ("expand", "shrink", "floor"):
            assert aligned.snapped((1, 2, 3), (3, 5, 7), mode) == aligned  # type: ignore[arg-type]
        loose = idx((0, 0, 0), (13, 13, 13), res, chunk_id=3)
        expand = loose.snapped((1, 2, 3), (3, 5, 7), "expand")
        assert (expand.start, expand.stop) == ((-2, -3, -4), (13, 17, 17))
        assert expand.chunk_id == 3
        shrink = loose.snapped((1, 2, 3), (3, 5, 7), "shrink")
        assert (shrink.start, shrink.stop) == ((1, 2, 3), (13, 12, 10))
        assert expand != loose
        assert shrink != loose

    def test_scaling(self) -> None:
        i = idx((0, 0, 0), (10, 20, 4))
        assert (i * 2).shape == (20, 40, 8)
        assert (i / (2, 4, 2)).shape == (5, 5, 2)
        assert (i * 2).resolution == i.resolution
        with pytest.raises(ValueError, match="not a whole number of voxels"):
            i / 3

    def test_with_helpers(self) -> None:
        i = idx((0, 0, 0), (10, 10, 10))
        assert i.with_resolution((8, 8, 40)).shape == (5, 5, 10)
        assert i.with_resolution((8, 8, 40)).bbox == i.bbox
        assert i.with_chunk_id(5).chunk_id == 5
        b = BBox3D.from_coords((0, 0, 0), (1, 1, 1), RES)
        assert i.with_bbox(b).shape == (1, 1, 1)
        with pytest.raises(ValueError, match="dimension x"):
            i.with_resolution((3, 4, 40))
        rounded = i.with_allow_slice_rounding(True).with_resolution((3, 4, 40))
        assert rounded.shape == (14, 10, 10)  # 40 nm / 3 nm → 0..ceil(13.33)


class TestSetOperations:
    a = idx((0, 0, 0), (10, 10, 10), chunk_id=1)

    def test_intersection_keeps_self_resolution(self) -> None:
        b = idx((2, 2, 5), (10, 15, 15), (8, 8, 40))  # nm 16..80, 16..120, 200..600
        c = self.a.intersection(b)
        assert c.resolution == self.a.resolution
        assert c.chunk_id == 1
        assert c.bbox.bounds == ((16, 40), (16, 40), (200, 400))
        assert (c.start, c.stop) == ((4, 4, 5), (10, 10, 10))
        assert b.intersection(self.a).resolution == (8, 8, 40)
        d = self.a.intersection(idx((5, 5, 5), (20, 20, 20)))
        assert (d.start, d.stop) == ((5, 5, 5), (10, 10, 10))

    def test_disjoint_intersection_is_an_explicit_empty_index(self) -> None:
        e = self.a.intersection(idx((20, 20, 20), (30, 30, 30)))
        assert e.is_empty
        assert e.bbox.is_empty
        assert e.shape == (0, 0, 0)
        assert e.resolution == self.a.resolution
        assert e.chunk_id == 1
        zero = VolumetricIndex(RES, BBox3D(bounds=((0, 0), (0, 0), (0, 0))), chunk_id=1)
        assert not zero.is_empty
        assert zero.shape == (0, 0, 0)
        assert e != zero
        assert hash(e) != hash(zero)
        for use in (lambda: e.start, lambda: e.stop, e.to_slices, lambda: e.padded(1)):
            with pytest.raises(EmptyBBoxError, match="empty"):
                use()
        assert e.pformat() == "<empty>"
        assert pickle.loads(pickle.dumps(e)) == e

    def test_supremum_intersects_contained_in(self) -> None:
        b = idx((5, -5, 5), (20, 5, 8), (4, 4, 40))
        s = self.a.supremum(b)
        assert (s.start, s.stop) == ((0, -5, 0), (20, 10, 10))
        assert self.a.intersects(b)
        assert not self.a.intersects(idx((10, 0, 0), (12, 10, 10)))  # touching
        assert idx((1, 1, 1), (2, 2, 2)).contained_in(self.a)
        assert not b.contained_in(self.a)
        empty = self.a.intersection(idx((50, 50, 50), (60, 60, 60)))
        assert self.a.supremum(empty).bbox == self.a.bbox

    def test_aligned(self) -> None:
        b = idx((0, 2, 0), (5, 10, 10))
        assert self.a.aligned(b) == (True, False, False, True, True, True)

    def test_contains_and_line_intersects_in_voxels(self) -> None:
        assert self.a.contains((9, 9, 9))
        assert self.a.contains((0, 0, 0))
        assert not self.a.contains((10, 0, 0))
        assert self.a.line_intersects((-5, 5, 5), (15, 5, 5))
        assert not self.a.line_intersects((-5, 5, 5), (-1, 5, 5))
        assert not self.a.line_intersects((11, 0, 0), (11, 20, 0))

    def test_get_size_and_pformat(self) -> None:
        assert self.a.get_size() == 40 * 40 * 400
        assert self.a.pformat() == "(0, 0, 0) - (10, 10, 10)"
        assert self.a.pformat((8, 8, 40)) == "(0, 0, 0) - (5, 5, 10)"


class TestIntersectionAndSubindex:
    def test_same_resolution(self) -> None:
        small = idx((5, 5, 5), (15, 15, 15), (1, 1, 1))
        large = idx((0, 2, 0), (10, 10, 10), (1, 1, 1))
        inter, sub = small.get_intersection_and_subindex(large)
        assert (inter.start, inter.stop) == ((5, 5, 5), (10, 10, 10))
        assert sub == (slice(5, 10), slice(3, 8), slice(5, 10))
        canvas = np.zeros(tuple(large.shape))
        canvas[sub] = 1
        assert canvas.sum() == inter.shape[0] * inter.shape[1] * inter.shape[2]

    def test_coarser_self(self) -> None:
        # self at 2 nm covers 0..20 nm; large at 1 nm covers 4..40 nm
        small = idx((0, 0, 0), (10, 10, 10), (2, 2, 2))
        large = idx((4, 4, 4), (40, 40, 40), (1, 1, 1))
        inter, sub = small.get_intersection_and_subindex(large)
        assert inter.resolution == (2, 2, 2)
        assert inter.bbox.bounds == ((4, 20),) * 3
        assert (inter.start, inter.stop) == ((2, 2, 2), (10, 10, 10))
        # offset of large's start (4 nm) is 2 voxels at 2 nm, not 4 voxels
        assert sub == (slice(0, 8),) * 3
        assert tuple(s.stop - s.start for s in sub) == tuple(inter.shape)

    def test_finer_self(self) -> None:
        small = idx((6, 6, 6), (30, 30, 30), (1, 1, 1))
        large = idx((1, 1, 1), (10, 10, 10), (2, 2, 2))  # 2..20 nm
        inter, sub = small.get_intersection_and_subindex(large)
        assert (inter.start, inter.stop) == ((6, 6, 6), (20, 20, 20))
        assert sub == (slice(4, 18),) * 3  # 6 nm − 2 nm = 4 voxels at 1 nm

    def test_large_start_not_on_self_grid(self) -> None:
        small = idx((2, 2, 2), (10, 10, 10), (4, 4, 4))  # 8..40 nm
        large = VolumetricIndex((1, 1, 1), BBox3D(bounds=((2, 40), (8, 40), (8, 40))))
        with pytest.raises(ValueError, match=r"dimension x: its start is 2 nm = 0\.5 voxels"):
            small.get_intersection_and_subindex(large)
        rounded = small.with_allow_slice_rounding(True)
        _, sub = rounded.get_intersection_and_subindex(large)
        assert sub == (slice(2, 10), slice(0, 8), slice(0, 8))

    def test_disjoint(self) -> None:
        small = idx((0, 0, 0), (2, 2, 2))
        large = idx((5, 5, 5), (9, 9, 9))
        inter, sub = small.get_intersection_and_subindex(large)
        assert inter.is_empty
        assert sub == (slice(0, 0),) * 3
        assert np.zeros((4, 4, 4))[sub].size == 0
