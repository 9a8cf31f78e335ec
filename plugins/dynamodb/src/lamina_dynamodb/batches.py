"""The batched requests of one backend call, sent up to ``max_concurrency`` at once.

A call's keys are cut into batches (25 per ``BatchWriteItem``, 100 per
``BatchGetItem``, one row per ``UpdateItem``) and each batch is sent, with its own
retries, from lamina's shared ``dynamodb`` thread pool. When a batch gives up, no
further batch is started and the ones under way finish, so that the error can name
exactly the rows that failed and the rows that were never sent: every other row was
processed, nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from lamina.concurrency import shared_pool
from lamina_dynamodb.errors import DynamoDBBatchError

__all__ = ["BatchFailed", "run_batches"]


class BatchFailed(Exception):
    """One batch of a batched call failed: its keys not processed, why, after how many
    attempts (``None``: not counted), and the error behind it."""

    def __init__(
        self,
        keys: list[str],
        reason: str,
        attempts: int | None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(reason)
        self.keys = keys
        self.reason = reason
        self.attempts = attempts
        self.cause = cause


def run_batches(
    table: str,
    operation: str,
    batches: list[list[str]],
    work: Callable[[list[str]], Any],
    max_concurrency: int,
) -> list[Any]:
    """``work(batch)`` for every batch of keys, up to ``max_concurrency`` at once.

    When a batch fails (:class:`BatchFailed`), no further batch is started, the ones
    under way finish, and a :class:`DynamoDBBatchError` names the failed keys and those
    of the batches never started. Any other error is raised as it is.
    """
    width = min(max_concurrency, len(batches))
    if width <= 1:
        results = []
        for i, batch in enumerate(batches):
            try:
                results.append(work(batch))
            except BatchFailed as failed:
                unsent = [k for later in batches[i + 1 :] for k in later]
                raise _batch_error(table, operation, [failed], unsent) from failed.cause
        return results
    out: list[Any] = [None] * len(batches)
    failures: list[BatchFailed] = []
    errors: list[BaseException] = []
    pool = shared_pool("dynamodb", width)
    running: dict[Future[Any], int] = {}
    following = 0
    while True:
        while following < len(batches) and len(running) < width and not (failures or errors):
            running[pool.submit(work, batches[following])] = following
            following += 1
        if not running:
            break
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            i = running.pop(future)
            try:
                out[i] = future.result()
            except BatchFailed as failed:
                failures.append(failed)
            except BaseException as exc:
                errors.append(exc)
    if errors:
        raise errors[0]
    if failures:
        unsent = [k for later in batches[following:] for k in later]
        raise _batch_error(table, operation, failures, unsent) from failures[0].cause
    return out


def _batch_error(
    table: str, operation: str, failures: list[BatchFailed], unsent: list[str]
) -> DynamoDBBatchError:
    failed = [k for f in failures for k in f.keys]
    last = failures[-1]
    return DynamoDBBatchError(operation, table, failed, unsent, last.reason, last.attempts)
