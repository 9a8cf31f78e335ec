"""The "I am listed" check every plugin's tests make: what ``lamina plugins --json``
prints in a fresh interpreter, by distribution."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

__all__ = ["plugin_listing"]


def plugin_listing() -> dict[str, dict[str, Any]]:
    """Each installed distribution's record from ``lamina plugins --json``, run in a new
    Python process (so discovery goes through the real entry points), keyed by
    distribution name. A failing command is an ``AssertionError`` carrying its stderr.

    A forgotten or misspelt entry point is the most common packaging bug; a plugin's
    tests catch it with ``plugin_listing()["lamina-myformat"]["error"] is None``.
    """
    done = subprocess.run(
        [sys.executable, "-m", "lamina", "plugins", "--json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"lamina plugins --json failed:\n{done.stderr}"
    return {record["distribution"]: record for record in json.loads(done.stdout)}
