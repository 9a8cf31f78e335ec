"""Per-thread scratch buffers for chunk readers.

A reader that decodes a chunk and pastes it into its output at once needs the chunk's
bytes only until the paste. Reading every chunk into a new buffer costs an allocation
and, for chunks over glibc's mmap threshold, fresh pages the kernel must fault in and
zero: in processes that fix that threshold (dask's workers set ``MALLOC_TRIM_THRESHOLD_``)
every 256 KiB chunk became a new mapping, and a full read took 2.7 times as long. A
thread's scratch buffer, named by its use and grown as needed, stays warm instead.

A view of a scratch buffer is valid until the same thread asks for that buffer again.
"""

from __future__ import annotations

import os
import threading

__all__ = ["read_span", "thread_buffer"]

_buffers = threading.local()


def thread_buffer(name: str, size: int) -> memoryview:
    """The first ``size`` bytes of this thread's buffer ``name`` (contents stale)."""
    buffer: bytearray | None = getattr(_buffers, name, None)
    if buffer is None or len(buffer) < size:
        buffer = bytearray(size)
        setattr(_buffers, name, buffer)
    return memoryview(buffer)[:size]


def read_span(fd: int, buffer: memoryview, first: int, last: int, offset: int = 0) -> int:
    """Read bytes ``offset + first`` to ``offset + last`` of ``fd`` into ``buffer[first:
    last]``, at their own place (a chunk read in part lines up with the whole chunk's
    layout); the number of bytes read, fewer only where the file ends."""
    got = 0
    while first + got < last:
        count = os.preadv(fd, [buffer[first + got : last]], offset + first + got)
        if not count:
            break
        got += count
    return got
