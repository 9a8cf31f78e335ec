"""Resume finds a run from any process and directory: a run's identity (a callable
object by its class and a digest of its state), ``run_id``, the per-user journal
directory, and a resumed run that finds no journal saying so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flows_support import (
    CHUNK,
    TASKS,
    Scale,
    Unpicklable,
    Weighted,
    resume_layers,
    source_data,
)

from lamina import VolumetricIndex
from lamina.flows import FlowArgumentError, apply, run_tasks
from lamina.flows.identity import callable_identity, state_digest
from lamina.flows.journal import default_journal_dir

HERE = Path(__file__).parent


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "markers").mkdir()
    return tmp_path


def _apply(fn: Any, root: Path, **run: Any) -> Any:
    src, dst = resume_layers(root)
    return apply(fn, src, dst, chunk_size=CHUNK, progress=False, **run)


def _markers(root: Path, pid: int | None = None) -> int:
    return sum(
        1 for m in (root / "markers").iterdir() if pid is None or m.name.startswith(f"{pid}-")
    )


def _journals(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl")) if directory.exists() else []


# -- identity -------------------------------------------------------------------------------
def test_a_callable_object_is_known_by_its_class_and_state(root: Path) -> None:
    markers = str(root / "markers")
    same = callable_identity(Scale(2, 1, markers))
    assert same == callable_identity(Scale(2, 1, markers))
    assert same is not None
    assert same.startswith("flows_support.Scale#")
    assert "0x" not in same  # no address
    assert callable_identity(Scale(3, 1, markers)) != same
    assert callable_identity(Unpicklable(markers)) is None


def test_the_identity_is_the_same_in_another_process(root: Path) -> None:
    """Another interpreter, with another hash seed (sets pickle in another order)."""
    markers = str(root / "markers")
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import numpy as np
        from flows_support import Scale, Weighted
        from lamina.flows.identity import callable_identity
        print(callable_identity(Scale(2, 1, {markers!r})))
        print(callable_identity(sorted))
        print(callable_identity(Weighted(np.arange(6.0).reshape(2, 3))))
        """
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        theirs, builtin, weighted = out.stdout.split()
        assert theirs == callable_identity(Scale(2, 1, markers))
        assert builtin == "builtins.sorted"
        assert weighted == callable_identity(Weighted(np.arange(6.0).reshape(2, 3)))


def test_weights_are_part_of_the_state() -> None:
    weights = np.arange(6.0).reshape(2, 3)
    same = callable_identity(Weighted(weights))
    assert same == callable_identity(Weighted(weights.copy()))
    assert same == callable_identity(Weighted(np.asfortranarray(weights)))  # same values
    assert same != callable_identity(Weighted(weights + 1))
    assert same != callable_identity(Weighted(weights.astype("float32")))


def test_a_torch_model_is_known_by_its_weights() -> None:
    torch = pytest.importorskip("torch")

    def model(value: float) -> Any:
        layer = torch.nn.Linear(3, 2)
        torch.nn.init.constant_(layer.weight, value)
        torch.nn.init.constant_(layer.bias, 0.0)
        return layer

    assert callable_identity(model(0.5)) == callable_identity(model(0.5))
    assert callable_identity(model(0.5)) != callable_identity(model(0.25))
    assert str(callable_identity(model(0.5))).startswith("torch.nn.modules.linear.Linear#")


def test_functions_are_known_by_name_and_lambdas_by_their_code() -> None:
    assert callable_identity(np.flip) == "numpy.flip"
    assert callable_identity("InvertProcessor") == "InvertProcessor"
    first = callable_identity(lambda a: a + 1)
    assert first is not None
    assert "<lambda>#" in first
    assert callable_identity(lambda a: a + 1) == first  # the same code
    assert callable_identity(lambda a: a + 2) != first
    factors = [callable_identity(lambda a, f=f: a * f) for f in (2, 3)]
    assert factors[0] != factors[1]  # same code, other defaults
    assert state_digest({"b", "a"}) == state_digest({"a", "b"})


