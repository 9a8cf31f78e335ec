"""``lamina.open_path`` and ``lamina info``: any registered path opener, generic descriptions."""

from __future__ import annotations

import json
from typing import Any

import pytest

import lamina
from lamina import BBox3D, PathOpener, UnknownNameError, build_memory_volumetric_layer
from lamina.cli import main
from lamina.plugins import PluginHost, hookimpl

VOLUME = build_memory_volumetric_layer(
    BBox3D.from_coords((0, 0, 0), (64, 32, 8)), [(4, 4, 40), (8, 8, 40)], (16, 16, 4)
)


class FakeOpener:
    @hookimpl
    def lamina_register_path_openers(self, registry):  # type: ignore[no-untyped-def]
        registry.register(
            "fake",
            PathOpener(
                recognises=lambda p: p.startswith("fake://"),
                open=lambda p, **kw: VOLUME,
                forms=("fake://NAME",),
            ),
        )


@pytest.fixture
def host(lamina_host: PluginHost) -> PluginHost:
    lamina_host.register_plugin(FakeOpener(), distribution="fake-dist")
    return lamina_host


def test_open_path_uses_the_opener_that_recognises_the_path(host: PluginHost) -> None:
    assert lamina.open_path("fake://x") is VOLUME


def test_unrecognised_paths_list_the_forms_and_the_install(host: PluginHost) -> None:
    with pytest.raises(UnknownNameError, match=r"fake://NAME") as info:
        lamina.open_path("other://x")
    assert "pip install" not in str(info.value)
    with pytest.raises(UnknownNameError, match="pip install lamina-hdf5"):
        lamina.open_path("/data/sample_A.hdf")


def test_info_describes_any_volumetric_layer(
    host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "fake://x", "--json"]) == 0
    description: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert description["data_type"] == "uint8"
    assert description["num_channels"] == 1
    assert [s["resolution"] for s in description["scales"]] == [[4, 4, 40], [8, 8, 40]]
    assert description["scales"][1]["size"] == [8, 4, 1]
    assert main(["info", "fake://x"]) == 0
    text = capsys.readouterr().out
    assert "scales: 2" in text
    assert "4x4x40 nm" in text


def test_info_on_an_unknown_path_is_one_line(
    host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "nowhere://x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lamina info: error: no installed path opener recognises 'nowhere://x'")


def test_a_template_gives_the_builders_shared_creation_keywords() -> None:
    """What creating openers (precomputed, HDF5) hand their builder: a volume like the
    source, indexed and read at its finest scale; unknown types become images."""
    from lamina.paths import template_of

    box = BBox3D.from_coords((0, 0, 0), (64, 32, 8), (4, 4, 40))
    layer = build_memory_volumetric_layer(
        box, [(4, 4, 40), (8, 8, 40)], chunk_size=(16, 16, 4), dtype="uint16"
    )
    kwargs = template_of(layer).builder_kwargs()
    assert kwargs == {
        "default_desired_resolution": (4.0, 4.0, 40.0),
        "index_resolution": (4.0, 4.0, 40.0),
        "info_type": "image",
        "info_data_type": "uint16",
        "info_num_channels": 1,
        "info_chunk_size": (16, 16, 4),
        "info_scales": [(4.0, 4.0, 40.0), (8.0, 8.0, 40.0)],
        "info_bbox": BBox3D.from_coords((0, 0, 0), (256, 128, 320), (1, 1, 1)),
    }
