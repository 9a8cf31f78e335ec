"""Per-scale geometry and the chunk-alignment rule of volumetric backends, on the reference
system's documented examples."""

from __future__ import annotations

import pytest

from lamina import BBox3D, MemoryVolumetricBackend, Vec3D, VolumetricIndex
from lamina.volumetric.scales import ScaleGeometry, scale_geometry, scales_from_bbox


def test_offsets_are_floored_and_sizes_cover_the_box() -> None:
    bbox = BBox3D.from_coords((1, 1, 0), (4, 4, 4))
    scales = scales_from_bbox(bbox, [(2, 2, 1), (1, 1, 1)], chunk_size=(2, 2, 2))
    assert list(scales) == [Vec3D(1.0, 1.0, 1.0), Vec3D(2.0, 2.0, 1.0)]  # finest first
    fine, coarse = scales.values()
    assert fine.voxel_offset == Vec3D(1, 1, 0)
    assert fine.dataset_size == Vec3D(3, 3, 4)
    assert coarse.voxel_offset == Vec3D(0, 0, 0)
    assert coarse.dataset_size == Vec3D(2, 2, 4)


def test_offsets_just_below_an_integer_are_that_integer() -> None:
    bbox = BBox3D.from_coords((2.9999999 * 4, 0, 0), (40, 4, 4))
    geo = scale_geometry(bbox, (4, 4, 4), (1, 1, 1))
    assert geo.voxel_offset == Vec3D(3, 0, 0)  # not 2
    assert geo.voxel_end == Vec3D(10, 1, 1)
    partial = scale_geometry(BBox3D.from_coords((0, 0, 0), (10, 4, 4)), (4, 4, 4), (1, 1, 1))
    assert partial.dataset_size == Vec3D(3, 1, 1)  # the partial last voxel is inside


def test_scale_geometry_validates() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        ScaleGeometry(voxel_offset=(0, 0, 0), chunk_size=(0, 1, 1), dataset_size=(1, 1, 1))
    with pytest.raises(ValueError, match="at least one resolution"):
        scales_from_bbox(BBox3D.from_coords((0, 0, 0), (1, 1, 1)), [], (1, 1, 1))


def test_alignment_rule() -> None:
    res = Vec3D(2, 2, 1)
    backend = MemoryVolumetricBackend(
        dtype="uint8",
        num_channels=1,
        scales={
            res: ScaleGeometry(
                voxel_offset=(1, 2, 3), chunk_size=(3, 5, 7), dataset_size=(12, 12, 12)
            )
        },
    )
    aligned = VolumetricIndex.from_coords((1, -8, -18), (4, 12, -11), res)
    assert backend.is_chunk_aligned(aligned)
    backend.assert_idx_is_chunk_aligned(aligned)
    not_aligned = VolumetricIndex.from_coords((0, 0, 0), (13, 13, 13), res)
    assert not backend.is_chunk_aligned(not_aligned)
    with pytest.raises(ValueError, match=r"voxel offset \(1, 2, 3\), chunk size \(3, 5, 7\)"):
        backend.assert_idx_is_chunk_aligned(not_aligned)
    # A face on the dataset end is aligned even off the grid (partial edge chunk).
    edge = VolumetricIndex.from_coords((10, 2, 3), (13, 7, 10), res)
    assert backend.is_chunk_aligned(edge)


def test_get_chunk_aligned_index() -> None:
    res = Vec3D(1, 1, 1)
    backend = MemoryVolumetricBackend.from_bbox(
        BBox3D.from_coords((0, 0, 0), (64, 64, 64)), [res], (16, 16, 16)
    )
    idx = VolumetricIndex.from_coords((5, 16, 17), (20, 32, 40), res)
    assert backend.get_chunk_aligned_index(idx, "expand").start == Vec3D(0, 16, 16)
    assert backend.get_chunk_aligned_index(idx, "expand").stop == Vec3D(32, 32, 48)
    assert backend.get_chunk_aligned_index(idx, "shrink").start == Vec3D(16, 16, 32)
    with pytest.raises(ValueError, match="'expand' or 'shrink'"):
        backend.get_chunk_aligned_index(idx, "floor")  # type: ignore[arg-type]
