"""Value checks and copies, strict value equality, filters, the write rule (replace
or update) and the batching rule that every key-value backend shares."""

from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np
import pytest

from lamina.keyvalue.backend import (
    apply_row_write,
    batch_count,
    check_column_filter,
    check_return_columns,
    key_batch,
    prepare_rows,
    project_row,
    row_matches,
)
from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.values import copy_value, normalize_value, values_equal


class Colour(enum.IntEnum):
    RED = 1


class Name(enum.StrEnum):
    A = "a"


# -- normalisation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, (2, 3)), [1, [2, 3]]),
        (np.int64(3), 3),
        (np.uint64(2**64 - 1), 2**64 - 1),
        (np.float32(0.5), 0.5),
        (np.float64(0.1), 0.1),
        (np.bool_(False), False),
        (np.str_("s"), "s"),
        (np.bytes_(b"b"), b"b"),
        (Colour.RED, 1),
        (Name.A, "a"),
        ({"a": (1,)}, {"a": [1]}),
    ],
)
def test_normalisation(value: Any, expected: Any) -> None:
    out = normalize_value(value)
    assert values_equal(out, expected), (out, expected)
    assert type(out) is type(expected)


def test_containers_and_arrays_are_copied() -> None:
    value = {"l": [1, [2]], "a": np.arange(3)}
    out = normalize_value(value)
    value["l"][1].append(3)  # type: ignore[attr-defined]
    value["a"][0] = 9  # type: ignore[index]
    assert values_equal(out, {"l": [1, [2]], "a": np.arange(3)})
    again = copy_value(out)
    again["l"].append(0)
    again["a"][1] = 9
    assert values_equal(out, {"l": [1, [2]], "a": np.arange(3)})


def test_array_dtype_shape_and_order_are_kept() -> None:
    arr = np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4))
    out = normalize_value(arr)
    assert out.dtype == np.dtype(">i4")
    assert out.shape == (3, 4)
    assert out is not arr
    np.testing.assert_array_equal(out, arr)
    zero_d = normalize_value(np.array(2.5, dtype=np.float16))
    assert zero_d.shape == ()
    assert zero_d.dtype == np.float16


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({1, 2}, "type set"),
        (frozenset(), "type frozenset"),
        (1j, "type complex"),
        (np.complex128(1j), "type complex128"),
        (bytearray(b"x"), "type bytearray"),
        (object(), "type object"),
        ({"a": [1, {2}]}, r"value\['a'\]\[1\] of type set"),
        ({("t",): 1}, "dict keys must be str"),
        (np.array(["x"]), "dtype <U1"),
        (np.array([b"x"]), "dtype |S1"),
        (np.array([1], dtype=object), "dtype object"),
        (np.array([1], dtype="datetime64[s]"), "dtype datetime64"),
        (np.ma.array([1]), "MaskedArray"),
        (np.datetime64("2020-01-01"), "type datetime64"),
    ],
)
def test_unstorable_values_are_named(value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        normalize_value(value)


# -- strict equality -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1, 1, True),
        (1, 1.0, False),
        (1, True, False),
        (0.0, -0.0, False),
        (math.nan, math.nan, True),
        (math.nan, 0.0, False),
        ([1, [2.0]], [1, [2.0]], True),
        ([1], (1,), False),
        ({"a": 1}, {"a": 1}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        (np.arange(3), np.arange(3), True),
        (np.arange(3), np.arange(3).astype(np.int32), False),
        (np.zeros((2, 1)), np.zeros((1, 2)), False),
        (np.array([np.nan, -0.0]), np.array([np.nan, -0.0]), True),
        (np.array([0.0]), np.array([-0.0]), False),
        (None, None, True),
        (b"a", "a", False),
    ],
)
def test_values_equal(a: Any, b: Any, equal: bool) -> None:
    assert values_equal(a, b) is equal


# -- filters and projections ----------------------------------------------------------------------
def test_filters_are_checked_and_normalised() -> None:
    assert check_column_filter(None) == {}
    assert check_column_filter({"a": "x", "b": [1, np.int64(2)], "c": ()}) == {
        "a": ("x",),
        "b": (1, 2),
        "c": (),
    }
    for bad, match in [
        (["a"], "mapping"),
        ({"": [1]}, "must not be empty"),
        ({"a": [[1]]}, "filter values are"),
        ({"a": [np.zeros(2)]}, "filter values are"),
    ]:
        with pytest.raises(ValueError, match=match):
            check_column_filter(bad)  # type: ignore[arg-type]


