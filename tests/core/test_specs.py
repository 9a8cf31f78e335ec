"""Spec building: nested specs, partial mode, errors that say where."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import lamina
from lamina import Layer, MemoryBackend, SpecError, UnknownNameError
from lamina.plugins import PluginHost, hookimpl


class Doubler:
    def __init__(self, factor: int = 2) -> None:
        self.factor = factor

    def __call__(self, data: Any) -> Any:
        return data * self.factor


class SpecPlugin:
    @hookimpl
    def lamina_register_processors(self, registry):  # type: ignore[no-untyped-def]
        registry.register("Doubler", Doubler)


@pytest.fixture
def host(lamina_host: PluginHost) -> PluginHost:
    lamina_host.register_plugin(SpecPlugin(), distribution="spec-plugin")
    return lamina_host


def test_nested_specs_build_inner_first(host: PluginHost) -> None:
    layer = lamina.build(
        {
            "@type": "build_layer",
            "backend": {"@type": "MemoryBackend", "name": "mem://spec"},
            "read_procs": [{"@type": "Doubler", "factor": 3}],
        }
    )
    assert isinstance(layer, Layer)
    assert isinstance(layer.backend, MemoryBackend)
    assert layer.name == "mem://spec"
    layer.backend.write("k", 2)
    assert layer["k"] == 6


def test_plain_mappings_and_lists_are_built_elementwise(host: PluginHost) -> None:
    built = lamina.build({"a": [{"@type": "Doubler"}, 1], "b": "text"})
    assert isinstance(built["a"][0], Doubler)
    assert built["a"][1] == 1
    assert built["b"] == "text"


def test_partial_mode_binds_arguments(host: PluginHost) -> None:
    part = lamina.build({"@type": "Doubler", "@mode": "partial", "factor": 5})
    assert isinstance(part, functools.partial)
    assert part()(2) == 10


def test_unknown_type_names_where_in_the_spec(host: PluginHost) -> None:
    with pytest.raises(UnknownNameError, match=r"spec\['read_procs'\]\[0\].*NoSuchProc"):
        lamina.build(
            {
                "@type": "build_layer",
                "backend": {"@type": "MemoryBackend"},
                "read_procs": [{"@type": "NoSuchProc"}],
            }
        )


def test_bad_arguments_name_the_builder(host: PluginHost) -> None:
    with pytest.raises(SpecError, match=r"building 'Doubler' failed.*unexpected keyword"):
        lamina.build({"@type": "Doubler", "fctor": 2})


def test_malformed_specs_are_refused(host: PluginHost) -> None:
    with pytest.raises(SpecError, match="must be a str"):
        lamina.build({"@type": 3})
    with pytest.raises(SpecError, match="'regular' or 'partial'"):
        lamina.build({"@type": "Doubler", "@mode": "lazy"})
    with pytest.raises(SpecError, match="no '@type'"):
        lamina.build({"@mode": "partial"})


def test_registered_names_lists_core_and_plugin_names(host: PluginHost) -> None:
    names = lamina.registered_names()
    assert {"build_layer", "build_memory_layer", "MemoryBackend", "Doubler"} <= set(names)
