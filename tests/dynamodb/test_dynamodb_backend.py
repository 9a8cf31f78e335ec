"""What is particular to DynamoDB: the storage format, limits, batching, pagination,
server-side filters, tables, pickling and clients (moto in this process)."""

from __future__ import annotations

import math
import multiprocessing
import pickle
import struct
import threading
import time
from typing import Any

import dynamodb_support as raw
import lamina_dynamodb
import numpy as np
import pytest
from lamina_dynamodb import (
    KEY_ATTRIBUTE,
    MAX_ITEM_BYTES,
    DynamoDBBackend,
    ItemTooLargeError,
    TableError,
    build_dynamodb_layer,
)
from lamina_dynamodb.backend import shared_client
from lamina_dynamodb.codec import MAX_NESTING

import lamina
from lamina.errors import ReadonlyLayerError
from lamina.keyvalue.index import DBIndex
from lamina.testing import assert_values_equal


def _index(keys: list[str], columns: tuple[str, ...] | None = None) -> DBIndex:
    return DBIndex(dict.fromkeys(keys, columns or ("value",)), col_keys=columns)


@pytest.fixture
def backend(mocked: None) -> DynamoDBBackend:
    layer = build_dynamodb_layer(raw.unique_table(), region=raw.REGION, create=True)
    assert isinstance(layer.backend, DynamoDBBackend)
    return layer.backend


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, backend: DynamoDBBackend) -> raw.RecordingClient:
    return raw.wrap_backend_client(monkeypatch, backend)


def _item(backend: DynamoDBBackend, key: str) -> dict[str, Any]:
    item = raw.raw_get_item(None, backend.table, key)
    assert item is not None
    return item


# -- the storage format --------------------------------------------------------------------
def test_storage_format(backend: DynamoDBBackend) -> None:
    row = {
        "s": "text",
        "n": -3,
        "t": True,
        "none": None,
        "b": b"\x00\x01",
        "f": 0.1,
        "big": -(10**40),
        "arr": np.arange(3, dtype=">u2"),
        "~x": [1.5, {"~y": 1, "z": []}],
    }
    backend.write(_index(["r"]), [row])
    item = _item(backend, "r")
    assert item[KEY_ATTRIBUTE] == {"S": "r"}
    assert item["s"] == {"S": "text"}
    assert item["n"] == {"N": "-3"}
    assert item["t"] == {"BOOL": True}
    assert item["none"] == {"NULL": True}
    assert item["b"] == {"B": b"\x00\x01"}
    assert item["f"] == {"M": {"~f": {"B": struct.pack(">d", 0.1)}}}
    assert item["big"] == {"M": {"~i": {"S": "-" + format(10**40, "x")}}}
    assert item["arr"] == {
        "M": {
            "~a": {"B": np.arange(3, dtype=">u2").tobytes()},
            "~t": {"S": ">u2"},
            "~s": {"L": [{"N": "3"}]},
        }
    }
    assert item["~~x"] == {
        "L": [
            {"M": {"~f": {"B": struct.pack(">d", 1.5)}}},
            {"M": {"~~y": {"N": "1"}, "z": {"L": []}}},
        ]
    }
    assert len(item) == len(row) + 1  # the key and one attribute per field: nothing hidden
    assert_values_equal(backend.read(_index(["r"])), [row])
    assert_values_equal(backend.query(), {"r": row})


def test_fields_named_like_reserved_attributes(backend: DynamoDBBackend) -> None:
    row = {KEY_ATTRIBUTE: "not the key", "~f": 1.0, "~~": {"~a": 2}, "~": 3}
    backend.write(_index(["r"]), [row])
    assert _item(backend, "r")[KEY_ATTRIBUTE] == {"S": "r"}
    assert_values_equal(backend.read(_index(["r"])), [row])
    assert backend.keys({KEY_ATTRIBUTE: "not the key"}) == ["r"]
    assert backend.read(_index(["r"], ("~f", "~"))) == [{"~f": 1.0, "~": 3}]


