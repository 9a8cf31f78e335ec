"""BBoxStrider (the reference system's strider)."""

from __future__ import annotations

import itertools

import pytest

from lamina.volumetric.geometry import BBox3D, BBoxStrider, EmptyBBoxError, Vec3D

UNIT = (1, 1, 1)


def vox(start: tuple[int, int, int], end: tuple[int, int, int], res: object = UNIT) -> BBox3D:
    return BBox3D.from_coords(start, end, res)  # type: ignore[arg-type]


def starts(strider: BBoxStrider, dim: int) -> list[float]:
    """Distinct chunk starts (voxels) along ``dim``."""
    res = strider.resolution
    return sorted({b.start[dim] / res[dim] for b in strider.get_all_chunk_bboxes()})


def ranges(strider: BBoxStrider, dim: int) -> list[tuple[float, float]]:
    res = strider.resolution
    return sorted(
        {(b.start[dim] / res[dim], b.end[dim] / res[dim]) for b in strider.get_all_chunk_bboxes()}
    )


class TestModes:
    bbox = vox((0, 0, 0), (10, 10, 10))

    def test_expand_covers_with_whole_chunks(self) -> None:
        s = BBoxStrider(self.bbox, UNIT, (4, 4, 4), (4, 4, 4), mode="expand")
        assert s.shape == Vec3D(3, 3, 3)
        assert s.num_chunks == 27 == len(s)
        assert ranges(s, 0) == [(0, 4), (4, 8), (8, 12)]
        assert all(b.shape == (4, 4, 4) for b in s)

    def test_expand_is_the_default(self) -> None:
        assert BBoxStrider(self.bbox, UNIT, (4, 4, 4), (4, 4, 4)).shape == (3, 3, 3)

    def test_shrink_keeps_only_whole_chunks_inside(self) -> None:
        s = BBoxStrider(self.bbox, UNIT, (4, 4, 4), (4, 4, 4), mode="shrink")
        assert s.shape == (2, 2, 2)
        assert ranges(s, 1) == [(0, 4), (4, 8)]
        assert all(b.contained_in(self.bbox) for b in s)

    def test_shrink_with_bbox_smaller_than_a_chunk_has_no_chunks(self) -> None:
        s = BBoxStrider(vox((0, 0, 0), (3, 10, 10)), UNIT, (4, 4, 4), (4, 4, 4), mode="shrink")
        assert s.shape[0] == 0
        assert s.num_chunks == 0
        assert s.get_all_chunk_bboxes() == []

    def test_exact_gives_full_and_partial_edge_chunks(self) -> None:
        s = BBoxStrider(self.bbox, UNIT, (4, 4, 4), (4, 4, 4), mode="exact")
        assert s.shape == (3, 3, 3)
        assert ranges(s, 2) == [(0, 4), (4, 8), (8, 10)]
        assert sum(b.get_size() for b in s) == self.bbox.get_size()
        assert all(b.contained_in(self.bbox) for b in s)

    def test_exact_requires_stride_equal_chunk(self) -> None:
        with pytest.raises(ValueError, match="mode 'exact' needs stride == chunk_size"):
            BBoxStrider(self.bbox, UNIT, (4, 4, 4), (2, 2, 2), mode="exact")

    def test_overlapping_stride(self) -> None:
        s = BBoxStrider(self.bbox, UNIT, (4, 4, 4), (2, 2, 2), mode="expand")
        assert ranges(s, 0) == [(0, 4), (2, 6), (4, 8), (6, 10)]
        s11 = BBoxStrider(vox((0, 0, 0), (11, 11, 11)), UNIT, (4, 4, 4), (2, 2, 2))
        assert ranges(s11, 0)[-1] == (8, 12)
        assert s11.shape == (5, 5, 5)
        shrink = BBoxStrider(
            vox((0, 0, 0), (11, 11, 11)), UNIT, (4, 4, 4), (2, 2, 2), mode="shrink"
        )
        assert ranges(shrink, 0)[-1] == (6, 10)

    def test_gapped_stride(self) -> None:
        s = BBoxStrider(self.bbox, UNIT, (2, 2, 2), (5, 5, 5), mode="expand")
        assert ranges(s, 0) == [(0, 2), (5, 7)]
        short = BBoxStrider(vox((0, 0, 0), (3, 3, 3)), UNIT, (2, 2, 2), (5, 5, 5))
        assert short.shape == (1, 1, 1)  # no chunk starting past the bbox end
        shrink = BBoxStrider(self.bbox, UNIT, (2, 2, 2), (5, 5, 5), mode="shrink")
        assert ranges(shrink, 0) == [(0, 2), (5, 7)]

    def test_bad_mode(self) -> None:
        with pytest.raises(ValueError, match="mode must be 'shrink', 'expand' or 'exact'"):
            BBoxStrider(self.bbox, UNIT, (4, 4, 4), (4, 4, 4), mode="round")  # type: ignore[arg-type]


