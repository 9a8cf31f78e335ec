"""``DynamoDBBackend``: a DynamoDB table as a lamina key-value backend, on boto3.

One item per row, partition key :data:`~lamina_dynamodb.codec.KEY_ATTRIBUTE`; the
storage format is described in :mod:`lamina_dynamodb.codec`. How each operation maps
onto DynamoDB:

* ``read``: ``BatchGetItem`` of at most 100 keys per request, strongly consistent,
  projected onto the index's columns when it names some.
* whole-row ``write`` (``idx.col_keys is None``): ``BatchWriteItem`` of at most 25
  ``PutRequest`` items per request (a put replaces the item). Every row is encoded and
  checked (400 KB item limit, nesting, key length) before the first request is sent.
* projected ``write``: one ``UpdateItem`` per row, ``SET`` of the given fields: atomic
  per row, so concurrent updates of other columns of the same row are never lost.
  Prefer whole-row writes for bulk loads.
* ``clear(idx)``: ``BatchWriteItem`` of 25 ``DeleteRequest`` items per request;
  ``clear()`` scans the keys page by page and deletes each page the same way.
* the batched requests of one call (and the ``UpdateItem`` requests of a projected
  write) go up to ``max_concurrency`` at once, from a pool of threads.
* ``keys``, ``query``, ``len`` and ``get_batch``: a paginated, strongly consistent
  ``Scan``. Filters on str, int, bool and bytes values go to DynamoDB as a
  ``FilterExpression`` (less data comes back); the exact match (types, ``1`` vs
  ``1.0`` vs ``True``) is always decided here with the core's rule.
* ``get_batch(b, n)`` counts the rows (a ``COUNT`` scan), then reads segment ``b`` of a
  DynamoDB *parallel scan* with one segment per batch: DynamoDB itself partitions the
  items by a hash of their key, so a batch reads only its own items, a row keeps its
  batch when rewritten, and items written by other tools are in the batches too.
  DynamoDB allows at most 1,000,000 segments (``avg_rows_per_batch`` must keep the
  batch count below that). Batch sizes follow DynamoDB's hashing (moto hashes into
  256 buckets, so batches beyond the 256th are empty there).

Retries: unprocessed items and keys, throttling, 5xx errors and dropped connections
are retried with exponential backoff and jitter (the rules: :mod:`lamina_dynamodb.retries`).
A request gives up after ``max_attempts`` attempts in a row that process nothing; the
error (:class:`~lamina_dynamodb.errors.DynamoDBBatchError`) names the rows that failed
and the rows of the same call that were not sent (:mod:`lamina_dynamodb.batches`).
Every other row was processed: nothing is dropped silently.

Clients: one boto3 client per process (per region, endpoint and timeout), shared by
every backend and thread (:mod:`lamina_dynamodb.clients`). A backend pickles by its
spec (table, region, endpoint, retry and concurrency settings) and a worker process
makes its own client. Expressions (projections, filters, updates) are built by
:mod:`lamina_dynamodb.expressions`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from lamina.backend import Capabilities, check_change_keys
from lamina.keyvalue.backend import (
    ColumnFilter,
    DBBackend,
    Row,
    batch_count,
    check_clear_index,
    check_column_filter,
    check_return_columns,
    prepare_rows,
    project_row,
    row_matches,
)
from lamina.keyvalue.index import DBIndex
from lamina_dynamodb.batches import BatchFailed, run_batches
from lamina_dynamodb.clients import shared_client
from lamina_dynamodb.codec import KEY_ATTRIBUTE, MAX_KEY_BYTES, decode_item, encode_item, key_bytes
from lamina_dynamodb.errors import DynamoDBError, TableError
from lamina_dynamodb.expressions import filter_plan, projection_names, update_params
from lamina_dynamodb.retries import RETRYABLE_ERROR_CODES, backoff, error_code, retry_reason

__all__ = [
    "MAX_BATCH_GET",
    "MAX_BATCH_WRITE",
    "RETRYABLE_ERROR_CODES",
    "DynamoDBBackend",
    "check_table_name",
    "shared_client",
]

#: Items per ``BatchWriteItem`` request (DynamoDB's limit).
MAX_BATCH_WRITE = 25
#: Keys per ``BatchGetItem`` request (DynamoDB's limit).
MAX_BATCH_GET = 100
_PROJECTION_LIMIT = 300  # more columns than this: fetch whole items, project here
_MAX_SEGMENTS = 1_000_000  # DynamoDB's limit on TotalSegments of a parallel scan
_TABLE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_error_code = error_code  # builder.py imports it from here


def check_table_name(table: Any) -> str:
    """Return ``table`` if it is a valid DynamoDB table name, else raise ``ValueError``."""
    if not isinstance(table, str):
        raise ValueError(f"table must be a str (a DynamoDB table name); got {type(table).__name__}")
    if not 3 <= len(table) <= 255 or not set(table) <= _TABLE_NAME_CHARS:
        raise ValueError(
            "table must be a DynamoDB table name: 3 to 255 characters among letters, "
            f"digits, '_', '-' and '.'; got {table!r}"
        )
    return table


def _dedupe(keys: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """Key → value with the last value of a repeated key (first position kept)."""
    return dict(zip(keys, values, strict=True))


class DynamoDBBackend(DBBackend):
    """Rows of a DynamoDB table (see the module docstring for how operations map).

    The table must exist with the partition key ``"~key"`` (type ``S``) and no sort
    key: :func:`~lamina_dynamodb.builder.build_dynamodb_layer` creates it with
    ``create=True`` and checks it otherwise. Constructing a backend sends nothing.

    Args:
        table: the table name.
        region: the AWS region (``None``: boto3's default, e.g. ``AWS_DEFAULT_REGION``).
        endpoint_url: a DynamoDB endpoint (moto, DynamoDB Local); ``None``: AWS (or
            ``AWS_ENDPOINT_URL_DYNAMODB``).
        max_attempts: attempts of one request, in a row without progress, before giving
            up on it (at least 1).
        base_delay: seconds of the first backoff; each retry doubles it (with jitter:
            between half and all of it) up to ``max_delay``.
        max_delay: the longest backoff, in seconds.
        max_concurrency: batched requests (``BatchWriteItem``, ``BatchGetItem``,
            ``UpdateItem``) of one call sent at once, from a pool of threads (1: one
            after the other).
    """

    capabilities = Capabilities()

    def __init__(
        self,
        table: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        *,
        max_attempts: int = 10,
        base_delay: float = 0.05,
        max_delay: float = 5.0,
        max_concurrency: int = 4,
    ) -> None:
        self._table = check_table_name(table)
        if region is not None and (not isinstance(region, str) or not region):
            raise ValueError(f"region must be a non-empty str or None; got {region!r}")
        if endpoint_url is not None and (not isinstance(endpoint_url, str) or not endpoint_url):
            raise ValueError(f"endpoint_url must be a non-empty str or None; got {endpoint_url!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"max_attempts must be an int of at least 1; got {max_attempts!r}")
        if not 0 <= float(base_delay) <= float(max_delay):
            raise ValueError(
                "base_delay and max_delay must satisfy 0 <= base_delay <= max_delay; got "
                f"{base_delay!r} and {max_delay!r}"
            )
        if (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise ValueError(
                f"max_concurrency must be an int of at least 1; got {max_concurrency!r}"
            )
        self._region = region
        self._max_concurrency = max_concurrency
        self._endpoint_url = endpoint_url
        self._max_attempts = max_attempts
        self._base_delay = float(base_delay)
        self._max_delay = float(max_delay)

    # -- spec -------------------------------------------------------------------------------
    @property
    def table(self) -> str:
        """The table name."""
        return self._table

    @property
    def region(self) -> str | None:
        """The AWS region (``None``: boto3's default)."""
        return self._region

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint (``None``: AWS)."""
        return self._endpoint_url

    @property
    def spec(self) -> dict[str, Any]:
        """The arguments that rebuild this backend (it pickles by them)."""
        return {
            "table": self._table,
            "region": self._region,
            "endpoint_url": self._endpoint_url,
            "max_attempts": self._max_attempts,
            "base_delay": self._base_delay,
            "max_delay": self._max_delay,
            "max_concurrency": self._max_concurrency,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.spec,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DynamoDBBackend):
            return NotImplemented
        return self.spec == other.spec

    def __hash__(self) -> int:
        return hash(tuple(self.spec.values()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec.items())
        return f"DynamoDBBackend({args})"

    @property
    def name(self) -> str:
        return f"dynamodb://{self._table}"

    def with_changes(self, **changes: Any) -> DynamoDBBackend:
        """Supported keys: ``table``, ``region``, ``endpoint_url``, ``max_attempts``,
        ``base_delay``, ``max_delay``, ``max_concurrency``."""
        check_change_keys(self, changes, self.spec)
        return DynamoDBBackend(**{**self.spec, **changes})

    def delete(self) -> None:
        """Delete every row (the table itself is kept)."""
        self.clear()

    # -- requests ---------------------------------------------------------------------------
    def _client(self, timeout: float | None = None) -> Any:
        return shared_client(self._region, self._endpoint_url, timeout)

    def _backoff(self, retry: int, deadline: float | None = None) -> None:
        """Sleep before retry number ``retry`` (1, 2, ...): exponential, jittered."""
        backoff(retry, self._base_delay, self._max_delay, deadline, self._table)

    def _fail(self, exc: Exception, what: str) -> Exception:
        """The error to raise for a non-retryable failure of a request."""
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            where = f" in region {self._region!r}" if self._region else ""
            where += f" at {self._endpoint_url}" if self._endpoint_url else ""
            return TableError(
                f"DynamoDB table {self._table!r} does not exist{where} ({what}); build the "
                "layer with create=True to create it"
            )
        if isinstance(exc, DynamoDBError | TimeoutError):
            return exc
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or str(exc)
        return DynamoDBError(f"DynamoDB table {self._table!r}: {what} failed: {code}: {message}")

    def _call(
        self,
        operation: str,
        what: str,
        deadline: float | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> Any:
        """One request, retried on throttling and transient failures until ``deadline``
        (``time.monotonic()``) if given; ``timeout`` picks a client whose connect and
        read timeouts are that many seconds (rounded up)."""
        client = self._client(None if timeout is None else float(math.ceil(timeout)))
        retry = 0
        while True:
            try:
                return getattr(client, operation)(**params)
            except Exception as exc:
                reason = retry_reason(exc)
                if reason is None:
                    raise self._fail(exc, what) from exc
                retry += 1
                if retry >= self._max_attempts:
                    raise DynamoDBError(
                        f"DynamoDB table {self._table!r}: {what} failed after {retry} "
                        f"attempt(s): {reason}"
                    ) from exc
                self._backoff(retry, deadline)

    def _batch_write(self, operation: str, requests: dict[str, dict[str, Any]]) -> None:
        """Send ``requests`` (key → PutRequest/DeleteRequest) 25 per ``BatchWriteItem``."""
        keys = list(requests)
        client = self._client()
        table = self._table

        def send(batch: list[str]) -> None:
            pending = [requests[k] for k in batch]
            stalled = retry = 0
            while True:
                try:
                    response = client.batch_write_item(RequestItems={table: pending})
                except Exception as exc:
                    reason = retry_reason(exc)
                    if reason is None:
                        if error_code(exc) == "ResourceNotFoundException":
                            raise self._fail(exc, operation) from exc
                        raise BatchFailed(
                            [_request_key(r) for r in pending],
                            f"{error_code(exc) or type(exc).__name__}: {exc}",
                            retry + 1,
                            exc,
                        ) from exc
                    stalled += 1
                else:
                    left = response.get("UnprocessedItems", {}).get(table, [])
                    if not left:
                        return
                    reason = f"{len(left)} unprocessed item(s)"
                    stalled = stalled + 1 if len(left) >= len(pending) else 0
                    pending = left
                retry += 1
                if stalled >= self._max_attempts:
                    raise BatchFailed([_request_key(r) for r in pending], reason, retry)
                self._backoff(retry)

        batches = [keys[i : i + MAX_BATCH_WRITE] for i in range(0, len(keys), MAX_BATCH_WRITE)]
        run_batches(table, operation, batches, send, self._max_concurrency)

    def _batch_get(
        self, keys: Sequence[str], columns: Sequence[str] | None
    ) -> dict[str, dict[str, Any]]:
        """Key → stored item of the stored ones among ``keys``, 100 per ``BatchGetItem``."""
        params: dict[str, Any] = {"ConsistentRead": True}
        if columns is not None and len(columns) <= _PROJECTION_LIMIT:
            names = projection_names(columns, "c")
            params["ProjectionExpression"] = ", ".join(names)
            params["ExpressionAttributeNames"] = names
        client = self._client()
        table = self._table

        def fetch(batch: list[str]) -> list[dict[str, Any]]:
            pending = [{KEY_ATTRIBUTE: {"S": k}} for k in batch]
            found: list[dict[str, Any]] = []
            stalled = retry = 0
            while True:
                try:
                    response = client.batch_get_item(
                        RequestItems={table: {**params, "Keys": pending}}
                    )
                except Exception as exc:
                    reason = retry_reason(exc)
                    if reason is None:
                        raise self._fail(exc, "read") from exc
                    stalled += 1
                else:
                    found.extend(response.get("Responses", {}).get(table, []))
                    left = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
                    if not left:
                        return found
                    reason = f"{len(left)} unprocessed key(s)"
                    stalled = stalled + 1 if len(left) >= len(pending) else 0
                    pending = left
                retry += 1
                if stalled >= self._max_attempts:
                    raise BatchFailed([k[KEY_ATTRIBUTE]["S"] for k in pending], reason, retry)
                self._backoff(retry)

        batches = [list(keys[i : i + MAX_BATCH_GET]) for i in range(0, len(keys), MAX_BATCH_GET)]
        return {
            item[KEY_ATTRIBUTE]["S"]: item
            for items in run_batches(table, "read", batches, fetch, self._max_concurrency)
            for item in items
        }

    def _scan(
        self,
        what: str,
        deadline: float | None = None,
        projection: Sequence[str] | None = None,
        filter_expression: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        count: bool = False,
        timeout: float | None = None,
        segment: tuple[int, int] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every page of a strongly consistent scan (``Count`` pages if ``count``), of
        the parallel-scan ``segment`` ``(number, total)`` when one is given."""
        params: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        if segment is not None:
            params["Segment"], params["TotalSegments"] = segment
        all_names = dict(names or {})
        if count:
            params["Select"] = "COUNT"
        elif projection is not None:
            proj = projection_names(projection, "p")
            all_names.update(proj)
            params["ProjectionExpression"] = ", ".join(proj)
        if filter_expression is not None:
            params["FilterExpression"] = filter_expression
            if values:
                params["ExpressionAttributeValues"] = values
        if all_names:
            params["ExpressionAttributeNames"] = all_names
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"DynamoDB table {self._table!r}: {what} did not finish in time")
            page = self._call("scan", what, deadline, timeout, **params)
            yield page
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last

    # -- rows -------------------------------------------------------------------------------
    def read(self, idx: DBIndex) -> list[Row]:
        """One row per indexed row, in index order; a row not stored reads as ``{}``."""
        keys = [k for k in idx.row_col_keys if key_bytes(k) <= MAX_KEY_BYTES]
        columns: list[str] | None = None
        if idx.col_keys is not None:
            columns = list(dict.fromkeys(c for cols in idx.rows_col_keys for c in cols))
            if not columns:
                return [{} for _ in range(idx.len)]
        found = self._batch_get(keys, columns) if keys else {}
        out: list[Row] = []
        for key in idx.row_col_keys:
            item = found.get(key)
            out.append({} if item is None else decode_item(item, idx.projection(key)))
        return out

    def write(self, idx: DBIndex, data: Sequence[Mapping[str, Any]]) -> None:
        """Replace the rows (``idx.col_keys is None``) or update their columns.

        Every row is checked and encoded before anything is sent; a row whose item
        would exceed DynamoDB's 400 KB is refused
        (:class:`~lamina_dynamodb.codec.ItemTooLargeError`).
        """
        rows = _dedupe(idx.row_keys, prepare_rows(idx, data))
        if idx.col_keys is None:
            requests = {
                key: {"PutRequest": {"Item": encode_item(key, row)}} for key, row in rows.items()
            }
            self._batch_write("write", requests)
            return
        table = self._table
        updates = {key: update_params(table, key, row) for key, row in rows.items() if row}

        def update(batch: list[str]) -> None:
            (key,) = batch
            for params in updates[key]:
                try:
                    self._call("update_item", f"update of row {key!r}", **params)
                except TableError:
                    raise
                except DynamoDBError as exc:
                    raise BatchFailed([key], str(exc), None, exc) from exc

        run_batches(table, "update", [[key] for key in updates], update, self._max_concurrency)

    def clear(self, idx: DBIndex | None = None) -> None:
        """Delete the indexed rows whole (absent ones are ignored), or every row."""
        if idx is not None:
            check_clear_index(idx)
            keys = [k for k in idx.row_col_keys if key_bytes(k) <= MAX_KEY_BYTES]
            self._batch_write("delete", {k: _delete_request(k) for k in keys})
            return
        for page in self._scan("clear", projection=()):
            keys = [item[KEY_ATTRIBUTE]["S"] for item in page.get("Items", [])]
            self._batch_write("delete", {k: _delete_request(k) for k in keys})

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not key or key_bytes(key) > MAX_KEY_BYTES:
            return False
        response = self._call(
            "get_item",
            f"lookup of row {key!r}",
            TableName=self._table,
            Key={KEY_ATTRIBUTE: {"S": key}},
            ConsistentRead=True,
            ProjectionExpression="#k",
            ExpressionAttributeNames={"#k": KEY_ATTRIBUTE},
        )
        return "Item" in response

    def __len__(self) -> int:
        return sum(int(page.get("Count", 0)) for page in self._scan("len", count=True))

    def keys(self, column_filter: ColumnFilter | None = None, union: bool = True) -> list[str]:
        checked = check_column_filter(column_filter)
        plan = filter_plan(checked, union)
        if plan is None:
            return []
        expression, names, values = plan
        filter_columns = tuple(checked)
        out = []
        for page in self._scan("keys", None, filter_columns, expression, names, values):
            for item in page.get("Items", []):
                if checked:
                    row = decode_item(item, filter_columns)
                    if not row_matches(row, checked, union):
                        continue
                out.append(item[KEY_ATTRIBUTE]["S"])
        return out

    def query(
        self,
        column_filter: ColumnFilter | None = None,
        return_columns: Iterable[str] = (),
        union: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Row]:
        """See ``DBBackend.query``; ``timeout`` (seconds) bounds the whole scan
        (``TimeoutError`` when it runs out)."""
        checked = check_column_filter(column_filter)
        columns = check_return_columns(return_columns)
        plan = filter_plan(checked, union)
        if plan is None:
            return {}
        expression, names, values = plan
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise ValueError(
                f"timeout must be a positive number of seconds or None; got {timeout!r}"
            )
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        wanted = tuple(dict.fromkeys((*columns, *checked))) if columns else None
        if wanted is not None and len(wanted) > _PROJECTION_LIMIT:
            wanted = None
        out: dict[str, Row] = {}
        pages = self._scan("query", deadline, wanted, expression, names, values, timeout=timeout)
        for page in pages:
            for item in page.get("Items", []):
                row = decode_item(item, wanted)
                if checked and not row_matches(row, checked, union):
                    continue
                out[item[KEY_ATTRIBUTE]["S"]] = project_row(row, columns or None)
        return out

    def get_batch(
        self,
        batch_number: int,
        avg_rows_per_batch: int,
        return_columns: Iterable[str] = (),
    ) -> dict[str, Row]:
        """Batch ``batch_number``: segment ``batch_number`` of a parallel scan with one
        segment per batch (DynamoDB partitions the items by a hash of their key)."""
        columns = check_return_columns(return_columns)
        with contextlib.suppress(IndexError):  # check the arguments before counting rows
            batch_count(batch_number, avg_rows_per_batch, 0)
        total = batch_count(batch_number, avg_rows_per_batch, len(self))
        if total > _MAX_SEGMENTS:
            raise ValueError(
                f"avg_rows_per_batch={avg_rows_per_batch} cuts the table into {total:,} "
                f"batches, more than DynamoDB's {_MAX_SEGMENTS:,} parallel-scan segments; "
                f"use avg_rows_per_batch of at least {math.ceil(len(self) / _MAX_SEGMENTS)}"
            )
        projection = columns if columns and len(columns) <= _PROJECTION_LIMIT else None
        out: dict[str, Row] = {}
        pages = self._scan("get_batch", None, projection, segment=(batch_number, total))
        for page in pages:
            for item in page.get("Items", []):
                row = decode_item(item, projection)
                out[item[KEY_ATTRIBUTE]["S"]] = project_row(row, columns or None)
        return out


def _rebuild(spec: dict[str, Any]) -> DynamoDBBackend:
    return DynamoDBBackend(**spec)


def _request_key(request: Mapping[str, Any]) -> str:
    body = request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"]
    return str(body[KEY_ATTRIBUTE]["S"])


def _delete_request(key: str) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": {KEY_ATTRIBUTE: {"S": key}}}}
