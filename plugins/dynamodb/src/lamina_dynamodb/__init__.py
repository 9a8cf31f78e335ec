"""lamina-dynamodb: DynamoDB tables as lamina key-value layers, on boto3.

``build_dynamodb_layer(table, ...)`` builds a :class:`lamina.KeyValueLayer` over a
table; ``DynamoDBBackend`` is its backend; :mod:`lamina_dynamodb.codec` describes how
rows are stored. Names are imported on first use, so ``import lamina_dynamodb`` does
not import boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "build_dynamodb_layer": "lamina_dynamodb.builder",
    "ensure_table": "lamina_dynamodb.builder",
    "DynamoDBBackend": "lamina_dynamodb.backend",
    "MAX_BATCH_GET": "lamina_dynamodb.backend",
    "MAX_BATCH_WRITE": "lamina_dynamodb.backend",
    "shared_client": "lamina_dynamodb.backend",
    "KEY_ATTRIBUTE": "lamina_dynamodb.codec",
    "MAX_ITEM_BYTES": "lamina_dynamodb.codec",
    "ItemTooLargeError": "lamina_dynamodb.codec",
    "DynamoDBError": "lamina_dynamodb.errors",
    "DynamoDBBatchError": "lamina_dynamodb.errors",
    "TableError": "lamina_dynamodb.errors",
}

__all__ = [
    "KEY_ATTRIBUTE",
    "MAX_BATCH_GET",
    "MAX_BATCH_WRITE",
    "MAX_ITEM_BYTES",
    "DynamoDBBackend",
    "DynamoDBBatchError",
    "DynamoDBError",
    "ItemTooLargeError",
    "TableError",
    "build_dynamodb_layer",
    "ensure_table",
    "shared_client",
]

if TYPE_CHECKING:
    from lamina_dynamodb.backend import (
        MAX_BATCH_GET,
        MAX_BATCH_WRITE,
        DynamoDBBackend,
        shared_client,
    )
    from lamina_dynamodb.builder import build_dynamodb_layer, ensure_table
    from lamina_dynamodb.codec import KEY_ATTRIBUTE, MAX_ITEM_BYTES, ItemTooLargeError
    from lamina_dynamodb.errors import DynamoDBBatchError, DynamoDBError, TableError


__getattr__ = module_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
