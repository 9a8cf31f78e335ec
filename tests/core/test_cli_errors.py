"""Every `lamina` error is one line, `lamina COMMAND: error: …`, with exit status 2 (the
command line is wrong) or 1 (it failed), and no traceback unless `--debug` (or
LAMINA_DEBUG=1); nothing is created. Run as a user would: a new process each time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lamina.testing import run_lamina

MEMORY = {
    "@type": "build_memory_volumetric_layer",
    "bbox": {"@type": "BBox3D.from_coords", "start": [0, 0, 0], "end": [64, 64, 8]},
    "resolutions": [[4, 4, 40]],
    "chunk_size": [32, 32, 4],
}


def _run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    done = run_lamina(*args, cwd=tmp_path, env={"LAMINA_JOURNAL_DIR": str(tmp_path / "j"), **env})
    assert done.stdout == "" or "error" not in done.stdout
    return done.returncode, done.stderr


def _one_line(stderr: str, command: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"lamina {command}: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _spec(tmp_path: Path, name: str, content: Any) -> str:
    file = tmp_path / name
    file.write_text(content if isinstance(content, str) else json.dumps(content))
    return name


@pytest.mark.parametrize(
    ("file", "content", "status", "says"),
    [
        ("missing.yaml", None, 1, "the spec missing.yaml: no such file"),
        ("bad.yaml", "a: [1, 2\n", 2, "bad.yaml:2:1: not valid YAML"),
        ("bad.json", '{"a": 1,}', 2, "bad.json:1:9: not valid JSON"),
        ("list.yaml", "- 1\n- 2\n", 2, "a spec is a mapping with '@type' naming the flow"),
        (
            "two.json",
            {"@type": "downsample", "layer": MEMORY, "factor": "two"},
            2,
            "factor must be a sequence of 3",
        ),
        (
            "levels.json",
            {"@type": "downsample", "layer": MEMORY, "levels": 0},
            2,
            "levels must be an int >= 1; got 0",
        ),
        (
            "workers.json",
            {"@type": "copy", "src": MEMORY, "dst": MEMORY, "workers": 0, "executor": "threads"},
            2,
            "workers must be a positive int",
        ),
        (
            "misspelt.json",
            {"@type": "downsample", "layer": MEMORY, "levls": 2},
            2,
            "did you mean 'levels'?",
        ),
    ],
)
def test_lamina_run_errors_are_one_line(
    tmp_path: Path, file: str, content: Any, status: int, says: str
) -> None:
    if content is not None:
        _spec(tmp_path, file, content)
    code, err = _run(tmp_path, "run", file)
    assert code == status, err
    assert says in _one_line(err, "run")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    _spec(tmp_path, "two.json", {"@type": "downsample", "layer": MEMORY, "factor": "two"})
    for flag, env in ((["--debug"], {}), ([], {"LAMINA_DEBUG": "1"})):
        code, err = _run(tmp_path, "run", "two.json", *flag, **env)
        assert code == 2
        assert "Traceback" in err
        assert err.strip().splitlines()[-1].startswith("lamina run: error: ")


def test_a_path_that_does_not_exist_says_so(tmp_path: Path) -> None:
    code, err = _run(tmp_path, "info", "no/such/volume")
    assert code == 1
    assert _one_line(err, "info") == "lamina info: error: no/such/volume: no such file or directory"


def test_a_command_of_a_plugin_not_installed_says_what_to_install(tmp_path: Path) -> None:
    import importlib.util

    installed = importlib.util.find_spec("lamina_view") is not None  # the `all` env
    env = {"LAMINA_DISABLED_PLUGINS": "lamina-view"} if installed else {}
    code, err = _run(tmp_path, "view", "somewhere", **env)
    assert code == 2
    line = err.strip()
    assert line.startswith("lamina: error: `lamina view` is a command of lamina-view")
    if installed:
        assert "installed but switched off: remove it from LAMINA_DISABLED_PLUGINS" in line
    else:
        assert "pip install lamina-view" in line
        assert "pip install -e " in line  # run from this source checkout: the editable form
    assert "invalid choice" not in err


def test_argparse_usage_errors_keep_their_status(tmp_path: Path) -> None:
    code, err = _run(tmp_path, "run")
    assert code == 2
    assert "lamina run: error: the following arguments are required: spec" in err
    assert "Traceback" not in err


def test_a_broken_plugin_under_strict_plugins_is_one_line(tmp_path: Path) -> None:
    """A distribution whose `lamina` entry point fails to import (found through its real
    entry point in a new process): LAMINA_STRICT_PLUGINS=1 makes it an error, one line."""
    site = tmp_path / "site"
    info = site / "broken_lamina_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-lamina-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[lamina]\nbroken = broken_lamina_plugin\n")
    (site / "broken_lamina_plugin.py").write_text("raise ImportError('a missing dependency')\n")
    env = {"PYTHONPATH": str(site), "LAMINA_STRICT_PLUGINS": "1"}
    code, err = _run(tmp_path, "plugins", **env)
    assert code == 1
    line = err.strip()
    assert "\n" not in line, err
    assert line.startswith("lamina: error: ")
    assert "broken-lamina-plugin" in line
    assert "a missing dependency" in line
