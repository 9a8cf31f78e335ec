"""User index forms of volumetric layers (the reference system's, with its documented examples)."""

from __future__ import annotations

import pytest

from lamina import BBox3D, Vec3D, VolumetricIndex
from lamina.volumetric.scheme import VolumetricScheme

RES = Vec3D(4, 4, 40)


def test_volumetric_index_is_used_as_is_and_never_mutated() -> None:
    idx = VolumetricIndex.from_coords((0, 0, 0), (2, 2, 2), RES)
    assert VolumetricScheme().to_index(idx) is idx
    rounding = VolumetricScheme(allow_slice_rounding=True).to_index(idx)
    assert rounding.allow_slice_rounding
    assert rounding.bbox == idx.bbox
    assert not idx.allow_slice_rounding  # the user's index is untouched (the reference changed it)


def test_bbox_uses_the_default_desired_resolution() -> None:
    bbox = BBox3D.from_coords((0, 0, 0), (8, 8, 80))
    idx = VolumetricScheme(default_desired_resolution=RES).to_index(bbox)
    assert idx.resolution == RES
    assert idx.bbox == bbox
    assert idx.shape == Vec3D(2, 2, 2)


def test_resolution_and_bbox() -> None:
    bbox = BBox3D.from_coords((0, 0, 0), (16, 16, 80))
    idx = VolumetricScheme(default_desired_resolution=RES).to_index((Vec3D(8, 8, 40), bbox))
    assert idx.resolution == Vec3D(8, 8, 40)
    assert VolumetricScheme(default_desired_resolution=RES).to_index((None, bbox)).resolution == RES


def test_three_slices_at_index_resolution() -> None:
    scheme = VolumetricScheme(index_resolution=RES, default_desired_resolution=(8, 8, 40))
    idx = scheme.to_index((slice(0, 4), slice(-4, 4), slice(1, 3)))
    assert idx.bbox.bounds == ((0, 16), (-16, 16), (40, 120))
    assert idx.resolution == Vec3D(8, 8, 40)
    assert idx.shape == Vec3D(2, 4, 2)


def test_resolution_and_slices_without_layer_config() -> None:
    idx = VolumetricScheme().to_index(
        (Vec3D(64, 64, 40), slice(7500, 7564), slice(2250, 2314), slice(2000, 2001))
    )
    assert idx.shape == Vec3D(64, 64, 1)
    assert idx.bbox.bounds == ((480000, 484096), (144000, 148096), (80000, 80040))


def test_slices_interpreted_at_index_resolution_when_present() -> None:
    plain = VolumetricScheme().to_index((Vec3D(1, 2, 3), slice(0, 1), slice(0, 2), slice(0, 3)))
    assert plain.bbox.bounds == ((0, 1), (0, 4), (0, 9))
    assert plain.resolution == Vec3D(1, 2, 3)
    scheme = VolumetricScheme(
        index_resolution=(1, 2, 3), default_desired_resolution=(8, 8, 8), allow_slice_rounding=True
    )
    rounded = scheme.to_index((slice(0, 1), slice(0, 2), slice(0, 3)))
    assert rounded.bbox.bounds == ((0, 1), (0, 4), (0, 9))
    assert rounded.resolution == Vec3D(8, 8, 8)
    with pytest.raises(ValueError, match="allow_slice_rounding"):
        VolumetricScheme(index_resolution=(1, 2, 3), default_desired_resolution=(8, 8, 8)).to_index(
            (slice(0, 1), slice(0, 2), slice(0, 3))
        )


def test_index_resolution_wins_for_slices_the_index_resolution_sets_the_output() -> None:
    scheme = VolumetricScheme(index_resolution=RES)
    idx = scheme.to_index((Vec3D(8, 8, 40), slice(0, 8), slice(0, 8), slice(0, 1)))
    assert idx.bbox.bounds == ((0, 32), (0, 32), (0, 40))  # slices at 4 nm
    assert idx.resolution == Vec3D(8, 8, 40)  # returned at 8 nm
    assert idx.shape == Vec3D(4, 4, 1)


