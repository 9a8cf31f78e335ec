"""Key-value names build from specs (DBIndex, the memory backend, build_db_layer).

Until the core registers these names itself, the test registers them the way
``lamina.builtins`` is meant to, through an in-memory plugin.
"""

from __future__ import annotations

from typing import Any

from lamina import build, hookimpl, registered_names
from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.layer import KeyValueLayer, build_db_layer
from lamina.keyvalue.memory import MemoryKeyValueBackend, build_memory_db_layer


class _KeyValueNames:
    @hookimpl
    def lamina_register_builders(self, registry: Any) -> None:
        registry.register("build_db_layer", build_db_layer)
        registry.register("build_memory_db_layer", build_memory_db_layer)
        registry.register("DBIndex", DBIndex, kind="index")

    @hookimpl
    def lamina_register_backends(self, registry: Any) -> None:
        registry.register("MemoryKeyValueBackend", MemoryKeyValueBackend)


def test_specs_build_key_value_layers(lamina_host: Any) -> None:
    if "build_db_layer" not in registered_names():
        lamina_host.register_plugin(_KeyValueNames(), distribution="keyvalue-test")
    layer = build(
        {
            "@type": "build_db_layer",
            "backend": {"@type": "MemoryKeyValueBackend", "name": "mem://from-spec"},
            "readonly": False,
        }
    )
    assert isinstance(layer, KeyValueLayer)
    assert layer.name == "mem://from-spec"
    idx = build({"@type": "DBIndex", "row_col_keys": {"a": ["x"], "b": ["x"]}})
    assert idx == DBIndex({"a": ("x",), "b": ("x",)})
    layer[idx] = [{"x": 1}, {"x": 2}]
    assert layer[(["a", "b"], "x")] == [1, 2]
    memory = build({"@type": "build_memory_db_layer", "readonly": True})
    assert memory.readonly
