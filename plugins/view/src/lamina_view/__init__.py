"""lamina-view: look at any lamina layer in neuroglancer, or as a PNG slice.

* :func:`view` (also ``lamina.view``): serve volumetric layers to a neuroglancer viewer,
  read on demand chunk by chunk; returns a :class:`View` with ``url``, ``viewer``,
  ``screenshot(size)`` and ``close()``.
* :func:`preview` / :func:`render_slice`: one z-slice as a PNG through Pillow.
* Commands ``lamina view PATH...`` and ``lamina preview PATH --out slice.png``.

Names are imported on first use: ``import lamina_view`` imports neither neuroglancer
nor Pillow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "LayerSource",
    "ScreenshotTimeoutError",
    "View",
    "ViewError",
    "preview",
    "render_slice",
    "segment_colors",
    "view",
]

_LAZY = {
    "LayerSource": "lamina_view.source",
    "ScreenshotTimeoutError": "lamina_view.viewer",
    "View": "lamina_view.viewer",
    "ViewError": "lamina_view.viewer",
    "view": "lamina_view.viewer",
    "preview": "lamina_view.preview",
    "render_slice": "lamina_view.preview",
    "segment_colors": "lamina_view.preview",
}

if TYPE_CHECKING:
    from lamina_view.preview import preview, render_slice, segment_colors
    from lamina_view.source import LayerSource
    from lamina_view.viewer import ScreenshotTimeoutError, View, ViewError, view


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lamina_view' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