class TestOrderAndRandomAccess:
    bbox = vox((0, 0, 0), (12, 8, 8))
    s = BBoxStrider(bbox, UNIT, (4, 4, 4), (4, 4, 4))

    def test_x_fastest_then_y_then_z(self) -> None:
        assert self.s.shape == (3, 2, 2)
        got = [b.start for b in self.s.get_all_chunk_bboxes()]
        want = [Vec3D(x, y, z) for z, y, x in itertools.product((0, 4), (0, 4), (0, 4, 8))]
        assert got == want

    def test_nth_matches_enumeration(self) -> None:
        all_boxes = self.s.get_all_chunk_bboxes()
        assert [self.s.get_nth_chunk_bbox(i) for i in range(self.s.num_chunks)] == all_boxes
        assert list(self.s) == all_boxes

    def test_out_of_range(self) -> None:
        with pytest.raises(IndexError, match=r"chunk number 12 out of range: .* 12 chunks"):
            self.s.get_nth_chunk_bbox(12)
        with pytest.raises(IndexError):
            self.s.get_nth_chunk_bbox(-1)
        with pytest.raises(TypeError, match="must be an int"):
            self.s.get_nth_chunk_bbox(1.0)  # type: ignore[arg-type]


class TestGridAnchoring:
    bbox = vox((5, 5, 5), (13, 13, 13))

    def test_default_grid_starts_at_bbox_start(self) -> None:
        s = BBoxStrider(self.bbox, UNIT, (4, 4, 4), (4, 4, 4))
        assert starts(s, 0) == [5, 9]

    @pytest.mark.parametrize(
        ("offset", "expand", "shrink"),
        [
            (0, [4, 8, 12], [8]),
            (1, [5, 9], [5, 9]),
            (3, [3, 7, 11], [7]),
            (-94, [2, 6, 10], [6]),  # far below: shifted up by whole strides
            (101, [5, 9], [5, 9]),  # above the bbox start: shifted down
        ],
    )
    def test_stride_start_offset(self, offset: int, expand: list[int], shrink: list[int]) -> None:
        off = (offset, offset, offset)
        s = BBoxStrider(self.bbox, UNIT, (4, 4, 4), (4, 4, 4), stride_start_offset=off)
        assert starts(s, 0) == expand
        s2 = BBoxStrider(
            self.bbox, UNIT, (4, 4, 4), (4, 4, 4), stride_start_offset=off, mode="shrink"
        )
        assert starts(s2, 0) == shrink

    def test_exact_mode_with_offset_crops_to_bbox(self) -> None:
        s = BBoxStrider(
            self.bbox, UNIT, (4, 4, 4), (4, 4, 4), stride_start_offset=(0, 0, 0), mode="exact"
        )
        assert ranges(s, 0) == [(5, 8), (8, 12), (12, 13)]

    def test_resolution_converts_voxels_to_nm(self) -> None:
        bbox = BBox3D.from_coords((0, 0, 0), (8, 8, 2), (4, 4, 40))
        s = BBoxStrider(bbox, (4, 4, 40), (4, 4, 1), (4, 4, 1))
        assert s.shape == (2, 2, 2)
        assert s.get_nth_chunk_bbox(1).bounds == ((16, 32), (0, 16), (0, 40))
        assert s.get_nth_chunk_bbox(1).pformat() == "(4, 0, 0) - (8, 4, 1)"

    def test_chunks_at_a_coarser_resolution_than_the_bbox(self) -> None:
        bbox = BBox3D.from_coords((0, 0, 0), (10, 10, 10), (1, 1, 1))
        s = BBoxStrider(bbox, (2, 2, 2), (2, 2, 2), (2, 2, 2), mode="exact")
        assert s.shape == (3, 3, 3)
        assert ranges(s, 0) == [(0, 2), (2, 4), (4, 5)]


