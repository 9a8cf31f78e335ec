"""Retries: unprocessed items and keys, throttling and transient errors, and giving up.

moto never returns ``UnprocessedItems`` or throttles by itself, so the backend's client
is wrapped: an injected hook sends part of a request to moto and reports the rest as
unprocessed, or raises the error DynamoDB would. What moto stored is then exactly what
"succeeded", and the tests check that nothing else is missing.
"""

from __future__ import annotations

import time
from typing import Any

import dynamodb_support as raw
import lamina_dynamodb.retries as retries_module
import pytest
from lamina_dynamodb import DynamoDBBackend, DynamoDBBatchError, DynamoDBError
from lamina_dynamodb.backend import RETRYABLE_ERROR_CODES

from lamina.keyvalue.index import DBIndex

BASE, CAP, ATTEMPTS = 0.01, 0.04, 4
THROTTLING = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
]


def _index(keys: list[str], columns: tuple[str, ...] | None = None) -> DBIndex:
    return DBIndex(dict.fromkeys(keys, columns or ("value",)), col_keys=columns)


def _keys(n: int) -> list[str]:
    return [f"k{i:02d}" for i in range(n)]


@pytest.fixture
def backend(mocked: None) -> DynamoDBBackend:
    table = raw.unique_table()
    raw.create_table(None, table)
    # one request at a time, so that which rows are "not sent" is exact
    return DynamoDBBackend(
        table,
        region=raw.REGION,
        max_attempts=ATTEMPTS,
        base_delay=BASE,
        max_delay=CAP,
        max_concurrency=1,
    )


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(retries_module, "_sleep", recorded.append)
    return recorded


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, backend: DynamoDBBackend) -> raw.RecordingClient:
    return raw.wrap_backend_client(monkeypatch, backend)


def _stored(backend: DynamoDBBackend) -> set[str]:
    return raw.raw_row_keys(None, backend.table)


def _check_backoff(delays: list[float]) -> None:
    """Retry r sleeps between half and all of min(CAP, BASE * 2**(r-1)) (per request)."""
    retry = 0
    previous = None
    for delay in delays:
        # a new request starts again at retry 1 (its delay is at most BASE)
        retry = 1 if previous is None or (delay <= BASE and retry > 1) else retry + 1
        full = min(CAP, BASE * 2 ** (retry - 1))
        assert full / 2 <= delay <= full, (delays, retry)
        previous = delay


def _write_part(keep: Any) -> Any:
    """A batch_write_item hook: ``keep(requests)`` → the requests to send; the others
    come back as UnprocessedItems."""

    def hook(real: Any, RequestItems: dict[str, Any], **params: Any) -> Any:
        ((table, requests),) = RequestItems.items()
        sent = keep(requests)
        left = [r for r in requests if r not in sent]
        response = real(RequestItems={table: sent}, **params) if sent else {}
        response["UnprocessedItems"] = {table: left} if left else {}
        return response

    return hook


