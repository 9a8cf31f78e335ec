"""The key-value layer: fixes of the reference (readonly delete/clear, index processors in
del, in and get), the core's processor order on key-value layers, empty writes, and the collection
methods."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from lamina import JointIndexDataProcessor, MemoryBackend, ReadonlyLayerError
from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.layer import KeyValueLayer, build_db_layer
from lamina.keyvalue.memory import MemoryKeyValueBackend, build_memory_db_layer


class LoggingBackend(MemoryKeyValueBackend):
    """Records every call that reaches the backend."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Any] = []

    def read(self, idx: DBIndex) -> list[dict[str, Any]]:
        self.log.append(("read", idx.row_keys))
        return super().read(idx)

    def write(self, idx: DBIndex, data: Any) -> None:
        self.log.append(("write", idx.row_keys, list(data)))
        super().write(idx, data)

    def clear(self, idx: DBIndex | None = None) -> None:
        self.log.append(("clear", None if idx is None else idx.row_keys))
        super().clear(idx)


def prefix(p: str) -> Any:
    """An index processor putting every row under ``p``."""

    def proc(idx: DBIndex) -> DBIndex:
        return DBIndex({p + k: c for k, c in idx.row_col_keys.items()}, col_keys=idx.col_keys)

    return proc


class Tag(JointIndexDataProcessor[Any, Any]):
    """Appends ``-tag`` to every row key, and ``tag`` to each row's ``trail`` field."""

    def __init__(self, tag: str, log: list[str]) -> None:
        self.tag, self.log = tag, log

    def process_index(self, idx: DBIndex, mode: str) -> tuple[DBIndex, Any]:
        self.log.append(f"{self.tag}.index.{mode}")
        keys = {f"{k}-{self.tag}": c for k, c in idx.row_col_keys.items()}
        return DBIndex(keys, col_keys=idx.col_keys), self.tag

    def process_data(self, data: Any, mode: str, state: Any) -> Any:
        self.log.append(f"{self.tag}.data.{mode}")
        return [{**row, "trail": row.get("trail", "") + state} for row in data]


# -- building -------------------------------------------------------------------------------
def test_build_db_layer() -> None:
    backend = MemoryKeyValueBackend(name="mem://kv-test")
    layer = build_db_layer(backend, readonly=True, index_procs=[prefix("p/")])
    assert isinstance(layer, KeyValueLayer)
    assert layer.backend is backend
    assert layer.readonly
    assert layer.name == "mem://kv-test"
    assert len(layer.index_procs) == 1


def test_build_db_layer_refuses_other_backends() -> None:
    with pytest.raises(TypeError, match="DBBackend"):
        build_db_layer(MemoryBackend())  # type: ignore[arg-type]


def test_with_changes_and_with_procs_keep_the_kind() -> None:
    layer = build_memory_db_layer()
    ro = layer.with_changes(readonly=True)
    assert isinstance(ro, KeyValueLayer)
    assert ro.readonly
    assert ro.backend is layer.backend
    procs = layer.with_procs(index_procs=[prefix("x/")])
    procs["a"] = 1
    assert layer["x/a"] == 1
    with pytest.raises(TypeError, match="scheme"):
        layer.with_changes(scheme=None)


def test_empty_layer_is_truthy_and_has_length_zero() -> None:
    layer = build_memory_db_layer()
    assert len(layer) == 0
    assert layer
    assert layer.backend


# -- readonly and index processors on del, clear, in, get --------------------------------------
def test_readonly_refuses_del_and_clear_before_the_backend() -> None:
    backend = LoggingBackend()
    build_db_layer(backend)["a"] = 1
    backend.log.clear()
    layer = build_db_layer(backend, readonly=True, index_procs=[pytest.fail])
    with pytest.raises(ReadonlyLayerError, match="readonly"):
        del layer["a"]
    with pytest.raises(ReadonlyLayerError, match="readonly"):
        layer.clear()
    with pytest.raises(ReadonlyLayerError, match="readonly"):
        layer["a"] = 2
    assert backend.log == []
    assert "a" in backend


def test_del_runs_the_index_processors() -> None:
    backend = LoggingBackend()
    layer = build_db_layer(backend, index_procs=[prefix("p/")])
    layer[["a", "b"]] = [1, 2]
    assert sorted(backend.keys()) == ["p/a", "p/b"]
    del layer["a"]
    assert backend.log[-1] == ("clear", ["p/a"])
    assert sorted(backend.keys()) == ["p/b"]
    del layer[[]]  # nothing indexed: the backend is not called
    assert backend.log[-1] == ("clear", ["p/a"])


def test_del_refuses_columns() -> None:
    layer = build_memory_db_layer()
    layer["a"] = {"x": 1, "y": 2}
    with pytest.raises(ValueError, match="whole rows"):
        del layer[("a", "x")]
    assert layer["a"] == {"x": 1, "y": 2}


def test_clear_deletes_every_row() -> None:
    backend = LoggingBackend()
    layer = build_db_layer(backend)
    layer[["a", "b"]] = [1, 2]
    layer.clear()
    assert backend.log[-1] == ("clear", None)
    assert len(layer) == 0


