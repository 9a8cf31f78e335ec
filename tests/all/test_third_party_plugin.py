"""A third party adds a format purely through its entry point (examples/lamina-jsondir).

Runs in the tox env ``all``, where the example distribution is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import lamina_jsondir  # installed by the tox env `all`
import pytest

import lamina
from lamina.testing import ObjectBackendTests, plugin_listing


class TestJsonDirBackend(ObjectBackendTests):
    """The example backend passes lamina's object contract suite."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Any:
        return lamina_jsondir.JsonDirBackend(tmp_path / "store")

    def sample(self, i: int, backend: Any) -> tuple[Any, Any]:
        return [
            ("alpha", {"a": 1, "nested": [1.5, "x", None, True]}),
            ("beta", [1, 2, 3]),
            ("gamma", "a string with unicode: µm ✓"),
            ("delta", 2.5),
        ][i]

    def raw_read(self, backend: Any, idx: Any) -> Any:
        return json.loads((backend.path / f"{idx}.json").read_text())

    def raw_write(self, backend: Any, idx: Any, data: Any) -> None:
        backend.path.mkdir(parents=True, exist_ok=True)
        (backend.path / f"{idx}.json").write_text(json.dumps(data))

    def is_stored(self, backend: Any, idx: Any) -> bool:
        return bool((backend.path / f"{idx}.json").exists())


def test_listed_by_lamina_plugins() -> None:
    record = plugin_listing()["lamina-jsondir"]
    assert record["error"] is None
    assert record["entry_point"] == "jsondir = lamina_jsondir.hooks"
    assert record["names"]["names"] == ["build_jsondir_layer", "JsonDirBackend"]


def test_usable_by_name_and_from_a_spec(tmp_path: Path) -> None:
    layer = lamina.build_jsondir_layer(tmp_path / "notes")
    layer["today"] = {"done": ["core"]}
    assert (tmp_path / "notes" / "today.json").exists()
    same = lamina.build({"@type": "build_jsondir_layer", "path": str(tmp_path / "notes")})
    assert same["today"] == {"done": ["core"]}
    backend = lamina.build({"@type": "JsonDirBackend", "path": str(tmp_path / "notes")})
    assert backend.read("today") == {"done": ["core"]}


def test_hook_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, lamina; lamina.registered_names();"
        "print('lamina_jsondir.backend' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
