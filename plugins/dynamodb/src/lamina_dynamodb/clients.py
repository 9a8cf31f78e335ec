"""The boto3 DynamoDB clients of this process, one per region, endpoint and timeout.

A client is created on first use from its own ``boto3.session.Session`` (sessions are
not thread-safe, clients are) and then shared by every backend and thread of the
process. A forked child forgets its parent's clients, whose connections are not its
own, and makes new ones (:class:`lamina.concurrency.ProcessLocal`); a backend pickles
by its spec, so a worker process makes its own client too.
"""

from __future__ import annotations

from typing import Any

from lamina.concurrency import ProcessLocal
from lamina_dynamodb.errors import DynamoDBError

__all__ = ["shared_client"]

#: This process's clients by (region, endpoint, timeout); a forked child starts empty.
_clients: ProcessLocal[dict[tuple[Any, ...], Any]] = ProcessLocal(dict)


def shared_client(
    region: str | None = None, endpoint_url: str | None = None, timeout: float | None = None
) -> Any:
    """This process's boto3 DynamoDB client for ``region`` and ``endpoint_url``.

    Created on first use (from a session of its own) and then shared by every backend
    and thread: boto3 clients are thread-safe. ``timeout`` (seconds) sets the client's
    connect and read timeouts (``None``: botocore's defaults). botocore's own retries are
    off: the backend retries, with its own bound, and names what failed.
    """
    clients = _clients.get()
    key = (region, endpoint_url, timeout)
    client = clients.get(key)
    if client is not None:
        return client
    with _clients.lock:
        client = clients.get(key)
        if client is None:
            client = clients[key] = _make_client(region, endpoint_url, timeout)
    return client


def _make_client(region: str | None, endpoint_url: str | None, timeout: float | None) -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    options: dict[str, Any] = {
        "retries": {"mode": "standard", "total_max_attempts": 1},
        # The backend builds every request itself; botocore's validation of each
        # parameter costs more than the encoding and adds nothing.
        "parameter_validation": False,
        "max_pool_connections": 32,
    }
    if timeout is not None:
        options["connect_timeout"] = timeout
        options["read_timeout"] = timeout
    session = boto3.session.Session()
    try:
        return session.client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=Config(**options)
        )
    except NoRegionError:
        raise DynamoDBError(
            "no AWS region for DynamoDB: pass region='us-east-1' (for example) or set "
            "AWS_DEFAULT_REGION"
        ) from None
