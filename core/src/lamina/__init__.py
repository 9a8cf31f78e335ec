"""lamina: read and write huge external datasets through one abstraction, the layer.

Everything here is imported on first use, so ``import lamina`` stays cheap and loads
no plugin. The public names are listed once, with their types, in ``__init__.pyi``;
names that plugins register (``lamina.build_cv_layer``, …) are resolved through the
plugin registry the first time they are asked for.
"""

from __future__ import annotations

from lamina.lazy import MISSING, resolve, stub_table

# Public name → module that defines it, read from ``__init__.pyi``, where each public
# name is listed once (and typed). Nothing is imported until the name is used.
_LAZY: dict[str, str] = stub_table(__file__[: -len(".py")] + ".pyi")

# Submodules: ``from lamina import testing`` must import them, not ask the plugin registry.
_SUBMODULES = frozenset(
    {
        "arrays",
        "backend",
        "cli",
        "concurrency",
        "describe",
        "errors",
        "flows",
        "keyvalue",
        "layer",
        "lazy",
        "memory",
        "paths",
        "plugins",
        "processors",
        "registration",
        "scheme",
        "specs",
        "testing",
        "torch",
        "volumetric",
    }
)

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> object:
    value = resolve(_LAZY, name, globals())
    if value is not MISSING:
        return value
    if name == "__version__":
        from lamina.plugins.manager import _core_version

        return _core_version()
    if name.startswith("_") or name in _SUBMODULES:
        raise AttributeError(f"module 'lamina' has no attribute {name!r}")
    from lamina.errors import UnknownNameError
    from lamina.plugins.manager import get_host

    try:
        return get_host().lookup("names", name)
    except UnknownNameError as exc:
        raise AttributeError(str(exc), name=name, obj=None) from None


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
