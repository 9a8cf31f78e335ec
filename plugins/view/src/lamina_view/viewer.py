"""``lamina.view(layers)``: any volumetric layer in neuroglancer, read on demand.

:func:`view` serves each layer as a precomputed source from lamina's chunk server
(:mod:`lamina_view.dataserver`, :mod:`lamina_view.source`) and opens a
``neuroglancer.Viewer`` on them (neuroglancer's own server, which also counts the pages
showing each view: :mod:`lamina_view.server`): display in nm with x, y, z axes,
positioned at the centre of the first layer's bounds, neuroglancer's default layout and
zoom. The
returned :class:`View` has the viewer's ``url``, the ``neuroglancer.Viewer`` itself
(``view.viewer.txn()`` changes the state), :meth:`View.screenshot` and
:meth:`View.close`.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from lamina.errors import LaminaError
from lamina_view.source import LayerSource

__all__ = ["ScreenshotTimeoutError", "View", "ViewError", "is_loopback", "view"]

log = logging.getLogger("lamina_view")

#: The address a view is served on unless asked otherwise.
DEFAULT_BIND = "127.0.0.1"


class ViewError(LaminaError, RuntimeError):
    """A view cannot be made or served as asked."""


class ScreenshotTimeoutError(ViewError, TimeoutError):
    """No browser answered a screenshot request in time."""


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP or ``localhost``) is reachable only from this machine."""
    if address in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _neuroglancer() -> Any:
    try:
        import neuroglancer
    except ImportError as exc:
        raise ViewError(
            f"lamina view needs the neuroglancer package, which cannot be imported ({exc}): "
            "pip install lamina-view"
        ) from None
    return neuroglancer


def _is_set(layer: Any) -> bool:
    members = getattr(layer.backend, "layers", None)
    return isinstance(members, Mapping) and all(hasattr(m, "backend") for m in members.values())


def _sources(name: str, layer: Any) -> list[tuple[str, LayerSource]]:
    """One source per shown layer; a volumetric layer set is shown as its members."""
    from lamina.volumetric.backend import VolumetricBackend

    backend = getattr(layer, "backend", None)
    if not isinstance(backend, VolumetricBackend) or not hasattr(layer, "__getitem__"):
        raise TypeError(
            f"view() shows volumetric layers; {name!r} is a {type(layer).__name__}"
            + ("" if backend is None else f" over a {type(backend).__name__}")
        )
    if not _is_set(layer):
        return [(name, LayerSource(layer))]
    result = []
    own_procs = bool(getattr(layer, "index_procs", ()) or getattr(layer, "read_procs", ()))
    for key, member in backend.layers.items():  # type: ignore[attr-defined]
        label = f"{name}/{key}"
        if own_procs:  # the set's processors apply: read through the set, keep one member

            def read(idx: Any, key: str = key) -> Any:
                return layer[idx][key]

            result.append((label, LayerSource(member, read=read)))
        else:
            result.extend((f"{name}/{n}", s) for n, s in _sources(key, member))
    return result


def _as_mapping(layers: Any) -> dict[str, Any]:
    if isinstance(layers, Mapping):
        if not layers:
            raise ValueError("view() needs at least one layer; got an empty mapping")
        return {str(k): v for k, v in layers.items()}
    name = getattr(layers, "name", None)
    label = "layer"
    if isinstance(name, str) and name:
        label = name.rstrip("/").rsplit("/", 1)[-1] or "layer"
    return {label: layers}


