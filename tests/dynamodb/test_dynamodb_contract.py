"""The key-value contract suite on DynamoDB, in both moto modes.

* ``TestDynamoDBInProcess``: moto in this process (``mock_aws``). A spawned process
  cannot reach this process's moto, so the two spawned-process tests run only in the
  server mode.
* ``TestDynamoDBServer``: moto's ``ThreadedMotoServer`` on 127.0.0.1 — requests go over
  HTTP on loopback, like to DynamoDB itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dynamodb_support as raw
import pytest
from lamina_dynamodb import DynamoDBBackend, build_dynamodb_layer

from lamina.keyvalue.backend import DBBackend
from lamina.testing import KeyValueBackendTests


class _DynamoDBHooks(KeyValueBackendTests):
    endpoint: str | None = None

    def make_backend(self, path: Path) -> DBBackend:
        layer = build_dynamodb_layer(
            raw.unique_table(), region=raw.REGION, endpoint_url=self.endpoint, create=True
        )
        backend = layer.backend
        assert isinstance(backend, DynamoDBBackend)
        return backend

    def raw_get_row(self, backend: Any, key: str) -> dict[str, Any] | None:
        return raw.raw_get_row(backend.endpoint_url, backend.table, key)

    def raw_put_row(self, backend: Any, key: str, row: dict[str, Any]) -> None:
        raw.raw_put_row(backend.endpoint_url, backend.table, key, row)

    def raw_row_keys(self, backend: Any) -> set[str]:
        return raw.raw_row_keys(backend.endpoint_url, backend.table)


@pytest.mark.usefixtures("moto_in_process")
class TestDynamoDBInProcess(_DynamoDBHooks):
    """moto in this process."""

    endpoint = None

    _NO_CHILD = "a spawned process cannot reach moto in this process; see TestDynamoDBServer"

    def test_spawned_process_reads(self, backend: Any) -> None:
        pytest.skip(self._NO_CHILD)

    def test_spawned_process_write_visibility(self, backend: Any) -> None:
        pytest.skip(self._NO_CHILD)


class TestDynamoDBServer(_DynamoDBHooks):
    """moto's server on loopback."""

    @pytest.fixture(autouse=True)
    def _server(self, moto_server: str) -> None:
        self.endpoint = moto_server