def test_items_written_by_other_tools_are_read(backend: DynamoDBBackend) -> None:
    raw.plain_client(None).put_item(
        TableName=backend.table,
        Item={
            KEY_ATTRIBUTE: {"S": "other"},
            "n": {"N": "1.5"},
            "e": {"N": "1E+3"},
            "ss": {"SS": ["a"]},
            "~unknown": {"S": "ignored"},
        },
    )
    assert backend.read(_index(["other"])) == [{"n": 1.5, "e": 1000, "ss": ["a"]}]
    assert backend.get_batch(0, 10) == {"other": {"n": 1.5, "e": 1000, "ss": ["a"]}}
    assert backend.keys() == ["other"]


# -- limits, checked before anything is sent ---------------------------------------------------
def test_an_item_just_under_the_limit_is_stored(backend: DynamoDBBackend) -> None:
    value = b"x" * (MAX_ITEM_BYTES - 100)
    backend.write(_index(["big"]), [{"value": value}])
    assert backend.read(_index(["big"])) == [{"value": value}]


def test_an_item_over_400_kb_is_refused_before_anything_is_sent(
    backend: DynamoDBBackend, client: raw.RecordingClient
) -> None:
    keys = [f"k{i:02d}" for i in range(30)]
    rows: list[dict[str, Any]] = [{"value": i} for i in range(30)]
    rows[27] = {"small": 1, "value": "λ" * 200_001}  # 400,002 bytes of UTF-8
    with pytest.raises(ItemTooLargeError, match=r"row 'k27'.*400,000 bytes.*'value'"):
        backend.write(_index(keys), rows)
    with pytest.raises(ValueError, match="Nothing of this write was sent"):
        backend.write(_index(keys), rows)
    # projected writes too: the fields given alone are over the limit
    with pytest.raises(ItemTooLargeError, match="row 'k27'"):
        backend.write(_index(keys, ("value", "small")), rows)
    assert client.calls == []
    assert raw.raw_row_keys(None, backend.table) == set()
    # attribute names count: many fields of small values add up
    wide = {f"field-with-a-long-name-{i:06d}": i for i in range(12_000)}
    with pytest.raises(ItemTooLargeError):
        backend.write(_index(["wide"]), [wide])
    assert client.calls == []


def test_a_row_key_over_2048_bytes_is_refused(
    backend: DynamoDBBackend, client: raw.RecordingClient
) -> None:
    longest = "k" * 2048
    with pytest.raises(ItemTooLargeError, match="2049 bytes"):
        backend.write(_index(["ok", longest + "k"]), [{"value": 1}, {"value": 2}])
    assert client.calls == []
    backend.write(_index([longest]), [{"value": 1}])
    assert backend.read(_index([longest, longest + "k"])) == [{"value": 1}, {}]
    assert longest in backend
    assert longest + "k" not in backend
    backend.clear(_index([longest, longest + "k"]))
    assert len(backend) == 0


def test_nesting_deeper_than_dynamodb_allows_is_refused(
    backend: DynamoDBBackend, client: raw.RecordingClient
) -> None:
    deep: Any = "leaf"
    for _ in range(MAX_NESTING):
        deep = [deep]
    backend.write(_index(["ok"]), [{"value": deep}])
    assert backend.read(_index(["ok"])) == [{"value": deep}]
    sent = len(client.calls)
    for too_deep in ([deep], _nest_float(MAX_NESTING)):
        with pytest.raises(ItemTooLargeError, match=r"row 'bad', field 'value'.*nest deeper"):
            backend.write(_index(["fine", "bad"]), [{"value": 1}, {"value": too_deep}])
    assert len(client.calls) == sent
    assert raw.raw_row_keys(None, backend.table) == {"ok"}


def _nest_float(depth: int) -> Any:
    value: Any = 1.0  # a float is a map: one more level
    for _ in range(depth):
        value = {"a": value}
    return value


