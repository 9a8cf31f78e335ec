"""The row tests of the key-value contract suite: reads, writes and stored values.

What one call does to the rows it names: reads of stored and missing rows, the two
write semantics (a whole-row write replaces the row, a projected write updates only
its columns), the checks made before anything is written, calls of many rows at once
(across the batch sizes of services such as DynamoDB), and the round trip of every
value kind. Each test checks the storage through the raw hooks, not only by reading
back through the backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lamina.keyvalue.backend import DBBackend
from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.layer import build_db_layer
from lamina.testing.keyvalue.base import KeyValueContractBase
from lamina.testing.keyvalue.samples import (
    BAD_VALUES,
    BATCH_SIZES,
    ONE_ROW,
    VALUE_SAMPLES,
    assert_values_equal,
    rng_array,
    row_index,
)

__all__ = ["KeyValueRowTests"]


class KeyValueRowTests(KeyValueContractBase):
    """The row tests of :class:`~lamina.testing.keyvalue.KeyValueBackendTests`."""

    # -- reads --------------------------------------------------------------------------------
    def test_missing_rows_read_as_empty(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"a": {"value": 1}})
        out = backend.read(row_index(["missing", "a", "other"]))
        assert_values_equal(out, [{}, {"value": 1}, {}])
        assert not self.is_stored(backend, row_index(["missing", "other"]))

    def test_read_follows_the_index_order(self, backend: DBBackend) -> None:
        rows = {f"r{i}": {"value": i} for i in range(7)}
        self.put_rows(backend, rows)
        keys = [f"r{i}" for i in (6, 0, 3, 5, 1, 4, 2)]
        assert_values_equal(backend.read(row_index(keys)), [rows[k] for k in keys])

    def test_unprojected_read_returns_whole_rows(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"r": {"a": 1, "b": "two", "value": None}})
        assert_values_equal(backend.read(row_index(["r"])), [{"a": 1, "b": "two", "value": None}])

    def test_projected_read_returns_only_listed_columns(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"r": {"a": 1, "b": 2, "c": 3}, "s": {"a": 4, "b": 5}})
        idx = DBIndex({"r": ("a", "c", "zz"), "s": ("b",)}, col_keys=("a", "b", "c", "zz"))
        assert_values_equal(backend.read(idx), [{"a": 1, "c": 3}, {"b": 5}])
        none = row_index(["r", "s", "t"], ("zz",))
        assert_values_equal(backend.read(none), [{}, {}, {}])

    def test_nothing_hidden_is_stored(self, backend: DBBackend) -> None:
        # a row is stored as exactly its fields: no hidden bookkeeping field (the
        # reference's ``_id_nonunique`` stamp) is added by whole-row or column writes
        backend.write(row_index(["r"]), [{"value": 1}])
        backend.write(row_index(["c"], ("a",)), [{"a": 2}])
        assert self.raw_get_row(backend, "r") == {"value": 1}
        assert self.raw_get_row(backend, "c") == {"a": 2}
        backend.write(row_index(["_id_nonunique"]), [{"_id_nonunique": 3}])  # ordinary names
        assert_values_equal(backend.read(row_index(["_id_nonunique"])), [{"_id_nonunique": 3}])

    # -- writes -------------------------------------------------------------------------------
    def test_whole_row_write_replaces_the_row(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"r": {"a": 1, "b": 2}, "keep": {"a": 0}})
        backend.write(row_index(["r", "new"]), [{"b": 3, "c": [4]}, {"x": None}])
        assert_values_equal(
            self.stored_rows(backend),
            {"r": {"b": 3, "c": [4]}, "new": {"x": None}, "keep": {"a": 0}},
        )
        # every field given is stored, whatever the index's per-row columns say
        backend.write(DBIndex({"r": ("value",)}), [{"p": 1, "q": 2}])
        assert_values_equal(self.stored_rows(backend)["r"], {"p": 1, "q": 2})
        assert_values_equal(backend.read(row_index(["r"])), [{"p": 1, "q": 2}])

    def test_projected_write_updates_only_its_columns(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"r": {"a": 1, "b": 2, "c": 3}, "s": {"a": 0, "z": 9}})
        idx = DBIndex({"r": ("a", "b"), "s": ("b",), "new": ("a", "b")}, col_keys=("a", "b"))
        backend.write(idx, [{"a": 10, "b": None}, {"b": [5]}, {"a": 7}])
        assert_values_equal(
            self.stored_rows(backend),
            {
                "r": {"a": 10, "b": None, "c": 3},
                "s": {"a": 0, "z": 9, "b": [5]},
                "new": {"a": 7},  # an absent row is created with the fields given
            },
        )
        # a column not given is kept even though the index names it
        backend.write(row_index(["r"], ("a", "b")), [{"a": 11}])
        assert_values_equal(self.stored_rows(backend)["r"], {"a": 11, "b": None, "c": 3})

    def test_whole_row_write_of_no_fields_is_refused(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"r": {"a": 1}})
        for keys in (["r"], ["new"], ["new", "r"]):
            rows: list[dict[str, Any]] = [{"value": 1}] * (len(keys) - 1) + [{}]
            with pytest.raises(ValueError, match=r"empty row.*del layer\[key\]"):
                backend.write(row_index(keys), rows)
            assert self.raw_row_keys(backend) == {"r"}  # nothing of the write is stored
            assert_values_equal(self.stored_rows(backend), {"r": {"a": 1}})
        layer = build_db_layer(backend)
        with pytest.raises(ValueError, match="empty row"):
            layer["r"] = {}
        with pytest.raises(ValueError, match="empty row"):
            layer[["x", "y"]] = [{"value": 1}, {}]
        assert_values_equal(self.stored_rows(backend), {"r": {"a": 1}})

    def test_projected_write_of_no_fields_changes_nothing(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"r": {"a": 1}})
        backend.write(row_index(["new", "r"], ("a",)), [{}, {}])
        assert self.raw_row_keys(backend) == {"r"}
        assert_values_equal(self.stored_rows(backend), {"r": {"a": 1}})
        assert "new" not in backend

    @pytest.mark.parametrize(("given", "indexed"), [(0, 1), (2, 1), (1, 2), (3, 30)])
    def test_row_count_mismatch_is_refused(
        self, backend: DBBackend, given: int, indexed: int
    ) -> None:
        idx = row_index([f"k{i}" for i in range(indexed)])
        rows = [{"value": i} for i in range(given)]
        with pytest.raises(ValueError, match=rf"{given} row\(s\) given for {indexed} indexed"):
            backend.write(idx, rows)
        assert self.raw_row_keys(backend) == set()

    def test_projected_write_refuses_other_fields(self, backend: DBBackend) -> None:
        idx = row_index(["a", "b"], ("x", "y"))
        with pytest.raises(ValueError, match=r"\['z'\].*outside the columns"):
            backend.write(idx, [{"x": 1}, {"y": 2, "z": 3}])
        assert self.raw_row_keys(backend) == set()

    @pytest.mark.parametrize(("name", "bad"), BAD_VALUES, ids=[n for n, _ in BAD_VALUES])
    def test_bad_values_are_refused_before_anything_is_written(
        self, backend: DBBackend, name: str, bad: Any
    ) -> None:
        with pytest.raises(ValueError, match=r"cannot be stored|must be str"):
            backend.write(row_index(["good", "bad"]), [{"value": 1}, {"value": bad}])
        assert self.raw_row_keys(backend) == set()

    @pytest.mark.parametrize("field", ["", 5])
    def test_bad_field_names_are_refused(self, backend: DBBackend, field: Any) -> None:
        with pytest.raises(ValueError, match="field"):
            backend.write(row_index(["good", "bad"]), [{"value": 1}, {field: 1}])
        assert self.raw_row_keys(backend) == set()

    def test_data_that_is_not_a_list_of_dicts_is_refused(self, backend: DBBackend) -> None:
        with pytest.raises(ValueError, match="list of row dicts"):
            backend.write(row_index(["a"]), {"value": 1})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="must be a dict"):
            backend.write(row_index(["a"]), [5])  # type: ignore[list-item]
        assert self.raw_row_keys(backend) == set()

    # -- batches of rows ------------------------------------------------------------------
    # Sizes of one write and one read: DynamoDB's batch limits (25 writes, 100 reads) and
    # one past each.
    @pytest.mark.parametrize("n", BATCH_SIZES)
    def test_rows_written_and_read_in_one_call(self, backend: DBBackend, n: int) -> None:
        keys = [f"key-{i:04d}" for i in range(n)]
        rows = [{"value": i, "text": f"row {i}", "arr": np.full(3, i, np.int32)} for i in range(n)]
        backend.write(row_index(keys), rows)
        assert self.raw_row_keys(backend) == set(keys)
        for key, row in zip(keys, rows, strict=True):
            assert_values_equal(self.raw_read(backend, row_index([key]))[0], row)
        assert_values_equal(backend.read(row_index(keys)), rows)
        assert_values_equal(backend.read(row_index(keys[::-1])), rows[::-1])
        # as many rows that are not stored read as empty rows
        missing = [f"missing-{i}" for i in range(n)]
        assert_values_equal(backend.read(row_index(missing)), [{}] * n)
        assert len(backend) == n
        assert sorted(backend.keys()) == keys
        assert sorted(backend.query()) == keys
        backend.clear(row_index(keys))
        assert self.raw_row_keys(backend) == set()

    @pytest.mark.parametrize("n", BATCH_SIZES)
    def test_layer_writes_and_reads_a_key_list(self, backend: DBBackend, n: int) -> None:
        layer = build_db_layer(backend)
        keys = [f"k{i}" for i in range(n)]
        values = [float(i) / 10 for i in range(n)]
        layer[keys] = values
        assert_values_equal(layer[keys], values)
        assert_values_equal(
            self.stored_rows(backend), {k: {"value": v} for k, v in zip(keys, values, strict=True)}
        )

    def test_repeated_keys_in_one_layer_write_last_wins(self, backend: DBBackend) -> None:
        layer = build_db_layer(backend)
        keys = [f"k{i}" for i in range(30)] + ["k0", "k29", "k0"]
        layer[keys] = list(range(33))
        stored = self.stored_rows(backend)
        assert len(stored) == 30
        assert stored["k0"] == {"value": 32}
        assert stored["k29"] == {"value": 31}
        assert stored["k1"] == {"value": 1}
        assert layer[["k0", "k1", "k0"]] == [32, 1, 32]
        # whole rows of one key: the last row given is the row
        layer[["r", "s", "r"]] = [{"a": 1, "b": 1}, {"a": 5}, {"b": 2, "c": 3}]
        stored = self.stored_rows(backend)
        assert stored["r"] == {"b": 2, "c": 3}
        assert stored["s"] == {"a": 5}
        # column updates of one key: per column, the last value wins; the rest is kept
        layer[(["r", "s", "r"], ("a", "b"))] = [{"a": 1, "b": 1}, {"b": 6}, {"b": 7}]
        stored = self.stored_rows(backend)
        assert stored["r"] == {"a": 1, "b": 7, "c": 3}
        assert stored["s"] == {"a": 5, "b": 6}
        layer[(["s", "s"], "a")] = [8, 9]
        assert self.stored_rows(backend)["s"] == {"a": 9, "b": 6}

    # -- values -------------------------------------------------------------------------------
    @pytest.mark.parametrize(("name", "value"), VALUE_SAMPLES, ids=[n for n, _ in VALUE_SAMPLES])
    def test_value_round_trip(self, backend: DBBackend, name: str, value: Any) -> None:
        backend.write(row_index(["r"]), [{"value": value}])
        assert_values_equal(self.raw_get_row(backend, "r")["value"], value)  # type: ignore[index]
        assert_values_equal(backend.read(row_index(["r"])), [{"value": value}])
        layer = build_db_layer(backend)
        layer["s"] = {"value": value}
        assert_values_equal(layer["s"], value)
        assert_values_equal(layer[("s", "value")], value)

    def test_every_value_kind_in_one_row(self, backend: DBBackend) -> None:
        backend.write(row_index(["r"]), [ONE_ROW])
        assert_values_equal(backend.read(row_index(["r"])), [ONE_ROW])
        assert_values_equal(self.stored_rows(backend), {"r": ONE_ROW})
        assert_values_equal(backend.query(), {"r": ONE_ROW})
        assert_values_equal(backend.get_batch(0, 1), {"r": ONE_ROW})

    def test_values_are_normalised(self, backend: DBBackend) -> None:
        row = {
            "tuple": (1, (2, "x")),
            "np-int": np.int64(3),
            "np-float": np.float32(0.5),
            "np-bool": np.bool_(True),
            "np-str": np.str_("s"),
        }
        backend.write(row_index(["r"]), [row])
        expected = {"tuple": [1, [2, "x"]], "np-int": 3, "np-float": 0.5, "np-bool": True}
        expected["np-str"] = "s"
        assert_values_equal(backend.read(row_index(["r"])), [expected])

    def test_large_values(self, backend: DBBackend) -> None:
        text = "λ" * 150_000  # 300 kB of UTF-8
        array = rng_array((12_500,), "float64", 9)  # 100 kB
        backend.write(row_index(["text", "array"]), [{"value": text}, {"value": array}])
        assert_values_equal(
            backend.read(row_index(["text", "array"])), [{"value": text}, {"value": array}]
        )
        blobs = {f"blob-{i}": {"value": bytes([i]) * 100_000} for i in range(26)}
        backend.write(row_index(blobs), list(blobs.values()))
        assert_values_equal(backend.read(row_index(blobs)), list(blobs.values()))

    def test_stored_values_are_copies(self, backend: DBBackend) -> None:
        row: dict[str, Any] = {
            "list": [1, [2]],
            "dict": {"a": 1},
            "array": np.zeros(3, dtype=np.int8),
        }
        backend.write(row_index(["r"]), [row])
        row["list"][1].append(3)
        row["dict"]["b"] = 2
        row["array"][0] = 9
        expected = {"list": [1, [2]], "dict": {"a": 1}, "array": np.zeros(3, dtype=np.int8)}
        read = backend.read(row_index(["r"]))[0]
        assert_values_equal(read, expected)
        read["list"].append(4)
        read["array"][1] = 7
        assert_values_equal(backend.read(row_index(["r"]))[0], expected)
