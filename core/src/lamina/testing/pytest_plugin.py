"""lamina's pytest plugin (entry point ``pytest11``): fixtures for plugin authors.

``lamina_host`` gives each test an isolated plugin host in which the test registers
its own in-memory plugin (``lamina_host.register_plugin(obj, distribution="x")``)
without entry-point discovery; ``lamina.get_builder``, ``lamina.build`` and the
command line then see exactly the core plus what the test registered.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lamina.plugins.manager import PluginHost
from lamina.testing.host import isolated_host


@pytest.fixture
def lamina_host() -> Iterator[PluginHost]:
    """A fresh plugin host holding only the core's own names, current for the test."""
    with isolated_host() as host:
        yield host
