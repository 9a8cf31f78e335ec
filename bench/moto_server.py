"""moto's server on 127.0.0.1 in a process of its own, for the benchmarks.

``moto_server(delay_s=0.0)`` yields the endpoint (``http://127.0.0.1:PORT``). With a
delay, a WSGI middleware sleeps that long before each request is handled, standing for
the latency of a cloud service (moto on loopback has almost none). The server is
threaded, so concurrent requests wait concurrently, as they would on the network.
Running it in its own process keeps its work off the benchmark's GIL.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["moto_server"]


def _delayed(app: Any, delay_s: float) -> Any:
    def middleware(environ: Any, start_response: Any) -> Any:
        time.sleep(delay_s)
        return app(environ, start_response)

    return middleware


def _serve(conn: Any, delay_s: float) -> None:
    import logging
    import threading

    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app: Any = DomainDispatcherApplication(create_backend_app)
    if delay_s > 0:
        app = _delayed(app, delay_s)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    conn.send(("127.0.0.1", server.port))
    conn.recv()
    server.shutdown()


@contextmanager
def moto_server(delay_s: float = 0.0) -> Iterator[str]:
    """Yield the endpoint of a moto server in a spawned process; stop it afterwards."""
    ctx = multiprocessing.get_context("spawn")
    conn, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(child, delay_s), daemon=True)
    process.start()
    host, port = conn.recv()
    try:
        yield f"http://{host}:{port}"
    finally:
        conn.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()
