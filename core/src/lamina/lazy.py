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

TYPE_CHECKING = False  # not ``typing.TYPE_CHECKING``: importing typing costs ~20 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping
    from typing import Any

__all__ = ["MISSING", "module_getattr", "resolve"]

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