# -- batching ---------------------------------------------------------------------------------
def test_requests_are_batched_by_25_and_100(
    backend: DynamoDBBackend, client: raw.RecordingClient
) -> None:
    keys = [f"k{i:03d}" for i in range(130)]
    backend.write(_index(keys), [{"value": i} for i in range(130)])
    sizes = [len(p["RequestItems"][backend.table]) for p in client.of("batch_write_item")]
    assert sorted(sizes) == [5, 25, 25, 25, 25, 25]
    assert (
        backend.read(_index(keys + [f"x{i}" for i in range(120)]))
        == [{"value": i} for i in range(130)] + [{}] * 120
    )
    sizes = [len(p["RequestItems"][backend.table]["Keys"]) for p in client.of("batch_get_item")]
    assert sorted(sizes) == [50, 100, 100]
    assert all(
        p["RequestItems"][backend.table]["ConsistentRead"] for p in client.of("batch_get_item")
    )
    client.calls.clear()
    backend.clear(_index(keys[:60]))
    sizes = [len(p["RequestItems"][backend.table]) for p in client.of("batch_write_item")]
    assert sorted(sizes) == [10, 25, 25]
    client.calls.clear()
    backend.clear()
    sizes = [len(p["RequestItems"][backend.table]) for p in client.of("batch_write_item")]
    assert sorted(sizes) == [20, 25, 25]
    assert len(backend) == 0


def test_repeated_keys_are_sent_once(backend: DynamoDBBackend, client: raw.RecordingClient) -> None:
    layer = lamina.build_db_layer(backend)
    layer[["a", "b", "a", "c", "a"]] = [1, 2, 3, 4, 5]
    (params,) = client.of("batch_write_item")
    sent = [
        r["PutRequest"]["Item"][KEY_ATTRIBUTE]["S"] for r in params["RequestItems"][backend.table]
    ]
    assert sent == ["a", "b", "c"]
    assert layer[["a", "b", "c"]] == [5, 2, 4]


def test_projected_reads_ask_only_for_their_columns(
    backend: DynamoDBBackend, client: raw.RecordingClient
) -> None:
    backend.write(_index(["r"]), [{"a": 1, "b": b"x" * 1000, "c": 3}])
    assert backend.read(DBIndex({"r": ("a", "c")}, col_keys=("a", "c"))) == [{"a": 1, "c": 3}]
    (params,) = client.of("batch_get_item")
    spec = params["RequestItems"][backend.table]
    assert sorted(spec["ExpressionAttributeNames"].values()) == sorted([KEY_ATTRIBUTE, "a", "c"])


def test_column_updates_are_one_update_item_each(
    backend: DynamoDBBackend, client: raw.RecordingClient
) -> None:
    backend.write(_index(["a"]), [{"value": 1}])
    wide = {f"c{i}": i for i in range(250)}  # more fields than one update expression holds
    backend.write(_index(["a", "b", "empty"], tuple(wide)), [wide, {"c0": 0}, {}])
    assert client.count("update_item") == 3 + 1  # a: 3 requests, b: 1, empty: none
    assert client.count("batch_write_item") == 1
    assert set(_item(backend, "a")) == {KEY_ATTRIBUTE, "value", *wide}  # nothing hidden
    assert backend.read(_index(["a"])) == [{"value": 1, **wide}]
    assert "empty" not in backend


# -- pagination ----------------------------------------------------------------------------
def test_scans_paginate(backend: DynamoDBBackend, client: raw.RecordingClient) -> None:
    keys = [f"k{i:03d}" for i in range(50)]
    backend.write(_index(keys), [{"value": i, "even": i % 2 == 0} for i in range(50)])

    def small_pages(real: Any, **params: Any) -> Any:
        return real(**{**params, "Limit": 7})

    client.hooks["scan"] = small_pages
    assert len(backend) == 50
    assert client.count("scan") >= 8
    assert sorted(backend.keys()) == keys
    assert sorted(backend.keys({"even": True})) == keys[::2]
    assert sorted(backend.query(return_columns=("value",))) == keys
    batches = [backend.get_batch(b, 10) for b in range(5)]
    assert sorted(k for batch in batches for k in batch) == keys
    # each batch is one segment of a parallel scan: DynamoDB partitions the items
    segments = [(p["Segment"], p["TotalSegments"]) for p in client.of("scan") if "Segment" in p]
    assert sorted(set(segments)) == [(b, 5) for b in range(5)]
    backend.clear()
    assert raw.raw_row_keys(None, backend.table) == set()
    assert all(p.get("ConsistentRead") for p in client.of("scan"))


