"""The allocator settings of lamina's task worker processes (:mod:`lamina.flows.allocator`):
a ``processes`` worker keeps the memory it frees for its next task, the caller's own
process is left alone, a value in the environment the process started with wins, and
later changes to ``os.environ`` do not count."""

from __future__ import annotations

import multiprocessing
import platform
import subprocess
import sys

import pytest

from lamina.flows.allocator import WORKER_MALLOC_SETTINGS, tune_worker_malloc
from lamina.flows.executors import processes_executor
from lamina.testing import second_round_page_faults
from lamina.testing.workers import BLOCK_BYTES, BLOCKS

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt"
)

PAGES = BLOCK_BYTES * BLOCKS // 4096


def test_a_processes_worker_keeps_freed_memory_for_the_next_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # os.environ as dask's nannies leave it after a plain LocalCluster ran here: ignored
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with processes_executor(workers=1) as pool:
        tuned = pool.submit(second_round_page_faults).result(timeout=60)
    assert tuned < PAGES // 10  # the second round reuses the first round's pages
    # the same work in a forked process without the settings faults its memory in again
    with multiprocessing.get_context("fork").Pool(1) as plain:
        untuned = plain.apply(second_round_page_faults)
    assert untuned > PAGES // 2, (tuned, untuned)


def _worker_faults_in_a_fresh_interpreter(env: dict[str, str]) -> int:
    code = (
        "from lamina.flows.executors import processes_executor\n"
        "from lamina.testing import second_round_page_faults\n"
        "if __name__ == '__main__':\n"
        "    with processes_executor(workers=1) as pool:\n"
        "        print(pool.submit(second_round_page_faults).result(timeout=60))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_a_value_the_process_started_with_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    base = {k: v for k, v in os.environ.items() if k not in WORKER_MALLOC_SETTINGS}
    assert _worker_faults_in_a_fresh_interpreter(base) < PAGES // 10
    # the user's choice at start-up (a trim threshold of 64 KiB) is kept in the workers
    chosen = {**base, "MALLOC_TRIM_THRESHOLD_": "65536"}
    assert _worker_faults_in_a_fresh_interpreter(chosen) > PAGES // 2


def test_values_are_checked_before_mallopt_sees_them() -> None:
    with multiprocessing.get_context("fork").Pool(1) as child:  # not in this process
        applied = child.apply(
            tune_worker_malloc,
            ({"MALLOC_TRIM_THRESHOLD_": 2**32, "MALLOC_MMAP_THRESHOLD_": 1 << 20, "X": 1},),
        )
    assert applied == ["MALLOC_MMAP_THRESHOLD_"]  # 2**32 would wrap to 0 in a C int
