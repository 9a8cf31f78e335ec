"""Failed tasks: which errors are retried and after what wait, when a run gives up, and
the error that lists the tasks that still failed.

A task that raises is retried up to ``retries`` times (3 by default) after an exponential
backoff with jitter (:func:`_retry_delay`) — unless its error is one a retry cannot cure
(:func:`_retryable`: a value the destination cannot hold, data that does not decode, a
bug in the function applied), which fails the task at once. Once
:data:`FAILED_ALIKE_LIMIT` tasks failed the same way and none succeeded, the run stops
trying the others (:func:`_all_failed_alike`). Tasks that still fail end the run with
:class:`TasksFailedError`, which lists the box of each (:class:`TaskFailure`: voxels
and nm); every other task is written and journaled, and ``resume=True`` runs just the
failed ones.

``ChunkFailure`` and ``ChunksFailedError`` are the old names of :class:`TaskFailure`
and :class:`TasksFailedError` (from before a flow's unit of work was called a task and
"chunk" kept to storage chunks), kept as aliases: the same classes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from lamina.errors import LaminaError
from lamina.volumetric.index import VolumetricIndex

__all__ = [
    "FAILED_ALIKE_LIMIT",
    "ChunkFailure",
    "ChunksFailedError",
    "TaskFailure",
    "TasksFailedError",
]

#: The first retry's wait (seconds, before jitter); each later one waits twice as long.
_BACKOFF_S = 0.2
#: The longest wait between two attempts of a task (seconds, before jitter).
_MAX_BACKOFF_S = 10.0

#: After this many tasks failed alike, none having succeeded, a run stops: the others
#: would fail the same way (a destination refusing every write, say).
FAILED_ALIKE_LIMIT = 3

#: Errors a retry cannot cure: the same task fails the same way (a value the destination
#: cannot hold, data that does not decode, a bug in the function applied).
_NOT_RETRYABLE: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    NotImplementedError,
    AssertionError,
    ArithmeticError,
)


@attrs.frozen
class TaskFailure:
    """A task that failed every attempt: its number, index, last error and attempts."""

    number: int
    index: VolumetricIndex
    error: str
    attempts: int

    def describe(self) -> str:
        idx = self.index
        return (
            f"task {self.number}: {idx.start.pformat()}:{idx.stop.pformat()} voxels at "
            f"{idx.resolution.pformat()} nm ({idx.bbox.pformat((1, 1, 1))} nm) — {self.error} "
            f"(after {self.attempts} attempt{'s' if self.attempts != 1 else ''})"
        )


#: The old name of :class:`TaskFailure` (the same class), kept for callers.
ChunkFailure = TaskFailure


def _retryable(exc: BaseException) -> bool:
    """Whether trying the task again could succeed: storage and network faults (an
    ``OSError``, a timeout) may pass; a deterministic error will not."""
    return isinstance(exc, OSError | TimeoutError) or not isinstance(exc, _NOT_RETRYABLE)


def _retry_delay(attempts: int) -> float:
    """Seconds to wait before the next attempt of a task that failed ``attempts`` times:
    exponential backoff, capped, with jitter (so that tasks that failed together do not
    all come back at once)."""
    delay: float = min(_MAX_BACKOFF_S, _BACKOFF_S * 2 ** (attempts - 1))
    return delay * random.uniform(0.5, 1.0)


def _all_failed_alike(failures: Sequence[TaskFailure], finished: Any) -> bool:
    """``FAILED_ALIKE_LIMIT`` tasks failed with one error (its text up to the first
    digit, so that boxes and values may differ) and none has succeeded."""
    if finished or len(failures) < FAILED_ALIKE_LIMIT:
        return False
    kinds = {re.split(r"\d", f.error, maxsplit=1)[0] for f in failures}
    return len(kinds) == 1


class TasksFailedError(LaminaError):
    """Some tasks failed every attempt; ``failures`` lists them (nothing else is lost:
    every other task was written and is in the journal)."""

    def __init__(
        self,
        flow: str,
        failures: Sequence[TaskFailure],
        total: int,
        journal: Path,
        finished: int | None = None,
    ):
        self.failures = list(failures)
        self.journal = journal
        self.finished = total - len(self.failures) if finished is None else finished
        listed = "\n  ".join(f.describe() for f in self.failures[:20])
        more = f"\n  … and {len(self.failures) - 20} more" if len(self.failures) > 20 else ""
        stopped = total - self.finished - len(self.failures)
        if stopped:
            what = (
                f"{len(self.failures)} tasks failed the same way and none succeeded, so the "
                f"run stopped; {stopped} tasks were not tried"
            )
        else:
            what = f"{len(self.failures)} of {total} tasks failed"
        written = (
            "No task was written"
            if self.finished == 0
            else f"{self.finished} of {total} tasks are written (journal: {journal})"
        )
        super().__init__(
            f"{flow}: {what}:\n  {listed}{more}\n{written}. Fix the cause and run again "
            "with resume=True (--resume) to do just the rest."
        )


#: The old name of :class:`TasksFailedError` (the same class), kept for callers.
ChunksFailedError = TasksFailedError
