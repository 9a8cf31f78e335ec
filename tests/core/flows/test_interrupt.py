"""Ctrl-C stops a flow, every time: 20 runs in a row per executor (``threads``,
``processes``), each in a pseudo-terminal (so the progress bar draws), each sent SIGINT
to its whole process group, as a terminal does, once a few tasks are journaled.

Every run must exit within 2 s of the signal, normally, with status 130; print the
one ``interrupted`` line — finished tasks, journal, the command that resumes it — and
no traceback; leave no process of its group behind; and journal exactly the tasks it
reports finished, each of them written. A resumed run skips them and does the rest.

The runs are forked from one warm interpreter (:func:`serve`, a "zygote" that has
imported lamina once), which watches each run and reports what it saw: it is the
runs' parent, the only process that can collect their exit status. Each run is
``lamina run SPEC.json --executor E --workers 2``: ``apply`` of a function that spends
:data:`PAUSE` s per task making progress bars as cloud-files does (:class:`CloudFilesLike`)
from an in-memory source into a file-backed destination that other processes see
(:class:`flows_support.NpyVolumetricBackend`).
"""

from __future__ import annotations

import faulthandler
import fcntl
import json
import os
import pty
import random
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flows_support import BOX, CHUNK, TASKS, R, Scale, resume_layers, source_data

from lamina.flows import task_grid
from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: /proc, fork")

HERE = Path(__file__).resolve().parent
RUNS = 20
PAUSE = 0.08  # seconds per task
STOP_LIMIT_S = 2.0
#: the signal goes once this many tasks are journaled, plus a random 0-60 ms, so that
#: it lands anywhere: mid-task, mid-write, mid-journal, mid-bar
SIGNAL_AFTER = 3
_INTERRUPTED = re.compile(
    r"^lamina run: interrupted: (\d+) of (\d+) tasks finished and journaled "
    r"\(journal: (.+?)\); resume with: (.+)$",
    re.MULTILINE,
)


# -- in the zygote and its runs ------------------------------------------------------------------
class CloudFilesLike(Scale):
    """:class:`flows_support.Scale` spending its pause as a download with cloud-files
    spends its time: a (disabled) tqdm bar per request, each taking tqdm's class-wide
    lock — shared with the parent and every sibling since the fork. A worker that a
    Ctrl-C stops while it holds that lock blocks the others for good."""

    def __call__(self, a: Any) -> Any:
        from tqdm import tqdm

        (Path(self.markers) / f"{os.getpid()}-{uuid.uuid4().hex}").touch()
        end = time.monotonic() + self.pause
        while time.monotonic() < end:
            with tqdm(total=1, disable=True):  # cloud-files: one per get or put
                time.sleep(0.0002)
        return (a.astype("int64") * self.factor + self.offset).astype("uint8")


class _Builders:
    """The spec's names: the source, the destination under ``root`` and the function."""

    @hookimpl
    def lamina_register_builders(self, registry: Registrar) -> None:
        registry.register("interrupt_test_source", lambda root: resume_layers(Path(root))[0])
        registry.register("interrupt_test_destination", lambda root: resume_layers(Path(root))[1])
        registry.register(
            "interrupt_test_scale", lambda markers, pause: CloudFilesLike(2, 1, markers, pause)
        )


