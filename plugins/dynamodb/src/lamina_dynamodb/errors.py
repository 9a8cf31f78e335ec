"""The errors lamina-dynamodb raises on purpose (importing this module imports no boto3)."""

from __future__ import annotations

from collections.abc import Sequence

from lamina.errors import LaminaError

__all__ = ["DynamoDBBatchError", "DynamoDBError", "TableError"]

_SHOWN_KEYS = 20


def _keys_text(keys: Sequence[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:_SHOWN_KEYS])
    more = len(keys) - _SHOWN_KEYS
    return f"[{shown}{f', ... and {more} more' if more > 0 else ''}]"


class DynamoDBError(LaminaError, OSError):
    """DynamoDB refused or failed a request after the retries lamina-dynamodb makes."""


class TableError(DynamoDBError, LookupError):
    """The table is missing (and ``create`` was not asked) or has another key schema."""


class DynamoDBBatchError(DynamoDBError):
    """Some rows of a batched request were not processed; nothing is dropped silently.

    Attributes:
        operation: what was being done (``"write"``, ``"delete"``, ``"update"``,
            ``"read"``).
        failed_keys: the rows whose request was sent but not processed (still
            unprocessed after the last retry, or refused by DynamoDB).
        unsent_keys: the rows of the same call that were not sent because of the
            failure. Every other row of the call was processed.
        reason: the last reason given (an error code or "unprocessed").
        attempts: the attempts made of the failed request (``None``: not counted).
    """

    def __init__(
        self,
        operation: str,
        table: str,
        failed_keys: Sequence[str],
        unsent_keys: Sequence[str],
        reason: str,
        attempts: int | None = None,
    ) -> None:
        self.operation = operation
        self.table = table
        self.failed_keys = tuple(failed_keys)
        self.unsent_keys = tuple(unsent_keys)
        self.reason = reason
        self.attempts = attempts
        done = {"write": "not written", "update": "not updated", "delete": "not deleted"}
        after = f" after {attempts} attempt(s)" if attempts is not None else ""
        message = (
            f"DynamoDB table {table!r}: {operation} of {len(self.failed_keys)} row(s) "
            f"failed{after} ({reason}); {done.get(operation, 'not read')}: "
            f"{_keys_text(self.failed_keys)}"
        )
        if self.unsent_keys:
            message += (
                f"; {len(self.unsent_keys)} later row(s) of the same call were not sent: "
                f"{_keys_text(self.unsent_keys)}"
            )
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (
            type(self),
            (
                self.operation,
                self.table,
                self.failed_keys,
                self.unsent_keys,
                self.reason,
                self.attempts,
            ),
        )