def _raise_first(n: int, error: Exception) -> Any:
    calls = {"n": 0}

    def hook(real: Any, **params: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= n:
            raise error
        return real(**params)

    return hook


# -- writes ---------------------------------------------------------------------------------
def test_unprocessed_items_are_retried_until_written(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float]
) -> None:
    client.hooks["batch_write_item"] = _write_part(lambda reqs: reqs[: max(1, len(reqs) // 3)])
    keys = _keys(60)
    backend.write(_index(keys), [{"value": i} for i in range(60)])
    assert _stored(backend) == set(keys)
    assert backend.read(_index(keys)) == [{"value": i} for i in range(60)]
    # 3 requests of at most 25 items, each retried several times with growing delays
    assert client.count("batch_write_item") > 10
    assert all(len(p["RequestItems"][backend.table]) <= 25 for p in client.of("batch_write_item"))
    assert delays
    _check_backoff(delays)


@pytest.mark.parametrize("code", THROTTLING)
def test_throttling_errors_are_retried(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float], code: str
) -> None:
    client.hooks["batch_write_item"] = _raise_first(2, raw.client_error(code))
    keys = _keys(30)
    backend.write(_index(keys), [{"value": i} for i in range(30)])
    assert _stored(backend) == set(keys)
    assert len(delays) == 2
    assert BASE / 2 <= delays[0] <= BASE
    assert BASE <= delays[1] <= 2 * BASE  # exponential: the second delay doubles


def test_write_gives_up_naming_the_failed_and_unsent_rows(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float]
) -> None:
    stuck = {"k07", "k12"}

    def keep(requests: list[Any]) -> list[Any]:
        return [r for r in requests if r["PutRequest"]["Item"]["~key"]["S"] not in stuck]

    client.hooks["batch_write_item"] = _write_part(keep)
    keys = _keys(60)
    with pytest.raises(DynamoDBBatchError) as info:
        backend.write(_index(keys), [{"value": i} for i in range(60)])
    exc = info.value
    assert exc.operation == "write"
    assert set(exc.failed_keys) == stuck
    assert exc.unsent_keys == tuple(keys[25:])
    assert "'k07'" in str(exc)
    assert "'k12'" in str(exc)
    assert "35 later row(s)" in str(exc)
    # everything not named was written: nothing is dropped silently
    assert _stored(backend) == set(keys) - set(exc.failed_keys) - set(exc.unsent_keys)
    assert len(delays) == ATTEMPTS  # one retry that progressed, then ATTEMPTS - 1 in vain
    _check_backoff(delays)


@pytest.mark.parametrize("rows", [60, 300])
def test_concurrent_write_gives_up_naming_every_row_not_written(
    monkeypatch: pytest.MonkeyPatch,
    backend: DynamoDBBackend,
    client: raw.RecordingClient,
    delays: list[float],
    rows: int,
) -> None:
    """With several requests in flight, the chunks under way finish, no new one starts,
    and the error still names exactly the rows that are not stored."""
    concurrent = backend.with_changes(max_concurrency=4)
    monkeypatch.setattr(concurrent, "_client", lambda timeout=None: client)
    stuck = {"k007", "k010", "k011"}  # all in the first request

    def keep(requests: list[Any]) -> list[Any]:
        kept = [r for r in requests if r["PutRequest"]["Item"]["~key"]["S"] not in stuck]
        if len(kept) == len(requests):
            time.sleep(0.2)  # the other requests are slower: the first fails meanwhile
        return kept

    client.hooks["batch_write_item"] = _write_part(keep)
    keys = [f"k{i:03d}" for i in range(rows)]
    with pytest.raises(DynamoDBBatchError) as info:
        concurrent.write(_index(keys), [{"value": i} for i in range(rows)])
    exc = info.value
    assert set(exc.failed_keys) == stuck
    assert not set(exc.unsent_keys) & set(exc.failed_keys)
    assert _stored(backend) == set(keys) - set(exc.failed_keys) - set(exc.unsent_keys)
    if rows == 60:
        assert exc.unsent_keys == ()  # all 3 requests were under way at once
    else:  # 12 requests, 4 at once: the 8 not started when the first gave up
        assert exc.unsent_keys == tuple(keys[100:])


@pytest.mark.parametrize("code", THROTTLING)
def test_write_gives_up_after_throttling(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float], code: str
) -> None:
    client.hooks["batch_write_item"] = _raise_first(10**6, raw.client_error(code))
    keys = _keys(30)
    with pytest.raises(DynamoDBBatchError, match=code) as info:
        backend.write(_index(keys), [{"value": i} for i in range(30)])
    assert info.value.failed_keys == tuple(keys[:25])
    assert info.value.unsent_keys == tuple(keys[25:])
    assert info.value.attempts == ATTEMPTS
    assert client.count("batch_write_item") == ATTEMPTS
    assert _stored(backend) == set()


