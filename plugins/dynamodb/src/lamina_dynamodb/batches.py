"""The batched requests of one backend call, sent up to ``max_concurrency`` at once.

A call's keys are cut into chunks (25 per ``BatchWriteItem``, 100 per
``BatchGetItem``, one row per ``UpdateItem``) and each chunk is sent, with its own
retries, from a pool of threads. When a chunk gives up, no further chunk is started
and the ones under way finish, so that the error can name exactly the rows that failed
and the rows that were never sent: every other row was processed, nothing is dropped
silently.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from lamina_dynamodb.errors import DynamoDBBatchError

__all__ = ["ChunkFailed", "run_chunks"]


class ChunkFailed(Exception):
    """One chunk of a batched call failed: its keys not processed, why, after how many
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


def run_chunks(
    table: str,
    operation: str,
    chunks: list[list[str]],
    work: Callable[[list[str]], Any],
    max_concurrency: int,
) -> list[Any]:
    """``work(chunk)`` for every chunk of keys, up to ``max_concurrency`` at once.

    When a chunk fails (:class:`ChunkFailed`), no further chunk is started, the ones
    under way finish, and a :class:`DynamoDBBatchError` names the failed keys and those
    of the chunks never started. Any other error is raised as it is.
    """
    width = min(max_concurrency, len(chunks))
    if width <= 1:
        results = []
        for i, chunk in enumerate(chunks):
            try:
                results.append(work(chunk))
            except ChunkFailed as failed:
                unsent = [k for later in chunks[i + 1 :] for k in later]
                raise _batch_error(table, operation, [failed], unsent) from failed.cause
        return results
    out: list[Any] = [None] * len(chunks)
    failures: list[ChunkFailed] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="lamina-dynamodb") as pool:
        running: dict[Future[Any], int] = {}
        following = 0
        while True:
            while following < len(chunks) and len(running) < width and not (failures or errors):
                running[pool.submit(work, chunks[following])] = following
                following += 1
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                i = running.pop(future)
                try:
                    out[i] = future.result()
                except ChunkFailed as failed:
                    failures.append(failed)
                except BaseException as exc:
                    errors.append(exc)
    if errors:
        raise errors[0]
    if failures:
        unsent = [k for later in chunks[following:] for k in later]
        raise _batch_error(table, operation, failures, unsent) from failures[0].cause
    return out


def _batch_error(
    table: str, operation: str, failures: list[ChunkFailed], unsent: list[str]
) -> DynamoDBBatchError:
    failed = [k for f in failures for k in f.keys]
    last = failures[-1]
    return DynamoDBBatchError(operation, table, failed, unsent, last.reason, last.attempts)
