"""DBIndex: a frozen, hashable value; rows in order; projection; validation."""

from __future__ import annotations

import pickle

import attrs
import pytest

from lamina.keyvalue.index import DBIndex


def test_fields_and_properties() -> None:
    idx = DBIndex({"a": ["x", "y"], "b": ("z",)}, col_keys=["x", "y", "z"])
    assert idx.row_keys == ["a", "b"]
    assert idx.rows_col_keys == [("x", "y"), ("z",)]
    assert idx.row_col_keys["a"] == ("x", "y")  # lists are stored as tuples
    assert idx.col_keys == ("x", "y", "z")
    assert idx.len == 2
    assert idx.get_size() == 3  # cells: 2 + 1
    assert idx.projected


def test_unprojected_index_reads_whole_rows() -> None:
    idx = DBIndex({"a": ("value",)})
    assert idx.col_keys is None
    assert not idx.projected
    assert idx.projection("a") is None
    projected = DBIndex({"a": ("x",), "b": ("y", "z")}, col_keys=("x", "y", "z"))
    assert projected.projection("a") == ("x",)
    assert projected.projection("b") == ("y", "z")


def test_frozen_and_hashable() -> None:
    idx = DBIndex({"a": ("value",), "b": ("value",)})
    same = DBIndex({"a": ["value"], "b": ["value"]})
    assert idx == same
    assert hash(idx) == hash(same)
    assert len({idx, same}) == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        idx.col_keys = ("x",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        idx.row_col_keys["c"] = ("value",)  # type: ignore[index]


def test_row_order_is_part_of_the_index() -> None:
    ab = DBIndex({"a": ("value",), "b": ("value",)})
    ba = DBIndex({"b": ("value",), "a": ("value",)})
    assert ab != ba
    assert ab.row_keys == ["a", "b"]
    assert ba.row_keys == ["b", "a"]


def test_col_keys_are_part_of_the_index() -> None:
    assert DBIndex({"a": ("value",)}) != DBIndex({"a": ("value",)}, col_keys=("value",))


def test_the_caller_mapping_is_not_kept() -> None:
    source = {"a": ["x"]}
    idx = DBIndex(source)
    source["b"] = ["y"]
    source["a"].append("z")
    assert idx.row_keys == ["a"]
    assert idx.row_col_keys["a"] == ("x",)


def test_empty_index() -> None:
    idx = DBIndex({})
    assert idx.len == 0
    assert idx.row_keys == []
    assert idx.get_size() == 0


def test_pickles_and_evolves() -> None:
    idx = DBIndex({"a": ("x",), "b": ("y",)}, col_keys=("x", "y"))
    clone = pickle.loads(pickle.dumps(idx))
    assert clone == idx
    assert hash(clone) == hash(idx)
    changed = attrs.evolve(idx, col_keys=None)
    assert changed.col_keys is None
    assert changed.row_col_keys == idx.row_col_keys


@pytest.mark.parametrize(
    ("row_col_keys", "col_keys", "error", "match"),
    [
        ([("a", ("x",))], None, TypeError, "mapping"),
        ({1: ("x",)}, None, TypeError, "row key must be a str"),
        ({"": ("x",)}, None, ValueError, "row key must not be empty"),
        ({"a": "x"}, None, TypeError, "tuple"),
        ({"a": (1,)}, None, TypeError, "column name must be a str"),
        ({"a": ("",)}, None, ValueError, "must not be empty"),
        ({"a": ("x",)}, "x", TypeError, "col_keys"),
    ],
)
def test_bad_indices_are_refused(
    row_col_keys: object, col_keys: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        DBIndex(row_col_keys, col_keys=col_keys)  # type: ignore[arg-type]


def test_row_col_keys_compares_with_plain_mappings() -> None:
    idx = DBIndex({"a": ("x",)})
    assert idx.row_col_keys == {"a": ("x",)}
    assert dict(idx.row_col_keys) == {"a": ("x",)}
    assert repr(idx.row_col_keys) == "{'a': ('x',)}"
