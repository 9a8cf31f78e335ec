"""What every codec family shares: its optional package, and the words of its errors.

The codec packages (simplejpeg, pyspng, compressed_segmentation, compresso, crackle)
are slow to import, so each is imported on the first chunk that needs it. Every
damaged chunk is reported the same way, naming its key and encoding, so that a caller
can tell which file to look at.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from lamina.errors import DamagedChunkError

__all__ = ["damaged", "lib", "plural", "shape_text"]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def lib(name: str) -> Any:
    """An optional codec package, imported on first use (they are slow to import)."""
    module = sys.modules.get(name)
    return module if module is not None else importlib.import_module(name)


def damaged(key: str, encoding: str, problem: str) -> DamagedChunkError:
    name = f"chunk {key!r}" if key else "chunk"
    return DamagedChunkError(f"precomputed {name} ({encoding}): {problem}")


def shape_text(shape: tuple[int, int, int], num_channels: int) -> str:
    return f"{shape[0]}x{shape[1]}x{shape[2]} with {plural(num_channels, 'channel')}"