def test_contains_runs_the_index_processors() -> None:
    backend = MemoryKeyValueBackend()
    plain = build_db_layer(backend)
    plain["p/a"] = 1
    plain["7"] = 2
    layer = build_db_layer(backend, index_procs=[prefix("p/")])
    assert "a" in layer
    assert "p/a" not in layer
    assert "p/a" in plain
    assert 7 in plain  # an int key is its decimal string
    with pytest.raises(ValueError, match="row key"):
        _ = ["a"] in plain


def test_get_reads_through_index_and_read_processors() -> None:
    backend = MemoryKeyValueBackend()
    build_db_layer(backend)["p/a"] = 1
    layer = build_db_layer(
        backend,
        index_procs=[prefix("p/")],
        read_procs=[lambda rows: [{"value": r["value"] * 10} if r else r for r in rows]],
    )
    assert layer.get("a") == 10
    assert layer.get("missing") is None
    assert layer.get("missing", "dflt") == "dflt"
    assert layer.get(["a", "missing"], "dflt") == "dflt"
    assert layer.get(("a", "value")) == 10


def test_get_does_not_swallow_other_key_errors() -> None:
    def broken(rows: Any) -> Any:
        raise KeyError("from a processor")

    layer = build_memory_db_layer(read_procs=[broken])
    layer["a"] = 1
    with pytest.raises(KeyError, match="from a processor"):
        layer.get("a")


# -- the processor order on key-value layers ----------------------------------------------------
def test_read_order() -> None:
    log: list[str] = []
    backend = LoggingBackend()
    build_db_layer(backend)["p/k-B-A"] = {"value": 2, "trail": ""}
    backend.log.clear()
    layer = build_db_layer(
        backend, index_procs=[prefix("p/")], read_procs=[Tag("A", log), Tag("B", log)]
    )
    # index processors first, then the joint index steps in *reverse* order (B, then A)
    assert layer["k"] == 2
    assert backend.log == [("read", ["p/k-B-A"])]
    # data steps in list order: A (closest to the backend), then B
    assert log == ["B.index.read", "A.index.read", "A.data.read", "B.data.read"]
    assert layer[("k", "trail")] == "AB"


def test_write_order() -> None:
    log: list[str] = []
    backend = LoggingBackend()
    layer = build_db_layer(
        backend, index_procs=[prefix("p/")], write_procs=[Tag("A", log), Tag("B", log)]
    )
    layer["k"] = {"value": 1}
    assert log == ["A.index.write", "B.index.write", "A.data.write", "B.data.write"]
    assert backend.log == [("write", ["p/k-A-B"], [{"value": 1, "trail": "AB"}])]


def test_write_processors_see_rows_and_may_change_them() -> None:
    backend = MemoryKeyValueBackend()
    layer = build_db_layer(
        backend, write_procs=[lambda rows: [{**r, "n": len(rows)} for r in rows]]
    )
    layer[["a", "b"]] = [1, 2]
    assert backend.query() == {"a": {"value": 1, "n": 2}, "b": {"value": 2, "n": 2}}


def test_empty_write_runs_nothing() -> None:
    backend = LoggingBackend()
    layer = build_db_layer(backend, index_procs=[pytest.fail], write_procs=[pytest.fail])
    layer[[]] = []
    layer[[]] = 5
    assert backend.log == []
    readonly = build_db_layer(backend, readonly=True)
    with pytest.raises(ReadonlyLayerError):
        readonly[[]] = []  # readonly is still checked first


# -- collection methods pass through ---------------------------------------------------------
def test_keys_query_len_and_batches() -> None:
    layer = build_memory_db_layer()
    layer[["a", "b", "c"]] = [{"kind": "x", "n": 1}, {"kind": "y", "n": 2}, {"kind": "x"}]
    assert len(layer) == 3
    assert sorted(layer.keys()) == ["a", "b", "c"]
    assert sorted(layer.keys({"kind": ["x"]})) == ["a", "c"]
    assert sorted(layer.keys({"kind": ["x"], "n": [2]}, union=True)) == ["a", "b", "c"]
    assert layer.keys({"kind": ["x"], "n": [1]}, union=False) == ["a"]
    assert layer.query({"kind": "y"}) == {"b": {"kind": "y", "n": 2}}
    assert layer.query({"kind": "x"}, return_columns=("n",), timeout=5.0) == {
        "a": {"n": 1},
        "c": {},
    }
    batch = layer.get_batch(0, 10, return_columns=["kind"])
    assert batch == {"a": {"kind": "x"}, "b": {"kind": "y"}, "c": {"kind": "x"}}
    assert layer.get_batch(0, 10) == {
        "a": {"kind": "x", "n": 1},
        "b": {"kind": "y", "n": 2},
        "c": {"kind": "x"},
    }
    with pytest.raises(IndexError):
        layer.get_batch(1, 10)


def test_layer_pickles_with_its_processors() -> None:
    layer = build_memory_db_layer(index_procs=[_lower])
    layer["KEY"] = 1
    clone = pickle.loads(pickle.dumps(layer))
    assert clone["key"] == 1
    assert clone.backend.name == layer.backend.name
    clone["other"] = 2
    assert "other" not in layer  # the memory backend travels by value


def _lower(idx: DBIndex) -> DBIndex:
    return DBIndex({k.lower(): c for k, c in idx.row_col_keys.items()}, col_keys=idx.col_keys)