class View:
    """Layers served to a neuroglancer viewer; made by :func:`view`.

    Attributes:
        url: the viewer's URL (``http://127.0.0.1:PORT/v/TOKEN/``).
        viewer: the ``neuroglancer.Viewer``; change the state with ``viewer.txn()``.
        sources: each shown layer's :class:`~lamina_view.source.LayerSource` by name (what
            was served: ``sources[name].served``).
    """

    def __init__(
        self,
        layers: Mapping[str, Any],
        *,
        bind_address: str,
        port: int,
        data_port: int | None = None,
    ) -> None:
        ng = _neuroglancer()
        from neuroglancer import server as ng_server

        from lamina_view import server as pages_module
        from lamina_view.dataserver import chunk_server

        shown: list[tuple[str, LayerSource]] = []
        for name, layer in layers.items():
            shown.extend(_sources(name, layer))
        names = [n for n, _ in shown]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be distinct; got {names}")
        _configure_server(ng_server, bind_address, port)
        if data_port is None:
            data_port = port + 1 if port else 0
        try:
            server = pages_module.ensure_routes()
        except OSError as exc:
            raise ViewError(
                f"cannot serve on {bind_address}:{port or '(any port)'}: {exc}"
            ) from None
        try:
            chunks = chunk_server(bind_address, data_port)
        except OSError as exc:
            raise ViewError(
                f"cannot serve the data on {bind_address}:{data_port or '(any port)'}: {exc}"
            ) from None
        chunks.on_error = _log_read_error
        self._server = server
        self._chunks = chunks
        self._pages = pages_module.pages
        self._closed = False
        self._lock = threading.Lock()
        self._browser: Any = None
        self.viewer = ng.Viewer()
        self.token = secrets.token_hex(20)  # the key to this view's data
        self.sources: dict[str, LayerSource] = dict(shown)
        self._pages.add(self.token, self.viewer.token)
        chunks.add(self.token, {str(i): source for i, (_, source) in enumerate(shown)})
        host = urllib.parse.urlsplit(server.server_url).hostname or bind_address
        if ":" in host:
            host = f"[{host}]"
        #: Where the layers are served: ``{data_url}/{i}`` is layer ``i``'s precomputed source.
        self.data_url = f"http://{host}:{chunks.port}/{self.token}"
        first = shown[0][1].finest
        centre = [
            first.voxel_offset[d] + first.size[d] / 2 for d in range(3)
        ]  # in voxels of the finest scale, which the display dimensions count in
        with self.viewer.txn() as s:
            s.dimensions = ng.CoordinateSpace(
                names=["x", "y", "z"], units="nm", scales=[float(r) for r in first.resolution]
            )
            s.display_dimensions = ["x", "y", "z"]
            s.position = centre
            for i, (name, source) in enumerate(shown):
                url = f"precomputed://{self.data_url}/{i}"
                if source.volume_type == "segmentation":
                    s.layers[name] = ng.SegmentationLayer(source=url)
                else:
                    s.layers[name] = ng.ImageLayer(source=url)
        self.url: str = self.viewer.get_viewer_url()

    # -- state ------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connected_clients(self) -> int:
        """How many browser pages hold this view open now (their state stream)."""
        return self._pages.count(self.token)

    def wait_for_client(self, timeout: float = 30.0) -> bool:
        """Wait until a browser page has connected; ``False`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.connected_clients == 0:
            if time.monotonic() > deadline or self._closed:
                return False
            time.sleep(0.02)
        return True

    # -- screenshots ------------------------------------------------------------------------
    def screenshot(
        self,
        size: tuple[int, int] = (800, 600),
        *,
        timeout: float = 60.0,
        browser: str | None = None,
    ) -> bytes:
        """A PNG of the viewer, ``size = (width, height)`` pixels, once the visible data has
        loaded.

        It is taken by a browser already showing :attr:`url`; when none is connected, a
        headless Chromium is started on the URL (``browser``: its binary, default
        ``$CHROMIUM_PATH`` or ``chromium`` on PATH) and kept for later screenshots until
        :meth:`close`. Raises :class:`ScreenshotTimeoutError` when no picture arrives
        within ``timeout`` seconds (or the headless browser exits), instead of waiting
        forever as ``neuroglancer.Viewer.screenshot`` does.
        """
        width, height = _size(size)
        if self._closed:
            raise ViewError("this view is closed")
        with self._lock:
            own = self._ensure_browser((width, height), browser)
            return self._take(width, height, timeout, own)

    def _ensure_browser(self, size: tuple[int, int], binary: str | None) -> Any:
        own = self._browser
        if own is not None and not own.alive():
            own.stop()
            own = self._browser = None
        if own is None and self.connected_clients == 0:
            from lamina_view.browser import BrowserNotFoundError, HeadlessChromium

            window = (max(size[0], 1280), max(size[1], 1024))
            try:
                own = self._browser = HeadlessChromium(self.url, window_size=window, binary=binary)
            except BrowserNotFoundError as exc:
                raise ViewError(str(exc)) from None
        return own

    def _take(self, width: int, height: int, timeout: float, own: Any) -> bytes:
        viewer = self.viewer
        deadline = time.monotonic() + timeout
        prior = viewer.config_state.state
        with viewer.config_state.txn() as c:
            c.show_ui_controls = False
            c.show_panel_borders = False
            c.viewer_size = [width, height]
        try:
            for _attempt in range(5):  # a shot may come before the canvas took the new size
                png = self._one_shot(deadline, own, timeout)
                if _png_size(png) == (width, height):
                    return png
            raise ViewError(
                f"the browser returned screenshots of another size than {width}x{height}"
            )
        finally:
            viewer.config_state.set_state(prior)

    def _one_shot(self, deadline: float, own: Any, timeout: float) -> bytes:
        viewer = self.viewer
        done = threading.Event()
        result: list[Any] = []

        def handler(reply: Any) -> None:
            result.append(reply)
            done.set()

        before = set(getattr(viewer, "_screenshot_callbacks", {}))
        viewer.async_screenshot(handler)
        pending = set(getattr(viewer, "_screenshot_callbacks", {})) - before
        while not done.wait(0.1):
            died = own is not None and not own.alive() and self.connected_clients == 0
            if time.monotonic() > deadline or died or self._closed:
                self._cancel(pending)
                if died:
                    raise ScreenshotTimeoutError(
                        f"the headless browser exited (code {own.process.returncode}) before "
                        f"taking the screenshot; its last output:\n{own.log_tail()}"
                    )
                if self._closed:
                    raise ViewError("the view was closed while a screenshot was taken")
                tail = (
                    "" if own is None else f"; headless Chromium's last output:\n{own.log_tail()}"
                )
                raise ScreenshotTimeoutError(
                    f"no screenshot within {timeout:g} s ({self.connected_clients} browser "
                    f"page(s) connected to {self.url}){tail}"
                )
        return bytes(result[0].screenshot.image)

    def _cancel(self, pending: set[str]) -> None:
        callbacks = getattr(self.viewer, "_screenshot_callbacks", {})
        for key in pending:
            callbacks.pop(key, None)

        def clear(s: Any) -> None:
            s.screenshot = None

        self.viewer.config_state.retry_txn(clear, lock=True)

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop serving this view: its URL and data routes answer 404, its pages' state
        streams end and its headless browser (if any) is stopped. Other views in the
        process keep working. Closing twice is harmless."""
        from lamina_view.server import close_streams

        if self._closed:
            return
        self._closed = True
        self._chunks.remove(self.token)
        streams = self._pages.remove(self.token)
        viewers = getattr(self._server, "viewers", None)
        if viewers is not None:
            viewers.pop(self.viewer.token, None)
        close_streams(self._server, streams)
        with self._lock:
            if self._browser is not None:
                self._browser.stop()
                self._browser = None

    def __enter__(self) -> View:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.url
        return f"<lamina View of {', '.join(self.sources)}: {state}>"

    def _repr_html_(self) -> str:
        return f'<a href="{self.url}" target="_blank">lamina view: {", ".join(self.sources)}</a>'


