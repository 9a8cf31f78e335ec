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
"""

from __future__ import annotations

import itertools
import math
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from lamina.errors import ReadonlyLayerError
from lamina.keyvalue.backend import DBBackend
from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.layer import build_db_layer
from lamina.keyvalue.values import values_equal
from lamina.testing.contracts import BackendContract

__all__ = ["VALUE_SAMPLES", "KeyValueBackendTests", "assert_values_equal"]

_counter = itertools.count()


def assert_values_equal(actual: Any, expected: Any) -> None:
    """Assert strict equality of stored values (types, float signs and nan, arrays)."""
    assert values_equal(actual, expected), f"\nactual:   {actual!r}\nexpected: {expected!r}"


def _rng_array(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return rng.standard_normal(shape).astype(dt)


#: Values of every kind a row may hold, with test ids. Floats are chosen to catch any
#: decimal or lossy encoding (0.1, 1e300, -0.0, subnormals, inf, nan), ints to catch
#: 64-bit and 38-digit limits, arrays to catch dtype, shape and memory-order slips.
VALUE_SAMPLES: tuple[tuple[str, Any], ...] = (
    ("none", None),
    ("true", True),
    ("false", False),
    ("int-zero", 0),
    ("int-negative", -7),
    ("int64-max", 2**63 - 1),
    ("int64-min", -(2**63)),
    ("uint64-max-plus-one", 2**64 + 1),
    ("int-40-digits", 10**40 + 1),
    ("int-huge-negative", -(2**200)),
    ("float-integral", 1.0),
    ("float-0.1", 0.1),
    ("float-1e300", 1e300),
    ("float-neg-zero", -0.0),
    ("float-pos-zero", 0.0),
    ("float-subnormal", 5e-324),
    ("float-max", 1.7976931348623157e308),
    ("float-third", 1 / 3),
    ("float-inf", math.inf),
    ("float-neg-inf", -math.inf),
    ("float-nan", math.nan),
    ("str-empty", ""),
    ("str-unicode", "µm ✓ 日本 \U0001f600"),
    ("str-control", "tab\tnew\nline\x00nul"),
    ("bytes-empty", b""),
    ("bytes-binary", bytes(range(256))),
    ("list-empty", []),
    ("list-mixed", [1, 2.5, "x", None, True, b"b", [2, [3.0]]]),
    ("dict-empty", {}),
    ("dict-nested", {"a": {"b": [1, {"c": None, "d": -0.0}]}, "e": [], "f": {}}),
    ("dict-with-array", {"arr": np.arange(4, dtype=np.int16), "n": 1}),
    ("list-of-arrays", [np.zeros((2, 2), dtype=np.float32), np.array(True)]),
    ("array-uint8-2d", _rng_array((3, 4), "uint8", 1)),
    ("array-int64-1d", _rng_array((17,), "int64", 2)),
    ("array-uint64-3d", _rng_array((2, 3, 4), "uint64", 3)),
    ("array-float32-3d", _rng_array((2, 3, 4), "float32", 4)),
    ("array-float64-special", np.array([0.1, -0.0, np.inf, -np.inf, np.nan, 5e-324])),
    ("array-bool", _rng_array((5,), "bool", 5)),
    ("array-complex64", _rng_array((3,), "complex64", 6)),
    ("array-0d-int32", np.array(-5, dtype=np.int32)),
    ("array-0d-float64", np.array(0.1)),
    ("array-empty", np.zeros((0, 3), dtype=np.uint16)),
    ("array-fortran-order", np.asfortranarray(_rng_array((4, 5), "int32", 7))),
    ("array-non-contiguous", _rng_array((6, 8), "float64", 8)[::2, ::3]),
)

# Values no backend may store; each write of one is refused before anything is written.
_BAD_VALUES: tuple[tuple[str, Any], ...] = (
    ("set", {1, 2}),
    ("complex", 1 + 2j),
    ("object", object()),
    ("dict-int-key", {1: "a"}),
    ("nested-bad", {"ok": [1, {2, 3}]}),
    ("array-str", np.array(["a", "b"])),
    ("array-object", np.array([None, 1], dtype=object)),
    ("array-datetime", np.array(["2020-01-01"], dtype="datetime64[D]")),
    ("masked-array", np.ma.array([1, 2], mask=[False, True])),
    ("generator", (i for i in range(2))),
)

# One value of each kind for rows with many fields.
_ONE_ROW = {f"f{i}": value for i, (_, value) in enumerate(VALUE_SAMPLES)}

_SAMPLE_VALUES: tuple[Any, ...] = (
    {"nested": [1, 2.5, None, True]},
    np.arange(6, dtype=np.int32).reshape(2, 3),
    "a string with unicode: µm ✓",
    b"\x00\x01bytes",
)


_BATCH_SIZES = (0, 1, 25, 26, 100, 101)


def _index(keys: Any, columns: tuple[str, ...] | None = None) -> DBIndex:
    cols = columns or ("value",)
    return DBIndex(dict.fromkeys(keys, cols), col_keys=columns)


class KeyValueBackendTests(BackendContract):
    """Contract of every key-value backend; subclass it in the backend's tests."""

    num_samples = len(_SAMPLE_VALUES)

    # -- hooks for the backend's tests ----------------------------------------------------
    def make_backend(self, path: Path) -> DBBackend:
        """A fresh, empty backend (under ``path`` if it stores files)."""
        raise NotImplementedError("subclass the suite and implement make_backend")

    def raw_get_row(self, backend: Any, key: str) -> dict[str, Any] | None:
        """Every stored field of row ``key``, or ``None`` (no backend method)."""
        raise NotImplementedError

    def raw_put_row(self, backend: Any, key: str, row: dict[str, Any]) -> None:
        """Store ``row`` as the whole row ``key`` (no backend method)."""
        raise NotImplementedError

    def raw_row_keys(self, backend: Any) -> set[str]:
        """The keys of every stored row (no backend method)."""
        raise NotImplementedError

    @pytest.fixture
    def make(self, tmp_path: Path) -> Any:
        def make() -> DBBackend:
            return self.make_backend(tmp_path / f"kv{next(_counter)}")

        return make

    @pytest.fixture
    def backend(self, make: Any) -> DBBackend:
        backend: DBBackend = make()
        return backend

    # -- the generic hooks, on the row hooks ------------------------------------------------
    def raw_read(self, backend: Any, idx: DBIndex) -> list[dict[str, Any]]:
        out = []
        for key in idx.row_col_keys:
            row = self.raw_get_row(backend, key) or {}
            columns = idx.projection(key)
            out.append({f: v for f, v in row.items() if columns is None or f in columns})
        return out

    def raw_write(self, backend: Any, idx: DBIndex, data: Any) -> None:
        """Whole-row index: replace each row; projected index: update its columns."""
        for key, fields in zip(idx.row_col_keys, data, strict=True):
            row = None if idx.col_keys is None else self.raw_get_row(backend, key)
            if row is None:
                if not fields:
                    continue  # a row exists only while it has a field
                row = {}
            row.update(fields)
            self.raw_put_row(backend, key, row)

    def is_stored(self, backend: Any, idx: DBIndex) -> bool:
        return any(self.raw_get_row(backend, key) is not None for key in idx.row_col_keys)

    # -- the scheme's samples ---------------------------------------------------------------
    def sample(self, i: int, backend: Any) -> tuple[Any, Any]:
        """Row ``sample-i`` with the same two fields for every ``i`` (so that the generic
        overwrite test checks values, not only the replacing of fields)."""
        return _index([f"sample-{i}"]), [{"value": _SAMPLE_VALUES[i], "n": i}]

    def assert_data_equal(self, actual: Any, expected: Any) -> None:
        assert_values_equal(actual, expected)

    # -- helpers (raw only) -----------------------------------------------------------------
    def put_rows(self, backend: Any, rows: dict[str, dict[str, Any]]) -> None:
        for key, fields in rows.items():
            self.raw_put_row(backend, key, dict(fields))

    def stored_rows(self, backend: Any) -> dict[str, dict[str, Any]]:
        out = {}
        for key in self.raw_row_keys(backend):
            row = self.raw_get_row(backend, key)
            assert row is not None
            out[key] = row
        return out

    # -- reads --------------------------------------------------------------------------------
    def test_missing_rows_read_as_empty(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"a": {"value": 1}})
        out = backend.read(_index(["missing", "a", "other"]))
        assert_values_equal(out, [{}, {"value": 1}, {}])
        assert not self.is_stored(backend, _index(["missing", "other"]))

    def test_read_follows_the_index_order(self, backend: DBBackend) -> None:
        rows = {f"r{i}": {"value": i} for i in range(7)}
        self.put_rows(backend, rows)
        keys = [f"r{i}" for i in (6, 0, 3, 5, 1, 4, 2)]
        assert_values_equal(backend.read(_index(keys)), [rows[k] for k in keys])

    def test_unprojected_read_returns_whole_rows(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"r": {"a": 1, "b": "two", "value": None}})
        assert_values_equal(backend.read(_index(["r"])), [{"a": 1, "b": "two", "value": None}])

    def test_projected_read_returns_only_listed_columns(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"r": {"a": 1, "b": 2, "c": 3}, "s": {"a": 4, "b": 5}})
        idx = DBIndex({"r": ("a", "c", "zz"), "s": ("b",)}, col_keys=("a", "b", "c", "zz"))
        assert_values_equal(backend.read(idx), [{"a": 1, "c": 3}, {"b": 5}])
        none = _index(["r", "s", "t"], ("zz",))
        assert_values_equal(backend.read(none), [{}, {}, {}])

    def test_nothing_hidden_is_stored(self, backend: DBBackend) -> None:
        # a row is stored as exactly its fields: no hidden bookkeeping field (the
        # reference's ``_id_nonunique`` stamp) is added by whole-row or column writes
        backend.write(_index(["r"]), [{"value": 1}])
        backend.write(_index(["c"], ("a",)), [{"a": 2}])
        assert self.raw_get_row(backend, "r") == {"value": 1}
        assert self.raw_get_row(backend, "c") == {"a": 2}
        backend.write(_index(["_id_nonunique"]), [{"_id_nonunique": 3}])  # ordinary names
        assert_values_equal(backend.read(_index(["_id_nonunique"])), [{"_id_nonunique": 3}])

    # -- writes -------------------------------------------------------------------------------
    def test_whole_row_write_replaces_the_row(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"r": {"a": 1, "b": 2}, "keep": {"a": 0}})
        backend.write(_index(["r", "new"]), [{"b": 3, "c": [4]}, {"x": None}])
        assert_values_equal(
            self.stored_rows(backend),
            {"r": {"b": 3, "c": [4]}, "new": {"x": None}, "keep": {"a": 0}},
        )
        # every field given is stored, whatever the index's per-row columns say (W13)
        backend.write(DBIndex({"r": ("value",)}), [{"p": 1, "q": 2}])
        assert_values_equal(self.stored_rows(backend)["r"], {"p": 1, "q": 2})
        assert_values_equal(backend.read(_index(["r"])), [{"p": 1, "q": 2}])

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
        backend.write(_index(["r"], ("a", "b")), [{"a": 11}])
        assert_values_equal(self.stored_rows(backend)["r"], {"a": 11, "b": None, "c": 3})

    def test_whole_row_write_of_no_fields_is_refused(self, backend: DBBackend) -> None:
        self.put_rows(backend, {"r": {"a": 1}})
        for keys in (["r"], ["new"], ["new", "r"]):
            rows: list[dict[str, Any]] = [{"value": 1}] * (len(keys) - 1) + [{}]
            with pytest.raises(ValueError, match=r"empty row.*del layer\[key\]"):
                backend.write(_index(keys), rows)
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
        backend.write(_index(["new", "r"], ("a",)), [{}, {}])
        assert self.raw_row_keys(backend) == {"r"}
        assert_values_equal(self.stored_rows(backend), {"r": {"a": 1}})
        assert "new" not in backend

    @pytest.mark.parametrize(("given", "indexed"), [(0, 1), (2, 1), (1, 2), (3, 30)])
    def test_row_count_mismatch_is_refused(
        self, backend: DBBackend, given: int, indexed: int
    ) -> None:
        idx = _index([f"k{i}" for i in range(indexed)])
        rows = [{"value": i} for i in range(given)]
        with pytest.raises(ValueError, match=rf"{given} row\(s\) given for {indexed} indexed"):
            backend.write(idx, rows)
        assert self.raw_row_keys(backend) == set()

    def test_projected_write_refuses_other_fields(self, backend: DBBackend) -> None:
        idx = _index(["a", "b"], ("x", "y"))
        with pytest.raises(ValueError, match=r"\['z'\].*outside the columns"):
            backend.write(idx, [{"x": 1}, {"y": 2, "z": 3}])
        assert self.raw_row_keys(backend) == set()

    @pytest.mark.parametrize(("name", "bad"), _BAD_VALUES, ids=[n for n, _ in _BAD_VALUES])
    def test_bad_values_are_refused_before_anything_is_written(
        self, backend: DBBackend, name: str, bad: Any
    ) -> None:
        with pytest.raises(ValueError, match=r"cannot be stored|must be str"):
            backend.write(_index(["good", "bad"]), [{"value": 1}, {"value": bad}])
        assert self.raw_row_keys(backend) == set()

    @pytest.mark.parametrize("field", ["", 5])
    def test_bad_field_names_are_refused(self, backend: DBBackend, field: Any) -> None:
        with pytest.raises(ValueError, match="field"):
            backend.write(_index(["good", "bad"]), [{"value": 1}, {field: 1}])
        assert self.raw_row_keys(backend) == set()

    def test_data_that_is_not_a_list_of_dicts_is_refused(self, backend: DBBackend) -> None:
        with pytest.raises(ValueError, match="list of row dicts"):
            backend.write(_index(["a"]), {"value": 1})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="must be a dict"):
            backend.write(_index(["a"]), [5])  # type: ignore[list-item]
        assert self.raw_row_keys(backend) == set()

    # -- batches of rows ------------------------------------------------------------------
    # Sizes of one write and one read: DynamoDB's batch limits (25 writes, 100 reads) and
    # one past each.
    @pytest.mark.parametrize("n", _BATCH_SIZES)
    def test_rows_written_and_read_in_one_call(self, backend: DBBackend, n: int) -> None:
        keys = [f"key-{i:04d}" for i in range(n)]
        rows = [{"value": i, "text": f"row {i}", "arr": np.full(3, i, np.int32)} for i in range(n)]
        backend.write(_index(keys), rows)
        assert self.raw_row_keys(backend) == set(keys)
        for key, row in zip(keys, rows, strict=True):
            assert_values_equal(self.raw_read(backend, _index([key]))[0], row)
        assert_values_equal(backend.read(_index(keys)), rows)
        assert_values_equal(backend.read(_index(keys[::-1])), rows[::-1])
        # as many rows that are not stored read as empty rows
        missing = [f"missing-{i}" for i in range(n)]
        assert_values_equal(backend.read(_index(missing)), [{}] * n)
        assert len(backend) == n
        assert sorted(backend.keys()) == keys
        assert sorted(backend.query()) == keys
        backend.clear(_index(keys))
        assert self.raw_row_keys(backend) == set()

    @pytest.mark.parametrize("n", _BATCH_SIZES)
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
        backend.write(_index(["r"]), [{"value": value}])
        assert_values_equal(self.raw_get_row(backend, "r")["value"], value)  # type: ignore[index]
        assert_values_equal(backend.read(_index(["r"])), [{"value": value}])
        layer = build_db_layer(backend)
        layer["s"] = {"value": value}
        assert_values_equal(layer["s"], value)
        assert_values_equal(layer[("s", "value")], value)

    def test_every_value_kind_in_one_row(self, backend: DBBackend) -> None:
        backend.write(_index(["r"]), [_ONE_ROW])
        assert_values_equal(backend.read(_index(["r"])), [_ONE_ROW])
        assert_values_equal(self.stored_rows(backend), {"r": _ONE_ROW})
        assert_values_equal(backend.query(), {"r": _ONE_ROW})
        assert_values_equal(backend.get_batch(0, 1), {"r": _ONE_ROW})

    def test_values_are_normalised(self, backend: DBBackend) -> None:
        row = {
            "tuple": (1, (2, "x")),
            "np-int": np.int64(3),
            "np-float": np.float32(0.5),
            "np-bool": np.bool_(True),
            "np-str": np.str_("s"),
        }
        backend.write(_index(["r"]), [row])
        expected = {"tuple": [1, [2, "x"]], "np-int": 3, "np-float": 0.5, "np-bool": True}
        expected["np-str"] = "s"
        assert_values_equal(backend.read(_index(["r"])), [expected])

    def test_large_values(self, backend: DBBackend) -> None:
        text = "λ" * 150_000  # 300 kB of UTF-8
        array = _rng_array((12_500,), "float64", 9)  # 100 kB
        backend.write(_index(["text", "array"]), [{"value": text}, {"value": array}])
        assert_values_equal(
            backend.read(_index(["text", "array"])), [{"value": text}, {"value": array}]
        )
        blobs = {f"blob-{i}": {"value": bytes([i]) * 100_000} for i in range(26)}
        backend.write(_index(blobs), list(blobs.values()))
        assert_values_equal(backend.read(_index(blobs)), list(blobs.values()))

    def test_stored_values_are_copies(self, backend: DBBackend) -> None:
        row: dict[str, Any] = {
            "list": [1, [2]],
            "dict": {"a": 1},
            "array": np.zeros(3, dtype=np.int8),
        }
        backend.write(_index(["r"]), [row])
        row["list"][1].append(3)
        row["dict"]["b"] = 2
        row["array"][0] = 9
        expected = {"list": [1, [2]], "dict": {"a": 1}, "array": np.zeros(3, dtype=np.int8)}
        read = backend.read(_index(["r"]))[0]
        assert_values_equal(read, expected)
        read["list"].append(4)
        read["array"][1] = 7
        assert_values_equal(backend.read(_index(["r"]))[0], expected)

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
        backend.clear(_index(["a", "missing", "c"]))
        assert self.raw_row_keys(backend) == {"b", "d"}
        backend.clear(_index([]))
        assert self.raw_row_keys(backend) == {"b", "d"}
        with pytest.raises(ValueError, match="whole rows"):
            backend.clear(_index(["b"], ("value",)))
        assert self.raw_row_keys(backend) == {"b", "d"}
        backend.clear()
        assert self.raw_row_keys(backend) == set()
        assert len(backend) == 0
        backend.clear()  # clearing nothing is fine

    # -- batches ------------------------------------------------------------------------------
    def test_get_batch_partitions_the_rows(self, backend: DBBackend) -> None:
        keys = [f"k{i:03d}" for i in range(101)]
        backend.write(_index(keys), [{"value": i, "other": -i} for i in range(101)])
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
        backend.write(_index(keys), [{"value": i} for i in range(60)])

        def membership() -> dict[str, int]:
            return {k: b for b in range(6) for k in backend.get_batch(b, 10)}

        before = membership()
        assert sorted(before) == keys
        # a row's batch depends on its key and the number of batches only: neither
        # column updates nor whole-row rewrites move it
        backend.write(_index(keys, ("other",)), [{"other": i} for i in range(60)])
        assert membership() == before
        backend.write(_index(keys), [{"value": -i} for i in range(60)])
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
        assert_values_equal(layer[_index(["c", "d"])], [{"x": 3}, {"col": 4}])

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
