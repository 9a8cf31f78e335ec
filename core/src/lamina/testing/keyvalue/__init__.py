"""The key-value backend contract suite.

Subclass :class:`KeyValueBackendTests` and implement:

* ``make_backend(path)``: a fresh, empty :class:`~lamina.keyvalue.backend.DBBackend`
  (``path`` is a fresh directory, for backends that store files; a service backend
  makes a uniquely named table instead);
* three *row-level* raw hooks that reach the storage without the backend's methods
  (in the style of zarr's store tests, so a backend cannot pass by agreeing with
  itself):

  - ``raw_get_row(backend, key)``: every stored field of row ``key``, decoded to Python
    values, or ``None``;
  - ``raw_put_row(backend, key, row)``: store ``row`` as the whole row ``key``,
    replacing what was there (as another tool writing the store would);
  - ``raw_row_keys(backend)``: the keys of every stored row.

The generic hooks of :class:`~lamina.testing.contracts.BackendContract`
(``raw_read``, ``raw_write``, ``is_stored``) are built on these. The suite covers
writes and reads of 0, 1, 25, 26, 100 and 101 rows in one call (DynamoDB cuts writes
at 25 and reads at 100), repeated keys (the last wins), missing rows, large values,
every value type, the two write semantics (a whole-row write replaces the row, a
projected write updates only its columns), projections, the checks made before anything is
written, ``keys``/``query``/``len``/``in``/``clear``/``get_batch`` (a partition stable under
rewrites, covering rows written by other tools), the layer's
index forms, readonly, pickling, a spawned process, threads and delete.

The suite is one class built in layers, each a module of this package:
:mod:`~lamina.testing.keyvalue.samples` (the values and indexes written),
:mod:`~lamina.testing.keyvalue.base` (the hooks and helpers),
:mod:`~lamina.testing.keyvalue.rows` (reads, writes and values) and this module (the
collection, batches and the layer). pytest collects the tests of the base classes
first, so a subclass runs them in that order.
"""

from __future__ import annotations

import pickle
from typing import Any, ClassVar

import numpy as np
import pytest

from lamina.errors import ReadonlyLayerError
from lamina.keyvalue.backend import DBBackend
from lamina.keyvalue.layer import build_db_layer
from lamina.testing.keyvalue.rows import KeyValueRowTests
from lamina.testing.keyvalue.samples import VALUE_SAMPLES, assert_values_equal, row_index

__all__ = ["VALUE_SAMPLES", "KeyValueBackendTests", "assert_values_equal"]


