"""Info files (issue item 1): creation, references, adding scales, the overwrite policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lamina_precomputed import InfoMismatchError, InfoNotFoundError, InfoSpec, build_cv_layer
from lamina_precomputed.info import normalize_path, res_to_key, update_info
from precomputed_support import small_volume_params

import lamina
from lamina import BBox3D, UnknownResolutionError, Vec3D


def info_at(path: Path) -> dict[str, Any]:
    return json.loads((path / "info").read_text())


# -- creation from info_* parameters alone ---------------------------------------------------
def test_new_volume_from_info_parameters(tmp_path: Path) -> None:
    layer = build_cv_layer(
        tmp_path / "v", **small_volume_params(info_scales=[(8, 8, 40), (4, 4, 40)])
    )
    info = info_at(tmp_path / "v")
    assert {k: info[k] for k in ("type", "data_type", "num_channels")} == {
        "type": "image",
        "data_type": "uint8",
        "num_channels": 1,
    }
    assert [s["key"] for s in info["scales"]] == ["4_4_40", "8_8_40"]  # finest first
    fine, coarse = info["scales"]
    assert fine == {
        "key": "4_4_40",
        "encoding": "raw",  # the default: fast to write, readable by every client
        "chunk_sizes": [[32, 32, 4]],
        "resolution": [4, 4, 40],
        "voxel_offset": [0, 0, 0],
        "size": [128, 128, 8],
    }
    assert coarse["size"] == [64, 64, 8]
    assert layer.backend.resolutions == (Vec3D(4.0, 4.0, 40.0), Vec3D(8.0, 8.0, 40.0))


def test_offsets_and_sizes_cover_the_bbox(tmp_path: Path) -> None:
    # The reference system's documented example: bbox (1, 1, 0)-(4, 4, 4) nm at [1, 1, 1] and
    # [2, 2, 1].
    spec = InfoSpec.from_optional_reference(
        scales=[(1, 1, 1), (2, 2, 1)],
        type="image",
        data_type="uint8",
        num_channels=1,
        chunk_size=(8, 8, 8),
        bbox=BBox3D.from_coords((1, 1, 0), (4, 4, 4)),
    )
    fine, coarse = spec.make_info()["scales"]
    assert (fine["voxel_offset"], fine["size"]) == ([1, 1, 0], [3, 3, 4])
    # The floored offset 0 and a size reaching the voxel holding x = 4 nm (the reference's
    # size could miss it).
    assert (coarse["voxel_offset"], coarse["size"]) == ([0, 0, 0], [2, 2, 4])


def test_offset_just_below_an_integer_is_not_truncated() -> None:
    # 2.999999 voxels is voxel 3, not 2 (the reference truncated).
    bbox = BBox3D.from_coords((2.999999 * 4, 0, 0), (40, 40, 40))
    spec = InfoSpec.from_optional_reference(
        scales=[(4, 4, 40)], type="image", data_type="uint8", num_channels=1,
        chunk_size=(8, 8, 1), bbox=bbox,
    )  # fmt: skip
    (scale,) = spec.make_info()["scales"]
    assert scale["voxel_offset"] == [3, 0, 0]
    assert scale["size"] == [7, 10, 1]


def test_scale_keys_print_integral_values_as_ints() -> None:
    assert res_to_key((4.0, 4.0, 40)) == "4_4_40"
    assert res_to_key((4.5, 4, 40)) == "4.5_4_40"


def test_compressed_segmentation_gets_a_block_size() -> None:
    spec = InfoSpec.from_optional_reference(
        scales=[(4, 4, 40)], type="segmentation", data_type="uint64", num_channels=1,
        chunk_size=(64, 64, 8), bbox=BBox3D.from_coords((0, 0, 0), (64, 64, 8), (4, 4, 40)),
        encoding="compressed_segmentation",
    )  # fmt: skip
    assert spec.make_info()["scales"][0]["compressed_segmentation_block_size"] == [8, 8, 8]


def test_extra_scale_data_goes_into_every_scale(tmp_path: Path) -> None:
    build_cv_layer(tmp_path / "v", **small_volume_params(info_extra_scale_data={"note": "x"}))
    assert [s["note"] for s in info_at(tmp_path / "v")["scales"]] == ["x", "x"]


@pytest.mark.parametrize(
    ("dropped", "named"),
    [
        ("info_type", "info_type"),
        ("info_bbox", "info_bbox"),
        ("info_chunk_size", "info_chunk_size"),
    ],
)
def test_missing_parameters_are_named(tmp_path: Path, dropped: str, named: str) -> None:
    params = small_volume_params()
    del params[dropped]
    with pytest.raises(ValueError, match=named):
        build_cv_layer(tmp_path / "v", **params)
    assert not (tmp_path / "v" / "info").exists()


def test_info_parameters_without_info_scales_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"info_type, info_chunk_size given without info_scales"):
        build_cv_layer(tmp_path / "v", info_type="image", info_chunk_size=(8, 8, 8))
    with pytest.raises(ValueError, match="info_inherit_all_params given without info_scales"):
        build_cv_layer(tmp_path / "v", info_inherit_all_params=True)


def test_inherit_all_params_needs_a_reference(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs info_reference_path"):
        build_cv_layer(tmp_path / "v", **small_volume_params(info_inherit_all_params=True))


def test_empty_scales_and_bad_dtype_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one resolution"):
        build_cv_layer(tmp_path / "v", **small_volume_params(info_scales=[]))
    with pytest.raises(ValueError, match="info_data_type must be one of"):
        build_cv_layer(tmp_path / "v", **small_volume_params(info_data_type="float64"))


def test_missing_info_without_info_scales(tmp_path: Path) -> None:
    with pytest.raises(InfoNotFoundError, match=str(tmp_path / "nothing")) as caught:
        build_cv_layer(tmp_path / "nothing")
    assert isinstance(caught.value, FileNotFoundError)


def test_paths_are_normalised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_path("rel/v/") == f"file://{tmp_path}/rel/v"
    assert normalize_path(f"precomputed://file://{tmp_path}/v") == f"file://{tmp_path}/v"
    assert normalize_path("precomputed://gs://bucket/v") == "gs://bucket/v"
    assert normalize_path("mem://b/v") == "mem://b/v"
    layer = build_cv_layer("precomputed://rel/v", **small_volume_params())
    assert layer.name == f"file://{tmp_path}/rel/v"
    assert (tmp_path / "rel" / "v" / "info").exists()


# -- creation from a reference -----------------------------------------------------------------
def make_reference(path: Path, *, coarse_first: bool = False) -> Path:
    scales = [
        {"key": "fine", "encoding": "raw", "chunk_sizes": [[16, 16, 2]], "resolution": [4, 4, 40],
         "voxel_offset": [8, 8, 1], "size": [100, 80, 6], "locked": True, "note": "fine"},
        {"key": "coarse", "encoding": "compressed_segmentation", "chunk_sizes": [[32, 32, 4]],
         "resolution": [8, 8, 40], "voxel_offset": [4, 4, 1], "size": [50, 40, 6],
         "note": "coarse"},
    ]  # fmt: skip
    if coarse_first:
        scales.reverse()
    path.mkdir(parents=True)
    info = {"type": "segmentation", "data_type": "uint32", "num_channels": 1, "scales": scales}
    (path / "info").write_text(json.dumps(info))
    return path


def test_inherit_everything_from_the_finest_reference_scale(tmp_path: Path) -> None:
    # The reference volume lists its coarse scale first; the finest one is used (the
    # reference system took the first listed).
    ref = make_reference(tmp_path / "ref", coarse_first=True)
    build_cv_layer(
        tmp_path / "v",
        info_reference_path=str(ref),
        info_inherit_all_params=True,
        info_scales=[(4, 4, 40), (16, 16, 40)],
        info_extra_scale_data={"mine": 1},
    )
    info = info_at(tmp_path / "v")
    assert (info["type"], info["data_type"], info["num_channels"]) == ("segmentation", "uint32", 1)
    fine, coarse = info["scales"]
    assert fine["chunk_sizes"] == [[16, 16, 2]]
    assert fine["encoding"] == "raw"
    assert (fine["voxel_offset"], fine["size"]) == ([8, 8, 1], [100, 80, 6])
    assert (coarse["voxel_offset"], coarse["size"]) == ([2, 2, 1], [25, 20, 6])
    # Extra keys of the reference scale are inherited, except geometry, key and lock.
    assert fine["note"] == "fine"
    assert fine["mine"] == 1
    assert "locked" not in fine
    assert fine["key"] == "4_4_40"


def test_a_chosen_reference_scale(tmp_path: Path) -> None:
    ref = make_reference(tmp_path / "ref")
    build_cv_layer(
        tmp_path / "v",
        info_reference_path=str(ref),
        info_inherit_all_params=True,
        info_reference_scale=(8, 8, 40),
        info_scales=[(8, 8, 40)],
    )
    (scale,) = info_at(tmp_path / "v")["scales"]
    assert (scale["encoding"], scale["chunk_sizes"], scale["note"]) == (
        "compressed_segmentation",
        [[32, 32, 4]],
        "coarse",
    )
    with pytest.raises(UnknownResolutionError, match=r"\(4, 4, 40\), \(8, 8, 40\)"):
        build_cv_layer(
            tmp_path / "w",
            info_reference_path=str(ref),
            info_inherit_all_params=True,
            info_reference_scale=(2, 2, 40),
            info_scales=[(8, 8, 40)],
        )


def test_reference_without_inheritance_gives_only_the_bbox(tmp_path: Path) -> None:
    ref = make_reference(tmp_path / "ref")
    with pytest.raises(ValueError, match="info_type, info_data_type, info_num_channels"):
        build_cv_layer(tmp_path / "v", info_reference_path=str(ref), info_scales=[(4, 4, 40)])
    build_cv_layer(
        tmp_path / "v",
        info_reference_path=str(ref),
        info_scales=[(4, 4, 40)],
        info_type="image",
        info_data_type="float32",
        info_num_channels=2,
        info_chunk_size=(64, 64, 1),
    )
    info = info_at(tmp_path / "v")
    (scale,) = info["scales"]
    assert (info["data_type"], scale["voxel_offset"], scale["size"]) == (
        "float32",
        [8, 8, 1],
        [100, 80, 6],
    )
    assert "note" not in scale


# -- an existing volume: adding scales and the overwrite policy ---------------------------------
@pytest.fixture
def existing(tmp_path: Path) -> Path:
    path = tmp_path / "v"
    layer = build_cv_layer(path, **small_volume_params())
    layer[Vec3D(4, 4, 40), 0:32, 0:32, 0:4] = 9
    return path


def test_adding_a_scale_keeps_the_others_and_their_data(existing: Path) -> None:
    layer = build_cv_layer(
        existing,
        info_reference_path=str(existing),
        info_inherit_all_params=True,
        info_scales=[(16, 16, 40)],
    )
    assert [s["key"] for s in info_at(existing)["scales"]] == ["4_4_40", "8_8_40", "16_16_40"]
    assert (layer[Vec3D(4, 4, 40), 0:32, 0:32, 0:4] == 9).all()
    assert layer[Vec3D(16, 16, 40), 0:32, 0:32, 0:8].shape == (1, 32, 32, 8)


def test_the_same_parameters_again_write_nothing(existing: Path) -> None:
    before = (existing / "info").stat().st_mtime_ns
    build_cv_layer(existing, **small_volume_params())
    assert (existing / "info").stat().st_mtime_ns == before
    _, written = update_info(
        normalize_path(existing), InfoSpec.from_optional_reference(
            scales=[(4, 4, 40)], type="image", data_type="uint8", num_channels=1,
            chunk_size=(32, 32, 4), bbox=BBox3D.from_coords((0, 0, 0), (128, 128, 8), (4, 4, 40)),
        ).make_info(),
    )  # fmt: skip
    assert not written


def test_changing_a_scale_needs_overwrite_and_shows_the_diff(existing: Path) -> None:
    before = (existing / "info").read_text()
    with pytest.raises(InfoMismatchError) as caught:
        build_cv_layer(existing, **small_volume_params(info_chunk_size=(16, 16, 4)))
    message = str(caught.value)
    assert "Missing scales: ['4_4_40', '8_8_40']" in message
    assert "Differences:" in message
    assert "scales[4_4_40].chunk_sizes: [[32, 32, 4]] -> [[16, 16, 4]]" in message
    assert "info_overwrite=True" in message
    assert isinstance(caught.value, RuntimeError)
    assert (existing / "info").read_text() == before  # nothing written
    build_cv_layer(
        existing, info_overwrite=True, **small_volume_params(info_chunk_size=(16, 16, 4))
    )
    assert info_at(existing)["scales"][0]["chunk_sizes"] == [[16, 16, 4]]


def test_changing_a_top_level_field_needs_overwrite(existing: Path) -> None:
    with pytest.raises(
        InfoMismatchError, match=r'(?s)Differences:.*type: "image" -> "segmentation"'
    ):
        build_cv_layer(existing, **small_volume_params(info_type="segmentation"))
    build_cv_layer(existing, info_overwrite=True, **small_volume_params(info_type="segmentation"))
    assert info_at(existing)["type"] == "segmentation"


def test_changing_the_dtype_names_both_flags(existing: Path) -> None:
    # Even with info_overwrite=True the error says exactly what to set (the reference's did not).
    for overwrite in (False, True):
        with pytest.raises(
            InfoMismatchError,
            match="info_overwrite=True and info_keep_existing_scales=False",
        ):
            build_cv_layer(
                existing, info_overwrite=overwrite, **small_volume_params(info_data_type="uint16")
            )
    with pytest.raises(InfoMismatchError, match="num_channels 1 -> 3"):
        build_cv_layer(existing, **small_volume_params(info_num_channels=3))
    build_cv_layer(
        existing,
        info_overwrite=True,
        info_keep_existing_scales=False,
        **small_volume_params(info_data_type="uint16", info_scales=[(8, 8, 40)]),
    )
    info = info_at(existing)
    assert info["data_type"] == "uint16"
    assert [s["key"] for s in info["scales"]] == ["8_8_40"]


def test_dropping_scales_needs_overwrite(existing: Path) -> None:
    with pytest.raises(InfoMismatchError, match=r"Missing scales: \['4_4_40'\]"):
        build_cv_layer(
            existing,
            info_keep_existing_scales=False,
            **small_volume_params(info_scales=[(8, 8, 40)]),
        )


def test_other_top_level_fields_are_kept(existing: Path) -> None:
    info = info_at(existing)
    info["mesh"] = "mesh"
    (existing / "info").write_text(json.dumps(info))
    build_cv_layer(
        existing, info_reference_path=str(existing), info_inherit_all_params=True,
        info_scales=[(16, 16, 40)],
    )  # fmt: skip
    assert info_at(existing)["mesh"] == "mesh"


def test_a_malformed_existing_info_names_the_path(existing: Path) -> None:
    (existing / "info").write_text(json.dumps({"type": "image"}))
    with pytest.raises(ValueError, match=rf"{existing}/info has no data_type, num_channels"):
        build_cv_layer(existing, **small_volume_params())


def test_the_builder_is_reachable_through_lamina(tmp_path: Path) -> None:
    layer = lamina.build_cv_layer(str(tmp_path / "v"), **small_volume_params())
    assert isinstance(layer, lamina.VolumetricLayer)
