"""How the worker processes lamina starts for chunk tasks allocate memory (glibc).

A chunk task allocates and frees buffers of 256 KiB to some 32 MiB: chunk files,
decoded chunks, the task's array, its resampled levels. glibc's defaults hand much of
that back to the system after each task. Buffers over ``M_MMAP_THRESHOLD`` are mapped
and unmapped one by one, and a heap whose free top exceeds ``M_TRIM_THRESHOLD`` is cut
back. The next task then faults the same memory in again, page by page. A copy of
1024 x 1024 x 128 uint8 took about 68,000 page faults per run that way, against about
6,500 with the settings below. On a 2-core VM that made a processes x2 copy 1.1-1.3x
faster (``bench/bench_flows.py``).

A process that runs only chunk tasks therefore keeps its freed memory for the next task:

* ``M_MMAP_THRESHOLD`` 32 MiB (glibc's largest). Buffers up to that size come from the
  heap, so freeing them keeps their pages for reuse.
* ``M_TRIM_THRESHOLD`` 128 MiB. The heap keeps up to that much free memory.

A worker's peak memory stays that of its largest task. What it keeps between tasks is
at most 128 MiB of free heap.

These settings go to the ``processes`` executor's forked workers, through ``mallopt``
as each one starts. They also go to lamina-dask's local-cluster workers, through the
environment (:func:`worker_malloc_environment`). They never go to the caller's own
process: ``serial`` and ``threads`` run in it, and its allocator is the caller's choice.
A variable set in the environment wins (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``, as glibc reads them).
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["WORKER_MALLOC_SETTINGS", "tune_worker_malloc", "worker_malloc_environment"]

_MiB = 1 << 20

#: glibc's environment variable for each setting, and the value for chunk workers.
WORKER_MALLOC_SETTINGS: dict[str, int] = {
    "MALLOC_MMAP_THRESHOLD_": 32 * _MiB,
    "MALLOC_TRIM_THRESHOLD_": 128 * _MiB,
}

# mallopt's parameter numbers (glibc malloc.h)
_MALLOPT_PARAMETER = {"MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_MMAP_THRESHOLD_": -3}


def worker_malloc_environment() -> dict[str, str]:
    """The environment variables to start a chunk worker process with.

    These are :data:`WORKER_MALLOC_SETTINGS`, except those this process's environment
    already sets (a child inherits those)."""
    return {k: str(v) for k, v in WORKER_MALLOC_SETTINGS.items() if k not in os.environ}


def tune_worker_malloc() -> list[str]:
    """Apply the allocator settings to this running process through glibc's ``mallopt``:
    each variable's value in the environment when it is set there, else
    :data:`WORKER_MALLOC_SETTINGS`'.

    A forked worker needs this: glibc read the environment when the parent started, and
    the environment may have changed since (dask's nannies, for one, write their
    settings into the environment of the process that runs a local cluster). Returns
    the names of the settings applied. Nothing is applied where the C library is not
    glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return []
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return []
    applied = []
    for name, default in WORKER_MALLOC_SETTINGS.items():
        try:
            value = int(os.environ.get(name, default))
        except ValueError:  # glibc ignores such a value too
            continue
        if mallopt(_MALLOPT_PARAMETER[name], value) == 1:
            applied.append(name)
    return applied