def _size(size: Any) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise TypeError(f"size must be (width, height) in pixels; got {size!r}") from None
    if width < 1 or height < 1 or (width, height) != tuple(size):
        raise ValueError(f"size must be two positive whole numbers of pixels; got {size!r}")
    return width, height


def _png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return (int(image.width), int(image.height))


def _log_read_error(where: str, exc: BaseException) -> None:
    log.warning("lamina view: reading chunk %s failed: %s: %s", where, type(exc).__name__, exc)


def _configure_server(ng_server: Any, bind_address: str, port: int) -> None:
    running = ng_server.global_server
    if running is None:
        ng_server.set_server_bind_address(bind_address, port)
        return
    address = getattr(running, "_bind_address", bind_address)
    actual = getattr(running, "port", None)
    if address != bind_address or (port and port != actual):
        raise ViewError(
            f"neuroglancer's server already runs in this process on {address}:{actual}; "
            f"a view on {bind_address}:{port or '(any port)'} needs another process "
            f"(or view(..., bind_address={address!r}))"
        )


def view(
    layers: Any,
    *,
    bind_address: str = DEFAULT_BIND,
    port: int = 0,
    data_port: int | None = None,
) -> View:
    """Show ``layers`` (one volumetric layer, or ``{name: layer}``) in neuroglancer.

    Data is read through each layer on demand, one chunk per request, at the scale the
    viewer asks for; every scale in ``backend.resolutions`` is offered. A segmentation
    volume (``backend.volume_type``, else an unsigned 32/64-bit dtype) is a
    segmentation layer, anything else an image layer. A volumetric layer set is shown
    as its members.

    Two servers listen on ``bind_address`` (default 127.0.0.1: this machine only):
    neuroglancer's, for the viewer (``port``; default any free one), and lamina's chunk
    server, for the data (``data_port``; default ``port + 1`` when a port is given, else
    any free one). Both are shared by every view in the process: neuroglancer's server
    settings apply to the first view only.

    Args:
        layers: one volumetric layer (shown under the last part of its name, else
            ``"layer"``) or ``{name: layer}``; a layer set's members are shown as
            ``name/member``. An empty mapping is a ``ValueError``, a layer that is not
            volumetric a ``TypeError``, and names that are not distinct a ``ValueError``.
        bind_address: the address both servers listen on; default ``"127.0.0.1"``
            (this machine only). Once neuroglancer's server runs in this process on
            another address, a :class:`ViewError` (a ``RuntimeError``) says so.
        port: neuroglancer's port, for the viewer; default 0: any free one. A port
            other than the one neuroglancer's running server uses, or one that cannot be
            bound, is a :class:`ViewError`.
        data_port: the port of lamina's chunk server, for the data; default ``None``:
            ``port + 1`` when a port is given, else any free one. One that cannot be
            bound is a :class:`ViewError`.

    Returns:
        The :class:`View`: open ``view.url`` in a browser; ``view.close()`` (or a
        ``with`` block) stops serving its layers.
    """
    mapping = _as_mapping(layers)
    return View(
        mapping,
        bind_address=bind_address,
        port=int(port),
        data_port=None if data_port is None else int(data_port),
    )
