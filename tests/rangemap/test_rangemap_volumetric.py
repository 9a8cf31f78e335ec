"""The volumetric range map: the issue's typical uses and every rule of the README."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_rangemap import (
    RangeMapBackend,
    RangeMapError,
    UncoveredRegionError,
    build_range_mapped_layer,
)
from rangemap_support import RecordIndex, RecordingBackend, owner_map

import lamina
from lamina import (
    BBox3D,
    MemoryVolumetricBackend,
    ReadonlyLayerError,
    UnknownResolutionError,
    UnsupportedOperationError,
    Vec3D,
    VolumetricIndex,
    VolumetricLayer,
    build_memory_volumetric_layer,
    build_volumetric_layer,
)

RES = Vec3D(4.0, 4.0, 40.0)


def box(start: Any, stop: Any, res: Any = RES) -> BBox3D:
    return BBox3D.from_coords(start, stop, res)


def memory(
    start: Any,
    stop: Any,
    value: int | None = None,
    chunk: Any = (8, 8, 4),
    dtype: str = "uint8",
    resolutions: Any = (RES, (8, 8, 40)),
    **kwargs: Any,
) -> VolumetricLayer:
    """An in-memory volume over ``start``–``stop`` voxels at RES, filled with ``value`` at
    every resolution (through its backend: below its processors and readonly flag)."""
    layer = build_memory_volumetric_layer(
        box(start, stop), resolutions, chunk_size=chunk, dtype=dtype, **kwargs
    )
    if value is not None:
        for res in layer.backend.resolutions:
            layer.backend.write(VolumetricIndex(res, box(start, stop)), value)
    return layer


def recording(start: Any, stop: Any, value: int, **kwargs: Any) -> VolumetricLayer:
    inner = MemoryVolumetricBackend.from_bbox(box(start, stop), [RES], (16, 16, 4), "uint8")
    backend = RecordingBackend(inner)
    layer = build_volumetric_layer(backend, **kwargs)
    layer[RES, box(start, stop)] = value
    backend.writes.clear()
    return layer


def idx(start: Any, stop: Any, res: Any = RES, **kwargs: Any) -> VolumetricIndex:
    return VolumetricIndex.from_coords(start, stop, res, **kwargs)


def stored(layer: VolumetricLayer, start: Any, stop: Any) -> Any:
    """What a source stores, read through its own backend."""
    return layer.backend.read(idx(start, stop))


# -- the typical uses -----------------------------------------------------------------
def _cv_sections(path: Path, z0: int, z1: int, **kwargs: Any) -> VolumetricLayer:
    return lamina.build_cv_layer(
        str(path),
        info_scales=[RES],
        info_type="image",
        info_data_type="uint16",
        info_num_channels=1,
        info_chunk_size=(16, 16, 50),
        info_bbox=box((0, 0, z0), (16, 16, z1)),
        **kwargs,
    )


def test_sections_0_999_and_1000_1999_read_as_one_volume(tmp_path: Path) -> None:
    rec_a, rec_b = RecordIndex(), RecordIndex()
    first = _cv_sections(tmp_path / "sections-0-999", 0, 1000, read_procs=[rec_a])
    second = _cv_sections(tmp_path / "sections-1000-1999", 1000, 2000, read_procs=[rec_b])
    z = np.arange(2000, dtype=np.uint16)
    first[RES, 0:16, 0:16, 0:1000] = np.broadcast_to(z[:1000], (1, 16, 16, 1000))
    second[RES, 0:16, 0:16, 1000:2000] = np.broadcast_to(z[1000:], (1, 16, 16, 1000))
    stack = build_range_mapped_layer(
        [(box((0, 0, 0), (16, 16, 1000)), first), (box((0, 0, 1000), (16, 16, 2000)), second)],
        default_desired_resolution=RES,
        index_resolution=RES,
    )
    assert stack.backend.get_bounds(RES) == idx((0, 0, 0), (16, 16, 2000))
    assert stack.backend.get_chunk_size(RES) == Vec3D(16, 16, 50)
    np.testing.assert_array_equal(stack[0:16, 0:16, 0:2000][0, 3, 5], z)
    rec_a.seen.clear()
    rec_b.seen.clear()
    across = stack[2:6, 0:16, 990:1010]
    np.testing.assert_array_equal(across[0, 0, 0], z[990:1010])
    # each volume is asked for its own sections only
    assert [i.bbox for _, i in rec_a.seen] == [box((2, 0, 990), (6, 16, 1000))]
    assert [i.bbox for _, i in rec_b.seen] == [box((2, 0, 1000), (6, 16, 1010))]
    # a write across the boundary goes half to each volume
    stack[0:16, 0:16, 950:1050] = 7
    assert (first[RES, 0:16, 0:16, 950:1000] == 7).all()
    assert (second[RES, 0:16, 0:16, 1000:1050] == 7).all()
    assert (first[RES, 0:16, 0:16, 949:950] == 949).all()
    assert (second[RES, 0:16, 0:16, 1050:1051] == 1050).all()


def test_a_corrected_patch_overlaid_on_an_old_volume(tmp_path: Path) -> None:
    old = lamina.build_cv_layer(
        str(tmp_path / "old"),
        info_scales=[RES, (8, 8, 40)],
        info_type="segmentation",
        info_data_type="uint32",
        info_num_channels=1,
        info_chunk_size=(32, 32, 4),
        info_bbox=box((0, 0, 0), (128, 128, 16)),
    )
    old[RES, 0:128, 0:128, 0:16] = 1
    old[(8, 8, 40), 0:64, 0:64, 0:16] = 1
    patch_box = box((32, 64, 4), (96, 128, 12))
    patch = build_memory_volumetric_layer(
        patch_box, [RES, (8, 8, 40)], chunk_size=(32, 32, 4), dtype="uint32"
    )
    patch[RES, patch_box] = 2
    patch[(8, 8, 40), patch_box] = 2
    corrected = build_range_mapped_layer(
        [(box((0, 0, 0), (128, 128, 16)), old), (patch_box, patch)],
        default_desired_resolution=RES,
    )
    expected = np.ones((1, 128, 128, 16), np.uint32)
    expected[:, 32:96, 64:128, 4:12] = 2
    np.testing.assert_array_equal(corrected[box((0, 0, 0), (128, 128, 16))], expected)
    # at the coarser scale too (each source reads its own 8 nm scale)
    coarse = corrected[Vec3D(8, 8, 40), box((0, 0, 0), (128, 128, 16))]
    np.testing.assert_array_equal(coarse, expected[:, ::2, ::2, :])
    # the old volume under the patch is untouched, and writes into the patch box go to
    # the patch only
    corrected[box((32, 64, 4), (64, 96, 8))] = 3
    assert (stored(old, (32, 64, 4), (96, 128, 12)) == 1).all()
    assert (stored(patch, (32, 64, 4), (64, 96, 8)) == 3).all()
    assert corrected.backend.volume_type is None  # old: segmentation, patch: unknown


# -- precedence -------------------------------------------------------------------------------
def test_later_ranges_take_precedence_where_boxes_overlap() -> None:
    a = memory((0, 0, 0), (32, 32, 4), value=1)
    b = memory((0, 0, 0), (32, 32, 4), value=2)
    left, right = box((0, 0, 0), (24, 32, 4)), box((16, 0, 0), (32, 32, 4))
    ab = build_range_mapped_layer([(left, a), (right, b)], default_desired_resolution=RES)
    ba = build_range_mapped_layer([(right, b), (left, a)], default_desired_resolution=RES)
    whole = box((0, 0, 0), (32, 32, 4))
    np.testing.assert_array_equal(ab[whole][0, :, 0, 0], [1] * 16 + [2] * 16)
    np.testing.assert_array_equal(ba[whole][0, :, 0, 0], [1] * 24 + [2] * 8)
    # and writes go to the owner: the overlap x 16–24 belongs to b in ab
    ab[box((16, 0, 0), (24, 16, 4))] = 9
    assert (stored(b, (16, 0, 0), (24, 16, 4)) == 9).all()
    assert (stored(a, (16, 0, 0), (24, 16, 4)) == 1).all()


def test_a_box_inside_a_later_box_owns_nothing() -> None:
    hidden = recording((0, 0, 0), (16, 16, 4), value=1)
    cover = memory((0, 0, 0), (32, 32, 4), value=2)
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (16, 16, 4)), hidden), (box((0, 0, 0), (32, 32, 4)), cover)],
        default_desired_resolution=RES,
    )
    assert (layer[box((0, 0, 0), (32, 32, 4))] == 2).all()
    assert hidden.backend.reads == []  # type: ignore[attr-defined]


# -- each source reads only its part ----------------------------------------------------------
def test_each_source_reads_only_its_part() -> None:
    old = recording((0, 0, 0), (64, 64, 8), value=1)
    patch = recording((16, 16, 0), (32, 48, 8), value=2)
    patch2 = recording((24, 40, 4), (64, 64, 8), value=3)
    boxes = [
        box((0, 0, 0), (64, 64, 8)),
        box((16, 16, 0), (32, 48, 8)),
        box((24, 40, 4), (64, 64, 8)),
    ]
    layer = build_range_mapped_layer(
        list(zip(boxes, [old, patch, patch2], strict=True)), default_desired_resolution=RES
    )
    asked = idx((8, 8, 2), (56, 60, 8))
    out = layer[asked]
    owner = owner_map(boxes, asked)
    np.testing.assert_array_equal(out[0], (owner + 1).astype(np.uint8))
    for i, source in enumerate([old, patch, patch2]):
        reads = source.backend.reads  # type: ignore[attr-defined]
        assert reads, i
        covered = np.zeros(tuple(asked.shape), dtype=np.int64)
        for read in reads:
            assert read.contained_in(asked)
            _, where = read.get_intersection_and_subindex(asked)
            covered[where] += 1
        # every voxel it owns read exactly once, nothing else read at all
        np.testing.assert_array_equal(covered, (owner == i).astype(np.int64))


def test_a_read_inside_one_source_is_one_direct_read() -> None:
    inner = recording((0, 0, 0), (64, 64, 8), value=4)
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (32, 64, 8)), memory((0, 0, 0), (32, 64, 8), 1)),
         (box((32, 0, 0), (64, 64, 8)), inner)],
        default_desired_resolution=RES,
    )  # fmt: skip
    asked = idx((40, 8, 0), (56, 24, 4))
    assert (layer[asked] == 4).all()
    assert inner.backend.reads == [asked]  # type: ignore[attr-defined]


def test_sources_are_read_at_once() -> None:
    """A read spanning four sources asks them concurrently: each source's read waits at a
    barrier that only opens when all four are being read."""
    barrier = threading.Barrier(4, timeout=10)

    def wait(data: Any) -> Any:
        barrier.wait()
        return data

    sources = [memory((8 * i, 0, 0), (8 * i + 8, 16, 4), i, read_procs=[wait]) for i in range(4)]
    layer = build_range_mapped_layer(
        [(box((8 * i, 0, 0), (8 * i + 8, 16, 4)), s) for i, s in enumerate(sources)],
        default_desired_resolution=RES,
    )
    out = layer[box((0, 0, 0), (32, 16, 4))]
    np.testing.assert_array_equal(out[0, :, 0, 0], np.repeat(np.arange(4), 8))


# -- regions no box covers ----------------------------------------------------------------------
def _gapped(fill_value: Any) -> VolumetricLayer:
    return build_range_mapped_layer(
        [
            (box((0, 0, 0), (16, 16, 4)), memory((0, 0, 0), (16, 16, 4), 1)),
            (box((32, 0, 0), (48, 16, 4)), memory((32, 0, 0), (48, 16, 4), 2)),
        ],
        fill_value=fill_value,
        default_desired_resolution=RES,
    )


@pytest.mark.parametrize("fill", [0, 7])
def test_uncovered_regions_read_as_fill_value(fill: int) -> None:
    out = _gapped(fill)[box((0, 0, 0), (48, 16, 4))]
    np.testing.assert_array_equal(out[0, :, 0, 0], [1] * 16 + [fill] * 16 + [2] * 16)
    assert out.dtype == np.uint8
    outside = _gapped(fill)[box((100, 100, 100), (104, 104, 101))]
    assert (outside == fill).all()


def test_uncovered_regions_without_fill_value_are_an_error_naming_the_box() -> None:
    layer = _gapped(None)
    with pytest.raises(UncoveredRegionError, match="fill_value") as info:
        layer[box((8, 0, 0), (40, 16, 4))]
    message = str(info.value)
    assert "(64, 0, 0) - (128, 64, 160) nm" in message  # the gap x 16–32 voxels, in nm
    assert "voxels (16, 0, 0) - (32, 16, 4) at (4, 4, 40) nm" in message
    # reads inside the boxes are fine
    assert (layer[box((0, 0, 0), (16, 16, 4))] == 1).all()


def test_fill_value_must_fit_the_dtype() -> None:
    with pytest.raises(RangeMapError, match="fill_value 300"):
        _gapped(300)
    with pytest.raises(RangeMapError, match="fill_value must be a number"):
        _gapped("0")


# -- writes refused before anything is written --------------------------------------------------
def _snapshot(*layers: VolumetricLayer) -> list[Any]:
    return [layer.backend.read(layer.backend.get_bounds(RES)).copy() for layer in layers]


def test_a_write_touching_an_uncovered_region_writes_nothing() -> None:
    layer = _gapped(0)
    sources = [s for _, s in layer.backend.ranges]
    before = _snapshot(*sources)
    with pytest.raises(UncoveredRegionError, match=r"nothing was written") as info:
        layer[box((0, 0, 0), (48, 16, 4))] = 5
    assert "voxels (16, 0, 0) - (32, 16, 4)" in str(info.value)
    for a, b in zip(before, _snapshot(*sources), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_write_reaching_a_readonly_source_writes_nothing() -> None:
    writable = memory((0, 0, 0), (16, 16, 4), 1)
    readonly = memory((16, 0, 0), (32, 16, 4), 2, readonly=True)
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (16, 16, 4)), writable), (box((16, 0, 0), (32, 16, 4)), readonly)],
        default_desired_resolution=RES,
    )
    assert layer.backend.capabilities.writable
    with pytest.raises(ReadonlyLayerError, match=r"source 1 .*readonly; nothing was written"):
        layer[box((0, 0, 0), (32, 16, 4))] = 5
    assert (stored(writable, (0, 0, 0), (16, 16, 4)) == 1).all()
    layer[box((0, 0, 0), (16, 16, 4))] = 5  # the writable source alone is fine
    assert (stored(writable, (0, 0, 0), (16, 16, 4)) == 5).all()
    everything_readonly = build_range_mapped_layer(
        [(box((16, 0, 0), (32, 16, 4)), readonly)], default_desired_resolution=RES
    )
    assert not everything_readonly.backend.capabilities.writable
    with pytest.raises(UnsupportedOperationError, match="writable is False"):
        everything_readonly[box((16, 0, 0), (32, 16, 4))] = 5


def test_a_part_off_its_source_chunk_grid_writes_nothing() -> None:
    first = memory((0, 0, 0), (32, 16, 4), 1, chunk=(16, 16, 4))
    second = memory((0, 0, 0), (32, 16, 4), 2, chunk=(16, 16, 4))
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (8, 16, 4)), first), (box((8, 0, 0), (32, 16, 4)), second)],
        default_desired_resolution=RES,
    )
    before = _snapshot(first, second)
    # first's part 0–8 ends at its box edge but inside its volume: not on its chunk grid
    with pytest.raises(ValueError, match=r"source 0 .*not aligned to the chunk grid.*Nothing"):
        layer[box((0, 0, 0), (32, 16, 4))] = 5
    for a, b in zip(before, _snapshot(first, second), strict=True):
        np.testing.assert_array_equal(a, b)
    loose = layer.with_changes(
        backend=layer.backend.with_changes(enforce_chunk_aligned_writes=False)
    )
    loose[box((0, 0, 0), (32, 16, 4))] = 5
    assert (stored(first, (0, 0, 0), (8, 16, 4)) == 5).all()
    assert (stored(first, (8, 0, 0), (32, 16, 4)) == 1).all()
    assert (stored(second, (8, 0, 0), (32, 16, 4)) == 5).all()


def test_a_part_outside_its_source_bounds_writes_nothing() -> None:
    small = memory((0, 0, 0), (16, 16, 4), 1, chunk=(4, 8, 4))  # its box reaches past it
    other = memory((16, 0, 0), (32, 16, 4), 2, chunk=(4, 8, 4))
    layer = build_range_mapped_layer(
        [(box((16, 0, 0), (32, 16, 4)), other), (box((0, 0, 0), (20, 16, 4)), small)],
        default_desired_resolution=RES,
    )
    with pytest.raises(ValueError, match=r"source 1 .*outside its dataset bounds"):
        layer[box((0, 0, 0), (32, 16, 4))] = 5
    assert (stored(other, (16, 0, 0), (32, 16, 4)) == 2).all()


def test_sources_with_write_processors_are_written_first() -> None:
    """A source whose write processors may refuse cannot be checked in advance, so it is
    written before the checked ones: its refusal leaves them untouched."""

    def refuse(data: Any) -> Any:
        raise RuntimeError("this source refuses every write")

    checked = memory((0, 0, 0), (16, 16, 4), 1)
    unchecked = memory((16, 0, 0), (32, 16, 4), 2, write_procs=[refuse])
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (16, 16, 4)), checked), (box((16, 0, 0), (32, 16, 4)), unchecked)],
        default_desired_resolution=RES,
    )
    with pytest.raises(RuntimeError, match="refuses") as info:
        layer[box((0, 0, 0), (32, 16, 4))] = 5
    assert any("source 1" in note for note in info.value.__notes__)
    assert (stored(checked, (0, 0, 0), (16, 16, 4)) == 1).all()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.ones((1, 32, 16, 3), np.uint8), "spatial shape"),
        (np.ones((2, 32, 16, 4), np.uint8), "channel"),
        (np.full((1, 32, 16, 4), 0.5), "without losing data"),
    ],
)
def test_bad_write_data_writes_nothing(data: Any, match: str) -> None:
    a, b = memory((0, 0, 0), (16, 16, 4), 1), memory((16, 0, 0), (32, 16, 4), 2)
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (16, 16, 4)), a), (box((16, 0, 0), (32, 16, 4)), b)],
        default_desired_resolution=RES,
    )
    with pytest.raises(ValueError, match=match):
        layer[box((0, 0, 0), (32, 16, 4))] = data
    assert (stored(a, (0, 0, 0), (16, 16, 4)) == 1).all()
    assert (stored(b, (16, 0, 0), (32, 16, 4)) == 2).all()


# -- sources agree on what they hold ---------------------------------------------------------------
def test_sources_of_different_dtypes_are_refused_naming_each() -> None:
    a = memory((0, 0, 0), (16, 16, 4), dtype="uint8", name="mem://a")
    b = memory((16, 0, 0), (32, 16, 4), dtype="float32", name="mem://b")
    with pytest.raises(RangeMapError, match=r"one dtype") as info:
        build_range_mapped_layer(
            [(box((0, 0, 0), (16, 16, 4)), a), (box((16, 0, 0), (32, 16, 4)), b)]
        )
    message = str(info.value)
    assert "source 0 ('mem://a'" in message
    assert "uint8" in message
    assert "source 1 ('mem://b'" in message
    assert "float32" in message


def test_sources_of_different_channel_counts_are_refused() -> None:
    a = memory((0, 0, 0), (16, 16, 4), num_channels=1)
    b = memory((16, 0, 0), (32, 16, 4), num_channels=3)
    with pytest.raises(RangeMapError, match=r"one num_channels.*: 1;.*: 3"):
        build_range_mapped_layer(
            [(box((0, 0, 0), (16, 16, 4)), a), (box((16, 0, 0), (32, 16, 4)), b)]
        )


def test_sources_sharing_no_resolution_are_refused() -> None:
    a = memory((0, 0, 0), (16, 16, 4), resolutions=[RES])
    b = memory((0, 0, 0), (16, 16, 4), resolutions=[(8, 8, 40)])
    with pytest.raises(RangeMapError, match=r"share no resolution.*\(4, 4, 40\).*\(8, 8, 40\)"):
        build_range_mapped_layer(
            [(box((0, 0, 0), (8, 16, 4)), a), (box((8, 0, 0), (16, 16, 4)), b)]
        )


@pytest.mark.parametrize(
    ("ranges", "match"),
    [
        ([], "empty"),
        ("not ranges", "sequence"),
        ([(box((0, 0, 0), (1, 1, 1)),)], "pair"),
        ([((0, 0, 0), "layer")], "a BBox3D"),
        ([(BBox3D.empty(), None)], "not empty"),
    ],
)
def test_malformed_ranges_are_refused(ranges: Any, match: str) -> None:
    with pytest.raises(RangeMapError, match=match):
        build_range_mapped_layer(ranges)


def test_a_source_that_is_not_a_volumetric_layer_is_refused() -> None:
    with pytest.raises(RangeMapError, match=r"ranges\[0\].*VolumetricLayer"):
        build_range_mapped_layer([(box((0, 0, 0), (1, 1, 1)), lamina.build_memory_db_layer())])


def test_a_bare_backend_is_taken_as_its_layer() -> None:
    backend = MemoryVolumetricBackend.from_bbox(box((0, 0, 0), (16, 16, 4)), [RES], (16, 16, 4))
    layer = build_range_mapped_layer([(box((0, 0, 0), (16, 16, 4)), backend)])
    layer[RES, box((0, 0, 0), (16, 16, 4))] = 3
    assert (backend.read(idx((0, 0, 0), (16, 16, 4))) == 3).all()


# -- geometry ------------------------------------------------------------------------------------
def test_geometry_is_the_bounding_box_and_the_common_resolutions() -> None:
    a = memory((0, 0, 0), (64, 32, 8), resolutions=[RES, (8, 8, 40), (16, 16, 40)])
    b = memory((64, 32, 0), (128, 64, 8), resolutions=[(8, 8, 40), RES])
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (64, 32, 8)), a), (box((64, 32, 0), (128, 64, 8)), b)], fill_value=0
    )
    backend = layer.backend
    assert backend.resolutions == (RES, Vec3D(8.0, 8.0, 40.0))
    assert backend.get_bounds(RES) == idx((0, 0, 0), (128, 64, 8))
    assert backend.get_bounds((8, 8, 40)) == idx((0, 0, 0), (64, 32, 8), (8, 8, 40))
    assert backend.get_chunk_size(RES) == Vec3D(8, 8, 4)
    assert backend.dtype == np.uint8
    assert backend.num_channels == 1
    with pytest.raises(UnknownResolutionError, match=r"source 1 .*\(4, 4, 40\), \(8, 8, 40\)"):
        layer[(16, 16, 40), box((0, 0, 0), (64, 32, 8))]
    assert "(4, 4, 40) nm: offset (0, 0, 0), size (128, 64, 8), chunk (8, 8, 4)" in (
        backend.pformat()
    )


def test_chunk_size_where_the_sources_disagree_is_a_clear_error() -> None:
    a = memory((0, 0, 0), (32, 16, 4), chunk=(16, 16, 4), name="mem://a16")
    b = memory((32, 0, 0), (64, 16, 4), chunk=(32, 16, 4), name="mem://b32")
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (32, 16, 4)), a), (box((32, 0, 0), (64, 16, 4)), b)]
    )
    with pytest.raises(RangeMapError, match=r"no common chunk grid") as info:
        layer.backend.get_chunk_size(RES)
    assert "'mem://a16'" in str(info.value)
    assert "chunk size (16, 16, 4)" in str(info.value)
    assert "chunk size (32, 16, 4)" in str(info.value)
    assert "chunk differs by source" in layer.backend.pformat()
    # one size but grids out of phase (b's volume starts at x = 8) is no common grid either
    c = memory((8, 0, 0), (64, 16, 4), chunk=(16, 16, 4))
    shifted = build_range_mapped_layer(
        [(box((0, 0, 0), (32, 16, 4)), a), (box((32, 0, 0), (64, 16, 4)), c)]
    )
    with pytest.raises(RangeMapError, match=r"voxel offset \(8, 0, 0\)"):
        shifted.backend.get_chunk_size(RES)


def test_volume_type_where_the_sources_agree() -> None:
    seg = [memory((0, 0, 0), (16, 16, 4), volume_type="segmentation") for _ in range(2)]
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (8, 16, 4)), seg[0]), (box((8, 0, 0), (16, 16, 4)), seg[1])]
    )
    assert layer.backend.volume_type == "segmentation"


# -- boxes off the voxel grid --------------------------------------------------------------------
def _off_grid(**kwargs: Any) -> VolumetricLayer:
    # the boxes meet at x = 4100 nm: voxel 1025 at 4 nm, but 512.5 at 8 nm
    edge = BBox3D(bounds=((0, 4100), (0, 64), (0, 160)))
    rest = BBox3D(bounds=((4100, 8192), (0, 64), (0, 160)))
    a = memory((0, 0, 0), (2048, 16, 4), 1, chunk=(256, 16, 4))
    b = memory((0, 0, 0), (2048, 16, 4), 2, chunk=(256, 16, 4))  # both filled at 4 and 8 nm
    return build_range_mapped_layer([(edge, a), (rest, b)], **kwargs)


def test_a_box_edge_off_the_voxel_grid_is_an_error_naming_the_box() -> None:
    layer = _off_grid()
    fine = layer[RES, box((1000, 0, 0), (1050, 16, 4))][0, :, 0, 0]
    np.testing.assert_array_equal(fine, [1] * 25 + [2] * 25)
    with pytest.raises(RangeMapError, match="not on the voxel grid") as info:
        layer[(8, 8, 40), box((1000, 0, 0), (1050, 16, 4))]
    message = str(info.value)
    assert "source 0" in message
    assert "(0, 0, 0) - (4100, 64, 160) nm" in message
    assert "4100.0 nm = 512.5 voxels" in message
    assert "allow_slice_rounding=True" in message
    # a read that does not reach the off-grid edge is fine
    assert (layer[(8, 8, 40), box((0, 0, 0), (1000, 16, 4))] == 1).all()


def test_with_rounding_a_voxel_belongs_to_the_box_holding_its_centre() -> None:
    layer = _off_grid(allow_slice_rounding=True)
    asked = idx((500, 0, 0), (525, 8, 2), (8, 8, 40))
    out = layer[asked]
    owner = owner_map([box for box, _ in layer.backend.ranges], asked)
    np.testing.assert_array_equal(out[0], (owner + 1).astype(np.uint8))
    assert out[0, 12, 0, 0] == 2  # voxel 512 (4096–4104 nm) has its centre at 4100 nm


# -- sources keep their resolutions and processors -------------------------------------------------
def test_sources_keep_their_own_resolution_and_processors() -> None:
    fine = memory((0, 0, 0), (32, 32, 4), 1, resolutions=[RES], read_procs=[lambda d: d + 10])
    coarse_backend = MemoryVolumetricBackend.from_bbox(
        box((0, 0, 0), (64, 32, 4)), [(8, 8, 40)], (16, 16, 4)
    )
    coarse_only = build_volumetric_layer(
        coarse_backend, data_resolution=(8, 8, 40), interpolation_mode="img"
    )
    coarse_only[(8, 8, 40), box((0, 0, 0), (64, 32, 4))] = 5
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (32, 32, 4)), fine), (box((32, 0, 0), (64, 32, 4)), coarse_only)],
        default_desired_resolution=RES,
    )
    assert layer.backend.resolutions == (RES,)
    out = layer[box((0, 0, 0), (64, 32, 4))]
    np.testing.assert_array_equal(out[0, :, 0, 0], [11] * 32 + [5] * 32)
    # a write at 4 nm reaches the coarse source through its own resampling
    layer[box((32, 0, 0), (64, 32, 4))] = 7
    assert (coarse_backend.read(idx((16, 0, 0), (32, 16, 4), (8, 8, 40))) == 7).all()


def test_the_range_map_layer_has_its_own_processors_and_index_forms() -> None:
    a, b = memory((0, 0, 0), (16, 16, 4), 1), memory((16, 0, 0), (32, 16, 4), 2)
    rec = RecordIndex()
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (16, 16, 4)), a), (box((16, 0, 0), (32, 16, 4)), b)],
        index_resolution=(2, 2, 40),
        default_desired_resolution=RES,
        read_procs=[rec, lambda d: d * 3],
    )
    out = layer[0:64, 0:32, 0:4]  # slices at the index resolution, 2 nm
    assert out.shape == (1, 32, 16, 4)
    np.testing.assert_array_equal(out[0, :, 0, 0], [3] * 16 + [6] * 16)
    assert rec.seen == [("read", idx((0, 0, 0), (32, 16, 4)))]
    readonly = build_range_mapped_layer(
        [(box((0, 0, 0), (16, 16, 4)), a)], readonly=True, default_desired_resolution=RES
    )
    with pytest.raises(ReadonlyLayerError):
        readonly[box((0, 0, 0), (16, 16, 4))] = 0


# -- changes, delete, pickling ------------------------------------------------------------------
def test_with_changes_forwards_options_and_refuses_name() -> None:
    a, b = memory((0, 0, 0), (16, 16, 4)), memory((16, 0, 0), (32, 16, 4))
    backend = RangeMapBackend(
        ranges=[(box((0, 0, 0), (16, 16, 4)), a), (box((16, 0, 0), (32, 16, 4)), b)]
    )
    loose = backend.with_changes(enforce_chunk_aligned_writes=False)
    assert all(not layer.backend.enforce_chunk_aligned_writes for _, layer in loose.ranges)
    assert all(layer.backend.enforce_chunk_aligned_writes for _, layer in backend.ranges)
    with pytest.raises(KeyError, match=r"name=.*stores nothing of its own"):
        backend.with_changes(name="elsewhere")
    with pytest.raises(KeyError, match="bounding box of its ranges"):
        backend.with_changes(voxel_offset_res=((0, 0, 0), RES))
    with pytest.raises(KeyError, match=r"cannot be forwarded to source 0 .*allow_cache"):
        backend.with_changes(allow_cache=True)
    with pytest.raises(KeyError, match="no_such_option"):
        backend.with_changes(no_such_option=1)  # type: ignore[call-arg]


def test_delete_is_refused_and_deletes_nothing() -> None:
    a = memory((0, 0, 0), (16, 16, 4), 1)
    layer = build_range_mapped_layer([(box((0, 0, 0), (16, 16, 4)), a)])
    with pytest.raises(UnsupportedOperationError, match="delete"):
        layer.delete()
    with pytest.raises(UnsupportedOperationError, match="does not delete its sources"):
        layer.backend.delete()
    assert (stored(a, (0, 0, 0), (16, 16, 4)) == 1).all()


def test_pickles_by_its_sources_specs(tmp_path: Path) -> None:
    first = _cv_sections(tmp_path / "a", 0, 100)
    second = _cv_sections(tmp_path / "b", 100, 200)
    first[RES, 0:16, 0:16, 0:100] = 1
    second[RES, 0:16, 0:16, 100:200] = 2
    layer = build_range_mapped_layer(
        [(box((0, 0, 0), (16, 16, 100)), first), (box((0, 0, 100), (16, 16, 200)), second)],
        default_desired_resolution=RES,
    )
    blob = pickle.dumps(layer)
    assert len(blob) < 20_000  # specs, not the 100 kB of voxels
    clone = pickle.loads(blob)
    assert clone.name == layer.name
    np.testing.assert_array_equal(
        clone[box((0, 0, 0), (16, 16, 200))], layer[box((0, 0, 0), (16, 16, 200))]
    )
    clone[box((0, 0, 50), (16, 16, 100))] = 9  # the clone writes the same files
    assert (first[RES, 0:16, 0:16, 50:100] == 9).all()


def test_a_range_map_among_the_sources_of_another() -> None:
    def quarter(i: int, j: int) -> tuple[BBox3D, VolumetricLayer]:
        start, stop = (16 * i, 16 * j, 0), (16 * i + 16, 16 * j + 16, 4)
        return box(start, stop), memory(start, stop, 1 + i + 2 * j)

    left = build_range_mapped_layer([quarter(0, 0), quarter(0, 1)])
    right = build_range_mapped_layer([quarter(1, 0), quarter(1, 1)])
    whole = build_range_mapped_layer(
        [(box((0, 0, 0), (16, 32, 4)), left), (box((16, 0, 0), (32, 32, 4)), right)],
        default_desired_resolution=RES,
    )
    out = whole[box((0, 0, 0), (32, 32, 4))]
    np.testing.assert_array_equal(out[0, ::16, ::16, 0], [[1, 3], [2, 4]])
    whole[box((8, 8, 0), (24, 24, 4))] = 9
    assert (stored(right.backend.ranges[1][1], (16, 16, 0), (24, 24, 4)) == 9).all()


def test_warm_up_reaches_every_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flow warms up the range map's backend before forking workers; the map forwards
    it to each source's backend."""
    warmed: list[str] = []
    monkeypatch.setattr(MemoryVolumetricBackend, "warm_up", lambda self: warmed.append(self.name))
    a, b = memory((0, 0, 0), (16, 16, 4), 1), memory((16, 0, 0), (32, 16, 4), 2)
    mapped = build_range_mapped_layer(
        [(box((0, 0, 0), (16, 16, 4)), a), (box((16, 0, 0), (32, 16, 4)), b)]
    )
    mapped.backend.warm_up()
    assert warmed == [a.backend.name, b.backend.name]
