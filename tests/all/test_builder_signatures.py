"""Every builder a user reaches through ``lamina.`` is the real function, with its real
signature and a docstring documenting each parameter (Google style: an ``Args:``
section), and nothing registered takes ``*args`` / untyped ``**kwargs``."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

import lamina
from lamina.plugins.manager import get_host
from lamina.plugins.registrar import import_target

DOCUMENTED_KINDS = {"layer builder", "flow", "viewer"}


def _names(kinds: set[str] | None = None) -> list[str]:
    return [
        e.name for e in get_host().registry.entries("names") if kinds is None or e.kind in kinds
    ]


def _documented(doc: str) -> set[str]:
    """The parameter names an ``Args:`` section documents (``name:`` or ``a, b:`` lines)."""
    section = re.split(r"\n\s*Args:\s*\n", doc, maxsplit=1)
    if len(section) < 2:
        return set()
    names: set[str] = set()
    for line in section[1].splitlines():
        if re.match(r"^\s*(Returns|Raises|Yields|Example|Examples|Note)s?:", line):
            break
        found = re.match(r"^\s{4,8}([\w*, ]+):", line)
        if found:
            names.update(n.strip().lstrip("*") for n in found.group(1).split(","))
    return names


@pytest.mark.parametrize("name", _names(DOCUMENTED_KINDS))
def test_a_builder_is_the_real_function_with_every_parameter_documented(name: str) -> None:
    entry = next(e for e in get_host().registry.entries("names") if e.name == name)
    builder: Any = getattr(lamina, name) if name.isidentifier() else lamina.get_builder(name)
    if isinstance(entry.target, str):
        assert builder is import_target(entry.target)
    assert inspect.isfunction(builder), f"{name} is {builder!r}, not a function"
    signature = inspect.signature(builder)
    assert builder.__doc__, f"{name} has no docstring"
    missing = [
        p for p in signature.parameters if p not in _documented(inspect.getdoc(builder) or "")
    ]
    assert not missing, f"{name}'s docstring does not document {missing}"


@pytest.mark.parametrize("name", _names())
def test_nothing_registered_takes_args_or_untyped_kwargs(name: str) -> None:
    obj = lamina.get_builder(name)
    if not callable(obj):
        return
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    for parameter in signature.parameters.values():
        assert parameter.kind is not parameter.VAR_POSITIONAL, (name, signature)
        if parameter.kind is parameter.VAR_KEYWORD:
            assert "Unpack[" in str(parameter.annotation), (name, signature)


def test_get_builder_returns_the_class() -> None:
    from lamina_precomputed.backend import CVBackend

    assert lamina.get_builder("CVBackend") is CVBackend
    assert "path" in inspect.signature(lamina.get_builder("CVBackend")).parameters
