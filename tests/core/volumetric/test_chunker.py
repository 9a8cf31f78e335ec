"""VolumetricIndexChunker (the reference system's chunker)."""

from __future__ import annotations

import pytest

import lamina
from lamina import Vec3D, VolumetricIndex
from lamina.volumetric.chunker import VolumetricIndexChunker

RES = Vec3D(4, 4, 40)


def starts(chunks: list[VolumetricIndex]) -> list[tuple[int, ...]]:
    return [tuple(c.start) for c in chunks]


def test_chunks_follow_the_grid_x_fastest() -> None:
    idx = VolumetricIndex.from_coords((0, 0, 0), (8, 8, 2), RES, chunk_id=3)
    chunks = VolumetricIndexChunker(chunk_size=(4, 4, 2))(idx, chunk_id_increment=10)
    assert starts(chunks) == [(0, 0, 0), (4, 0, 0), (0, 4, 0), (4, 4, 0)]
    assert all(c.shape == Vec3D(4, 4, 2) for c in chunks)
    assert [c.chunk_id for c in chunks] == [3, 13, 23, 33]
    assert all(c.resolution == RES for c in chunks)


def test_modes() -> None:
    idx = VolumetricIndex.from_coords((0, 0, 0), (10, 4, 1), RES)
    chunker = VolumetricIndexChunker(chunk_size=(4, 4, 1))
    assert starts(chunker(idx, mode="expand")) == [(0, 0, 0), (4, 0, 0), (8, 0, 0)]
    assert chunker(idx, mode="expand")[-1].stop == Vec3D(12, 4, 1)
    assert starts(chunker(idx, mode="shrink")) == [(0, 0, 0), (4, 0, 0)]
    exact = chunker(idx, mode="exact")
    assert [tuple(c.shape) for c in exact] == [(4, 4, 1), (4, 4, 1), (2, 4, 1)]
    assert chunker.get_shape(idx, mode="expand") == Vec3D(3, 1, 1)


def test_chunk_geometry_at_another_resolution_and_offset() -> None:
    idx = VolumetricIndex.from_coords((0, 0, 0), (8, 8, 1), RES)
    chunks = VolumetricIndexChunker(chunk_size=(2, 2, 1), resolution=(8, 8, 40))(idx)
    assert len(chunks) == 4  # 2×2 chunks of 8 nm voxels over 4×4 of them
    assert chunks[1].start == Vec3D(4, 0, 0)  # counted back at 4 nm
    shifted = VolumetricIndexChunker(chunk_size=(4, 4, 1), offset=(2, 0, 0))(idx)
    assert starts(shifted)[0] == (2, 0, 0)


def test_stride_start_offset_anchors_the_grid() -> None:
    idx = VolumetricIndex.from_coords((1, 0, 0), (9, 4, 1), RES)
    chunks = VolumetricIndexChunker(chunk_size=(4, 4, 1))(idx, stride_start_offset=(0, 0, 0))
    assert starts(chunks) == [(0, 0, 0), (4, 0, 0), (8, 0, 0)]


def test_keeps_the_rounding_flag() -> None:
    idx = VolumetricIndex.from_coords((0, 0, 0), (4, 4, 1), RES, allow_slice_rounding=True)
    assert all(c.allow_slice_rounding for c in VolumetricIndexChunker((2, 2, 1))(idx))


def test_checkerboard_split_covers_every_chunk_once_without_overlap() -> None:
    idx = VolumetricIndex.from_coords((0, 0, 0), (16, 16, 4), RES)
    base = VolumetricIndexChunker(chunk_size=(4, 4, 2))
    parts = base.split_into_nonoverlapping_chunkers(pad=(1, 1, 0))
    assert len(parts) == 8
    seen: list[tuple[int, ...]] = []
    for part in parts:
        chunks = part(idx)
        for a in chunks:
            assert a.shape == Vec3D(6, 6, 2)
            for b in chunks:
                assert a is b or not a.intersects(b)
        seen += [tuple(c.padded(((-1, -1), (-1, -1), 0)).start) for c in chunks]
    assert sorted(seen) == sorted(starts(base(idx)))


def test_checkerboard_preconditions() -> None:
    with pytest.raises(ValueError, match="half the chunk size"):
        VolumetricIndexChunker((4, 4, 2)).split_into_nonoverlapping_chunkers(pad=(3, 0, 0))
    with pytest.raises(NotImplementedError, match="stride"):
        VolumetricIndexChunker((4, 4, 2), stride=(2, 2, 2)).split_into_nonoverlapping_chunkers()
    with pytest.raises(NotImplementedError, match="offset"):
        VolumetricIndexChunker((4, 4, 2), offset=(1, 0, 0)).split_into_nonoverlapping_chunkers()


def test_superchunks() -> None:
    idx = VolumetricIndex.from_coords((0, 0, 0), (16, 4, 1), RES)
    chunks = VolumetricIndexChunker((4, 4, 1), max_superchunk_size=(8, 4, 1))(idx)
    assert [tuple(c.shape) for c in chunks] == [(8, 4, 1), (8, 4, 1)]


def test_buildable_by_name(lamina_host: object) -> None:
    chunker = lamina.build({"@type": "VolumetricIndexChunker", "chunk_size": [4, 4, 1]})
    assert isinstance(chunker, VolumetricIndexChunker)
