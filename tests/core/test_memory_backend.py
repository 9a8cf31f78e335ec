"""The in-memory object backend passes the object contract suite."""

from __future__ import annotations

from typing import Any

import pytest

from lamina import MemoryBackend
from lamina.testing import ObjectBackendTests


class TestMemoryBackend(ObjectBackendTests):
    @pytest.fixture
    def backend(self) -> MemoryBackend:
        return MemoryBackend()

    def raw_read(self, backend: Any, idx: Any) -> Any:
        return backend._store[idx]

    def raw_write(self, backend: Any, idx: Any, data: Any) -> None:
        backend._store[idx] = data

    def is_stored(self, backend: Any, idx: Any) -> bool:
        return idx in backend._store


def test_with_changes_name_gives_a_new_empty_store() -> None:
    backend = MemoryBackend(name="mem://a")
    backend.write("k", 1)
    other = backend.with_changes(name="mem://b")
    assert other.name == "mem://b"
    assert "k" not in other
    assert backend.read("k") == 1


def test_missing_key_error_names_key_and_store() -> None:
    with pytest.raises(KeyError, match=r"'nope' is not stored in 'mem://x'"):
        MemoryBackend(name="mem://x").read("nope")