# -- resume ----------------------------------------------------------------------------------------
def test_the_same_state_resumes_other_state_is_another_run(root: Path) -> None:
    markers = str(root / "markers")
    first = _apply(Scale(2, 1, markers), root)
    assert (first.tasks, first.skipped, first.journal_found) == (TASKS, 0, None)
    again = _apply(Scale(2, 1, markers), root, resume=True)  # another object, same state
    assert (again.tasks, again.skipped, again.journal_found) == (0, TASKS, True)
    assert again.line().endswith(f"({TASKS} already done, skipped)")
    other = _apply(Scale(3, 1, markers), root, resume=True)
    assert (other.tasks, other.skipped, other.journal_found) == (TASKS, 0, False)
    assert len(_journals(root / "journals")) == 2


def test_resume_without_a_journal_says_so(root: Path) -> None:
    summary = _apply(Scale(2, 1, str(root / "markers")), root, resume=True)
    assert summary.journal_found is False
    assert summary.tasks == TASKS
    line = summary.line()
    assert line.startswith(f"{TASKS} tasks, {TASKS} chunks, ")
    assert line.endswith(
        f"(resume: no journal of this run was found in {root / 'journals'}, every task ran)"
    )
    assert "already done" not in line
    # found (the first run recorded every task): the plain line
    found = _apply(Scale(2, 1, str(root / "markers")), root, resume=True)
    assert found.journal_found is True
    assert "resume:" not in found.line()


def test_a_run_id_names_the_journal_and_overrides_the_identity(root: Path) -> None:
    markers = str(root / "markers")
    _apply(Scale(2, 1, markers), root, run_id="nightly")
    assert [p.name for p in _journals(root / "journals")] == ["nightly.jsonl"]
    header = json.loads((root / "journals" / "nightly.jsonl").read_text().splitlines()[0])
    assert header["run_id"] == "nightly"
    assert header["flow"] == "apply"
    # another state, the same name: the same run (the caller says so)
    named = _apply(Scale(3, 1, markers), root, run_id="nightly", resume=True)
    assert (named.tasks, named.skipped) == (0, TASKS)
    # a name of other characters still makes one safe file name
    _apply(Scale(2, 1, markers), root, run_id="run 7/b")
    names = {p.name for p in _journals(root / "journals")}
    assert any(n.startswith("run_7_b-") for n in names)


def test_a_run_id_resuming_another_runs_journal_is_refused(root: Path) -> None:
    from lamina import BBox3D

    markers = str(root / "markers")
    _apply(Scale(2, 1, markers), root, run_id="shared")
    src, dst = resume_layers(root)
    half = BBox3D.from_coords((0, 0, 0), (128, 96, 4), (4, 4, 40))
    with pytest.raises(FlowArgumentError, match=r"is of another run \(bbox: "):
        apply(
            Scale(2, 1, markers),
            src,
            dst,
            bbox=half,
            chunk_size=(32, 32, 4),
            run_id="shared",
            resume=True,
            progress=False,
        )
    assert _markers(root) == TASKS  # the refused run ran nothing


def test_an_unpicklable_object_resumes_only_by_run_id(root: Path) -> None:
    fn = Unpicklable(str(root / "markers"))
    with pytest.raises(FlowArgumentError, match=r"cannot be pickled.*run_id="):
        _apply(fn, root, resume=True)
    assert _markers(root) == 0
    _apply(fn, root, run_id="by-name")
    resumed = _apply(fn, root, run_id="by-name", resume=True)
    assert resumed.skipped == TASKS
    fn.handle.close()