def test_a_refused_request_is_not_retried(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float]
) -> None:
    client.hooks["batch_write_item"] = _raise_first(1, raw.client_error("ValidationException"))
    keys = _keys(30)
    with pytest.raises(DynamoDBBatchError, match="ValidationException") as info:
        backend.write(_index(keys), [{"value": i} for i in range(30)])
    assert info.value.failed_keys == tuple(keys[:25])
    assert client.count("batch_write_item") == 1
    assert delays == []


def test_progress_does_not_use_up_the_attempts(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float]
) -> None:
    client.hooks["batch_write_item"] = _write_part(lambda reqs: reqs[:1])  # one item a call
    keys = _keys(25)
    backend.write(_index(keys), [{"value": i} for i in range(25)])
    assert _stored(backend) == set(keys)
    assert client.count("batch_write_item") == 25
    assert max(delays) <= CAP


def test_transient_errors_are_retried(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float]
) -> None:
    from botocore.exceptions import EndpointConnectionError

    assert {"InternalServerError", *THROTTLING} <= RETRYABLE_ERROR_CODES
    errors = iter(
        [
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            raw.client_error("InternalServerError", status=500),
            raw.client_error("SomethingNew", status=503),
        ]
    )

    def hook(real: Any, **params: Any) -> Any:
        error = next(errors, None)
        if error is not None:
            raise error
        return real(**params)

    client.hooks["batch_write_item"] = hook
    backend.write(_index(["a"]), [{"value": 1}])
    assert _stored(backend) == {"a"}
    assert len(delays) == 3


