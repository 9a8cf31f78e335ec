"""The in-memory key-value backend passes the key-value contract suite, and keeps its
own promises: copies in and out, pickling by value, renaming, thread safety."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.layer import build_db_layer
from lamina.keyvalue.memory import MemoryKeyValueBackend, build_memory_db_layer
from lamina.testing.keyvalue import KeyValueBackendTests


class TestMemoryKeyValueBackend(KeyValueBackendTests):
    def make_backend(self, path: Path) -> MemoryKeyValueBackend:
        return MemoryKeyValueBackend()

    def raw_get_row(self, backend: Any, key: str) -> dict[str, Any] | None:
        row = backend._rows.get(key)
        return None if row is None else dict(row)

    def raw_put_row(self, backend: Any, key: str, row: dict[str, Any]) -> None:
        backend._rows[key] = dict(row)

    def raw_row_keys(self, backend: Any) -> set[str]:
        return set(backend._rows)


def _idx(*keys: str) -> DBIndex:
    return DBIndex(dict.fromkeys(keys, ("value",)))


def test_name_and_with_changes() -> None:
    backend = MemoryKeyValueBackend(name="mem://kv-a")
    backend.write(_idx("r"), [{"value": 1}])
    assert backend.name == "mem://kv-a"
    assert backend.with_changes() is backend
    other = backend.with_changes(name="mem://kv-b")
    assert isinstance(other, MemoryKeyValueBackend)
    assert other.name == "mem://kv-b"
    assert len(other) == 0  # a new, empty store
    assert len(backend) == 1
    with pytest.raises(KeyError, match="table"):
        backend.with_changes(table="x")
    assert MemoryKeyValueBackend().name != MemoryKeyValueBackend().name
    assert repr(backend) == "MemoryKeyValueBackend(name='mem://kv-a')"


def test_capabilities() -> None:
    caps = MemoryKeyValueBackend().capabilities
    assert caps.writable
    assert caps.deletable
    assert caps.picklable
    assert caps.thread_safe
    assert not caps.shared_across_processes


def test_pickles_by_value() -> None:
    backend = MemoryKeyValueBackend()
    backend.write(_idx("r"), [{"value": np.arange(3)}])
    clone = pickle.loads(pickle.dumps(backend))
    assert clone.name == backend.name
    np.testing.assert_array_equal(clone.read(_idx("r"))[0]["value"], np.arange(3))
    clone.write(_idx("r", "s"), [{"value": 0}, {"value": 1}])
    assert len(backend) == 1
    assert backend.read(_idx("r"))[0]["value"].tolist() == [0, 1, 2]
    # batches depend on the keys only, so a clone cuts the same batches
    backend.write(_idx(*"abcdefgh"), [{"value": 1}] * 8)
    clone = pickle.loads(pickle.dumps(backend))
    for b in range(9):
        assert clone.get_batch(b, 1).keys() == backend.get_batch(b, 1).keys()


def test_delete_empties_the_store() -> None:
    layer = build_memory_db_layer()
    layer[["a", "b"]] = [1, 2]
    layer.delete()
    assert len(layer) == 0


# -- thread safety ---------------------------------------------------------------------------
def _run(workers: list[Any]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(workers))

    def wrap(work: Any) -> None:
        try:
            barrier.wait(timeout=30)
            work()
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors


def test_concurrent_column_updates_of_one_row_lose_no_column() -> None:
    backend = MemoryKeyValueBackend()
    n_threads, n_fields = 8, 200

    def writer(t: int) -> Any:
        def work() -> None:
            for f in range(n_fields):
                column = f"t{t}-f{f}"
                backend.write(DBIndex({"shared": (column,)}, col_keys=(column,)), [{column: f}])

        return work

    _run([writer(t) for t in range(n_threads)])
    (row,) = backend.read(_idx("shared"))
    assert row == {f"t{t}-f{f}": f for t in range(n_threads) for f in range(n_fields)}


def test_concurrent_replaces_of_one_row_are_never_seen_half_done() -> None:
    backend = MemoryKeyValueBackend()
    backend.write(_idx("r"), [{"a": 0}])

    def writer(field: str) -> Any:
        def work() -> None:
            for i in range(500):
                backend.write(_idx("r"), [{field: i, f"{field}2": i}])

        return work

    def reader() -> None:
        for _ in range(500):
            (row,) = backend.read(_idx("r"))
            assert set(row) in ({"a"}, {"a", "a2"}, {"b", "b2"})  # one write's fields, whole

    _run([writer("a"), writer("b"), reader])
    (row,) = backend.read(_idx("r"))
    assert set(row) in ({"a", "a2"}, {"b", "b2"})


def test_concurrent_writes_reads_queries_and_clears() -> None:
    backend = MemoryKeyValueBackend()
    layer = build_db_layer(backend)
    keys = [f"k{i}" for i in range(50)]

    def writer(t: int) -> Any:
        def work() -> None:
            for round_ in range(20):
                layer[[f"{k}-{t}" for k in keys]] = [{"t": t, "round": round_}] * len(keys)

        return work

    def reader() -> None:
        for _ in range(50):
            for row in backend.query({"t": [0, 1, 2]}).values():
                assert set(row) == {"t", "round"}  # never a half-written row
            assert len(backend.keys()) <= 4 * len(keys)
            assert len(backend) <= 4 * len(keys)

    def clearer() -> None:
        for _ in range(20):
            del layer[[f"{k}-scratch" for k in keys]]
            layer[[f"{k}-scratch" for k in keys]] = 1

    _run([writer(0), writer(1), writer(2), reader, reader, clearer])
    rows = backend.query({"t": [0, 1, 2]})
    assert len(rows) == 3 * len(keys)
    assert all(row["round"] == 19 for row in rows.values())
    assert layer[[f"{k}-scratch" for k in keys]] == [1] * len(keys)


def test_pickling_while_writing_gives_a_consistent_copy() -> None:
    backend = MemoryKeyValueBackend()
    copies: list[MemoryKeyValueBackend] = []

    def writer() -> None:
        for i in range(300):
            backend.write(_idx("a", "b"), [{"value": i}, {"value": i}])

    def pickler() -> None:
        for _ in range(50):
            copies.append(pickle.loads(pickle.dumps(backend)))

    _run([writer, pickler])
    for clone in copies:
        a, b = clone.read(_idx("a", "b"))
        assert a == b  # one write is never seen half done
