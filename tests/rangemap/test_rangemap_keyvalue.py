"""The key-value range map: a table split across two DynamoDB tables on moto, and every
rule of the README."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_rangemap import KeyRange, RangeMapError, UnmappedKeyError, build_range_mapped_layer
from rangemap_support import RecordIndex

import lamina
from lamina import (
    DBIndex,
    KeyValueLayer,
    ReadonlyLayerError,
    UnsupportedOperationError,
    build_memory_db_layer,
)

REGION = "us-east-1"


def _index(keys: Any) -> DBIndex:
    return DBIndex(dict.fromkeys(keys, ("value",)))


def stored_keys(layer: KeyValueLayer) -> set[str]:
    """The keys a source stores, listed through its own backend."""
    return set(layer.backend.keys())


# -- a table split by key range across two DynamoDB tables -----------------------------------
def _plain_scan(endpoint: str | None, table: str) -> set[str]:
    """Every key of a table, scanned with a plain boto3 client (not the plugin's)."""
    import boto3

    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    keys: set[str] = set()
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            keys.update(v["S"] for k, v in item.items() if k == "~key")
    return keys


@pytest.fixture(params=["in-process", "server"])
def dynamodb_endpoint(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """moto in this process (endpoint ``None``), or moto's server on loopback."""
    if request.param == "server":
        yield request.getfixturevalue("moto_server")
        return
    from moto import mock_aws

    with mock_aws():
        yield None


def test_a_table_split_by_key_range_across_two_dynamodb_tables(
    dynamodb_endpoint: str | None,
) -> None:
    build = lamina.build_dynamodb_layer
    name_a, name_b = (f"lamina-rangemap-{uuid.uuid4().hex[:8]}-{s}" for s in "ab")
    a = build(name_a, region=REGION, endpoint_url=dynamodb_endpoint, create=True)
    b = build(name_b, region=REGION, endpoint_url=dynamodb_endpoint, create=True)
    b["legacy-row"] = "b also holds a row outside its range"
    table = build_range_mapped_layer([(("", "m"), a), (("m", None), b)])
    keys = [f"{c}{i:02d}" for c in "aghmstz" for i in range(8)]  # 56 rows, both halves
    table[keys] = [{"value": i, "key": k} for i, k in enumerate(keys)]
    early = {k for k in keys if k < "m"}
    assert _plain_scan(dynamodb_endpoint, name_a) == early
    assert _plain_scan(dynamodb_endpoint, name_b) == (set(keys) - early) | {"legacy-row"}
    assert table[keys] == list(range(len(keys)))
    assert table["t03"] == keys.index("t03")
    assert table[("a01", "key")] == "a01"
    assert "legacy-row" not in table  # in b's table, but outside b's range: owned by a
    assert table.get("legacy-row", "absent") == "absent"
    assert sorted(table.keys()) == sorted(keys)
    assert len(table) == len(keys)
    assert set(table.query({"value": [0, 40]})) == {keys[0], keys[40]}
    batches = [table.get_batch(n, 10) for n in range(6)]  # ceil(56 / 10) batches
    assert sorted(k for batch in batches for k in batch) == sorted(keys)
    with pytest.raises(IndexError):
        table.get_batch(6, 10)
    del table[["a00", "z07"]]
    assert "a00" not in table
    assert "z07" not in table
    assert len(table) == len(keys) - 2
    table.clear()
    assert len(table) == 0
    assert _plain_scan(dynamodb_endpoint, name_a) == set()
    assert _plain_scan(dynamodb_endpoint, name_b) == {"legacy-row"}  # not the map's row
    clone = pickle.loads(pickle.dumps(table))  # pickles by the tables' specs
    clone["q"] = 1
    assert b["q"] == 1


# -- ranges and precedence --------------------------------------------------------------------
def test_a_prefix_stands_for_every_key_that_starts_with_it() -> None:
    users, rest = build_memory_db_layer(), build_memory_db_layer()
    layer = build_range_mapped_layer([((None, None), rest), ("user/", users)])
    layer[["user/1", "user/22", "user", "users/1", "group/1"]] = [1, 2, 3, 4, 5]
    assert stored_keys(users) == {"user/1", "user/22"}
    assert stored_keys(rest) == {"user", "users/1", "group/1"}
    assert KeyRange.parse("user/").pformat() == "'user/'*"


def test_ranges_are_half_open_and_later_ranges_take_precedence() -> None:
    first, second, third = (build_memory_db_layer() for _ in range(3))
    layer = build_range_mapped_layer(
        [(("a", "m"), first), (("m", "z"), second), (("f", "h"), third)]
    )
    layer[["a", "e", "f", "g", "gz", "h", "l", "m", "y"]] = list(range(9))
    assert stored_keys(first) == {"a", "e", "h", "l"}
    assert stored_keys(second) == {"m", "y"}
    assert stored_keys(third) == {"f", "g", "gz"}
    assert layer.backend.owner("m") == 1  # the end of ["a", "m") is not in it
    assert layer.backend.owner("z") is None
    assert layer.backend.owner("0") is None


def test_each_source_is_asked_for_its_own_keys_only() -> None:
    records = [RecordIndex() for _ in range(3)]
    low, high, users = (build_memory_db_layer(read_procs=[r]) for r in records)
    layer = build_range_mapped_layer([(("a", "m"), low), (("m", None), high), ("user/", users)])
    layer[["b", "x", "user/1"]] = [1, 2, 3]
    with pytest.raises(KeyError, match="0-unmapped"):
        layer[["x", "0-unmapped", "user/1", "b"]]
    asked = [[idx.row_keys for _, idx in r.seen] for r in records]
    assert asked == [[["b"]], [["x"]], [["user/1"]]]
    assert layer[(["x", "user/1", "b", "c"], ("value",))] == [
        {"value": 2},
        {"value": 3},
        {"value": 1},
        {},
    ]
    assert [r.seen[-1][1].row_keys for r in records] == [["b", "c"], ["x"], ["user/1"]]


# -- keys outside every range ----------------------------------------------------------------------
def _map() -> tuple[KeyValueLayer, KeyValueLayer, KeyValueLayer]:
    low, high = build_memory_db_layer(), build_memory_db_layer()
    return build_range_mapped_layer([(("a", "m"), low), (("m", "t"), high)]), low, high


def test_a_key_outside_every_range_reads_as_missing() -> None:
    layer, low, _ = _map()
    low.backend.write(_index(["b"]), [{"value": 1}])
    assert layer.get("zebra", "default") == "default"
    assert "zebra" not in layer
    with pytest.raises(KeyError, match="zebra"):
        layer["zebra"]
    with pytest.raises(KeyError, match="zebra"):
        layer[["b", "zebra"]]
    assert layer[(["b", "zebra"], ("value",))] == [{"value": 1}, {}]
    del layer["zebra"]  # deleting an absent row is fine


def test_a_write_with_a_key_outside_every_range_writes_nothing() -> None:
    layer, low, high = _map()
    with pytest.raises(
        UnmappedKeyError, match=r"'zebra'.*outside every range.*nothing was written"
    ):
        layer[["b", "n", "zebra"]] = [1, 2, 3]
    with pytest.raises(KeyError):  # an UnmappedKeyError is a KeyError
        layer["0"] = 1
    assert stored_keys(low) == set()
    assert stored_keys(high) == set()


def test_a_write_reaching_a_readonly_source_writes_nothing() -> None:
    writable = build_memory_db_layer()
    readonly = build_memory_db_layer(readonly=True)
    layer = build_range_mapped_layer([(("a", "m"), writable), (("m", "t"), readonly)])
    with pytest.raises(ReadonlyLayerError, match=r"source 1 .*readonly; nothing was written"):
        layer[["b", "n"]] = [1, 2]
    assert stored_keys(writable) == set()
    layer["b"] = 1  # the writable source alone is fine
    assert layer["b"] == 1
    readonly.backend.write(_index(["n"]), [{"value": 2}])
    with pytest.raises(ReadonlyLayerError, match="source 1"):
        layer.clear()
    assert layer["b"] == 1  # clear() refused before deleting anything


def test_bad_rows_write_nothing() -> None:
    layer, low, high = _map()
    with pytest.raises(ValueError, match="cannot be stored"):
        layer[["b", "n"]] = [1, {1, 2}]
    assert stored_keys(low) == stored_keys(high) == set()


# -- the collection, merged and limited to each source's range ----------------------------------
def test_keys_query_len_and_batches_merge_the_sources_own_keys() -> None:
    layer, low, high = _map()
    low.backend.write(_index(["b", "x-not-low"]), [{"value": 1}, {"value": "foreign"}])
    high.backend.write(_index(["n", "c-not-high"]), [{"value": 2}, {"value": "foreign"}])
    assert sorted(layer.keys()) == ["b", "n"]
    assert layer.keys({"value": "foreign"}) == []
    assert layer.query() == {"b": {"value": 1}, "n": {"value": 2}}
    assert layer.query(return_columns=["value"]) == {"b": {"value": 1}, "n": {"value": 2}}
    assert len(layer) == 2
    assert layer.get_batch(0, 10) == {"b": {"value": 1}, "n": {"value": 2}}
    with pytest.raises(IndexError, match="batch 1"):
        layer.get_batch(1, 10)
    layer.clear()
    assert stored_keys(low) == {"x-not-low"}
    assert stored_keys(high) == {"c-not-high"}


def test_a_last_range_holding_every_key_counts_its_whole_table() -> None:
    low, everything = build_memory_db_layer(), build_memory_db_layer()
    layer = build_range_mapped_layer([(("a", "m"), low), (("", None), everything)])
    layer[["b", "n"]] = [1, 2]
    low.backend.write(_index(["c"]), [{"value": "shadowed"}])
    assert len(layer) == 2
    assert layer["b"] == 1
    assert stored_keys(low) == {"c"}  # "b" went to the last range, which holds every key


def test_sources_keep_their_processors() -> None:
    def mark(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**row, "source": "low"} if row else row for row in rows]

    low = build_memory_db_layer(read_procs=[mark])
    high = build_memory_db_layer()
    layer = build_range_mapped_layer([(("a", "m"), low), (("m", "t"), high)])
    layer[["b", "n"]] = [{"v": 1}, {"v": 2}]
    assert layer[(["b", "n"], ("v", "source"))] == [{"v": 1, "source": "low"}, {"v": 2}]
    assert layer["n"] == {"v": 2}  # a single row without "value" reads whole


def test_the_range_map_layer_has_its_own_processors_and_readonly_flag() -> None:
    low, high = build_memory_db_layer(), build_memory_db_layer()
    ranges = [(("a", "m"), low), (("m", "t"), high)]

    def prefix(idx: DBIndex) -> DBIndex:
        return DBIndex({"p" + k: v for k, v in idx.row_col_keys.items()}, col_keys=idx.col_keys)

    layer = build_range_mapped_layer(ranges, index_procs=[prefix])
    layer["b"] = 1  # stored as "pb": in the second range
    assert stored_keys(high) == {"pb"}
    assert layer["b"] == 1
    readonly = build_range_mapped_layer(ranges, readonly=True)
    with pytest.raises(ReadonlyLayerError):
        readonly["b"] = 2


def test_the_query_timeout_bounds_the_whole_call() -> None:
    layer, _, _ = _map()
    assert layer.query(timeout=60) == {}
    with pytest.raises(TimeoutError, match="source 0"):
        layer.query(timeout=-1)


# -- what the builder refuses ---------------------------------------------------------------------
def test_a_mix_of_box_and_key_ranges_is_refused() -> None:
    box = lamina.BBox3D.from_coords((0, 0, 0), (8, 8, 8), (4, 4, 40))
    volume = lamina.build_memory_volumetric_layer(box, [(4, 4, 40)])
    with pytest.raises(RangeMapError, match=r"mixes box ranges.*\[1\].*key ranges.*\[0\]"):
        build_range_mapped_layer([("a", build_memory_db_layer()), (box, volume)])


@pytest.mark.parametrize(
    ("ranges", "match"),
    [
        ([(("m", "a"), None)], "start must come before the end"),
        ([(("a", "a"), None)], "holds no key"),
        ([((1, 2), None)], "a range is a BBox3D"),
        ([(("a", "b", "c"), None)], "a range is a BBox3D"),
        ([("a", lamina.build_memory_layer())], r"ranges\[0\].*KeyValueLayer"),
        ([], "empty"),
    ],
)
def test_malformed_key_ranges_are_refused(ranges: Any, match: str) -> None:
    with pytest.raises(RangeMapError, match=match):
        build_range_mapped_layer(ranges)


@pytest.mark.parametrize(
    "kwargs",
    [{"fill_value": 0}, {"default_desired_resolution": (4, 4, 40)}, {"allow_slice_rounding": True}],
)
def test_volumetric_arguments_are_refused_for_key_ranges(kwargs: dict[str, Any]) -> None:
    with pytest.raises(RangeMapError, match=f"{next(iter(kwargs))} apply to volumetric"):
        build_range_mapped_layer([("a", build_memory_db_layer())], **kwargs)


def test_a_bare_backend_is_taken_as_its_layer() -> None:
    backend = lamina.MemoryKeyValueBackend()
    layer = build_range_mapped_layer([("", backend)])
    layer["k"] = 1
    assert "k" in backend


def test_with_changes_and_delete_are_refused() -> None:
    layer, low, _ = _map()
    layer["b"] = 1
    with pytest.raises(KeyError, match="stores nothing of its own"):
        layer.backend.with_changes(name="other")
    with pytest.raises(KeyError, match="no_such_option"):
        layer.backend.with_changes(no_such_option=1)
    assert layer.backend.with_changes() is layer.backend
    with pytest.raises(UnsupportedOperationError, match="delete"):
        layer.delete()
    assert stored_keys(low) == {"b"}
