"""lamina.scratch: each thread's reusable buffers, and span reads that put bytes at their
own place in a buffer."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from lamina.scratch import read_span, thread_buffer


def test_a_threads_buffer_is_reused_and_grown_and_not_shared() -> None:
    first = thread_buffer("test", 100)
    again = thread_buffer("test", 50)
    assert len(again) == 50
    assert np.shares_memory(np.frombuffer(first, np.uint8), np.frombuffer(again, np.uint8))
    bigger = thread_buffer("test", 1000)
    assert len(bigger) == 1000
    other: list[memoryview] = []
    thread = threading.Thread(target=lambda: other.append(thread_buffer("test", 100)))
    thread.start()
    thread.join()
    assert not np.shares_memory(np.frombuffer(bigger, np.uint8), np.frombuffer(other[0], np.uint8))


def test_a_span_is_read_at_its_own_place_and_short_at_the_files_end(tmp_path: Path) -> None:
    content = bytes(range(200))
    (tmp_path / "f").write_bytes(content)
    buffer = memoryview(bytearray(b"\xff" * 120))
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert read_span(fd, buffer, 10, 20, offset=50) == 10
        assert bytes(buffer[10:20]) == content[60:70]
        assert bytes(buffer[:10]) == b"\xff" * 10  # untouched outside the span
        assert read_span(fd, buffer, 0, 120, offset=150) == 50  # the file ends
        assert bytes(buffer[:50]) == content[150:]
    finally:
        os.close(fd)
