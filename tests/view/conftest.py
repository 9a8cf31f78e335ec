"""Fixtures for the lamina-view tests: a real headless Chromium is required."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

# CloudVolume reads this when it is imported: keep its disk cache out of the home directory.
os.environ.setdefault("CLOUD_VOLUME_CACHE_DIR", tempfile.mkdtemp(prefix="lamina-cv-cache-"))


@pytest.fixture(scope="session")
def chromium() -> str:
    """The browser binary; the `view` env needs one (Debian's chromium, see .ci/run)."""
    from lamina_view.browser import BrowserNotFoundError, find_chromium

    try:
        return find_chromium()
    except BrowserNotFoundError as exc:
        pytest.fail(f"the lamina-view browser tests need Chromium: {exc}")


@pytest.fixture
def make_view(chromium: str) -> Iterator[Any]:
    """``make_view(layers)``: a view closed (with its browser) after the test."""
    import lamina

    views: list[Any] = []

    def make(layers: Any, **options: Any) -> Any:
        view = lamina.view(layers, **options)
        views.append(view)
        return view

    yield make
    for view in views:
        view.close()
