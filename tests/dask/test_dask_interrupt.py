"""Ctrl-C stops a flow on lamina-dask's local cluster: ``lamina copy … --executor dask``
in a pseudo-terminal (the progress bar draws), SIGINT sent to its whole process group
as a terminal does, once some tasks are journaled.

The command must exit within 2 s of the signal, normally, with status 130; print the
one ``interrupted`` line and no traceback (the cluster's workers, in the same process
group, take no SIGINT: the command decides); leave no process of its group behind (the
workers are killed, not restarted by their nannies); and journal exactly the tasks it
reports finished, each of them written. The command it prints resumes the copy.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from dask_support import R, volume

import lamina
from lamina.flows import task_grid

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: /proc, pty")

LAMINA = str(Path(sys.executable).with_name("lamina"))  # the console script users run
SHAPE = (128, 128, 16)
CHUNK = (8, 8, 8)  # one chunk per task: 512 tasks, a few seconds on 2 workers
TASKS = 16 * 16 * 2
SIGNAL_AFTER = 20
STOP_LIMIT_S = 2.0
_INTERRUPTED = re.compile(
    r"^lamina copy: interrupted: ([\d,]+) of ([\d,]+) tasks finished and journaled "
    r"\(journal: (.+?)\); resume with: (.+)$",
    re.MULTILINE,
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
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(f"{entry.name} ({fields[0]}) {cmdline.strip()}")
    return found


def _journaled(directory: Path) -> int:
    for journal in directory.glob("*.jsonl"):
        return max(0, len(journal.read_text().split("\n")[:-1]) - 1)
    return 0


def test_ctrl_c_stops_a_dask_run(tmp_path: Path) -> None:
    data = np.random.default_rng(5).integers(1, 255, (1, *SHAPE), dtype="uint8")
    volume(tmp_path / "src", SHAPE, CHUNK)[R, 0:128, 0:128, 0:16] = data
    argv = [
        "copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--chunk-size", "8,8,8",
        "--executor", "dask", "--workers", "2",
    ]  # fmt: skip
    env = {**os.environ, "LAMINA_JOURNAL_DIR": str(tmp_path / "journals")}
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [LAMINA, *argv],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        cwd=tmp_path,
        start_new_session=True,  # its own process group, the terminal's foreground one
    )
    os.close(terminal)
    output = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # every end of the terminal is closed
                return
            if not chunk:
                return
            output.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while _journaled(tmp_path / "journals") < SIGNAL_AFTER:
            assert process.poll() is None, bytes(output).decode(errors="replace")
            assert time.monotonic() < deadline, "no task journaled in 120 s"
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGINT)
        signalled = time.monotonic()
        try:
            status = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 10 s after SIGINT: {bytes(output)[-3000:]!r}")
        stop = time.monotonic() - signalled
        survivors = _group(process.pid)
        if survivors:  # a moment for stragglers before calling them survivors
            time.sleep(0.5)
            survivors = _group(process.pid)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for line in _group(process.pid):
            os.kill(int(line.split()[0]), signal.SIGKILL)
        reader.join(timeout=2)
        os.close(master)
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", bytes(output).decode(errors="replace"))
    where = f"\n--- output ---\n{text[-4000:]}"
    assert status == 130, where
    assert stop < STOP_LIMIT_S, f"took {stop:.2f} s to stop{where}"
    assert "Traceback" not in text, where
    assert not survivors, f"left behind: {survivors}{where}"
    assert " tasks |" in text, f"no progress bar drawn{where}"
    lines = _INTERRUPTED.findall(text)
    assert len(lines) == 1, where
    finished, total, journal, command = lines[0]
    assert int(total.replace(",", "")) == TASKS
    done = int(finished.replace(",", ""))
    assert done >= SIGNAL_AFTER
    assert shlex.split(command) == ["lamina", *argv, "--resume"]
    recorded = [int(n) for n in Path(journal).read_text().split("\n")[1:-1]]
    assert len(set(recorded)) == len(recorded) == done
    dst = lamina.build_cv_layer(str(tmp_path / "dst"))
    tasks = task_grid(dst.backend, dst.backend.get_bounds(R).bbox, R, CHUNK)
    for n in recorded:  # every journaled task is written
        (x0, y0, z0), (x1, y1, z1) = tasks[n].start, tasks[n].stop
        np.testing.assert_array_equal(dst[tasks[n]], data[:, x0:x1, y0:y1, z0:z1])
    print(f"dask: stopped {stop:.2f} s after SIGINT, {done} of {TASKS} tasks journaled")

    resumed = subprocess.run(
        [LAMINA, *shlex.split(command)[1:]],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"({done:,} already done, skipped)" in resumed.stdout
    assert resumed.stdout.startswith(f"{TASKS - done:,} tasks, ")
    np.testing.assert_array_equal(dst[R, 0:128, 0:128, 0:16], data)
