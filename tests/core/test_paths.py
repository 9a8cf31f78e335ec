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


class TwoFormats:
    """A format claiming ``*.zarr`` (and creating volumes there) and a catch-all format
    claiming every suffixless path at a lower priority, as lamina-precomputed does."""

    def __init__(self) -> None:
        self.created: dict[str, str] = {}

    def opener(self, name: str, claims: Any, priority: int) -> PathOpener:
        def create(path: str, like: Any) -> Any:
            self.created[path] = name
            return VOLUME

        return PathOpener(
            recognises=claims,
            open=lambda p, **kw: (name, p),
            forms=(f"{name.upper()}PATH",),
            exists=lambda p: p in self.created,
            can_create=claims,
            create=create,
            priority=priority,
        )

    @hookimpl
    def lamina_register_path_openers(self, registry):  # type: ignore[no-untyped-def]
        registry.register("zarrlike", self.opener("zarrlike", lambda p: p.endswith(".zarr"), 0))
        registry.register("dirlike", self.opener("dirlike", lambda p: "." not in p, -1))
        registry.register("both-a", self.opener("both-a", lambda p: p.startswith("both:"), 0))
        registry.register("both-b", self.opener("both-b", lambda p: p.startswith("both:"), 0))


@pytest.fixture
def formats(lamina_host: PluginHost) -> TwoFormats:
    formats = TwoFormats()
    lamina_host.register_plugin(formats, distribution="formats-dist")
    return formats


def test_a_new_path_is_created_by_the_format_that_claims_it(formats: TwoFormats) -> None:
    from lamina.paths import destination_exists, open_or_create_path, template_of

    like = template_of(VOLUME)
    assert not destination_exists("out.zarr")
    open_or_create_path("out.zarr", like)
    assert formats.created == {"out.zarr": "zarrlike"}
    assert destination_exists("out.zarr")
    assert open_or_create_path("out.zarr", like) == ("zarrlike", "out.zarr")
    open_or_create_path("outdir", like)
    assert formats.created["outdir"] == "dirlike"


def test_format_overrides_what_the_path_looks_like(formats: TwoFormats) -> None:
    from lamina.paths import destination_exists, open_or_create_path, template_of

    assert not destination_exists("out.zarr", format="dirlike")
    open_or_create_path("out.zarr", template_of(VOLUME), format="dirlike")
    assert formats.created == {"out.zarr": "dirlike"}
    assert lamina.open_path("out.zarr", format="dirlike") == ("dirlike", "out.zarr")
    with pytest.raises(UnknownNameError, match="nosuch"):
        lamina.open_path("out.zarr", format="nosuch")


def test_two_formats_claiming_a_path_alike_is_an_error_naming_both(
    formats: TwoFormats, capsys: pytest.CaptureFixture[str]
) -> None:
    from lamina.errors import AmbiguousPathError
    from lamina.paths import open_or_create_path, template_of

    with pytest.raises(AmbiguousPathError, match=r"both-a, both-b.*--format both-a"):
        lamina.open_path("both:x")
    with pytest.raises(AmbiguousPathError, match="created by several formats"):
        open_or_create_path("both:x", template_of(VOLUME))
    assert formats.created == {}
    assert lamina.open_path("both:x", format="both-b") == ("both-b", "both:x")
    assert main(["info", "both:x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "both-a, both-b" in err


def test_info_takes_the_format_by_name(
    host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "any-name-at-all", "--format", "fake", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data_type"] == "uint8"
    assert main(["info", "fake://x", "--format", "nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err