def test_row_matches_by_type_and_value() -> None:
    row = {"n": 1, "f": 1.0, "b": True, "s": "x", "z": None}
    assert row_matches(row, {}, union=True)
    assert row_matches(row, check_column_filter({"n": [1]}), union=True)
    assert not row_matches(row, check_column_filter({"n": [True]}), union=True)
    assert not row_matches(row, check_column_filter({"f": [1]}), union=True)
    assert row_matches(row, check_column_filter({"b": [True]}), union=True)
    assert row_matches(row, check_column_filter({"z": [None]}), union=True)
    both = check_column_filter({"s": ["x"], "n": [5]})
    assert row_matches(row, both, union=True)
    assert not row_matches(row, both, union=False)


def test_projection() -> None:
    row = {"a": 1, "b": 2, "_id_nonunique": 5}  # no field name is special
    assert project_row(row, None) == row
    assert project_row(row, ("b", "zz")) == {"b": 2}
    assert project_row(row, ()) == {}
    assert check_return_columns(()) == ()
    assert check_return_columns("a") == ("a",)
    assert check_return_columns(["a", "b"]) == ("a", "b")


# -- batches --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("total", "size", "batches"),
    [(0, 10, 1), (1, 10, 1), (9, 10, 1), (10, 10, 1), (11, 10, 2), (101, 25, 5), (100, 1, 100)],
)
def test_batch_count(total: int, size: int, batches: int) -> None:
    assert all(batch_count(b, size, total) == batches for b in range(batches))
    with pytest.raises(IndexError, match=f"{batches} batch"):
        batch_count(batches, size, total)
    with pytest.raises(IndexError):
        batch_count(-1, size, total)


def test_batch_arguments_are_checked() -> None:
    for batch, size in [(0, 0), (0, -5), (True, 1), (0, 2.0), ("1", 1)]:
        with pytest.raises(ValueError, match="batch"):
            batch_count(batch, size, 10)  # type: ignore[arg-type]


def test_key_batch_is_a_fixed_hash_of_the_key() -> None:
    # the same in every process and run (no PYTHONHASHSEED): pinned values
    assert [key_batch(k, 7) for k in ("a", "b", "row-1")] == [4, 0, 1]
    assert [key_batch(k, 1000) for k in ("a", "b", "row-1")] == [928, 668, 300]
    assert key_batch("a", 1) == 0
    assert {key_batch(f"k{i}", 5) for i in range(100)} == set(range(5))
    assert all(0 <= key_batch(f"k{i}", 3) < 3 for i in range(100))


def test_random_batches_have_about_the_asked_size() -> None:
    from lamina.keyvalue.index import DBIndex
    from lamina.keyvalue.memory import MemoryKeyValueBackend

    backend = MemoryKeyValueBackend()
    keys = [f"k{i}" for i in range(2000)]
    backend.write(DBIndex(dict.fromkeys(keys, ("value",))), [{"value": 1}] * 2000)
    sizes = [len(backend.get_batch(b, 100)) for b in range(20)]
    assert sum(sizes) == 2000
    assert all(40 <= s <= 180 for s in sizes), sizes  # ~100 each; loose bounds, no flakes


# -- the write rule ------------------------------------------------------------------------------
def test_apply_row_write_replaces_whole_rows() -> None:
    stored = {"a": 1, "b": 2}
    assert apply_row_write(stored, {"b": 3}, replace=True) == {"b": 3}
    assert stored == {"a": 1, "b": 2}  # not changed in place
    assert apply_row_write(None, {"x": 1}, replace=True) == {"x": 1}
    with pytest.raises(ValueError, match="empty row"):
        apply_row_write(stored, {}, replace=True)


def test_apply_row_write_updates_columns() -> None:
    stored = {"a": 1, "b": 2}
    assert apply_row_write(stored, {"b": 3, "c": 4}, replace=False) == {"a": 1, "b": 3, "c": 4}
    assert apply_row_write(stored, {}, replace=False) == stored
    assert apply_row_write(None, {}, replace=False) is None  # nothing to create
    assert apply_row_write(None, {"a": 1}, replace=False) == {"a": 1}


def test_prepare_rows_refuses_empty_whole_rows_only() -> None:
    whole = DBIndex({"a": ("value",), "b": ("value",)})
    with pytest.raises(ValueError, match=r"row 'b': an empty row cannot be written"):
        prepare_rows(whole, [{"value": 1}, {}])
    projected = DBIndex({"a": ("x",), "b": ("x",)}, col_keys=("x",))
    assert prepare_rows(projected, [{"x": 1}, {}]) == [{"x": 1}, {}]
