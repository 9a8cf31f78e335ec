"""A directory of JSON files as a lamina layer (an example third-party plugin).

The backend module is imported on first use of one of its names, so that importing
the hook module (``lamina_jsondir.hooks``) during plugin discovery stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["JsonDirBackend", "build_jsondir_layer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("lamina_jsondir.backend"), name)
    raise AttributeError(f"module 'lamina_jsondir' has no attribute {name!r}")
