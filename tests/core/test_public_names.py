"""``lamina``'s public names: listed once, in ``__init__.pyi``, typed, and all importable."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import lamina
from lamina.lazy import stub_table

STUB = Path(lamina.__file__).with_suffix(".pyi")


def _stub_exports() -> list[tuple[str, str]]:
    """(name, module) of every ``from module import Name as Name`` in the stub, by ast."""
    exports = []
    for node in ast.walk(ast.parse(STUB.read_text())):
        if isinstance(node, ast.ImportFrom):
            exports += [(a.name, str(node.module)) for a in node.names if a.asname == a.name]
    return exports


def test_each_public_name_is_listed_once_and_read_as_python_reads_it() -> None:
    exports = _stub_exports()
    assert len(exports) > 50
    twice = [name for name, count in Counter(n for n, _ in exports).items() if count > 1]
    assert twice == []
    assert stub_table(str(STUB)) == dict(exports)
    assert lamina.__all__ == sorted([*dict(exports), "__version__"])


def test_every_public_name_is_the_object_its_module_defines() -> None:
    import importlib

    for name, module in _stub_exports():
        assert getattr(lamina, name) is getattr(importlib.import_module(module), name), name


def test_the_stub_reader_takes_both_import_forms(tmp_path: Path) -> None:
    stub = tmp_path / "pkg.pyi"
    stub.write_text(
        '"""from nothing import Fake as Fake"""\n'
        "from typing import Any\n"
        "from a.b import One as One, two as two, private\n"
        "from c import (\n    Three as Three,  # a comment\n    Four as Alias,\n"
        "    five as five,\n)\n"
    )
    assert stub_table(str(stub)) == {"One": "a.b", "two": "a.b", "Three": "c", "five": "c"}