def test_resolution_and_tuple_of_slices() -> None:
    idx = VolumetricScheme().to_index((RES, (slice(0, 2), slice(0, 2), slice(0, 2))))
    assert idx.shape == Vec3D(2, 2, 2)


def test_allow_slice_rounding_floors_start_and_ceils_stop() -> None:
    scheme = VolumetricScheme(
        index_resolution=(1, 1, 1), default_desired_resolution=(4, 4, 4), allow_slice_rounding=True
    )
    idx = scheme.to_index((slice(1, 7), slice(0, 4), slice(0, 4)))
    assert idx.start == Vec3D(0, 0, 0)
    assert idx.stop == Vec3D(2, 1, 1)


@pytest.mark.parametrize(
    ("user_idx", "match"),
    [
        ((slice(0, 1), slice(0, 1), slice(0, 1)), "no index_resolution"),
        ((None, slice(0, 1), slice(0, 1), slice(0, 1)), "no index_resolution"),
        ((RES, slice(0, None), slice(0, 1), slice(0, 1)), "both ends|open|None"),
        ((RES, slice(0, 4, 2), slice(0, 1), slice(0, 1)), "step"),
        ((RES, slice(4, 0), slice(0, 1), slice(0, 1)), "start"),
        ((RES, slice(0, 1), slice(0, 1)), "indexed with"),
        ("0:10", "indexed with"),
        ([slice(0, 1)] * 3, "indexed with"),
        ((RES[:2], slice(0, 1), slice(0, 1), slice(0, 1)), "indexed with"),
    ],
)
def test_bad_indices_get_clear_errors(user_idx: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        VolumetricScheme(default_desired_resolution=RES).to_index(user_idx)


def test_no_desired_resolution_anywhere_is_an_error() -> None:
    with pytest.raises(ValueError, match="default_desired_resolution"):
        VolumetricScheme(index_resolution=RES).to_index((slice(0, 1), slice(0, 1), slice(0, 1)))
    with pytest.raises(ValueError, match="default_desired_resolution"):
        VolumetricScheme().to_index((None, BBox3D.from_coords((0, 0, 0), (4, 4, 40))))


def test_negative_slices_are_literal_coordinates() -> None:
    idx = VolumetricScheme().to_index((RES, slice(-4, -2), slice(0, 1), slice(0, 1)))
    assert idx.start == Vec3D(-4, 0, 0)
    assert idx.bbox.bounds[0] == (-16, -8)


def test_plain_slices_fast_path_builds_the_general_index() -> None:
    """``layer[x0:x1, y0:y1, z0:z1]`` takes a fast path when the index resolution is the
    desired one; it must build exactly the index the general path builds."""
    import random

    from lamina.volumetric.geometry import BBox3D, Vec3D
    from lamina.volumetric.index import VolumetricIndex
    from lamina.volumetric.scheme import VolumetricScheme

    rng = random.Random(7)
    for res in [(4, 4, 40), (8, 8, 40), (1, 1, 1), (6, 6, 30)]:
        scheme = VolumetricScheme(index_resolution=res, default_desired_resolution=res)
        assert scheme._fast_res is not None
        for _ in range(500):
            starts = [rng.randint(-5000, 5000) for _ in range(3)]
            stops = [s + rng.randint(0, 300) for s in starts]
            slices = tuple(slice(a, b) for a, b in zip(starts, stops, strict=True))
            fast = scheme.to_index(slices)
            general = VolumetricIndex(
                resolution=Vec3D(*res).float(), bbox=BBox3D.from_slices(slices, res)
            )
            assert fast == general
            assert hash(fast) == hash(general)
            assert repr(fast) == repr(general)
            assert fast.start == general.start
            assert fast.shape == general.shape
            assert [type(v) for v in fast.start] == [type(v) for v in general.start]
    # anything else takes the general path, with its errors
    scheme = VolumetricScheme(index_resolution=(4, 4, 40), default_desired_resolution=(4, 4, 40))
    with pytest.raises(ValueError, match="step"):
        scheme.to_index((slice(0, 4, 2), slice(0, 4), slice(0, 4)))
    with pytest.raises(ValueError, match=r"0\.5 voxels"):
        scheme.to_index((slice(0.5, 4), slice(0, 4), slice(0, 4))).shape  # noqa: B018
