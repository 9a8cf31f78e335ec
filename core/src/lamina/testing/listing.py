"""The command line in a fresh interpreter, for plugins' tests: :func:`run_lamina`, and
the "I am listed" check every plugin's tests make, :func:`plugin_listing` (what
``lamina plugins --json`` prints, by distribution)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["plugin_listing", "run_lamina"]


def run_lamina(
    *args: str,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``python -m lamina ARGS`` in a new Python process (so plugins are discovered
    through their real entry points), its output captured as text. ``env``: variables
    set on top of this process's environment (``LAMINA_JOURNAL_DIR``, say)."""
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env} if env else None,
        timeout=timeout,
    )


def plugin_listing() -> dict[str, dict[str, Any]]:
    """Each installed distribution's record from ``lamina plugins --json``, run in a new
    Python process (so discovery goes through the real entry points), keyed by
    distribution name. A failing command is an ``AssertionError`` carrying its stderr.

    A forgotten or misspelt entry point is the most common packaging bug; a plugin's
    tests catch it with ``plugin_listing()["lamina-myformat"]["error"] is None``.
    """
    done = run_lamina("plugins", "--json")
    assert done.returncode == 0, f"lamina plugins --json failed:\n{done.stderr}"
    return {record["distribution"]: record for record in json.loads(done.stdout)}
