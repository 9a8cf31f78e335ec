"""Lazy module attributes: a name → defining-module table, resolved on first use.

Packages list their public names in a table instead of importing them, so importing
the package stays cheap (``import lamina`` imports none of its submodules). Plugins use
it the same way, so that importing their package during discovery imports no format
library::

    _LAZY = {"build_cv_layer": "lamina_precomputed.builder"}
    __getattr__ = module_getattr(__name__, _LAZY, globals())
"""

from __future__ import annotations

import importlib

# not ``typing.TYPE_CHECKING``: importing typing would cost ``import lamina`` several times its
# own time (bench/README.md, "Import costs")
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping
    from typing import Any

__all__ = ["MISSING", "module_getattr", "resolve", "stub_table"]

MISSING: Any = object()  # the annotation is a string: nothing is imported for it


def resolve(table: Mapping[str, str], name: str, namespace: MutableMapping[str, Any]) -> Any:
    """Import ``name`` from the module ``table`` names, cache it in ``namespace``, return it;
    ``MISSING`` when the table does not list it."""
    module = table.get(name)
    if module is None:
        return MISSING
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value


def module_getattr(
    module_name: str, table: Mapping[str, str], namespace: MutableMapping[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving ``table``'s names (``AttributeError`` otherwise)."""

    def __getattr__(name: str) -> Any:
        value = resolve(table, name, namespace)
        if value is MISSING:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        return value

    return __getattr__


def stub_table(stub_path: str) -> dict[str, str]:
    """The name → module table of a type stub's re-exports (``from m import A as A``,
    the form that marks ``A`` public): a package lists its public names once, in its
    ``__init__.pyi``, for type checkers and for its lazy ``__getattr__`` alike.

    A plain reader of ``from … import …`` statements, one per line or parenthesised
    (``ast`` would cost more than the whole ``import lamina``)."""
    with open(stub_path, encoding="utf-8") as file:
        text = file.read()
    table: dict[str, str] = {}
    for statement in text.split("\nfrom ")[1:]:
        module, _, rest = statement.partition(" import ")
        names = rest[1:].split(")", 1)[0] if rest.startswith("(") else rest.split("\n", 1)[0]
        for line in names.splitlines():
            for item in line.split("#", 1)[0].split(","):
                parts = item.split()
                if len(parts) == 3 and parts[1] == "as" and parts[0] == parts[2]:
                    table[parts[0]] = module.strip()
    return table
