"""moto's server on 127.0.0.1 in a process of its own, for the benchmarks.

``moto_server(delay_s=0.0, service=None)`` yields the endpoint (``http://127.0.0.1:PORT``).
With a delay, a WSGI middleware sleeps that long before each request is handled, standing
for the latency of a cloud service (moto on loopback has almost none). The server is
threaded, so concurrent requests wait concurrently, as they would on the network.
Running it in its own process keeps its work off the benchmark's GIL.

``service="s3"`` (any moto service name) serves that one service's application
directly. By default moto's dispatcher finds the service of every request, and on the
way lists moto's package directory (some 180 ``stat`` calls) under a lock: about a third
of the server's CPU per S3 request (see bench/README.md, "S3 on moto"), CPU that shares
the benchmark's cores (real cloud storage does its work
elsewhere). The requests and their answers are the same.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SERVER_PROCESS_NAME", "moto_server"]

#: The name of the server's process (``multiprocessing.active_children()`` lists it).
SERVER_PROCESS_NAME = "moto-server"


def _delayed(app: Any, delay_s: float) -> Any:
    def middleware(environ: Any, start_response: Any) -> Any:
        time.sleep(delay_s)
        return app(environ, start_response)

    return middleware


def _serve(conn: Any, delay_s: float, service: str | None) -> None:
    import logging
    import threading

    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app: Any = (
        create_backend_app(service)
        if service is not None
        else DomainDispatcherApplication(create_backend_app)
    )
    if delay_s > 0:
        app = _delayed(app, delay_s)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    conn.send(("127.0.0.1", server.port))
    conn.recv()
    server.shutdown()


@contextmanager
def moto_server(delay_s: float = 0.0, service: str | None = None) -> Iterator[str]:
    """Yield the endpoint of a moto server in a spawned process; stop it afterwards.
    ``service``: serve only that moto service, without the per-request dispatch."""
    ctx = multiprocessing.get_context("spawn")
    conn, child = ctx.Pipe()
    process = ctx.Process(
        target=_serve, args=(child, delay_s, service), daemon=True, name=SERVER_PROCESS_NAME
    )
    process.start()
    host, port = conn.recv()
    try:
        yield f"http://{host}:{port}"
    finally:
        conn.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()
