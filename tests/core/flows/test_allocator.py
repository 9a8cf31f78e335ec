"""The allocator settings of lamina's chunk worker processes (:mod:`lamina.flows.allocator`):
a ``processes`` worker keeps the memory it frees for its next chunk, the caller's own
process is left alone, and a variable set in the environment wins."""

from __future__ import annotations

import ctypes
import multiprocessing
import platform
import resource

import pytest

from lamina.flows.allocator import (
    WORKER_MALLOC_SETTINGS,
    tune_worker_malloc,
    worker_malloc_environment,
)
from lamina.flows.executors import processes_executor

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt"
)

_BLOCK = 8 << 20
_BLOCKS = 12  # 96 MiB: over glibc's largest automatic trim threshold (64 MiB), under 128


def _faults_of_a_second_round() -> int:
    """Page faults while 12 blocks of 8 MiB are allocated, written and freed a second
    time, after a first round did the same (the memory of a task, then the next's)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]

    def one_round() -> None:
        blocks = [libc.malloc(_BLOCK) for _ in range(_BLOCKS)]
        for block in blocks:
            ctypes.memset(block, 1, _BLOCK)
        for block in blocks:
            libc.free(block)

    one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    one_round()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _untuned_faults() -> int:
    return _faults_of_a_second_round()


@glibc_only
def test_a_processes_worker_keeps_freed_memory_for_the_next_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in WORKER_MALLOC_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    pages = _BLOCK * _BLOCKS // 4096
    with processes_executor(workers=1) as pool:
        tuned = pool.submit(_faults_of_a_second_round).result(timeout=60)
    assert tuned < pages // 10  # the second round reuses the first round's pages
    # the same work in a forked process without the settings faults its memory in again
    with multiprocessing.get_context("fork").Pool(1) as plain:
        untuned = plain.apply(_untuned_faults)
    assert untuned > pages // 2, (tuned, untuned)


def _second_round_faults_after_tuning() -> tuple[list[str], int]:
    return tune_worker_malloc(), _faults_of_a_second_round()


@glibc_only
def test_settings_in_the_environment_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert worker_malloc_environment() == {"MALLOC_MMAP_THRESHOLD_": str(32 << 20)}
    pages = _BLOCK * _BLOCKS // 4096
    with multiprocessing.get_context("fork").Pool(1) as child:  # not in this process
        applied, faults = child.apply(_second_round_faults_after_tuning)
    assert applied == ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
    assert faults > pages // 2  # a trim threshold of 64 KiB hands the 96 MiB back
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert worker_malloc_environment() == {}
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "lots")
    with multiprocessing.get_context("fork").Pool(1) as child:
        assert child.apply(tune_worker_malloc) == ["MALLOC_TRIM_THRESHOLD_"]
