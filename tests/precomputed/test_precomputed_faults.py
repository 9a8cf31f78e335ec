"""Storage faults on S3 surface as errors within a bounded time, never as zeros: a server
that answers the info but fails every chunk request (503, both engines), or never
answers a chunk request at all (the TensorStore engine, whose stall time-out and retries
are configurable)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from lamina_precomputed import build_cv_layer

from lamina import Vec3D
from lamina.testing.s3 import S3_TEST_ENV

RES = Vec3D(4.0, 4.0, 40.0)
INFO = {
    "type": "image",
    "data_type": "uint8",
    "num_channels": 1,
    "scales": [
        {
            "key": "4_4_40",
            "resolution": [4, 4, 40],
            "voxel_offset": [0, 0, 0],
            "size": [64, 64, 8],
            "chunk_sizes": [[32, 32, 8]],
            "encoding": "raw",
        }
    ],
}
#: Seconds a 503 may take to surface, retries included: TensorStore's own default
#: retries would take many minutes; cloud-files' (the CloudVolume engine) about 30 s.
BOUND = {"tensorstore": 15.0, "cloudvolume": 90.0}
#: The stalled-request test's settings, and the bound that follows from them.
STALL_ENV = {"TENSORSTORE_CURL_LOW_SPEED_TIME_SECONDS": "2", "LAMINA_STORAGE_RETRIES": "1"}
STALL_BOUND = 30.0

pytestmark = pytest.mark.explicit_engine


class _FaultyS3(BaseHTTPRequestHandler):
    """Serves ``info`` of one volume; every other request fails (``mode``)."""

    mode = "503"
    hang = threading.Event()

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.split("?")[0].endswith("/vol/info"):
            self._reply(200, json.dumps(INFO).encode())
            return
        if self.mode == "hang":
            self.hang.wait(STALL_BOUND * 2)  # never answers within the bound
            return
        self._reply(503, b"<Error><Code>SlowDown</Code><Message>busy</Message></Error>")

    do_HEAD = do_GET


@contextlib.contextmanager
def faulty_server(mode: str) -> Iterator[str]:
    """A faulty S3 endpoint on loopback (``mode``: ``"503"`` or ``"hang"``): its URL."""
    handler = type("Handler", (_FaultyS3,), {"mode": mode, "hang": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        handler.hang.set()
        server.shutdown()
        server.server_close()


def s3_environment(endpoint: str) -> dict[str, str]:
    return {**S3_TEST_ENV, "AWS_ENDPOINT_URL_S3": endpoint}


def new_bucket_path() -> str:
    """A new bucket each time: cloud-files keeps a connection pool per bucket."""
    return f"s3://faulty-{uuid.uuid4().hex[:12]}/vol"


@pytest.mark.parametrize("engine", ["tensorstore", "cloudvolume"])
def test_a_failing_chunk_request_is_an_error_within_a_bound(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with faulty_server("503") as endpoint:
        for key, value in s3_environment(endpoint).items():
            monkeypatch.setenv(key, value)
        layer = build_cv_layer(new_bucket_path(), engine=engine)
        assert layer.backend.engine == engine
        start = time.monotonic()
        with pytest.raises(OSError):  # noqa: PT011 - never zeros
            layer[RES, 0:32, 0:32, 0:8]
        took = time.monotonic() - start
    assert took < BOUND[engine], f"the fault took {took:.1f} s to surface"


_STALL_SCRIPT = """
import sys, time
from lamina import Vec3D
from lamina_precomputed import build_cv_layer

layer = build_cv_layer(sys.argv[1], engine="tensorstore")
start = time.monotonic()
try:
    layer[Vec3D(4, 4, 40), 0:32, 0:32, 0:8]
except OSError as exc:
    print(f"{time.monotonic() - start:.1f} OSError {exc}")
else:
    print("no error")
"""


def test_a_stalled_request_fails_within_the_configured_time() -> None:
    """TensorStore sets no request time-out: lamina's engine sets curl's low-speed limit
    (``$TENSORSTORE_CURL_LOW_SPEED_TIME_SECONDS``), read when its transport starts, so
    the test runs in a fresh interpreter."""
    with faulty_server("hang") as endpoint:
        env = {**os.environ, **s3_environment(endpoint), **STALL_ENV}
        out = subprocess.run(
            [sys.executable, "-c", _STALL_SCRIPT, new_bucket_path()],
            capture_output=True, text=True, env=env, timeout=STALL_BOUND * 3, check=True,
        )  # fmt: skip
    took, kind, message = out.stdout.strip().split(" ", 2)
    assert kind == "OSError", out.stdout
    assert float(took) < STALL_BOUND
    assert "Timeout" in message or "too slow" in message
