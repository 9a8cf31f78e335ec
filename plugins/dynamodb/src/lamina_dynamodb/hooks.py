"""Hook module announced by the ``lamina`` entry point: every name by import string, so
discovering plugins imports neither boto3 nor anything else of this distribution."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register("build_dynamodb_layer", "lamina_dynamodb.builder:build_dynamodb_layer")


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("DynamoDBBackend", "lamina_dynamodb:DynamoDBBackend")
