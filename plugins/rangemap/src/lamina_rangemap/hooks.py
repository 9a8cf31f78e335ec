"""Hook module announced by the ``lamina`` entry point.

It imports nothing but the core's hook markers: the range-map modules (and numpy) are
imported when a range map is built, never during plugin discovery.
"""

from __future__ import annotations

from typing import Any

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


def build_range_mapped_layer(*args: Any, **kwargs: Any) -> Any:
    """Build a range-mapped layer (see ``lamina_rangemap.builder.build_range_mapped_layer``)."""
    from lamina_rangemap.builder import build_range_mapped_layer as build

    return build(*args, **kwargs)


def RangeMapBackend(*args: Any, **kwargs: Any) -> Any:
    """The volumetric range-map backend (see ``lamina_rangemap.volumetric.RangeMapBackend``)."""
    from lamina_rangemap.volumetric import RangeMapBackend as backend

    return backend(*args, **kwargs)


def RangeMapDBBackend(*args: Any, **kwargs: Any) -> Any:
    """The key-value range-map backend (see ``lamina_rangemap.keyvalue.RangeMapDBBackend``)."""
    from lamina_rangemap.keyvalue import RangeMapDBBackend as backend

    return backend(*args, **kwargs)


def KeyRange(*args: Any, **kwargs: Any) -> Any:
    """A key range (see ``lamina_rangemap.keyvalue.KeyRange``)."""
    from lamina_rangemap.keyvalue import KeyRange as key_range

    return key_range(*args, **kwargs)


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_range_mapped_layer", build_range_mapped_layer)
    registry.register("KeyRange", KeyRange, kind="index")


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("RangeMapBackend", RangeMapBackend)
    registry.register("RangeMapDBBackend", RangeMapDBBackend)
