"""How the worker processes lamina starts for the flows' tasks allocate memory (glibc).

A flow's task allocates and frees buffers of 256 KiB to some 32 MiB: chunk files,
decoded chunks, the task's array, its resampled levels. glibc's defaults hand much of
that back to the system after each task. Buffers over ``M_MMAP_THRESHOLD`` are mapped
and unmapped one by one, and a heap whose free top exceeds ``M_TRIM_THRESHOLD`` is cut
back. The next task then faults the same memory in again, page by page. With the
settings below, a copy of ``bench/bench_flows.py``'s volume takes about a tenth of the
page faults per run, and a ``processes`` x 2 copy runs faster (figures: bench/README.md,
"Flows").

A process that runs only flow tasks therefore keeps its freed memory for the next task:

* ``M_MMAP_THRESHOLD`` 32 MiB, the largest value glibc's own adjustment reaches.
  Buffers under that size come from the heap, so freeing them keeps their pages for
  reuse.
* ``M_TRIM_THRESHOLD`` 128 MiB. The top of the heap keeps up to that much free memory.

A worker's peak memory stays about that of its largest task (``bench_flows --memory``).

These settings go, through ``mallopt``, to the ``processes`` executor's forked workers
as each one starts, and to lamina-dask's local-cluster workers (a worker plugin). They
never go to the caller's own process: ``serial`` and ``threads`` run in it, and its
allocator is the caller's choice. A value of ``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_`` in the environment lamina's process started with wins, as
glibc read it then. Later changes to ``os.environ`` do not count: dask's nannies, for
one, write their own settings into the environment of the process that runs a local
cluster.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping
from pathlib import Path

__all__ = ["WORKER_MALLOC_SETTINGS", "tune_worker_malloc", "worker_malloc_settings"]

_MiB = 1 << 20
_INT_MAX = 2**31 - 1

#: glibc's environment variable for each setting, and its value for task workers.
WORKER_MALLOC_SETTINGS: dict[str, int] = {
    "MALLOC_MMAP_THRESHOLD_": 32 * _MiB,
    "MALLOC_TRIM_THRESHOLD_": 128 * _MiB,
}

# mallopt's parameter numbers (glibc malloc.h)
_MALLOPT_PARAMETER = {"MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_MMAP_THRESHOLD_": -3}


def _startup_environment() -> dict[str, str]:
    """The environment this process (or the process it was forked from) was started
    with, as glibc read it; ``os.environ`` where ``/proc`` cannot say."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return dict(os.environ)
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _parse(text: str) -> int | None:
    """A setting's value as glibc would read it (decimal, 0x hex or 0 octal), or ``None``."""
    try:
        value = int(text.strip(), 0)
    except ValueError:
        return None
    return value if 0 <= value <= _INT_MAX else None


def worker_malloc_settings() -> dict[str, int]:
    """The settings for task workers started by this process: each one's value in this
    process's startup environment when it is set there, else
    :data:`WORKER_MALLOC_SETTINGS`'."""
    startup = _startup_environment()
    settings = {}
    for name, default in WORKER_MALLOC_SETTINGS.items():
        given = _parse(startup[name]) if name in startup else None
        settings[name] = default if given is None else given
    return settings


def tune_worker_malloc(settings: Mapping[str, int] | None = None) -> list[str]:
    """Apply ``settings`` (default: :func:`worker_malloc_settings`) to this running
    process through glibc's ``mallopt``; call it in a worker process, never in the
    caller's.

    Returns the names of the settings applied. Nothing is applied where the C library is
    not glibc, nor a value outside ``0 .. 2**31 - 1``."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return []
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return []
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = []
    for name, value in (worker_malloc_settings() if settings is None else settings).items():
        parameter = _MALLOPT_PARAMETER.get(name)
        if parameter is None or not 0 <= value <= _INT_MAX:
            continue
        if mallopt(parameter, value) == 1:
            applied.append(name)
    return applied