def test_get_batch_refuses_more_segments_than_dynamodb_allows(
    backend: DynamoDBBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.write(_index(["a", "b", "c"]), [{"value": 1}] * 3)
    with pytest.raises(IndexError, match="3 batch"):
        backend.get_batch(3, 1)
    assert sorted(backend.get_batch(0, 3)) == ["a", "b", "c"]
    # a table of 2,000,001 rows, as far as get_batch can tell
    monkeypatch.setattr(type(backend), "__len__", lambda self: 2_000_001)
    with pytest.raises(ValueError, match=r"avg_rows_per_batch=1 .*1,000,000.*at least 3"):
        backend.get_batch(0, 1)


def test_pagination_over_megabyte_pages(backend: DynamoDBBackend) -> None:
    keys = [f"k{i:02d}" for i in range(30)]
    backend.write(_index(keys), [{"value": bytes([i]) * 100_000} for i in range(30)])
    assert len(backend) == 30
    got = backend.query()
    assert sorted(got) == keys
    assert all(got[k] == {"value": bytes([int(k[1:])]) * 100_000} for k in keys)


# -- server-side filters --------------------------------------------------------------------
def test_filters_go_to_dynamodb_and_are_exact(
    backend: DynamoDBBackend, client: raw.RecordingClient
) -> None:
    rows = {
        "int": {"v": 1},
        "float": {"v": 1.0},
        "bool": {"v": True},
        "str": {"v": "1"},
        "bytes": {"v": b"1"},
        "none": {"v": None},
        "big": {"v": 10**40},
        "nan": {"v": math.nan},
        "other": {"w": 1},
    }
    backend.write(_index(list(rows)), list(rows.values()))
    client.calls.clear()
    assert sorted(backend.keys({"v": [1, "1"]})) == ["int", "str"]
    (params,) = client.of("scan")
    assert " IN (" in params["FilterExpression"]
    assert sorted(backend.keys({"v": True})) == ["bool"]
    assert sorted(backend.keys({"v": b"1"})) == ["bytes"]
    assert sorted(backend.keys({"v": 1.0})) == ["float"]
    assert sorted(backend.keys({"v": None})) == ["none"]
    assert sorted(backend.keys({"v": 10**40})) == ["big"]
    assert sorted(backend.keys({"v": math.nan})) == []  # nan equals nothing, as in memory
    assert sorted(backend.keys({"v": [2], "w": [1]}, union=True)) == ["other"]
    assert sorted(backend.keys({"v": [1], "w": [1]}, union=False)) == []
    assert backend.query({"v": ["1"]}, return_columns=("v",)) == {"str": {"v": "1"}}
    many = [*range(200), "1"]  # too many values for IN: matched here
    assert sorted(backend.keys({"v": many})) == ["int", "str"]
    client.calls.clear()
    assert backend.keys({"v": []}) == []
    assert client.calls == []  # nothing can match: nothing is asked


# -- tables ---------------------------------------------------------------------------------
def test_a_missing_table_is_an_error_naming_create(mocked: None) -> None:
    with pytest.raises(TableError, match=r"'nope-table' does not exist.*create=True"):
        build_dynamodb_layer("nope-table", region=raw.REGION)
    backend = DynamoDBBackend("nope-table", region=raw.REGION)
    with pytest.raises(TableError, match="create=True"):
        backend.read(_index(["a"]))
    with pytest.raises(TableError, match="create=True"):
        backend.write(_index(["a"]), [{"value": 1}])
    with pytest.raises(TableError, match="create=True"):
        len(backend)


def test_a_table_with_another_key_schema_is_refused(mocked: None) -> None:
    raw.plain_client(None).create_table(
        TableName="foreign-table",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(TableError, match=r"partition key '~key' of type S"):
        build_dynamodb_layer("foreign-table", region=raw.REGION, create=True)


def test_create_is_idempotent_and_layers_share_the_table(mocked: None) -> None:
    first = build_dynamodb_layer("shared-table", region=raw.REGION, create=True)
    first["a"] = 1
    second = build_dynamodb_layer("shared-table", region=raw.REGION, create=True)
    assert second["a"] == 1
    readonly = build_dynamodb_layer("shared-table", region=raw.REGION, readonly=True)
    with pytest.raises(ReadonlyLayerError):
        readonly["b"] = 2
    assert readonly["a"] == 1


def test_built_by_name_and_from_a_spec(mocked: None) -> None:
    layer = lamina.build_dynamodb_layer("spec-table", region=raw.REGION, create=True)
    layer["a"] = {"x": 1.5}
    spec = {"@type": "build_dynamodb_layer", "table": "spec-table", "region": raw.REGION}
    assert lamina.build(spec)["a"] == {"x": 1.5}
    backend = lamina.build(
        {"@type": "DynamoDBBackend", "table": "spec-table", "region": "us-east-1"}
    )
    assert backend == layer.backend
    assert backend.read(_index(["a"])) == [{"x": 1.5}]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"table": "ab"}, "table must be a DynamoDB table name"),
        ({"table": "bad name"}, "table must be a DynamoDB table name"),
        ({"table": 5}, "table must be a str"),
        ({"table": "okay", "region": ""}, "region"),
        ({"table": "okay", "max_attempts": 0}, "max_attempts"),
        ({"table": "okay", "base_delay": 2.0, "max_delay": 1.0}, "base_delay"),
        ({"table": "okay", "max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_bad_arguments_are_refused(args: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DynamoDBBackend(**args)


# -- spec, pickling and clients --------------------------------------------------------------
def test_pickles_by_spec() -> None:
    backend = DynamoDBBackend("some-table", region="eu-west-1", endpoint_url="http://h:1")
    backend.with_changes()  # no request, no client
    data = pickle.dumps(backend)
    assert len(data) < 400
    assert b"botocore" not in data
    clone = pickle.loads(data)
    assert clone == backend
    assert clone.spec == backend.spec
    assert repr(clone) == repr(backend)
    assert backend.name == "dynamodb://some-table"
    changed = backend.with_changes(table="other-table", max_attempts=3)
    assert changed.spec == {**backend.spec, "table": "other-table", "max_attempts": 3}
    with pytest.raises(KeyError, match="create"):
        backend.with_changes(create=True)


def test_one_client_per_process_shared_by_threads(backend: DynamoDBBackend) -> None:
    seen: list[Any] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        seen.append(shared_client(raw.REGION, None))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1
    assert shared_client(raw.REGION, "http://127.0.0.1:9") is not seen[0]


def _clients_in_child(queue: Any) -> None:
    from lamina_dynamodb import clients as module

    queue.put(len(module._clients.get()))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_a_forked_process_makes_its_own_client(backend: DynamoDBBackend) -> None:
    shared_client(raw.REGION, None)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_clients_in_child, args=(queue,))
    child.start()
    assert queue.get(timeout=30) == 0  # the parent's clients are not inherited
    child.join(30)


def test_query_timeout(backend: DynamoDBBackend, client: raw.RecordingClient) -> None:
    backend.write(_index([f"k{i}" for i in range(5)]), [{"value": i} for i in range(5)])

    def slow(real: Any, **params: Any) -> Any:
        time.sleep(0.1)
        return real(**{**params, "Limit": 1})

    client.hooks["scan"] = slow
    with pytest.raises(TimeoutError, match="query did not finish in time"):
        backend.query(timeout=0.25)
    assert len(backend.query(timeout=30)) == 5
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        backend.query(timeout=0)


def test_package_exports() -> None:
    for name in lamina_dynamodb.__all__:
        assert getattr(lamina_dynamodb, name) is not None
    with pytest.raises(AttributeError):
        lamina_dynamodb.nothing_here  # noqa: B018
