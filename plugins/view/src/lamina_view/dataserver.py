"""The chunk server: every view's layers as precomputed sources, over plain HTTP/1.1.

One server per process and address (started with the first view, shared by the views
after it), next to neuroglancer's own server. It is deliberately small: a thread per
connection (a browser opens up to six per host and keeps them alive), the request line
and headers read with a buffered reader, and each answer sent with one ``sendmsg`` of
header and payload (no copy of the payload, no Nagle delay between the two). Chunks are
read in the connection's thread, so a slow (remote) backend is read up to six chunks at
a time and never holds up neuroglancer's event loop. This costs far less per request than
serving from neuroglancer's tornado server, whose per-request overhead is about that of
a one-chunk read from local disk (see ``bench/bench_view.py``).

Routes (``TOKEN`` is the view's random token, so a URL is the key to its data):

* ``GET /TOKEN/LAYER/info``: the precomputed ``info`` (JSON);
* ``GET /TOKEN/LAYER/SCALE/x0-x1_y0-y1_z0-z1``: one raw chunk;
* ``OPTIONS``: a CORS preflight answer. Every answer carries
  ``Access-Control-Allow-Origin: *``: the viewer's page is on neuroglancer's port.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lamina_view.source import LayerSource

__all__ = ["ChunkServer", "chunk_server"]

log = logging.getLogger("lamina_view")

_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}
_MAX_LINE = 8192
_IDLE_TIMEOUT = 300.0  # s an idle keep-alive connection stays open


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(_IDLE_TIMEOUT)
        reader = sock.makefile("rb", buffering=65536)
        try:
            while self._one(sock, reader):
                pass
        except (OSError, ValueError):
            pass  # the peer went away, timed out or sent garbage
        finally:
            reader.close()

    def _one(self, sock: socket.socket, reader: Any) -> bool:
        """Answer one request; ``False`` when the connection is to be closed."""
        line: bytes = reader.readline(_MAX_LINE + 1)
        if not line:
            return False
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or len(line) > _MAX_LINE:
            self._send(sock, 400, b"bad request line\n", close=True)
            return False
        method, target, version = parts
        keep_alive = version == "HTTP/1.1"
        length = 0
        while True:
            header: bytes = reader.readline(_MAX_LINE + 1)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "connection":
                token = value.strip().lower()
                keep_alive = token == "keep-alive" or (keep_alive and token != "close")
            elif name == "content-length":
                length = int(value.strip() or 0)
        if length:
            reader.read(length)  # a body we do not use
        if method == "OPTIONS":
            self._send(sock, 204, b"", close=not keep_alive)
            return keep_alive
        if method not in ("GET", "HEAD"):
            self._send(sock, 405, b"only GET\n", close=not keep_alive)
            return keep_alive
        status, body, content_type = self.server.owner.answer(target.split("?", 1)[0])
        self._send(
            sock,
            status,
            body,
            content_type=content_type,
            close=not keep_alive,
            head_only=method == "HEAD",
        )
        return keep_alive

    @staticmethod
    def _send(
        sock: socket.socket,
        status: int,
        body: bytes | memoryview,
        content_type: str = "text/plain",
        close: bool = False,
        head_only: bool = False,
    ) -> None:
        header = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Access-Control-Allow-Origin: *\r\n"
            "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"
            "Access-Control-Allow-Headers: *\r\n"
            "Cache-Control: no-store\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        ).encode("latin-1")
        if head_only or not body:
            sock.sendall(header)
            return
        sent = sock.sendmsg([header, body])
        total = len(header) + len(body)
        if sent < total:  # the rest, without joining header and payload
            if sent < len(header):
                sock.sendall(header[sent:])
                sent = len(header)
            sock.sendall(memoryview(body)[sent - len(header) :])


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    owner: ChunkServer


class ChunkServer:
    """Serves the sources of every registered view (see the module docstring)."""

    def __init__(self, bind_address: str, port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
        _TCPServer.address_family = family
        self._tcp = _TCPServer((bind_address, port), _Handler)
        self._tcp.owner = self
        self.bind_address = bind_address
        self.port: int = int(self._tcp.server_address[1])
        self._views: dict[str, dict[str, LayerSource]] = {}
        self._lock = threading.Lock()
        self.on_error: Callable[[str, BaseException], None] | None = None
        self._thread = threading.Thread(
            target=self._tcp.serve_forever, name="lamina-view-chunks", daemon=True
        )
        self._thread.start()

    def add(self, token: str, sources: dict[str, LayerSource]) -> None:
        with self._lock:
            self._views[token] = sources

    def remove(self, token: str) -> None:
        with self._lock:
            self._views.pop(token, None)

    def answer(self, target: str) -> tuple[int, bytes | memoryview, str]:
        """``(status, body, content type)`` for a request path."""
        parts = target.lstrip("/").split("/", 3)
        if len(parts) < 3:
            return 404, b"not found\n", "text/plain"
        with self._lock:
            sources = self._views.get(parts[0])
        source = None if sources is None else sources.get(parts[1])
        if source is None:
            return 404, b"not found\n", "text/plain"
        if len(parts) == 3:
            if parts[2] != "info":
                return 404, b"not found\n", "text/plain"
            return 200, json.dumps(source.info()).encode(), "application/json"
        try:
            scale, idx = source.parse(parts[2], parts[3])
        except (KeyError, ValueError):
            return 404, b"not a chunk of this volume\n", "text/plain"
        try:
            return 200, source.read_chunk(scale, idx), "application/octet-stream"
        except Exception as exc:
            if self.on_error is not None:
                self.on_error(f"{parts[1]}/{parts[2]}/{parts[3]}", exc)
            return 500, f"{type(exc).__name__}: {exc}\n".encode(), "text/plain"

    def stop(self) -> None:
        self._tcp.shutdown()
        self._tcp.server_close()


_servers: dict[tuple[str, int], ChunkServer] = {}
_servers_lock = threading.Lock()


def chunk_server(bind_address: str, port: int = 0) -> ChunkServer:
    """The process's chunk server on ``bind_address`` (started on first use; ``port`` 0:
    any free port, and any running server on that address is reused)."""
    with _servers_lock:
        for (address, wanted), server in _servers.items():
            if address == bind_address and (port in (0, wanted, server.port)):
                return server
        server = ChunkServer(bind_address, port)
        _servers[(bind_address, port)] = server
        return server
