"""The one volume-creation policy (``lamina.volumetric.creation``), on its own: the
``info_*`` parameters resolved into a spec, and the overwrite / keep-existing-scales rules."""

from __future__ import annotations

from typing import Any

import pytest

from lamina import BBox3D, PathOpener, Vec3D, build_memory_volumetric_layer, hookimpl
from lamina.errors import UnknownResolutionError
from lamina.plugins import PluginHost
from lamina.volumetric.creation import (
    StoredVolume,
    VolumeMismatchError,
    plan_update,
    res_to_key,
    spec_from_parameters,
)

BOX = BBox3D.from_coords((0, 0, 0), (64, 32, 8), (4, 4, 40))
STORED = build_memory_volumetric_layer(
    BOX,
    [(4, 4, 40), (8, 8, 40)],
    (16, 16, 4),
    dtype="uint16",
    num_channels=2,
    volume_type="segmentation",
)
NEW = {
    "type": "image",
    "data_type": "uint8",
    "num_channels": 1,
    "chunk_size": (8, 8, 8),
    "bbox": BOX,
}


class References:
    @hookimpl
    def lamina_register_path_openers(self, registry):  # type: ignore[no-untyped-def]
        registry.register(
            "ref", PathOpener(recognises=lambda p: p.startswith("ref://"), open=self.open)
        )

    def open(self, path: str, **options: Any) -> Any:
        return STORED


@pytest.fixture
def references(lamina_host: PluginHost) -> None:
    lamina_host.register_plugin(References(), distribution="refs")


def test_a_new_volume_needs_its_parameters_and_says_which_are_missing() -> None:
    spec = spec_from_parameters(scales=[(8, 8, 40), (4, 4, 40)], **NEW)
    assert spec.scales == (Vec3D(4.0, 4.0, 40.0), Vec3D(8.0, 8.0, 40.0))  # finest first
    assert spec.chunk_size == Vec3D(8, 8, 8)
    with pytest.raises(ValueError, match=r"needs info_data_type, info_bbox \(missing\)"):
        spec_from_parameters(scales=[(4, 4, 40)], **{**NEW, "data_type": None, "bbox": None})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data_type": "no-such"}, "info_data_type must name a numeric numpy dtype.*'no-such'"),
        ({"data_type": "object"}, "info_data_type must name a numeric"),
        ({"data_type": "<U4"}, "info_data_type must name a numeric"),
        ({"chunk_size": (8.5, 8, 8)}, r"info_chunk_size .*\(8\.5, 8, 8\)"),
        ({"chunk_size": (0, 8, 8)}, r"info_chunk_size .*\(0, 8, 8\)"),
        ({"type": "mesh"}, "info_type must be 'image' or 'segmentation'"),
        ({"num_channels": 0}, "info_num_channels must be an int >= 1"),
        ({"inherit_all_params": True}, "info_inherit_all_params=True needs info_reference_path"),
        ({"reference_scale": (4, 4, 40)}, "info_reference_scale needs info_reference_path"),
    ],
)
def test_bad_parameters_are_named_with_what_was_given(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec_from_parameters(scales=[(4, 4, 40)], **{**NEW, **change})


def test_a_reference_in_any_format_lends_its_box_or_everything(references: None) -> None:
    only_box = spec_from_parameters(
        scales=[(4, 4, 40)], **{**NEW, "bbox": None}, reference_path="ref://v"
    )
    assert only_box.bbox == BOX
    assert only_box.data_type == "uint8"
    with pytest.raises(ValueError, match="gives only its box"):
        spec_from_parameters(scales=[(4, 4, 40)], reference_path="ref://v")
    everything = spec_from_parameters(
        scales=[(16, 16, 40)], reference_path="ref://v", inherit_all_params=True
    )
    assert (everything.data_type, everything.num_channels) == ("uint16", 2)
    assert everything.chunk_size == Vec3D(16, 16, 4)
    assert everything.reference is not None
    assert everything.reference.path == "ref://v"


def test_a_stored_volume_lends_everything_at_the_scale_asked(references: None) -> None:
    spec = spec_from_parameters(
        scales=[(16, 16, 40)], existing_path="ref://v", reference_scale=(8, 8, 40)
    )
    assert spec.data_type == "uint16"
    assert spec.reference is not None
    assert spec.reference.bbox == STORED.backend.get_bounds(Vec3D(8.0, 8.0, 40.0)).bbox
    unknown = r"info_reference_scale \(2, 2, 2\) is not a scale of the reference ref://v"
    with pytest.raises(UnknownResolutionError, match=unknown):
        spec_from_parameters(
            scales=[(4, 4, 40)], existing_path="ref://v", reference_scale=(2, 2, 2)
        )


def _volume(data_type: str, *scales: tuple[float, float, float], size: int = 16) -> StoredVolume:
    return StoredVolume(
        {"type": "image", "data_type": data_type, "num_channels": 1},
        {Vec3D(*s): {"key": res_to_key(s), "size": [size, size, 1]} for s in scales},
    )


def test_adding_a_scale_needs_no_flag() -> None:
    plan = plan_update(
        _volume("uint8", (4, 4, 40)),
        _volume("uint8", (8, 8, 40)),
        overwrite=False,
        keep_existing_scales=True,
        where="v",
    )
    assert plan.created == {Vec3D(8, 8, 40)}
    assert set(plan.scales) == {Vec3D(4, 4, 40), Vec3D(8, 8, 40)}
    assert not plan.replaced
    assert not plan.dropped


def test_changing_a_stored_scale_lists_the_missing_scales_and_the_differences() -> None:
    stored, wanted = _volume("uint8", (4, 4, 40)), _volume("uint8", (4, 4, 40), size=32)
    with pytest.raises(VolumeMismatchError) as info:
        plan_update(stored, wanted, overwrite=False, keep_existing_scales=True, where="v")
    message = str(info.value)
    assert "Missing scales: ['4_4_40']" in message
    assert "scales[4_4_40].size: [16, 16, 1] -> [32, 32, 1]" in message
    plan = plan_update(stored, wanted, overwrite=True, keep_existing_scales=True, where="v")
    assert plan.replaced == {Vec3D(4, 4, 40)}


def test_a_new_data_type_needs_the_old_scales_dropped() -> None:
    stored, wanted = _volume("uint8", (4, 4, 40), (8, 8, 40)), _volume("float32", (4, 4, 40))
    with pytest.raises(VolumeMismatchError, match=r"cannot change its data_type"):
        plan_update(stored, wanted, overwrite=True, keep_existing_scales=True, where="v")
    with pytest.raises(VolumeMismatchError, match="info_overwrite=False"):
        plan_update(stored, wanted, overwrite=False, keep_existing_scales=False, where="v")
    plan = plan_update(stored, wanted, overwrite=True, keep_existing_scales=False, where="v")
    assert plan.dropped == {Vec3D(8, 8, 40)}
    assert plan.attributes["data_type"] == "float32"


def test_without_scales_the_volume_is_used_as_stored_and_other_parameters_refused() -> None:
    assert spec_from_parameters(scales=None) is None
    with pytest.raises(ValueError, match=r"info_type, info_compression given without info_scales"):
        spec_from_parameters(
            scales=None, type="image", format_parameters={"info_compression": "gzip"}
        )
    with pytest.raises(ValueError, match="without info_scales the volume in the file is used"):
        spec_from_parameters(
            scales=None, inherit_all_params=True, used_as_stored="the volume in the file"
        )
