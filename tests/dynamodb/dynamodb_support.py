"""Helpers of the lamina-dynamodb tests: moto's server in a child process, raw access.

The raw hooks reach the table with a plain boto3 client and their own implementation
of the storage format documented in ``lamina_dynamodb.codec`` (written on boto3's
``TypeSerializer``/``TypeDeserializer``, sharing no code with the plugin), so that the
backend cannot pass the contract suite by agreeing with itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import struct
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

REGION = "us-east-1"
KEY = "~key"

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    # never read the user's ~/.aws files
    "AWS_CONFIG_FILE": "/nonexistent/lamina-test-aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/lamina-test-aws-credentials",
}
AWS_UNSET_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB")


def unique_table(prefix: str = "lamina-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- moto's server in a child process ------------------------------------------------------
def _serve(conn: Any) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    conn.send(server.get_host_and_port())
    conn.recv()  # until the parent says stop (or goes away)
    server.stop()


class MotoServerProcess:
    """moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port), in a spawned process of
    its own: a separate interpreter, like a real service, and no state shared with
    ``mock_aws`` in the test process."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        if not self._conn.poll(60):
            self._process.kill()
            raise RuntimeError("moto's server did not start within 60 s")
        host, port = self._conn.recv()
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


# -- a plain boto3 client -------------------------------------------------------------------
_plain: dict[Any, Any] = {}
_plain_lock = threading.Lock()


def plain_client(endpoint_url: str | None) -> Any:
    """A plain boto3 DynamoDB client (not the plugin's)."""
    import boto3

    with _plain_lock:
        if endpoint_url not in _plain:
            _plain[endpoint_url] = boto3.client(
                "dynamodb", region_name=REGION, endpoint_url=endpoint_url
            )
        return _plain[endpoint_url]


def create_table(endpoint_url: str | None, name: str) -> None:
    plain_client(endpoint_url).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


# -- the storage format, implemented independently ------------------------------------------
def _esc(name: str) -> str:
    return f"~{name}" if name.startswith("~") else name


def _to_plain(value: Any) -> Any:
    """A lamina value as boto3's serializer takes it (tags for what it cannot hold)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, int):
        if len(str(abs(value))) <= 38:
            return Decimal(value)
        return {"~i": hex(value).replace("0x", "")}
    if isinstance(value, float):
        return {"~f": struct.pack(">d", value)}
    if isinstance(value, np.ndarray):
        return {
            "~a": np.ascontiguousarray(value).tobytes(),
            "~t": value.dtype.str,
            "~s": [Decimal(n) for n in value.shape],
        }
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {_esc(k): _to_plain(v) for k, v in value.items()}
    raise TypeError(f"no raw encoding for {type(value).__name__}")


def _from_plain(value: Any) -> Any:
    from boto3.dynamodb.types import Binary

    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    if isinstance(value, dict):
        if "~f" in value:
            return struct.unpack(">d", bytes(value["~f"].value))[0]
        if "~i" in value:
            return int(value["~i"], 16)
        if "~a" in value:
            shape = tuple(int(n) for n in value["~s"])
            flat = np.frombuffer(bytes(value["~a"].value), dtype=np.dtype(value["~t"]))
            return flat.reshape(shape).copy()
        return {k[1:] if k.startswith("~~") else k: _from_plain(v) for k, v in value.items()}
    return value


def encode_raw_item(key: str, row: dict[str, Any]) -> dict[str, Any]:
    """The wire item of row ``key``."""
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    item = {KEY: {"S": key}}
    for field, value in row.items():
        item[_esc(field)] = ser.serialize(_to_plain(value))
    return item


def decode_raw_item(item: dict[str, Any]) -> dict[str, Any]:
    """The fields of a wire item, the key excluded."""
    from boto3.dynamodb.types import TypeDeserializer

    de = TypeDeserializer()
    out = {}
    for name, value in item.items():
        if name == KEY:
            continue
        field = name[1:] if name.startswith("~~") else name
        out[field] = _from_plain(de.deserialize(value))
    return out


def raw_get_item(endpoint_url: str | None, table: str, key: str) -> dict[str, Any] | None:
    response = plain_client(endpoint_url).get_item(
        TableName=table, Key={KEY: {"S": key}}, ConsistentRead=True
    )
    return response.get("Item")


def raw_get_row(endpoint_url: str | None, table: str, key: str) -> dict[str, Any] | None:
    item = raw_get_item(endpoint_url, table, key)
    return None if item is None else decode_raw_item(item)


def raw_put_row(endpoint_url: str | None, table: str, key: str, row: dict[str, Any]) -> None:
    plain_client(endpoint_url).put_item(TableName=table, Item=encode_raw_item(key, row))


def raw_row_keys(endpoint_url: str | None, table: str) -> set[str]:
    paginator = plain_client(endpoint_url).get_paginator("scan")
    keys = set()
    for page in paginator.paginate(
        TableName=table,
        ConsistentRead=True,
        ProjectionExpression="#k",
        ExpressionAttributeNames={"#k": KEY},
    ):
        keys.update(item[KEY]["S"] for item in page["Items"])
    return keys


# -- wrapping the plugin's client -----------------------------------------------------------
def client_error(code: str, operation: str = "BatchWriteItem", status: int = 400) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class RecordingClient:
    """Wraps a boto3 client: records every call, and lets a test replace operations.

    ``calls`` holds ``(operation, params)``; ``hooks[operation]`` (if set) is called as
    ``hook(real_method, **params)`` instead of the real method.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.hooks: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def __getattr__(self, operation: str) -> Any:
        real = getattr(self._client, operation)
        if not callable(real) or operation.startswith("_"):
            return real

        def call(**params: Any) -> Any:
            with self._lock:
                self.calls.append((operation, params))
            hook = self.hooks.get(operation)
            return real(**params) if hook is None else hook(real, **params)

        return call

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for op, params in self.calls if op == operation]


def wrap_backend_client(monkeypatch: Any, backend: Any) -> RecordingClient:
    """Route every request of ``backend`` through a :class:`RecordingClient`."""
    wrapper = RecordingClient(backend._client())
    monkeypatch.setattr(backend, "_client", lambda timeout=None: wrapper)
    return wrapper
