"""Which browser pages show a view: a count kept on neuroglancer's own web server.

neuroglancer's Python package serves its client and the viewers' state from one tornado
server per process; every open page holds a state stream (``/events/VIEWER_TOKEN``).
lamina adds one route to that server, matched before neuroglancer's own (routes added
with ``Application.add_handlers`` are), for the same path: a subclass of neuroglancer's
handler that counts the streams open for each lamina view, so ``screenshot()`` knows
whether a browser shows it, and ends them when the view is closed. Streams of other
viewers are handled exactly as neuroglancer does.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["PageCounter", "close_streams", "ensure_routes", "pages"]


class PageCounter:
    """The open state streams of each lamina view."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._viewer_tokens: dict[str, str] = {}  # neuroglancer viewer token -> view token
        self._streams: dict[str, set[Any]] = {}  # view token -> open stream handlers
        self.installed_on: Any = None

    def add(self, view_token: str, viewer_token: str) -> None:
        with self._lock:
            self._viewer_tokens[viewer_token] = view_token
            self._streams.setdefault(view_token, set())

    def remove(self, view_token: str) -> list[Any]:
        """Forget ``view_token``; returns its open stream handlers."""
        with self._lock:
            for viewer, view in list(self._viewer_tokens.items()):
                if view == view_token:
                    del self._viewer_tokens[viewer]
            return list(self._streams.pop(view_token, set()))

    def count(self, view_token: str) -> int:
        """How many pages hold the state stream of ``view_token`` open now."""
        with self._lock:
            return len(self._streams.get(view_token, ()))

    def opened(self, viewer_token: str, handler: Any) -> str | None:
        with self._lock:
            view = self._viewer_tokens.get(viewer_token)
            if view is not None:
                self._streams[view].add(handler)
            return view

    def closed(self, view_token: str, handler: Any) -> None:
        with self._lock:
            self._streams.get(view_token, set()).discard(handler)


pages = PageCounter()
_install_lock = threading.Lock()


def _counting_handler() -> Any:
    from neuroglancer import server as ng_server

    class CountingEventStream(ng_server.EventStreamHandler):  # type: ignore[misc]
        """neuroglancer's state stream, counted per lamina view while it is open."""

        async def get(self, viewer_token: str) -> None:
            view = pages.opened(viewer_token, self)
            try:
                await super().get(viewer_token)
            finally:
                if view is not None:
                    pages.closed(view, self)

    return CountingEventStream


def ensure_routes() -> Any:
    """Start neuroglancer's server if needed and add the counting route to it (once per
    server instance); returns the server. Without the route (a neuroglancer whose server
    lacks the handler), pages are not counted and ``screenshot()`` starts its own browser."""
    from neuroglancer import server as ng_server

    with _install_lock:
        ng_server.start()
        server = ng_server.global_server
        if pages.installed_on is not server:
            pattern = getattr(ng_server, "EVENTS_PATH_REGEX", None)
            if pattern is not None and hasattr(ng_server, "EventStreamHandler"):
                _install(server, [(pattern, _counting_handler(), {"server": server})])
            pages.installed_on = server
        return server


def _install(server: Any, handlers: list[Any]) -> None:
    done = threading.Event()

    def install() -> None:
        server.app.add_handlers(r".*", handlers)
        done.set()

    server.loop.call_soon_threadsafe(install)
    if not done.wait(30):
        raise RuntimeError("neuroglancer's server did not answer within 30 s")


def close_streams(server: Any, handlers: list[Any]) -> None:
    """End the state streams of a closed view (its pages stop receiving updates)."""

    def end() -> None:
        for handler in handlers:
            handler._closed = True
            wake = getattr(handler, "_wake_up", None)
            if wake is not None:
                wake()

    if handlers:
        server.loop.call_soon_threadsafe(end)
