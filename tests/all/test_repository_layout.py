"""The repository's shape: modules of one concept each, short enough to read whole."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 600


def test_no_module_of_the_core_or_a_plugin_is_over_600_lines() -> None:
    modules = [*ROOT.glob("core/src/**/*.py"), *ROOT.glob("plugins/*/src/**/*.py")]
    assert len(modules) > 100
    long = {
        str(m.relative_to(ROOT)): n
        for m in modules
        if (n := len(m.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
