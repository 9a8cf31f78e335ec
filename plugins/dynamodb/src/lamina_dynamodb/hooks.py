"""Hook module announced by the ``lamina`` entry point.

It imports nothing heavy: boto3 is imported when a layer is built or a backend is
first used, never during plugin discovery.
"""

from __future__ import annotations

from typing import Any

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


def build_dynamodb_layer(*args: Any, **kwargs: Any) -> Any:
    """Build a key-value layer over a DynamoDB table (see
    ``lamina_dynamodb.builder.build_dynamodb_layer`` for the parameters)."""
    from lamina_dynamodb.builder import build_dynamodb_layer as build

    return build(*args, **kwargs)


def DynamoDBBackend(*args: Any, **kwargs: Any) -> Any:
    """The DynamoDB key-value backend (see ``lamina_dynamodb.backend.DynamoDBBackend``)."""
    from lamina_dynamodb.backend import DynamoDBBackend as backend

    return backend(*args, **kwargs)


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_dynamodb_layer", build_dynamodb_layer)


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("DynamoDBBackend", DynamoDBBackend)
