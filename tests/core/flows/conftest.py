"""Every flows test keeps its journals under its own ``tmp_path``, never in the real
per-user state directory (``$LAMINA_JOURNAL_DIR`` wins over the XDG default)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _journals_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_JOURNAL_DIR", str(tmp_path / "journals"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
