"""A stand-in for a helper thread's pool, for testing readers that share their work
through :func:`lamina.concurrency.share_with_helper`."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

__all__ = ["StandInHelper"]


class StandInHelper:
    """Takes the place of a helper's pool (``monkeypatch`` the reader's ``shared_pool``
    to return it): runs what it is given at once (``runs``: the helper took the work) or
    never (the helper is busy; the reading thread must take the work back), and counts
    what it was given."""

    def __init__(self, runs: bool) -> None:
        self.runs = runs
        self.submitted = 0

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        self.submitted += 1
        future: Future[Any] = Future()
        if self.runs:
            future.set_running_or_notify_cancel()
            future.set_result(fn(*args))
        return future
