"""``build_dynamodb_layer``: a key-value layer over a DynamoDB table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lamina.keyvalue.layer import KeyValueLayer, build_db_layer
from lamina_dynamodb.backend import DynamoDBBackend, _error_code
from lamina_dynamodb.codec import KEY_ATTRIBUTE
from lamina_dynamodb.errors import TableError

__all__ = ["build_dynamodb_layer", "ensure_table"]

_KEY_SCHEMA = [{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}]


def ensure_table(backend: DynamoDBBackend, create: bool = False) -> None:
    """Check that the backend's table exists with this plugin's key schema.

    With ``create=True`` a missing table is created (on-demand billing, partition key
    ``"~key"`` of type ``S``) and waited for until it is active; a table created at the
    same moment by another process is fine. Raises
    :class:`~lamina_dynamodb.errors.TableError` when the table is missing (and
    ``create`` is False) or has another key schema.
    """
    client = backend._client()
    table = backend.table
    try:
        description = client.describe_table(TableName=table)["Table"]
    except Exception as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise backend._fail(exc, "describe_table") from exc
        if not create:
            raise backend._fail(exc, "describe_table") from None
        try:
            client.create_table(
                TableName=table,
                KeySchema=_KEY_SCHEMA,
                AttributeDefinitions=[{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except Exception as create_exc:
            if _error_code(create_exc) != "ResourceInUseException":  # created meanwhile
                raise backend._fail(create_exc, "create_table") from create_exc
        client.get_waiter("table_exists").wait(
            TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 600}
        )
        description = client.describe_table(TableName=table)["Table"]
    if description.get("TableStatus") == "CREATING":
        client.get_waiter("table_exists").wait(
            TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 600}
        )
    types = {a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]}
    schema = [dict(k) for k in description["KeySchema"]]
    if schema != _KEY_SCHEMA or types.get(KEY_ATTRIBUTE) != "S":
        raise TableError(
            f"DynamoDB table {table!r} has the key schema {schema} (attribute types "
            f"{types}); lamina-dynamodb needs a partition key {KEY_ATTRIBUTE!r} of type S "
            "and no sort key. Use another table name (create=True creates one)"
        )


def build_dynamodb_layer(
    table: str,
    region: str | None = None,
    endpoint_url: str | None = None,
    create: bool = False,
    readonly: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> KeyValueLayer:
    """Build a key-value layer over the DynamoDB table ``table``.

    Args:
        table: the table name.
        region: the AWS region (``None``: boto3's default, e.g. ``AWS_DEFAULT_REGION``).
        endpoint_url: a DynamoDB endpoint such as moto's or DynamoDB Local's
            (``None``: AWS, or ``AWS_ENDPOINT_URL_DYNAMODB``).
        create: create the table if it does not exist (on-demand billing); otherwise a
            missing table is a :class:`~lamina_dynamodb.errors.TableError`.
        readonly: refuse writes, deletes and ``clear``.
        index_procs, read_procs, write_procs: the layer's processors.

    The table is checked (one ``DescribeTable``) when the layer is built; the layer
    pickles by its spec and each process makes its own boto3 client.
    """
    backend = DynamoDBBackend(table, region=region, endpoint_url=endpoint_url)
    ensure_table(backend, create=create)
    return build_db_layer(
        backend,
        readonly=readonly,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
