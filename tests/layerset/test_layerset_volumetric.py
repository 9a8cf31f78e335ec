"""Volumetric layer sets: reads, partial writes, user-index forms, geometry across members,
errors that name members and keys, processors, with_changes, delete (as in the reference)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_layerset import (
    MembersDisagreeError,
    UnknownMemberError,
    VolumetricSetBackend,
    build_volumetric_layer_set,
)
from layerset_support import RES, DenseBackend, bbox_nm, box, is_stored, memory_member

import lamina
from lamina import (
    BBox3D,
    ReadonlyLayerError,
    ROIMaskProcessor,
    Vec3D,
    VolumetricIndex,
    VolumetricIndexTranslator,
    VolumetricLayer,
    build_memory_volumetric_layer,
)
from lamina.testing import TestVolume

COARSE = Vec3D(8.0, 8.0, 40.0)
# 64 x 64 x 8 voxels at 4x4x40 from the origin, chunks 16 x 16 x 4.
BOX = BBox3D.from_coords((0, 0, 0), (64, 64, 8), RES)


def member(dtype: str = "uint8", channels: int = 1, **kwargs: Any) -> VolumetricLayer:
    kwargs.setdefault("chunk_size", (16, 16, 4))
    return build_memory_volumetric_layer(
        BOX, [RES, COARSE], dtype=dtype, num_channels=channels, **kwargs
    )


def em_set(**kwargs: Any) -> VolumetricLayer:
    """The normal case: uint8 images, uint64 labels, 3-channel float affinities."""
    kwargs.setdefault("default_desired_resolution", RES)
    kwargs.setdefault("index_resolution", RES)
    return build_volumetric_layer_set(
        {"img": member("uint8"), "seg": member("uint64"), "aff": member("float32", 3)}, **kwargs
    )


# -- reads and writes -----------------------------------------------------------------------------
def test_read_returns_every_member_in_its_own_dtype_and_channels() -> None:
    layer_set = em_set()
    layer_set[0:16, 0:16, 0:4] = {
        "img": 200,
        "seg": 2**60 + 1,  # a uint64 id that float or int64 round trips would damage
        "aff": np.full((3, 16, 16, 4), 0.25, np.float32),
    }
    out = layer_set[0:16, 0:16, 0:4]
    assert list(out) == ["img", "seg", "aff"]
    assert out["img"].dtype == np.uint8
    assert out["img"].shape == (1, 16, 16, 4)
    assert out["seg"].dtype == np.uint64
    assert int(out["seg"].max()) == 2**60 + 1
    assert out["aff"].shape == (3, 16, 16, 4)
    assert (out["img"] == 200).all()
    assert (out["aff"] == 0.25).all()


def test_write_only_touches_the_members_named() -> None:
    layer_set = em_set()
    layer_set[0:16, 0:16, 0:4] = {"seg": 9}
    layer_set[16:32, 0:16, 0:4] = {"img": 1, "aff": 0.5}
    members = layer_set.backend.layers
    assert is_stored(members["seg"].backend, box((0, 0, 0), (16, 16, 4)))
    assert not is_stored(members["img"].backend, box((0, 0, 0), (16, 16, 4)))
    assert not is_stored(members["seg"].backend, box((16, 0, 0), (32, 16, 4)))
    out = layer_set[0:32, 0:16, 0:4]
    assert (out["seg"][:, :16] == 9).all()
    assert not out["seg"][:, 16:].any()
    assert (out["img"][:, 16:] == 1).all()
    assert not out["img"][:, :16].any()


def test_tensors_and_lists_are_accepted_per_member() -> None:
    torch = pytest.importorskip("torch")
    layer_set = em_set()
    layer_set[0:16, 0:16, 0:4] = {
        "img": torch.full((1, 16, 16, 4), 7, dtype=torch.uint8),
        "aff": torch.ones((3, 16, 16, 4)),
    }
    out = layer_set[0:16, 0:16, 0:4]
    assert (out["img"] == 7).all()
    assert (out["aff"] == 1).all()


def test_write_with_procs_at_a_standard_index() -> None:
    layer_set = em_set()
    idx = box((16, 16, 4), (32, 32, 8))
    layer_set.write_with_procs(idx, {"img": 3})
    assert (layer_set.read_with_procs(idx)["img"] == 3).all()
    assert (layer_set.backend.read(idx)["img"] == 3).all()


# -- user index forms, at set level ---------------------------------------------------------------
def test_every_user_index_form_reads_the_same_region() -> None:
    layer_set = em_set(index_resolution=None)
    data = np.arange(16 * 16 * 4, dtype=np.uint8).reshape(1, 16, 16, 4)
    idx = box((16, 32, 4), (32, 48, 8))
    layer_set[idx] = {"img": data}
    s = (slice(16, 32), slice(32, 48), slice(4, 8))
    forms = [idx, idx.bbox, (RES, idx.bbox), (None, idx.bbox), (RES, *s), (RES, s)]
    for form in forms:
        np.testing.assert_array_equal(layer_set[form]["img"], data, err_msg=repr(form))
    with_index_res = em_set(index_resolution=RES)
    with_index_res[idx] = {"img": data}
    for form in [s, (None, *s), (None, s), (COARSE, *s)]:
        got = with_index_res[form]["img"]
        if form[0] is COARSE:  # slices still at the index resolution, read at 8x8x40
            assert got.shape == (1, 8, 8, 4)
        else:
            np.testing.assert_array_equal(got, data, err_msg=repr(form))


def test_index_and_desired_resolutions_are_the_sets_not_the_members() -> None:
    # The member's own index resolution (8x8x40) would place these slices elsewhere.
    img = member("uint8", index_resolution=COARSE, default_desired_resolution=COARSE)
    layer_set = build_volumetric_layer_set(
        {"img": img}, index_resolution=RES, default_desired_resolution=COARSE
    )
    # slices at 4x4x40 (0..32 = 0..128 nm), read at 8x8x40: 16 voxels
    img.backend.write(VolumetricIndex.from_coords((0, 0, 0), (16, 16, 4), COARSE), 5)
    out = layer_set[0:32, 0:32, 0:4]
    assert out["img"].shape == (1, 16, 16, 4)
    assert (out["img"] == 5).all()


def test_slice_rounding_is_the_sets() -> None:
    layer_set = em_set(default_desired_resolution=COARSE)
    with pytest.raises(ValueError, match="voxel"):
        layer_set[0:3, 0:16, 0:4]
    rounding = em_set(default_desired_resolution=COARSE, allow_slice_rounding=True)
    assert rounding[0:3, 0:16, 0:4]["img"].shape == (1, 2, 8, 4)


def test_members_own_processors_and_resampling_apply() -> None:
    shifted = member("uint8", index_procs=[VolumetricIndexTranslator((16, 0, 0), RES)])
    plus_one = member("uint8", read_procs=[lambda d: d + 1])
    # stores 8x8x40 only: read at 4x4x40 through its data_resolution
    coarse = build_memory_volumetric_layer(
        BOX, [COARSE], chunk_size=(8, 8, 4), data_resolution=COARSE, interpolation_mode="img"
    )
    layer_set = build_volumetric_layer_set(
        {"shifted": shifted, "plus_one": plus_one, "coarse": coarse},
        default_desired_resolution=RES,
        index_resolution=RES,
    )
    shifted.backend.write(box((16, 0, 0), (32, 16, 4)), 4)
    coarse.backend.write(VolumetricIndex.from_coords((0, 0, 0), (8, 8, 4), COARSE), 6)
    out = layer_set[0:16, 0:16, 0:4]
    assert (out["shifted"] == 4).all()
    assert (out["plus_one"] == 1).all()
    assert out["coarse"].shape == (1, 16, 16, 4)
    assert (out["coarse"] == 6).all()
    layer_set[0:16, 0:16, 0:4] = {"coarse": 2}  # resampled down on the way in
    assert (
        coarse.backend.read(VolumetricIndex.from_coords((0, 0, 0), (8, 8, 4), COARSE)) == 2
    ).all()


def test_set_processors_see_the_whole_dict() -> None:
    seen: list[Any] = []

    def on_read(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(sorted(data))
        return {**data, "sum": data["img"].astype(np.int64) + data["seg"].astype(np.int64)}

    def on_write(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(sorted(data))
        return {k: v * 2 for k, v in data.items()}

    layer_set = build_volumetric_layer_set(
        {"img": member("uint8"), "seg": member("uint64")},
        default_desired_resolution=RES,
        index_resolution=RES,
        index_procs=[VolumetricIndexTranslator((16, 0, 0), RES)],
        read_procs=[on_read],
        write_procs=[on_write],
    )
    layer_set[0:16, 0:16, 0:4] = {"img": 3, "seg": 10}
    assert seen == [["img", "seg"]]
    out = layer_set[0:16, 0:16, 0:4]
    assert seen[-1] == ["img", "seg"]
    assert (out["img"] == 6).all()
    assert (out["seg"] == 20).all()
    assert (out["sum"] == 26).all()
    # the set's index processor moved the region: the members hold it at x 16..32
    assert (layer_set.backend.layers["img"].backend.read(box((16, 0, 0), (32, 16, 4))) == 6).all()


def test_nested_sets() -> None:
    inner = build_volumetric_layer_set({"a": member("uint8"), "b": member("uint16")})
    outer = build_volumetric_layer_set(
        {"inner": inner, "c": member("uint64")},
        default_desired_resolution=RES,
        index_resolution=RES,
    )
    outer[0:16, 0:16, 0:4] = {"inner": {"b": 300}, "c": 1}
    out = outer[0:16, 0:16, 0:4]
    assert (out["inner"]["b"] == 300).all()
    assert not out["inner"]["a"].any()
    with pytest.raises(UnknownMemberError, match=r"\['x'\]"):
        outer[0:16, 0:16, 0:4] = {"inner": {"x": 1}, "c": 5}
    assert not (outer[0:16, 0:16, 0:4]["c"] == 5).any()  # nothing was written


# -- ROIMaskProcessor: a new dict, the caller's unchanged ---------------------------------------
def test_roi_mask_processor_on_set_reads() -> None:
    roi = ROIMaskProcessor(start_coord=(4, 4, 0), end_coord=(12, 8, 2), resolution=RES,
                           targets=["img", "seg"])  # fmt: skip
    layer_set = em_set(read_procs=[roi])
    out = layer_set[0:16, 0:16, 0:4]
    assert set(out) == {"img", "seg", "aff", "img_mask", "seg_mask"}
    mask = out["img_mask"]
    assert mask.dtype == np.uint8
    assert mask.shape == out["img"].shape
    expected = np.zeros((1, 16, 16, 4), np.uint8)
    expected[:, 4:12, 4:8, 0:2] = 1
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(out["seg_mask"], expected)


class PadReads(lamina.JointIndexDataProcessor[Any, VolumetricIndex]):
    """Reads a padded region (as an augmentation needing context would)."""

    def process_index(self, idx: VolumetricIndex, mode: Any) -> tuple[VolumetricIndex, Any]:
        return idx.padded((2, 2, 0)), None

    def process_data(self, data: Any, mode: Any, state: Any) -> Any:
        return data


def test_roi_mask_processor_with_upstream_pad_and_an_existing_mask() -> None:
    roi = ROIMaskProcessor((0, 0, 0), (2, 2, 1), RES, ["img"], upstream_pad=(2, 2, 0))
    pad = build_volumetric_layer_set(
        {"img": member("uint8")},
        index_resolution=RES,
        default_desired_resolution=RES,
        read_procs=[PadReads(), roi],  # read_procs[0] is closest to the members
    )
    out = pad[0:16, 0:16, 0:4]  # the members read -2..18: the mask is in that frame
    assert out["img"].shape == (1, 20, 20, 4)
    assert out["img_mask"].sum() == 4
    assert out["img_mask"][0, 2:4, 2:4, 0].all()
    existing = build_volumetric_layer_set(
        {"img": member("uint8"), "img_mask": member("uint8")},
        index_resolution=RES,
        default_desired_resolution=RES,
        read_procs=[ROIMaskProcessor((0, 0, 0), (2, 2, 1), RES, ["img"])],
    )
    existing[0:16, 0:16, 0:4] = {"img_mask": 9}
    assert (existing[0:16, 0:16, 0:4]["img_mask"] == 9).all()  # kept, not replaced


def test_roi_mask_processor_names_a_missing_target_and_leaves_the_input_alone() -> None:
    roi = ROIMaskProcessor((0, 0, 0), (2, 2, 1), RES, ["img", "labels"])
    layer_set = em_set(read_procs=[roi])
    with pytest.raises(KeyError, match="labels"):
        layer_set[0:16, 0:16, 0:4]
    idx = box((0, 0, 0), (16, 16, 4))
    _, state = roi.process_index(idx, "read")
    given = {"img": np.zeros((1, 16, 16, 4)), "labels": np.zeros((1, 16, 16, 4))}
    out = roi.process_data(given, "read", state)
    assert set(given) == {"img", "labels"}  # the caller's dict is not changed
    assert out["img_mask"].sum() == 4


# -- errors that name keys and members ------------------------------------------------------------
def test_non_dict_empty_and_unknown_keys_are_refused_naming_keys_and_members() -> None:
    layer_set = em_set()
    with pytest.raises(ValueError, match=r"takes a dict .*\['img', 'seg', 'aff'\].*got ndarray"):
        layer_set[0:16, 0:16, 0:4] = np.zeros((1, 16, 16, 4), np.uint8)
    with pytest.raises(ValueError, match=r"empty dict.*\['img', 'seg', 'aff'\]"):
        layer_set[0:16, 0:16, 0:4] = {}
    with pytest.raises(KeyError) as info:
        layer_set[0:16, 0:16, 0:4] = {"img": 1, "sge": 2}
    assert isinstance(info.value, UnknownMemberError)
    text = str(info.value)
    assert "['sge']" in text
    assert "['img', 'sge']" in text
    assert "['img', 'seg', 'aff']" in text
    assert "nothing was written" in text
    assert not is_stored(layer_set.backend.layers["img"].backend, box((0, 0, 0), (16, 16, 4)))
    with pytest.raises(ValueError, match="takes a dict"):
        layer_set.write_with_procs(box((0, 0, 0), (16, 16, 4)), 3)


def test_errors_are_real_errors_under_python_O() -> None:
    """Refusals are raised exceptions, not assert statements (which ``python -O`` drops)."""
    import subprocess
    import sys

    code = (
        "import lamina, lamina_layerset\n"
        "from lamina import BBox3D, build_memory_volumetric_layer\n"
        "b = BBox3D.from_coords((0, 0, 0), (16, 16, 4), (4, 4, 40))\n"
        "m = build_memory_volumetric_layer(b, [(4, 4, 40)], chunk_size=(16, 16, 4))\n"
        "s = lamina_layerset.build_volumetric_layer_set({'img': m}, "
        "default_desired_resolution=(4, 4, 40), index_resolution=(4, 4, 40))\n"
        "try:\n    s[0:16, 0:16, 0:4] = {}\nexcept ValueError as e:\n    print('refused')\n"
    )
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "refused", out.stderr


def test_a_bad_value_for_one_member_writes_no_member() -> None:
    layer_set = em_set()
    where = box((0, 0, 0), (16, 16, 4))
    cases = [
        ({"img": 1, "aff": np.zeros((1, 16, 16, 4), np.float32)}, "aff", "channel"),
        ({"img": 1, "seg": np.zeros((1, 8, 16, 4), np.uint64)}, "seg", "spatial shape"),
        ({"seg": 1, "img": np.full((1, 16, 16, 4), 0.5)}, "img", "without losing data"),
        ({"seg": 1, "img": -1}, "img", "without losing data"),
    ]
    for data, bad, match in cases:
        with pytest.raises(ValueError, match=match) as info:
            layer_set[0:16, 0:16, 0:4] = data
        assert f"member {bad!r}" in str(info.value)
        assert isinstance(info.value.__cause__, ValueError)
        for backend in (m.backend for m in layer_set.backend.layers.values()):
            assert not is_stored(backend, where), (data, backend.name)


def test_a_non_aligned_write_is_refused_for_every_member_before_any() -> None:
    layer_set = build_volumetric_layer_set(
        {"img": member("uint8", chunk_size=(8, 8, 4)), "seg": member("uint64")},
        index_resolution=RES,
        default_desired_resolution=RES,
    )
    with pytest.raises(ValueError, match=r"member 'seg'.*not aligned to the chunk grid"):
        layer_set[0:8, 0:8, 0:4] = {"img": 1, "seg": 2}  # on img's grid, not seg's
    assert not is_stored(layer_set.backend.layers["img"].backend, box((0, 0, 0), (8, 8, 4)))


def test_readonly_members_are_refused_before_anything_is_written() -> None:
    layer_set = build_volumetric_layer_set(
        {"img": member("uint8"), "seg": member("uint64", readonly=True)},
        index_resolution=RES,
        default_desired_resolution=RES,
    )
    with pytest.raises(ReadonlyLayerError, match=r"\['seg'\] are readonly"):
        layer_set[0:16, 0:16, 0:4] = {"img": 1, "seg": 2}
    assert not is_stored(layer_set.backend.layers["img"].backend, box((0, 0, 0), (16, 16, 4)))
    layer_set[0:16, 0:16, 0:4] = {"img": 1}  # the writable member alone is fine
    readonly_set = em_set(readonly=True)
    with pytest.raises(ReadonlyLayerError, match="readonly"):
        readonly_set[0:16, 0:16, 0:4] = {"img": 1}


def test_a_member_failing_while_writing_says_what_was_written() -> None:
    def explode(data: Any) -> Any:
        raise RuntimeError("disk full")

    layer_set = build_volumetric_layer_set(
        {"img": member("uint8"), "seg": member("uint64", write_procs=[explode])},
        index_resolution=RES,
        default_desired_resolution=RES,
        max_workers=1,
    )
    with pytest.raises(RuntimeError) as info:
        layer_set[0:16, 0:16, 0:4] = {"img": 1, "seg": 2}
    text = str(info.value)
    assert "writing member 'seg'" in text
    assert "disk full" in text
    assert "members written: ['img'], not written: ['seg']" in text
    assert str(info.value.__cause__) == "disk full"


def test_reads_name_the_member_that_failed() -> None:
    layer_set = em_set(index_resolution=(3, 3, 40))
    with pytest.raises(lamina.UnknownResolutionError) as info:
        layer_set[(3, 3, 40), 0:4, 0:4, 0:1]  # 12 x 12 x 40 nm: whole voxels at 3x3x40
    text = str(info.value)
    assert "reading member 'img' (mem://" in text
    assert "of VolumetricSet[img, seg, aff]" in text
    assert "also failed: 'seg'" in text
    assert "'aff'" in text
    assert isinstance(info.value.__cause__, lamina.UnknownResolutionError)


def test_construction_errors_name_the_member() -> None:
    with pytest.raises(TypeError, match="member 'meta' must be a lamina VolumetricLayer"):
        build_volumetric_layer_set({"img": member(), "meta": lamina.build_memory_db_layer()})
    with pytest.raises(ValueError, match="at least one member"):
        build_volumetric_layer_set({})
    with pytest.raises(TypeError, match="mapping"):
        build_volumetric_layer_set([member()])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty str"):
        build_volumetric_layer_set({1: member()})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="max_workers"):
        build_volumetric_layer_set({"img": member()}, max_workers=0)
    with pytest.raises(TypeError, match="max_workers"):
        build_volumetric_layer_set({"img": member()}, max_workers=2.0)  # type: ignore[arg-type]


# -- geometry across members -----------------------------------------------------------------------
def test_mixed_dtypes_build_and_dtype_raises_naming_each_member() -> None:
    backend = em_set().backend
    with pytest.raises(MembersDisagreeError) as info:
        _ = backend.dtype
    assert isinstance(info.value, ValueError)
    assert "img: uint8, seg: uint64, aff: float32" in str(info.value)
    with pytest.raises(ValueError, match="img: 1, seg: 1, aff: 3"):
        _ = backend.num_channels
    assert "img: mem://" in backend.pformat()  # describing a mixed set needs no consensus


def test_properties_the_members_agree_on() -> None:
    layer_set = build_volumetric_layer_set({"a": member("uint16"), "b": member("uint16")})
    backend = layer_set.backend
    assert backend.dtype == np.uint16
    assert backend.num_channels == 1
    assert backend.resolutions == (RES, COARSE)
    assert backend.get_voxel_offset(RES) == Vec3D(0, 0, 0)
    assert backend.get_voxel_offset([8, 8, 40]) == Vec3D(0, 0, 0)
    assert backend.get_chunk_size(RES) == Vec3D(16, 16, 4)
    assert backend.get_dataset_size(COARSE) == Vec3D(32, 32, 8)
    assert backend.is_local is True
    assert backend.enforce_chunk_aligned_writes is True
    assert backend.overwrite_partial_chunks is False
    assert backend.allow_cache is False
    assert backend.use_compression is False
    assert backend.volume_type is None


def test_bounds_and_chunk_aligned_indices_work_and_are_hashable() -> None:
    """The reference put unhashable indices into a set and always raised TypeError."""
    backend = em_set().backend
    bounds = backend.get_bounds(RES)
    assert bounds == box((0, 0, 0), (64, 64, 8))
    assert len({bounds, backend.get_bounds(RES)}) == 1
    idx = box((3, 5, 1), (20, 20, 3))
    assert backend.get_chunk_aligned_index(idx, "expand") == box((0, 0, 0), (32, 32, 4))
    shrunk = backend.get_chunk_aligned_index(box((3, 5, 1), (40, 40, 8)), "shrink")
    assert shrunk == box((16, 16, 4), (32, 32, 8))
    assert hash(backend.get_chunk_aligned_index(idx, "expand"))
    with pytest.raises(ValueError, match="'expand' or 'shrink'"):
        backend.get_chunk_aligned_index(idx, "outward")  # type: ignore[arg-type]
    assert backend.is_chunk_aligned(box((16, 16, 4), (32, 32, 8)))
    backend.assert_idx_is_chunk_aligned(box((16, 16, 4), (32, 32, 8)))
    assert backend.is_within_bounds(box((0, 0, 0), (64, 64, 8)))
    assert not backend.is_within_bounds(box((0, 0, 0), (65, 64, 8)))


def test_disagreeing_geometry_names_members_and_values() -> None:
    layer_set = build_volumetric_layer_set(
        {
            "img": member("uint8", chunk_size=(8, 8, 4)),
            "seg": member("uint8"),
            "big": build_memory_volumetric_layer(
                BBox3D.from_coords((0, 0, 0), (128, 64, 8), RES), [RES], chunk_size=(16, 16, 4)
            ),
        }
    )
    backend = layer_set.backend
    with pytest.raises(
        MembersDisagreeError, match=r"chunk size .*img: \(8, 8, 4\), seg: \(16, 16, 4\)"
    ):
        backend.get_chunk_size(RES)
    with pytest.raises(
        MembersDisagreeError, match=r"dataset size .*seg: \(64, 64, 8\), big: \(128, 64, 8\)"
    ):
        backend.get_dataset_size(RES)
    with pytest.raises(MembersDisagreeError, match="bounds"):
        backend.get_bounds(RES)
    with pytest.raises(MembersDisagreeError, match="resolutions"):
        _ = backend.resolutions
    with pytest.raises(lamina.UnknownResolutionError, match=r"asking member 'big'.*voxel offset"):
        backend.get_voxel_offset(COARSE)
    idx = box((8, 8, 0), (16, 16, 4))  # on img's grid only
    with pytest.raises(MembersDisagreeError, match="chunk-aligned index"):
        backend.get_chunk_aligned_index(idx, "expand")
    assert not backend.is_chunk_aligned(idx)
    with pytest.raises(ValueError, match="chunk alignment check failed") as info:
        backend.assert_idx_is_chunk_aligned(idx)
    text = str(info.value)
    assert "['seg', 'big']" in text
    assert "member 'seg'" in text
    assert "not aligned" in text
    assert "member 'img'" not in text
    with pytest.raises(ValueError, match=r"member\(s\) \['img', 'seg'\].*bounds"):
        backend.assert_idx_within_bounds(box((0, 0, 0), (128, 16, 4)), "Make it smaller.")


def test_clear_cache_reaches_every_member() -> None:
    cleared: list[str] = []

    class Cached(DenseBackend):
        def clear_cache(self) -> None:
            cleared.append(self.name)

    members = {k: lamina.build_volumetric_layer(Cached(TestVolume(), name=k)) for k in "ab"}
    build_volumetric_layer_set(members).backend.clear_cache()
    assert cleared == ["a", "b"]


def test_a_users_own_backend_subclass_as_a_member() -> None:
    volume = TestVolume()
    dense = lamina.build_volumetric_layer(DenseBackend(volume, name="dense://mine"))
    mem = memory_member(volume)
    layer_set = build_volumetric_layer_set(
        {"mine": dense, "mem": mem}, default_desired_resolution=volume.finest
    )
    idx = box((32, 64, 4), (64, 96, 8))
    layer_set[idx] = {"mine": 11, "mem": 12}
    out = layer_set[idx]
    assert (out["mine"] == 11).all()
    assert (out["mem"] == 12).all()
    assert "dense://mine" in layer_set.backend.name
    assert layer_set.backend.get_bounds(volume.finest) == dense.backend.get_bounds(volume.finest)


# -- with_changes and delete -----------------------------------------------------------------------
def test_with_changes_forwards_to_every_member() -> None:
    layer_set = em_set()
    layer_set[0:16, 0:16, 0:4] = {"img": 1}
    loose = layer_set.backend.with_changes(enforce_chunk_aligned_writes=False)
    assert isinstance(loose, VolumetricSetBackend)
    assert all(not m.backend.enforce_chunk_aligned_writes for m in loose.layers.values())
    assert layer_set.backend.enforce_chunk_aligned_writes  # the original is unchanged
    loose.write(box((1, 1, 1), (5, 5, 3)), {"seg": 4})  # non-aligned now allowed
    assert (layer_set[1:5, 1:5, 1:3]["seg"] == 4).all()  # same storage
    same = layer_set.backend.with_changes()
    assert same == layer_set.backend
    assert same.name == layer_set.backend.name
    again = layer_set.with_changes(backend=loose)
    assert isinstance(again, VolumetricLayer)
    assert (again[0:16, 0:16, 0:4]["img"] == 1).all()


def test_with_changes_name_gives_each_member_name_slash_key(tmp_path: Path) -> None:
    layer_set = em_set()
    renamed = layer_set.backend.with_changes(name="mem://elsewhere")
    assert [m.name for m in renamed.layers.values()] == [
        "mem://elsewhere/img",
        "mem://elsewhere/seg",
        "mem://elsewhere/aff",
    ]
    assert renamed.name == (
        "VolumetricSet[img: mem://elsewhere/img, seg: mem://elsewhere/seg, "
        "aff: mem://elsewhere/aff]"
    )
    with pytest.raises(TypeError, match="name"):
        layer_set.backend.with_changes(name="")


def test_with_changes_a_member_refuses_changes_nothing() -> None:
    changed: list[str] = []

    class Recording(DenseBackend):
        def with_changes(self, **changes: Any) -> DenseBackend:  # type: ignore[override]
            changed.append(self.name)
            return super().with_changes(**changes)

    layer_set = build_volumetric_layer_set(
        {
            "rec": lamina.build_volumetric_layer(Recording(TestVolume(), name="rec")),
            "mem": memory_member(TestVolume()),
        }
    )
    backend = layer_set.backend
    assert backend.supported_changes == {"name", "enforce_chunk_aligned_writes"}
    with pytest.raises(KeyError, match=r"member 'rec'.*voxel_offset_res"):
        backend.with_changes(voxel_offset_res=((0, 0, 0), RES))
    assert changed == []
    with pytest.raises(KeyError, match="no_such_option"):
        backend.with_changes(no_such_option=1)  # type: ignore[call-arg]
    assert changed == []


def test_delete_deletes_every_member() -> None:
    layer_set = em_set()
    layer_set[0:16, 0:16, 0:4] = {"img": 1, "seg": 2, "aff": 3}
    layer_set.delete()
    for m in layer_set.backend.layers.values():
        assert not is_stored(m.backend, box((0, 0, 0), (16, 16, 4)))
    with pytest.raises(ReadonlyLayerError):
        em_set(readonly=True).delete()


def test_delete_refuses_before_deleting_when_a_member_is_readonly() -> None:
    img = member("uint8")
    seg = member("uint64", readonly=True)
    layer_set = build_volumetric_layer_set({"img": img, "seg": seg})
    img.backend.write(box((0, 0, 0), (16, 16, 4)), 1)
    with pytest.raises(ReadonlyLayerError, match=r"\['seg'\] are readonly.*nothing was deleted"):
        layer_set.delete()
    assert is_stored(img.backend, box((0, 0, 0), (16, 16, 4)))


# -- description -----------------------------------------------------------------------------------
def test_name_and_pformat() -> None:
    img = member("uint8", name="mem://img")
    layer_set = build_volumetric_layer_set(
        {"img": img, "seg": member("uint64", name="mem://seg")},
        default_desired_resolution=RES,
    )
    assert layer_set.name == "VolumetricSet[img: mem://img, seg: mem://seg]"
    text = layer_set.pformat()
    assert text.splitlines()[0] == "VolumetricSet[img, seg]"
    assert "  img: mem://img: uint8, 1 channel(s)" in text
    assert "  seg: mem://seg: uint64, 1 channel(s)" in text
    assert "default_desired_resolution=(4, 4, 40)" in text
    assert "{" not in layer_set.name
    assert "fimg" not in layer_set.name


def test_bbox_helpers_are_consistent() -> None:
    assert bbox_nm((0, 0, 0), (64, 64, 8)) == BOX