def test_deletes_are_retried_and_named(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float]
) -> None:
    keys = _keys(40)
    backend.write(_index(keys), [{"value": i} for i in range(40)])
    client.hooks["batch_write_item"] = _write_part(lambda reqs: reqs[: len(reqs) // 2 or 1])
    backend.clear(_index(keys[:30]))
    assert _stored(backend) == set(keys[30:])
    backend.clear()
    assert _stored(backend) == set()

    backend.write(_index(keys), [{"value": i} for i in range(40)])

    def keep(requests: list[Any]) -> list[Any]:
        return [r for r in requests if r["DeleteRequest"]["Key"]["~key"]["S"] != "k03"]

    client.hooks["batch_write_item"] = _write_part(keep)
    with pytest.raises(DynamoDBBatchError, match="'k03'") as info:
        backend.clear(_index(keys))
    assert info.value.operation == "delete"
    assert info.value.failed_keys == ("k03",)
    assert _stored(backend) == {"k03", *info.value.unsent_keys}


# -- reads ----------------------------------------------------------------------------------
def _read_part(keep: Any) -> Any:
    def hook(real: Any, RequestItems: dict[str, Any], **params: Any) -> Any:
        ((table, spec),) = RequestItems.items()
        sent = keep(spec["Keys"])
        left = [k for k in spec["Keys"] if k not in sent]
        response = (
            real(RequestItems={table: {**spec, "Keys": sent}}, **params)
            if sent
            else {"Responses": {table: []}}
        )
        response["UnprocessedKeys"] = {table: {**spec, "Keys": left}} if left else {}
        return response

    return hook


def test_unprocessed_keys_are_retried(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float]
) -> None:
    keys = _keys(150)
    backend.write(_index(keys), [{"value": i} for i in range(150)])
    client.hooks["batch_get_item"] = _read_part(lambda ks: ks[: max(1, len(ks) // 4)])
    missing = [f"missing-{i}" for i in range(10)]
    assert backend.read(_index(keys + missing)) == [{"value": i} for i in range(150)] + [{}] * 10
    assert all(
        len(p["RequestItems"][backend.table]["Keys"]) <= 100 for p in client.of("batch_get_item")
    )
    assert delays
    _check_backoff(delays)


def test_read_gives_up_naming_the_keys(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float]
) -> None:
    keys = _keys(150)
    backend.write(_index(keys), [{"value": i} for i in range(150)])
    client.hooks["batch_get_item"] = _read_part(
        lambda ks: [k for k in ks if k["~key"]["S"] != "k05"]
    )
    with pytest.raises(DynamoDBBatchError, match=r"read of 1 row\(s\).*'k05'") as info:
        backend.read(_index(keys))
    assert info.value.failed_keys == ("k05",)
    assert info.value.unsent_keys == tuple(keys[100:])


@pytest.mark.parametrize("code", THROTTLING)
def test_read_throttling_is_retried(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float], code: str
) -> None:
    backend.write(_index(["a"]), [{"value": 1}])
    client.hooks["batch_get_item"] = _raise_first(3, raw.client_error(code, "BatchGetItem"))
    assert backend.read(_index(["a"])) == [{"value": 1}]
    assert len(delays) == 3
    client.hooks["batch_get_item"] = _raise_first(10**6, raw.client_error(code, "BatchGetItem"))
    with pytest.raises(DynamoDBBatchError, match=code):
        backend.read(_index(["a"]))


# -- single requests: scans, updates, lookups -------------------------------------------------
@pytest.mark.parametrize("code", THROTTLING)
def test_scans_updates_and_lookups_are_retried(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float], code: str
) -> None:
    backend.write(_index(["a", "b"]), [{"value": 1}, {"value": 2}])
    for operation in ("scan", "update_item", "get_item"):
        client.hooks[operation] = _raise_first(2, raw.client_error(code, operation))
    assert len(backend) == 2
    assert sorted(backend.keys({"value": 2})) == ["b"]
    backend.write(_index(["a"], ("other",)), [{"other": 3}])
    assert "a" in backend
    assert backend.read(_index(["a"])) == [{"value": 1, "other": 3}]
    assert len(delays) == 6


def test_update_gives_up_naming_the_row_and_the_rows_not_sent(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float]
) -> None:
    backend.write(_index(["a", "b", "c"]), [{"value": 1}, {"value": 2}, {"value": 3}])
    calls = {"n": 0}

    def hook(real: Any, **params: Any) -> Any:
        calls["n"] += 1
        if params["Key"]["~key"]["S"] == "b":
            raise raw.client_error("ThrottlingException", "UpdateItem")
        return real(**params)

    client.hooks["update_item"] = hook
    with pytest.raises(DynamoDBBatchError, match=r"update of 1 row\(s\).*'b'.*'c'") as info:
        backend.write(_index(["a", "b", "c"], ("x",)), [{"x": 1}, {"x": 2}, {"x": 3}])
    assert info.value.failed_keys == ("b",)
    assert info.value.unsent_keys == ("c",)
    assert backend.read(_index(["a", "b", "c"])) == [
        {"value": 1, "x": 1},
        {"value": 2},
        {"value": 3},
    ]
    assert calls["n"] == 1 + ATTEMPTS


def test_scan_gives_up(
    backend: DynamoDBBackend, client: raw.RecordingClient, delays: list[float]
) -> None:
    client.hooks["scan"] = _raise_first(10**6, raw.client_error("RequestLimitExceeded", "Scan"))
    with pytest.raises(
        DynamoDBError, match=r"len failed after 4 attempt\(s\): RequestLimitExceeded"
    ):
        len(backend)
    assert client.count("scan") == ATTEMPTS


def test_delays_never_exceed_the_cap(
    monkeypatch: pytest.MonkeyPatch,
    backend: DynamoDBBackend,
    client: raw.RecordingClient,
    delays: list[float],
) -> None:
    patient = backend.with_changes(max_attempts=12)
    monkeypatch.setattr(patient, "_client", lambda timeout=None: client)
    client.hooks["batch_write_item"] = _raise_first(11, raw.client_error("ThrottlingException"))
    patient.write(_index(["a"]), [{"value": 1}])
    assert _stored(backend) == {"a"}
    assert len(delays) == 11
    assert max(delays) <= CAP
    assert min(delays[3:]) >= CAP / 2  # reached the cap, still jittered
    assert len(set(delays)) > 1