class KeyValueBackendTests(KeyValueRowTests):
    """Contract of every key-value backend; subclass it in the backend's tests."""

    # -- the collection -------------------------------------------------------------------------
    def test_contains_and_len(self, backend: DBBackend) -> None:
        assert len(backend) == 0
        assert "a" not in backend
        self.put_rows(backend, {"a": {"value": 1}, "b": {"x": None}})
        assert len(backend) == 2
        assert "a" in backend
        assert "b" in backend
        assert "c" not in backend

    _FILTER_ROWS: ClassVar[dict[str, dict[str, Any]]] = {
        "r1": {"color": "red", "size": 1},
        "r2": {"color": "blue", "size": 2},
        "r3": {"color": "red", "size": 2},
        "r4": {"size": True},
        "r5": {"size": 1.0},
        "r6": {"other": "x", "color": None},
    }

    @pytest.mark.parametrize(
        ("column_filter", "union", "expected"),
        [
            (None, True, ["r1", "r2", "r3", "r4", "r5", "r6"]),
            ({}, True, ["r1", "r2", "r3", "r4", "r5", "r6"]),
            ({"color": ["red"]}, True, ["r1", "r3"]),
            ({"color": "red"}, True, ["r1", "r3"]),
            ({"color": ["red", "blue"]}, True, ["r1", "r2", "r3"]),
            ({"color": ["red"], "size": [2]}, True, ["r1", "r2", "r3"]),
            ({"color": ["red"], "size": [2]}, False, ["r3"]),
            ({"color": ["red", "blue"], "size": [2]}, False, ["r2", "r3"]),
            ({"size": [1]}, True, ["r1"]),
            ({"size": [True]}, True, ["r4"]),
            ({"size": [1.0]}, True, ["r5"]),
            ({"color": [None]}, True, ["r6"]),
            ({"color": []}, True, []),
            ({"missing": ["x"]}, True, []),
            ({"missing": ["x"], "color": ["blue"]}, True, ["r2"]),
            ({"missing": ["x"], "color": ["blue"]}, False, []),
        ],
    )
    def test_keys_and_query_filter(
        self, backend: DBBackend, column_filter: Any, union: bool, expected: list[str]
    ) -> None:
        self.put_rows(backend, self._FILTER_ROWS)
        assert sorted(backend.keys(column_filter, union=union)) == expected
        assert_values_equal(
            dict(sorted(backend.query(column_filter, union=union).items())),
            {k: self._FILTER_ROWS[k] for k in expected},
        )

    def test_query_return_columns(self, backend: DBBackend) -> None:
        self.put_rows(backend, self._FILTER_ROWS)
        got = backend.query({"color": "red"}, return_columns=("size",))
        assert_values_equal(got, {"r1": {"size": 1}, "r3": {"size": 2}})
        got = backend.query(return_columns=["color", "other"])
        expected = {
            k: {c: v for c, v in r.items() if c in ("color", "other")}
            for k, r in self._FILTER_ROWS.items()
        }
        assert_values_equal(got, expected)

    @pytest.mark.parametrize("bad", [["color"], {"color": [[1]]}, {"color": [{"a": 1}]}, {5: [1]}])
    def test_bad_filters_are_refused(self, backend: DBBackend, bad: Any) -> None:
        with pytest.raises(ValueError, match="column_filter"):
            backend.keys(bad)
        with pytest.raises(ValueError, match="column_filter"):
            backend.query(bad)

    def test_clear_rows_and_all(self, backend: DBBackend) -> None:
        self.put_rows(backend, {k: {"value": k} for k in "abcd"})
        backend.clear(row_index(["a", "missing", "c"]))
        assert self.raw_row_keys(backend) == {"b", "d"}
        backend.clear(row_index([]))
        assert self.raw_row_keys(backend) == {"b", "d"}
        with pytest.raises(ValueError, match="whole rows"):
            backend.clear(row_index(["b"], ("value",)))
        assert self.raw_row_keys(backend) == {"b", "d"}
        backend.clear()
        assert self.raw_row_keys(backend) == set()
        assert len(backend) == 0
        backend.clear()  # clearing nothing is fine

    # -- batches ------------------------------------------------------------------------------
    def test_get_batch_partitions_the_rows(self, backend: DBBackend) -> None:
        keys = [f"k{i:03d}" for i in range(101)]
        backend.write(row_index(keys), [{"value": i, "other": -i} for i in range(101)])
        batches = [backend.get_batch(b, 25) for b in range(5)]  # ceil(101 / 25) = 5
        seen = [k for batch in batches for k in batch]
        assert sorted(seen) == keys  # every row exactly once
        for batch in batches:
            for key, row in batch.items():
                assert row == {"value": int(key[1:]), "other": -int(key[1:])}
        with pytest.raises(IndexError, match="batch 5"):
            backend.get_batch(5, 25)
        with pytest.raises(IndexError):
            backend.get_batch(-1, 25)
        projected = backend.get_batch(0, 1000, return_columns=("other",))
        assert projected == {k: {"other": -int(k[1:])} for k in keys}
        with pytest.raises(IndexError):
            backend.get_batch(1, 1000)  # fewer rows than a batch: one batch holds all

    def test_get_batch_after_rewrites(self, backend: DBBackend) -> None:
        keys = [f"k{i:03d}" for i in range(60)]
        backend.write(row_index(keys), [{"value": i} for i in range(60)])

        def membership() -> dict[str, int]:
            return {k: b for b in range(6) for k in backend.get_batch(b, 10)}

        before = membership()
        assert sorted(before) == keys
        # a row's batch depends on its key and the number of batches only: neither
        # column updates nor whole-row rewrites move it
        backend.write(row_index(keys, ("other",)), [{"other": i} for i in range(60)])
        assert membership() == before
        backend.write(row_index(keys), [{"value": -i} for i in range(60)])
        assert membership() == before
        for b in range(6):
            for key, row in backend.get_batch(b, 10).items():
                assert row == {"value": -int(key[1:])}

    def test_get_batch_of_an_empty_store(self, backend: DBBackend) -> None:
        assert backend.get_batch(0, 10) == {}
        with pytest.raises(IndexError):
            backend.get_batch(1, 10)

    def test_get_batch_covers_rows_written_by_other_tools(self, backend: DBBackend) -> None:
        # rows stored without the backend (another tool, another lamina version) are in
        # the batches too, and a hash partition spreads them: 400 rows in batches of
        # 40 on average make 10 batches, none holding most of the rows
        rows = {f"row-{i}": {"value": i} for i in range(400)}
        self.put_rows(backend, rows)
        batches = [backend.get_batch(b, 40) for b in range(10)]
        assert sorted(k for batch in batches for k in batch) == sorted(rows)
        assert max(len(batch) for batch in batches) < 200
        for batch in batches:
            assert all(row == rows[key] for key, row in batch.items())

    @pytest.mark.parametrize(("batch", "size"), [(0, 0), (0, -1), ("0", 1), (0, 1.5)])
    def test_get_batch_refuses_bad_arguments(
        self, backend: DBBackend, batch: Any, size: Any
    ) -> None:
        with pytest.raises(ValueError, match="batch"):
            backend.get_batch(batch, size)

    # -- through a key-value layer ---------------------------------------------------------
    def test_layer_index_forms(self, backend: DBBackend) -> None:
        layer = build_db_layer(backend)
        layer["a"] = 1
        layer[7] = [1, 2]  # an int key is its decimal string; a list is a value
        layer[["b", "c"]] = [2, {"x": 3}]
        layer[("d", "col")] = 4
        layer[(["e", "f"], ("p", "q"))] = [{"p": 1}, {"q": 2, "p": None}]
        layer["g"] = {"old": 1, "value": 0}
        layer["g"] = 5  # a whole-row write replaces: the row is {"value": 5}
        layer["h"] = {"a": 1, "b": 2}
        layer[("h", "b")] = 3  # a column update keeps the other fields
        assert_values_equal(
            self.stored_rows(backend),
            {
                "a": {"value": 1},
                "7": {"value": [1, 2]},
                "b": {"value": 2},
                "c": {"x": 3},
                "d": {"col": 4},
                "e": {"p": 1},
                "f": {"q": 2, "p": None},
                "g": {"value": 5},
                "h": {"a": 1, "b": 3},
            },
        )
        assert layer["a"] == 1
        assert layer["7"] == [1, 2]
        assert layer["c"] == {"x": 3}  # no "value": the whole row
        assert layer[["a", "b"]] == [1, 2]
        assert layer[("d", "col")] == 4
        assert layer[(["e", "f"], "p")] == [1, None]
        assert layer[("f", ("q", "zz"))] == {"q": 2}
        assert layer[(["e", "f", "missing"], ("p", "q"))] == [{"p": 1}, {"q": 2, "p": None}, {}]
        assert_values_equal(layer[row_index(["c", "d"])], [{"x": 3}, {"col": 4}])

    def test_layer_missing_rows(self, backend: DBBackend) -> None:
        layer = build_db_layer(backend)
        layer["a"] = 1
        with pytest.raises(KeyError, match="nope"):
            layer["nope"]
        with pytest.raises(KeyError, match="nope"):
            layer[["a", "nope"]]
        with pytest.raises(KeyError, match="zz"):
            layer[("a", "zz")]
        assert layer.get("nope", 7) == 7
        assert layer.get("a", 7) == 1
        assert "nope" not in layer
        assert "a" in layer
        assert layer[("nope", ("x",))] == {}

    def test_readonly_layer_refuses_writes_and_deletes(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"a": {"value": 1}})
        layer = build_db_layer(backend, readonly=True)
        with pytest.raises(ReadonlyLayerError):
            layer["b"] = 2
        with pytest.raises(ReadonlyLayerError):
            del layer["a"]
        with pytest.raises(ReadonlyLayerError):
            layer.clear()
        with pytest.raises(ReadonlyLayerError):
            layer.delete()
        assert self.stored_rows(backend) == {"a": {"value": 1}}
        assert layer["a"] == 1
        assert len(layer) == 1

    def test_layer_delete_rows(self, backend: DBBackend) -> None:
        self.put_rows(backend, {k: {"value": k} for k in "abc"})
        layer = build_db_layer(backend)
        del layer["a"]
        del layer[["b", "missing"]]
        assert self.raw_row_keys(backend) == {"c"}
        with pytest.raises(ValueError, match="whole rows"):
            del layer[("c", "value")]
        layer.clear()
        assert self.raw_row_keys(backend) == set()

    def test_layer_pickles(self, backend: DBBackend) -> None:
        layer = build_db_layer(backend)
        if not backend.capabilities.picklable:
            with pytest.raises((TypeError, pickle.PicklingError)):
                pickle.dumps(layer)
            return
        self.put_rows(backend, {"a": {"value": np.arange(3)}})
        clone = pickle.loads(pickle.dumps(layer))
        assert clone.name == layer.name
        assert_values_equal(clone["a"], np.arange(3))