# -- where journals live ---------------------------------------------------------------------------
def test_the_journal_directory_is_per_user_not_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMINA_JOURNAL_DIR", str(tmp_path / "chosen"))
    assert default_journal_dir() == tmp_path / "chosen"
    monkeypatch.delenv("LAMINA_JOURNAL_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_journal_dir() == tmp_path / "state" / "lamina" / "journals"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # not absolute: ignored (XDG)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_journal_dir() == tmp_path / "home" / ".local" / "state" / "lamina" / "journals"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_journal_dir() == tmp_path / "home" / ".local" / "state" / "lamina" / "journals"


def test_run_tasks_takes_journal_dir_and_run_id(tmp_path: Path) -> None:
    tasks = [VolumetricIndex.from_coords((0, 0, 0), (1, 1, 1), (4, 4, 40))]
    run_tasks("t", _one, tasks, {}, journal_dir=tmp_path / "j", run_id="mine", progress=False)
    assert (tmp_path / "j" / "mine.jsonl").exists()
    with pytest.raises(ValueError, match="run_id must be a non-empty name"):
        run_tasks("t", _one, tasks, {}, journal_dir=tmp_path / "j", run_id=" ")


def _one(idx: VolumetricIndex) -> int:
    return 1


# -- a killed driver, resumed from another directory in another process ----------------------
def _driver(root: Path, cwd: Path, env: dict[str, str], resume: bool) -> subprocess.Popen[str]:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from pathlib import Path
        from flows_support import drive
        drive(Path({str(root)!r}), resume={resume})
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_driver_resumed_from_another_directory_runs_only_the_rest(root: Path) -> None:
    """The run's function is a callable object (its ``repr`` holds an address that
    differs in each process); journals are in the per-user state directory
    ($XDG_STATE_HOME here), not the working directory, which differs between the two."""
    state = root / "state"
    first_cwd, second_cwd = root / "a", root / "b"
    first_cwd.mkdir()
    second_cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "LAMINA_JOURNAL_DIR"}
    env["XDG_STATE_HOME"] = str(state)
    journals = state / "lamina" / "journals"

    proc = _driver(root, first_cwd, env, resume=False)
    deadline = time.monotonic() + 120
    recorded = 0
    while time.monotonic() < deadline and proc.poll() is None:
        found = _journals(journals)
        recorded = len(found[0].read_text().splitlines()) - 1 if found else 0
        if recorded >= 5:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert recorded >= 5, "the driver never recorded 5 tasks"
    (journal,) = _journals(journals)
    assert journal.name.startswith("apply-")
    finished = len(journal.read_text().splitlines()) - 1
    assert 5 <= finished < TASKS

    resumed = _driver(root, second_cwd, env, resume=True)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    pid, line = out.strip().splitlines()
    assert line.startswith(f"{TASKS - finished} tasks, ")
    assert line.endswith(f"({finished} already done, skipped)")
    assert _markers(root, int(pid)) == TASKS - finished  # only the unfinished tasks ran
    assert _journals(journals) == [journal]  # the same journal, found
    assert not (first_cwd / ".lamina").exists()
    assert not (second_cwd / ".lamina").exists()
    _, dst = resume_layers(root)  # every chunk is written, by one process or the other
    expected = (source_data().astype("int64") * 2 + 1).astype("uint8")
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:8], expected)


def test_a_journal_line_cut_short_by_a_kill_is_no_record(tmp_path: Path) -> None:
    from lamina.flows.journal import Journal

    journal = Journal.for_run({"flow": "copy", "dst": "x"}, tmp_path, None)
    journal.start(200, resume=False)
    journal.record(5)
    journal.close()
    with journal.path.open("a") as file:
        file.write("12")  # "123" cut short by a kill
    again = Journal.for_run({"flow": "copy", "dst": "x"}, tmp_path, None)
    assert again.start(200, resume=True) == {5}
    again.record(7)
    again.close()
    third = Journal.for_run({"flow": "copy", "dst": "x"}, tmp_path, None)
    assert third.start(200, resume=True) == {5, 7}
    third.close()


def test_in_memory_volumes_of_two_processes_never_share_a_journal(tmp_path: Path) -> None:
    """In-memory volumes are named alike in every process (``mem://volume-0``…) but are
    other volumes: a resume in a new process must not skip what an old one did."""
    script = textwrap.dedent(
        """
        import numpy as np
        from lamina import BBox3D, build_memory_volumetric_layer
        from lamina.flows import copy
        box = BBox3D.from_coords((0, 0, 0), (32, 32, 4), (4, 4, 40))
        src = build_memory_volumetric_layer(box, [(4, 4, 40)], chunk_size=(32, 32, 4))
        dst = build_memory_volumetric_layer(box, [(4, 4, 40)], chunk_size=(32, 32, 4))
        src[(4, 4, 40), 0:32, 0:32, 0:4] = 9
        summary = copy(src, dst, progress=False, resume=True)
        print(summary.skipped, int(dst[(4, 4, 40), 0:32, 0:32, 0:4].max()))
        """
    )
    env = {**os.environ, "LAMINA_JOURNAL_DIR": str(tmp_path / "journals")}
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.split() == ["0", "9"]
