"""The key-value scheme: user index forms, read shaping, write data, and two fixes of the
reference: fields outside the index's columns and row-count mismatches are refused, never
dropped or written in part."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.memory import build_memory_db_layer
from lamina.keyvalue.scheme import KeyValueScheme, MissingKeyError, row_key

SCHEME = KeyValueScheme()
V = ("value",)


# -- user index forms ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user_idx", "expected"),
    [
        ("k", DBIndex({"k": V})),
        (5, DBIndex({"5": V})),
        (np.int64(-3), DBIndex({"-3": V})),
        (["k0", "k1"], DBIndex({"k0": V, "k1": V})),
        (["b", "a", "b"], DBIndex({"b": V, "a": V})),  # repeats read once, first place kept
        ([], DBIndex({})),
        (("k", "c"), DBIndex({"k": ("c",)}, col_keys=("c",))),
        (("k", ("c0", "c1")), DBIndex({"k": ("c0", "c1")}, col_keys=("c0", "c1"))),
        (("k", ["c0", "c1", "c0"]), DBIndex({"k": ("c0", "c1")}, col_keys=("c0", "c1"))),
        ((["a", "b"], "c"), DBIndex({"a": ("c",), "b": ("c",)}, col_keys=("c",))),
        (
            (("a", 2), ("c0", "c1")),
            DBIndex({"a": ("c0", "c1"), "2": ("c0", "c1")}, col_keys=("c0", "c1")),
        ),
    ],
)
def test_user_forms(user_idx: Any, expected: DBIndex) -> None:
    assert SCHEME.to_index(user_idx) == expected


def test_a_dbindex_is_the_standard_index() -> None:
    idx = DBIndex({"a": ("x",)}, col_keys=("x",))
    assert SCHEME.to_index(idx) is idx


@pytest.mark.parametrize(
    ("user_idx", "match"),
    [
        (True, "indexed with"),
        (1.5, "indexed with"),
        (None, "indexed with"),
        ({"a": ("x",)}, "indexed with"),
        ("", "must not be empty"),
        (["a", 1.5], "row key is a str"),
        (["a", None], "row key is a str"),
        (("a", "b", "c"), "tuple of 3 items"),
        (("a",), "tuple of 1 items"),
        (("a", ()), "names no columns"),
        (("a", 5), "column name or a tuple"),
        (("a", ("x", 5)), "column name must be a str"),
    ],
)
def test_bad_forms_are_refused(user_idx: Any, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        SCHEME.to_index(user_idx)


def test_row_key() -> None:
    assert row_key("k") == "k"
    assert row_key(12) == "12"
    assert row_key(np.uint8(7)) == "7"
    for bad in (True, np.bool_(False), 1.0, b"k", None):
        with pytest.raises(ValueError, match="row key"):
            row_key(bad)


# -- read shaping --------------------------------------------------------------------------------
def shape(user_idx: Any, rows: list[dict[str, Any]]) -> Any:
    return SCHEME.shape_read(user_idx, SCHEME.to_index(user_idx), rows)


def test_single_key_reads_the_value_or_the_whole_row() -> None:
    assert shape("k", [{"value": 3, "other": 4}]) == 3
    assert shape("k", [{"value": None}]) is None
    assert shape("k", [{"a": 1, "b": 2}]) == {"a": 1, "b": 2}
    with pytest.raises(MissingKeyError, match="row 'k' is not stored"):
        shape("k", [{}])


def test_key_list_reads_values() -> None:
    assert shape(["a", "b"], [{"value": 1}, {"value": [2]}]) == [1, [2]]
    assert shape([], []) == []
    # The reference raised KeyError('value'); lamina names the row.
    with pytest.raises(MissingKeyError, match="row 'b' is not stored"):
        shape(["a", "b"], [{"value": 1}, {}])
    with pytest.raises(MissingKeyError, match=r"row 'b' has no 'value' column.*\['x'\]"):
        shape(["a", "b"], [{"value": 1}, {"x": 2}])


def test_repeated_keys_read_at_each_place() -> None:
    out = shape(["a", "b", "a"], [{"value": [1]}, {"value": 2}])
    assert out == [[1], 2, [1]]
    out[0].append(9)
    assert out[2] == [1]  # each place gets its own copy
    rows = shape((["a", "a"], ("x",)), [{"x": 1}])
    assert rows == [{"x": 1}, {"x": 1}]
    assert rows[0] is not rows[1]


def test_column_forms() -> None:
    assert shape(("k", "c"), [{"c": 5}]) == 5
    assert shape((["a", "b"], "c"), [{"c": 1}, {"c": None}]) == [1, None]
    with pytest.raises(MissingKeyError, match="row 'b' has no stored column 'c'"):
        shape((["a", "b"], "c"), [{"c": 1}, {}])
    assert shape(("k", ("c0", "c1")), [{"c0": 1}]) == {"c0": 1}
    assert shape(("k", ("c0", "c1")), [{}]) == {}  # the stored subset, as in the reference
    assert shape((["a", "b"], ("c0",)), [{"c0": 1}, {}]) == [{"c0": 1}, {}]


def test_dbindex_reads_rows_as_stored() -> None:
    idx = DBIndex({"a": V, "b": V})
    assert SCHEME.shape_read(idx, idx, [{"value": 1}, {}]) == [{"value": 1}, {}]


def test_a_processor_changing_the_row_count_is_reported() -> None:
    with pytest.raises(ValueError, match="returned 1 row"):
        SCHEME.shape_read(["a", "b"], SCHEME.to_index(["a", "b"]), [{"value": 1}])


# -- write data ----------------------------------------------------------------------------------
def rows(user_idx: Any, data: Any) -> list[dict[str, Any]]:
    return SCHEME.prepare_write(user_idx, SCHEME.to_index(user_idx), data, None)


@pytest.mark.parametrize(
    ("user_idx", "data", "expected"),
    [
        # a single key: a dict is the row, anything else its "value" (a list too)
        ("k", 5, [{"value": 5}]),
        ("k", None, [{"value": None}]),
        ("k", [1, 2], [{"value": [1, 2]}]),
        ("k", {"a": 1, "b": 2}, [{"a": 1, "b": 2}]),
        # key lists: one item per key; dicts are rows, other items values
        (["a", "b"], [1, 2], [{"value": 1}, {"value": 2}]),
        (["a", "b"], (1, [2]), [{"value": 1}, {"value": [2]}]),
        (["a", "b"], [{"x": 1}, {"y": 2}], [{"x": 1}, {"y": 2}]),
        (["a", "b"], [{"x": 1}, 2], [{"x": 1}, {"value": 2}]),
        (["a"], {"x": 1}, [{"x": 1}]),  # one dict for one key
        # one non-dict value fills every indexed row
        (["a", "b"], 0, [{"value": 0}, {"value": 0}]),
        (["a", "b"], "s", [{"value": "s"}, {"value": "s"}]),
        # empty writes
        ([], [], []),
        ([], 5, []),
        # column forms: values go to the column
        (("k", "c"), 5, [{"c": 5}]),
        (("k", "c"), [5], [{"c": [5]}]),
        (("k", "c"), {"c": 5}, [{"c": 5}]),
        ((["a", "b"], "c"), [1, 2], [{"c": 1}, {"c": 2}]),
        ((["a", "b"], "c"), 7, [{"c": 7}, {"c": 7}]),
        (("k", ("c0", "c1")), {"c0": 1}, [{"c0": 1}]),
        ((["a", "b"], ("c0", "c1")), [{"c0": 1}, {"c1": 2}], [{"c0": 1}, {"c1": 2}]),
        # repeated keys, whole rows: the last row given is the row
        (["a", "b", "a"], [1, 2, 3], [{"value": 3}, {"value": 2}]),
        (["a", "a"], [{"x": 1, "y": 1}, {"y": 2}], [{"y": 2}]),
        (["a", "a"], [{"x": 1}, 5], [{"value": 5}]),
        # repeated keys, column updates: per column, the last value wins
        ((["a", "a"], ("x", "y")), [{"x": 1, "y": 1}, {"y": 2}], [{"x": 1, "y": 2}]),
        ((["a", "b", "a"], "c"), [1, 2, 3], [{"c": 3}, {"c": 2}]),
        # an empty row passes the conversion; the backend refuses it for whole rows
        ("k", {}, [{}]),
        (("k", ("c0",)), {}, [{}]),
        # a DBIndex takes what a key list takes
        (DBIndex({"a": V, "b": V}), [1, {"x": 2}], [{"value": 1}, {"x": 2}]),
        (DBIndex({"a": V, "b": V}), 3, [{"value": 3}, {"value": 3}]),
    ],
)
def test_write_conversion(user_idx: Any, data: Any, expected: list[dict[str, Any]]) -> None:
    assert rows(user_idx, data) == expected


def test_numpy_arrays_are_values_not_rows() -> None:
    arr = np.arange(3)
    (row,) = rows("k", arr)
    assert row["value"] is arr
    filled = rows(["a", "b"], arr)
    assert [r["value"] is arr for r in filled] == [True, True]


@pytest.mark.parametrize(
    ("user_idx", "data", "match"),
    [
        # counts must match, named both ways
        (["a", "b"], [1], r"1 row\(s\) given for 2 indexed"),
        (["a", "b"], [1, 2, 3], r"3 row\(s\) given for 2 indexed"),
        (["a"], [], r"0 row\(s\) given for 1 indexed"),
        ((["a", "b"], "c"), [1], r"1 row\(s\) given for 2 indexed"),
        (["a", "a"], [1], r"1 row\(s\) given for 2 indexed"),  # repeats count per place
        (DBIndex({"a": V, "b": V}), [1], r"1 row\(s\) given for 2 indexed"),
        # a single dict does not fill several rows
        (["a", "b"], {"a": 1, "b": 2}, "a dict is one row, but 2 rows are indexed"),
        # column tuples take row dicts
        (("k", ("c0", "c1")), 5, "takes a row dict"),
        ((["a", "b"], ("c0",)), [{"c0": 1}, 2], "item 1: .* takes row dicts"),
        ((["a", "b"], ("c0",)), 2, "takes a list of row dicts"),
        # anything else names its type
        (["a", "b"], {1, 2}, "type set"),
        (["a"], object(), "type object"),
        (["a"], (x for x in [1]), "type generator"),
    ],
)
def test_bad_write_data_is_refused(user_idx: Any, data: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rows(user_idx, data)


# -- stray fields and count mismatches through a layer: refused, nothing written ------------------
def test_fields_outside_the_columns_are_refused_not_dropped() -> None:
    layer = build_memory_db_layer()
    with pytest.raises(ValueError, match=r"\['extra'\] are outside the columns"):
        layer[("k", ("a", "b"))] = {"a": 1, "extra": 2}
    with pytest.raises(ValueError, match=r"\['x'\] are outside the columns"):
        layer[("k", "c")] = {"x": 1}
    assert len(layer) == 0


def test_every_field_of_an_unprojected_write_is_stored() -> None:
    layer = build_memory_db_layer()
    layer["k"] = {"a": 1}  # the reference's Datastore stored nothing here
    assert layer["k"] == {"a": 1}
    layer[["k", "j"]] = [{"b": 2, "c": None}, {"c": 3}]
    assert layer["k"] == {"b": 2, "c": None}  # replaced: "a" is gone
    assert layer["j"] == {"c": 3}


def test_whole_row_writes_replace_and_column_writes_update() -> None:
    layer = build_memory_db_layer()
    layer["k"] = {"a": 1, "b": 2}
    layer[("k", "b")] = 20  # a column update keeps "a"
    assert layer["k"] == {"a": 1, "b": 20}
    layer[("k", ("b", "c"))] = {"c": 3}  # only the fields given are set
    assert layer["k"] == {"a": 1, "b": 20, "c": 3}
    layer["k"] = 5  # a whole-row write of a value: the row becomes {"value": 5}
    assert layer["k"] == 5
    assert layer[("k", ("a", "b", "c", "value"))] == {"value": 5}
    layer[(["k", "new"], ("a", "b"))] = [{"a": 1}, {"b": 2}]
    assert layer[("k", ("a", "value"))] == {"a": 1, "value": 5}
    assert layer["new"] == {"b": 2}  # created with just the column given


def test_writing_an_empty_row_whole_is_refused() -> None:
    layer = build_memory_db_layer()
    layer["k"] = {"a": 1}
    with pytest.raises(ValueError, match=r"row 'k': an empty row.*del layer\[key\]"):
        layer["k"] = {}
    with pytest.raises(ValueError, match=r"row 'j': an empty row"):
        layer[["i", "j"]] = [{"value": 1}, {}]
    with pytest.raises(ValueError, match=r"row 'k': an empty row"):
        layer[["k", "k"]] = [{"a": 2}, {}]  # the last row of a repeated key is empty
    assert layer["k"] == {"a": 1}
    assert len(layer) == 1
    layer[("k", ("a", "b"))] = {}  # an empty column update changes nothing
    assert layer["k"] == {"a": 1}


def test_row_count_mismatch_writes_nothing() -> None:
    layer = build_memory_db_layer()
    with pytest.raises(ValueError, match=r"2 row\(s\) given for 3 indexed"):
        layer[["a", "b", "c"]] = [1, 2]  # the reference wrote a and b
    assert len(layer) == 0


def test_scalar_fills_every_row_of_a_key_list() -> None:
    layer = build_memory_db_layer()
    layer[["a", "b", "c"]] = 0  # the reference wrote only "a"
    assert layer[["a", "b", "c"]] == [0, 0, 0]


def test_bad_value_inside_a_row_writes_nothing() -> None:
    layer = build_memory_db_layer()
    with pytest.raises(ValueError, match=r"row 'b', field 'value'.* type set cannot be stored"):
        layer[["a", "b"]] = [1, {"value": {1}}]
    assert len(layer) == 0