class TestSuperchunks:
    bbox = vox((0, 0, 0), (10, 10, 10))

    def test_merges_whole_chunks_up_to_the_maximum(self) -> None:
        s = BBoxStrider(self.bbox, UNIT, (2, 2, 2), (2, 2, 2), max_superchunk_size=(5, 5, 5))
        assert s.shape == (3, 3, 3)
        assert ranges(s, 0) == [(0, 4), (4, 8), (8, 10)]

    def test_covers_exactly_the_chunks_of_the_plain_strider(self) -> None:
        bbox = vox((0, 0, 0), (9, 9, 9))
        plain = BBoxStrider(bbox, UNIT, (2, 2, 2), (2, 2, 2))
        sup = BBoxStrider(bbox, UNIT, (2, 2, 2), (2, 2, 2), max_superchunk_size=(4, 6, 100))
        assert sum(b.get_size() for b in sup) == sum(b.get_size() for b in plain) == 1000
        assert ranges(sup, 0) == [(0, 4), (4, 8), (8, 10)]
        assert ranges(sup, 1) == [(0, 6), (6, 10)]
        assert ranges(sup, 2) == [(0, 10)]
        for b in plain:
            assert any(b.contained_in(c) for c in sup)

    def test_exact_superchunks_crop_to_bbox(self) -> None:
        bbox = vox((0, 0, 0), (9, 9, 9))
        s = BBoxStrider(
            bbox, UNIT, (2, 2, 2), (2, 2, 2), max_superchunk_size=(4, 4, 4), mode="exact"
        )
        assert ranges(s, 0) == [(0, 4), (4, 8), (8, 9)]
        assert sum(b.get_size() for b in s) == bbox.get_size()

    def test_requires_stride_equal_chunk(self) -> None:
        with pytest.raises(ValueError, match="max_superchunk_size needs stride == chunk_size"):
            BBoxStrider(self.bbox, UNIT, (2, 2, 2), (1, 1, 1), max_superchunk_size=(8, 8, 8))

    def test_maximum_must_hold_a_chunk(self) -> None:
        with pytest.raises(ValueError, match="max_superchunk_size must be >= chunk_size"):
            BBoxStrider(self.bbox, UNIT, (2, 2, 2), (2, 2, 2), max_superchunk_size=(8, 1, 8))


class TestValidation:
    bbox = vox((0, 0, 0), (10, 10, 10))

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"chunk_size": (0, 4, 4)}, ValueError, "chunk_size must be finite and > 0"),
            ({"chunk_size": (4, 4)}, ValueError, "chunk_size must have exactly 3 elements"),
            ({"stride": (4, -1, 4)}, ValueError, "stride must be finite and > 0"),
            ({"resolution": (1, 1)}, ValueError, "resolution must have exactly 3 elements"),
            ({"resolution": (1, 0, 1)}, ValueError, "resolution must be finite and > 0"),
            ({"bbox": (0, 10)}, TypeError, "bbox must be a BBox3D"),
            ({"bbox": BBox3D.empty()}, EmptyBBoxError, "empty"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, object], error: type, match: str) -> None:
        args: dict[str, object] = {
            "bbox": self.bbox,
            "resolution": UNIT,
            "chunk_size": (4, 4, 4),
            "stride": (4, 4, 4),
        }
        args.update(kwargs)
        with pytest.raises(error, match=match):
            BBoxStrider(**args)  # type: ignore[arg-type]

    def test_strider_is_frozen_and_comparable(self) -> None:
        a = BBoxStrider(self.bbox, UNIT, (4, 4, 4), (4, 4, 4))
        b = BBoxStrider(self.bbox, [1.0, 1.0, 1.0], [4, 4, 4], [4, 4, 4])
        assert a == b
        assert hash(a) == hash(b)
        with pytest.raises(AttributeError):
            a.mode = "shrink"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "end", "chunk", "stride", "offset"),
    [
        ((0, 0, 0), (17, 5, 3), (4, 2, 3), (4, 2, 3), None),
        ((-7, 3, 1), (9, 14, 2), (5, 3, 1), (3, 2, 1), (2, 0, 0)),
        ((1, 1, 1), (2, 2, 2), (8, 8, 8), (8, 8, 8), (0, 0, 0)),
        ((-20, -20, 0), (-3, 7, 5), (6, 5, 4), (4, 5, 2), (1, 2, 3)),
    ],
)
def test_invariants(
    start: tuple[int, int, int],
    end: tuple[int, int, int],
    chunk: tuple[int, int, int],
    stride: tuple[int, int, int],
    offset: tuple[int, int, int] | None,
) -> None:
    """expand covers the bbox; shrink stays inside; exact tiles it exactly."""
    bbox = vox(start, end)
    expand = BBoxStrider(bbox, UNIT, chunk, stride, stride_start_offset=offset)
    shrink = BBoxStrider(bbox, UNIT, chunk, stride, stride_start_offset=offset, mode="shrink")
    for p in itertools.product(*(range(start[d], end[d]) for d in range(3))):
        assert any(b.contains(p) for b in expand), p
    assert all(b.contained_in(bbox) for b in shrink)
    assert all(b.shape == Vec3D(*chunk) for b in shrink)
    assert all(b.shape == Vec3D(*chunk) for b in expand)
    assert all(b.intersects(bbox) for b in expand)  # no useless chunks
    if chunk == stride:
        exact = BBoxStrider(bbox, UNIT, chunk, stride, stride_start_offset=offset, mode="exact")
        assert sum(b.get_size() for b in exact) == bbox.get_size()
        assert all(b.contained_in(bbox) for b in exact)
