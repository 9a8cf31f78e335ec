"""Which failed DynamoDB requests are retried, and how long to wait before each retry.

Throttling (``ProvisionedThroughputExceeded``, ``ThrottlingException``,
``RequestLimitExceeded``), DynamoDB's transient failures, any 5xx answer and dropped
connections are worth another attempt; every other error is final. Retries back off
exponentially with jitter. The backend decides when to give up (after ``max_attempts``
attempts in a row that process nothing) and names what failed; this module only holds
the rules it applies.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

__all__ = ["RETRYABLE_ERROR_CODES", "backoff", "error_code", "retry_reason"]

#: Error codes retried with backoff: throttling and DynamoDB's transient failures.
RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)

# Sleeps between retries; tests replace it to record the delays.
_sleep = time.sleep


def error_code(exc: BaseException) -> str | None:
    """The DynamoDB error code of a botocore error (``None`` for any other error)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def retry_reason(exc: Exception) -> str | None:
    """Why ``exc`` is worth retrying (its code), or ``None`` if it is not."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code in RETRYABLE_ERROR_CODES or int(status) >= 500:
            return code or f"HTTP {status}"
        return None
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return type(exc).__name__
    return None


def backoff(
    retry: int, base_delay: float, max_delay: float, deadline: float | None, table: str
) -> None:
    """Sleep before retry number ``retry`` (1, 2, ...): ``base_delay`` doubled at each
    retry up to ``max_delay``, jittered to between half and all of it, and cut short at
    ``deadline`` (``time.monotonic()``); past the deadline, ``TimeoutError`` naming
    ``table``."""
    delay = min(max_delay, base_delay * 2 ** (retry - 1))
    delay = delay / 2 + random.uniform(0, delay / 2)
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"DynamoDB table {table!r}: out of time while retrying")
        delay = min(delay, left)
    _sleep(delay)