def _group(pgid: int) -> list[str]:
    """The processes of process group ``pgid`` still running: pid, state and command (not
    the dead: an orphan's zombie waits for init, which here may take a while to reap it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):  # state, ppid, pgrp, ...
            found.append(f"{entry.name} ({fields[0]}) {cmdline.strip()}")
    return found


def _journal_lines(directory: Path) -> int:
    """Finished tasks recorded so far in the one journal under ``directory``."""
    for journal in directory.glob("*.jsonl"):
        try:
            return max(0, len(journal.read_text().split("\n")[:-1]) - 1)
        except OSError:
            return 0
    return 0


def _supervise(request: dict[str, Any]) -> dict[str, Any]:
    """Fork one run in a pseudo-terminal and watch it (see the module docstring)."""
    root = Path(request["root"])
    sys.stdout.flush()
    sys.stderr.flush()
    pid, master = pty.fork()
    if pid == 0:  # the run: a terminal of 120 columns, the exit of a normal interpreter
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.environ["LAMINA_JOURNAL_DIR"] = str(root / "journals")
        from lamina.cli import main

        sys.exit(main(request["argv"]))
    output = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every end of the terminal is closed
                return
            if not data:
                return
            output.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    result: dict[str, Any] = {"signalled": False, "hung": False}
    started = time.monotonic()
    if request.get("interrupt"):
        journaled, begun = request.get("after", (SIGNAL_AFTER, 0))
        while (
            _journal_lines(root / "journals") < journaled
            or sum(1 for _ in (root / "markers").iterdir()) < begun
        ):
            if time.monotonic() - started > 30 or os.waitpid(pid, os.WNOHANG)[0]:
                result["error"] = "the run ended or never journaled tasks before the signal"
                break
            time.sleep(0.005)
        else:
            time.sleep(request.get("delay", 0.0))
            os.killpg(pid, signal.SIGINT)
            result["signalled"] = True
    signalled = time.monotonic()
    status = None
    while status is None:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = raw
            break
        if time.monotonic() - signalled > (10 if result["signalled"] else 60):
            result["hung"] = True
            os.killpg(pid, signal.SIGUSR1)  # faulthandler: every thread's stack
            time.sleep(1.0)
            os.killpg(pid, signal.SIGKILL)
            status = os.waitpid(pid, 0)[1]
            break
        time.sleep(0.002)
    result["stop_s"] = time.monotonic() - signalled
    result["exit"] = os.waitstatus_to_exitcode(status)
    result["exited_normally"] = os.WIFEXITED(status)
    survivors = _group(pid)
    if survivors:  # give stragglers a moment before calling them survivors
        time.sleep(0.5)
        survivors = _group(pid)
    result["survivors"] = survivors
    for line in survivors:
        os.kill(int(line.split()[0]), signal.SIGKILL)
    reader.join(timeout=2)
    os.close(master)
    text = bytes(output).decode(errors="replace").replace("\r\n", "\n")
    result["output"] = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    result["journal_lines"] = _journal_lines(root / "journals")
    return result


def serve() -> None:
    """The zygote: register the spec's names, then run each JSON request read from
    standard input, answering with a JSON line."""
    from lamina.plugins.manager import get_host

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the runs inherit it
    get_host().register_plugin(_Builders(), distribution="interrupt-test")
    for line in sys.stdin:
        print(json.dumps(_supervise(json.loads(line))), flush=True)


# -- in the test -----------------------------------------------------------------------------------
class Zygote:
    """The warm interpreter that forks and watches the runs."""

    def __init__(self, tmp_path: Path) -> None:
        code = (
            f"import sys; sys.path.insert(0, {str(HERE)!r}); "
            "import test_interrupt; test_interrupt.serve()"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**env, "LAMINA_JOURNAL_DIR": str(tmp_path / "unused-journals")},
        )

    def run(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, "the zygote died"
        result: dict[str, Any] = json.loads(answer)
        return result

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Any:
    started = Zygote(tmp_path_factory.mktemp("zygote"))
    yield started
    started.close()


def _spec(root: Path, pause: float = PAUSE) -> Path:
    (root / "markers").mkdir(parents=True)
    spec = {
        "@type": "apply",
        "fn": {"@type": "interrupt_test_scale", "markers": str(root / "markers"), "pause": pause},
        "sources": {"@type": "interrupt_test_source", "root": str(root)},
        "dst": {"@type": "interrupt_test_destination", "root": str(root)},
        "chunk_size": list(CHUNK),
    }
    file = root / "spec.json"
    file.write_text(json.dumps(spec))
    return file


def _expected() -> Any:
    """The destination once every task is done: ``2 * source + 1``."""
    return (source_data().astype("int64") * 2 + 1).astype("uint8")


def _check_interrupted(
    result: dict[str, Any], root: Path, argv: list[str], least: int = SIGNAL_AFTER
) -> tuple[int, str]:
    """Every promise of an interrupted run; returns (finished, resume command)."""
    output = result["output"]
    where = f"\n--- output ---\n{output[-4000:]}"
    assert result["signalled"], result.get("error", "") + where
    assert not result["hung"], f"still running 10 s after SIGINT{where}"
    assert result["exited_normally"], f"killed by a signal: {result['exit']}{where}"
    assert result["exit"] == 130, where
    assert result["stop_s"] < STOP_LIMIT_S, f"took {result['stop_s']:.2f} s to stop{where}"
    assert "Traceback" not in output, where
    assert not result["survivors"], f"left behind: {result['survivors']}{where}"
    assert " tasks |" in output, f"no progress bar drawn{where}"
    lines = _INTERRUPTED.findall(output)
    assert len(lines) == 1, where
    finished, total, journal, command = lines[0]
    assert int(total) == TASKS
    assert int(finished) >= least
    assert shlex.split(command) == ["lamina", *argv, "--resume"]
    # the journal lists exactly the finished tasks, and each of them is written
    recorded = [int(n) for n in Path(journal).read_text().split("\n")[1:-1]]
    assert len(set(recorded)) == len(recorded) == int(finished) == result["journal_lines"]
    dst = resume_layers(root)[1]
    tasks = task_grid(dst.backend, BOX, R, CHUNK)
    expected = _expected()
    for n in recorded:
        idx = tasks[n]
        (x0, y0, z0), (x1, y1, z1) = idx.start, idx.stop
        np.testing.assert_array_equal(dst[idx], expected[:, x0:x1, y0:y1, z0:z1])
    return int(finished), command


def _interrupt_20_times(zygote: Zygote, executor: str, tmp_path: Path) -> None:
    stops = []
    for run in range(RUNS):
        root = tmp_path / f"{executor}-{run}"
        argv = ["run", str(_spec(root)), "--executor", executor, "--workers", "2"]
        result = zygote.run(
            argv=argv, root=str(root), interrupt=True, delay=random.uniform(0.0, 0.06)
        )
        finished, command = _check_interrupted(result, root, argv)
        stops.append(result["stop_s"])
        if run in (0, RUNS - 1):  # the resume command does the rest, and only that
            before = {m.name for m in (root / "markers").iterdir()}
            resumed = zygote.run(argv=shlex.split(command)[1:], root=str(root))
            assert resumed["exit"] == 0, resumed["output"]
            assert f"({finished} already done, skipped)" in resumed["output"], resumed["output"]
            calls = {m.name for m in (root / "markers").iterdir()} - before
            assert len(calls) == TASKS - finished
            np.testing.assert_array_equal(resume_layers(root)[1][0:128, 0:96, 0:8], _expected())
    # and tasks that outlast the grace: abandoned (threads: the exit does not wait for
    # them) or killed with their worker processes (processes)
    root = tmp_path / f"{executor}-long"
    argv = ["run", str(_spec(root, pause=5.0)), "--executor", executor, "--workers", "2"]
    result = zygote.run(argv=argv, root=str(root), interrupt=True, after=(0, 2))
    _check_interrupted(result, root, argv, least=0)
    print(
        f"{executor}: {RUNS} interrupts, stopped in {min(stops):.2f}-{max(stops):.2f} s; "
        f"with tasks longer than the grace, in {result['stop_s']:.2f} s"
    )


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_ctrl_c_stops_every_time(executor: str, zygote: Zygote, tmp_path: Path) -> None:
    _interrupt_20_times(zygote, executor, tmp_path)


# -- in this process: the grace, a second Ctrl-C, what the interrupt says --------------------------
RES = (4, 4, 40)


def _boxes(n: int) -> list[Any]:
    from lamina import VolumetricIndex

    return [
        VolumetricIndex.from_coords((16 * i, 0, 0), (16 * i + 16, 16, 1), RES) for i in range(n)
    ]


class Sleeper:
    """Sleeps ``seconds`` per task, writing a marker when the task ends."""

    def __init__(self, root: Path, seconds: float) -> None:
        self.root = root
        self.seconds = seconds

    def __call__(self, idx: Any) -> int:
        time.sleep(self.seconds)
        (self.root / str(idx.start[0] // 16)).touch()
        return 10


def _ctrl_c(*after: float) -> list[threading.Timer]:
    """SIGINT to this process ``after`` seconds (each), as a terminal's Ctrl-C."""
    timers = [threading.Timer(s, os.kill, (os.getpid(), signal.SIGINT)) for s in after]
    for timer in timers:
        timer.start()
    return timers


