"""A check for an engine's worker processes: do they keep freed memory for the next task?

:func:`second_round_page_faults` allocates, writes and frees 96 MiB in blocks of 8 MiB,
twice, and returns the page faults of the second round: near 0 in a process set up by
:func:`lamina.flows.allocator.tune_worker_malloc` (the workers of the ``processes``
executor and of lamina-dask's local cluster), about 24,600 under glibc's defaults, which hand
the memory back to the system and fault it in again. Run it in a worker, e.g.
``client.run(second_round_page_faults)`` on a dask cluster.
"""

from __future__ import annotations

import ctypes
import resource

__all__ = ["second_round_page_faults"]

BLOCK_BYTES = 8 << 20
#: 96 MiB: over glibc's largest automatic trim threshold (64 MiB), under lamina's 128 MiB.
BLOCKS = 12


def second_round_page_faults() -> int:
    """Page faults while 12 blocks of 8 MiB are allocated, written and freed a second
    time, after a first round did the same (the memory of one task, then the next's)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def one_round() -> None:
        blocks = [libc.malloc(BLOCK_BYTES) for _ in range(BLOCKS)]
        for block in blocks:
            ctypes.memset(block, 1, BLOCK_BYTES)
        for block in blocks:
            libc.free(block)

    one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    one_round()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
