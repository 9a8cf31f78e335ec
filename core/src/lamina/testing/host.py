"""An isolated plugin host for tests: register in-memory plugins, touch nothing installed."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from lamina.plugins.manager import PluginHost, use_host

__all__ = ["isolated_host"]


@contextmanager
def isolated_host(
    *plugins: object,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    strict: bool = False,
    distribution: str = "<test>",
) -> Iterator[PluginHost]:
    """Make a fresh plugin host current inside the ``with`` block.

    Only the core's own hooks, ``plugins`` (registered under ``distribution``) and the
    given in-memory ``entry_points`` are loaded; installed entry points are not.
    """
    host = PluginHost(
        entry_points=list(entry_points or ()),
        autoload=entry_points is not None,
        disabled=(),
        strict=strict,
    )
    with use_host(host):
        host.load()
        for plugin in plugins:
            host.register_plugin(plugin, distribution=distribution)
        yield host