def _interrupted_run(tmp_path: Path, op: Any, tasks: int, executor: str, *after: float) -> Any:
    from lamina.flows import FlowInterrupted, run_tasks

    timers = _ctrl_c(*after)
    start = time.monotonic()
    try:
        with pytest.raises(FlowInterrupted) as caught:
            run_tasks(
                "t", op, _boxes(tasks), {"case": tmp_path.name}, executor=executor, workers=2,
                journal_dir=tmp_path / "j", progress=False,
            )  # fmt: skip
    finally:
        for timer in timers:
            timer.join()
    caught.value.elapsed = time.monotonic() - start
    return caught.value


def test_a_serial_task_gets_its_grace_and_is_journaled(tmp_path: Path) -> None:
    """On ``serial`` the task runs in the caller's thread: Ctrl-C lets it finish."""
    (tmp_path / "done").mkdir()
    interrupted = _interrupted_run(tmp_path, Sleeper(tmp_path / "done", 0.3), 6, "serial", 0.45)
    assert isinstance(interrupted, KeyboardInterrupt)
    assert (interrupted.flow, interrupted.finished, interrupted.total) == ("t", 2, 6)
    assert interrupted.elapsed < 0.45 + 0.3 + 0.3
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["0", "1"]
    assert interrupted.journal.read_text().split("\n")[1:-1] == ["0", "1"]
    assert interrupted.describe() == (
        f"2 of 6 tasks finished and journaled (journal: {interrupted.journal})"
    )
    assert str(interrupted) == f"t: interrupted: {interrupted.describe()}"


def test_a_task_longer_than_the_grace_is_cut_short(tmp_path: Path) -> None:
    from lamina.flows.interrupts import INTERRUPT_GRACE_S

    (tmp_path / "done").mkdir()
    interrupted = _interrupted_run(tmp_path, Sleeper(tmp_path / "done", 3), 2, "serial", 0.2)
    assert interrupted.finished == 0
    assert interrupted.elapsed < 0.2 + INTERRUPT_GRACE_S + 0.5


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_a_second_ctrl_c_ends_the_grace(executor: str, tmp_path: Path) -> None:
    (tmp_path / "done").mkdir()
    interrupted = _interrupted_run(tmp_path, Sleeper(tmp_path / "done", 3), 4, executor, 0.2, 0.4)
    assert interrupted.finished == 0
    assert interrupted.elapsed < 0.4 + 0.4  # not 0.2 + the grace


def test_sigint_handling_is_restored_after_a_run(tmp_path: Path) -> None:
    from lamina.flows import run_tasks

    run_tasks("t", Sleeper(tmp_path, 0), _boxes(3), {}, journal_dir=tmp_path / "j", progress=False)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _interrupted_run(tmp_path, Sleeper(tmp_path, 3), 2, "threads", 0.1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
