"""lamina-view: ``lamina.view(layer)`` next to a plain neuroglancer viewer over
``precomputed://`` files served by a loopback CORS HTTP server, in one run.

Run: ``python bench/bench_view.py [--repeat N] [--quick] [--storage-chunks]`` with
``lamina-view`` and ``lamina-precomputed`` installed and Chromium on PATH (or
``$CHROMIUM_PATH``), e.g. in the tox env ``view``:
``.tox/view/bin/python bench/bench_view.py``. Prints one table;
asserts nothing about time (it fails only when a screenshot shows no data or a served
chunk differs from the layer's read).

The volume: 1024 x 1024 x 128 uint8 at (8, 8, 40) nm, 128 x 128 x 16 chunks, raw
encoding, uncompressed, written by CloudVolume to a fresh temporary directory (a smooth
pattern plus noise, so a picture of it is never uniform). ``--quick``: 512 x 512 x 32.
The view serves it in 256 x 256 x 16 chunks (2 x 2 x 1 storage chunks, see
``lamina_view.source.served_chunk_size``); ``--storage-chunks`` serves the 128 x 128 x 16
storage chunks themselves, for comparison.

(a) **Time to the first picture**: the wall time from ``lamina.view(layer)`` to the first
800 x 600 ``screenshot()`` that shows the data (neuroglancer answers a screenshot request
only once every visible chunk has loaded; the PNG's xy panel is then checked to be
non-uniform), with a headless Chromium started on the URL when the call returns (the
flags of ``lamina_view.browser``; ``view.wait_for_client`` before the screenshot so that
the view uses that browser and starts none itself). Against: the same for a plain
``neuroglancer.Viewer`` whose image layer's source is ``precomputed://http://127.0.0.1:PORT/vol``,
served by Python's ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive) with an
``Access-Control-Allow-Origin: *`` header, the screenshot taken by
``viewer.screenshot(size=[800, 600])`` (guarded by a thread and a timeout). Imports,
the layer's construction, neuroglancer's server start and the file server's start are
not timed (one untimed warm-up of each side first). Rounds alternate the two sides;
the median and the best round are shown. Target: lamina <= 1.5x the plain viewer.

(b) **Chunk serving rate**: the chunk requests the browser made for lamina's last
screenshot (its view's record, ``view.sources[name].served``), fetched again one at a
time over one keep-alive connection to the view's server, in decoded voxel bytes per
second (raw chunks: the bytes are the voxels), against one-chunk ``layer[...]`` reads of
the same boxes one at a time (a fresh ``build_cv_layer(path)``). The fetches run in
another process, as a browser's do (a lean client: see ``fetch_all``). Best of
max(5, ``--repeat``) interleaved rounds after a warm-up round in which every served chunk
is checked equal to the layer's read. Target: the view's server >= 0.8x the layer reads.
The same requests are also fetched as a browser makes them: over 6 keep-alive connections
at once (Chromium's limit per HTTP/1.1 host; neuroglancer keeps more chunk requests than
that in flight), the served rate a viewer sees.
For reference: the same chunks as files from the static server; and the same layer reads
with a 0.5 ms pause before each (timed without the pauses), which is how a server sees
its reads: between requests the thread waits, and a one-chunk CloudVolume read that does
not follow another one at once runs slower (caches, other processes on a shared machine);
and the view's server answering the same requests with the bytes fetched before, no
read at all: the rate of its HTTP alone, the ceiling of the view's own.
"""

from __future__ import annotations

import argparse
import http.server
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from volumes import new_raw_volume, versions

RES = (8, 8, 40)
VERSIONED = ("numpy", "cloud-volume", "neuroglancer", "tornado", "lamina", "lamina-view")
CHUNK = (128, 128, 16)
FULL_SHAPE = (1024, 1024, 128)
QUICK_SHAPE = (512, 512, 32)
SHOT = (800, 600)
TIMEOUT = 120.0


# --------------------------------------------------------------------------- the volume


def write_volume(path: Path, shape: tuple[int, int, int]) -> None:
    """The benchmark volume, written by raw CloudVolume (raw, uncompressed)."""
    vol = new_raw_volume(path, shape, RES, CHUNK)
    rng = np.random.default_rng(0)
    x = np.arange(shape[0])[:, None]
    y = np.arange(shape[1])[None, :]
    for z0 in range(0, shape[2], CHUNK[2]):
        plane = 128 + 80 * np.sin(x / 41.0) * np.cos(y / 29.0)
        block = np.repeat(plane[:, :, None], CHUNK[2], axis=2)
        block += rng.integers(0, 30, block.shape)
        vol[:, :, z0 : z0 + CHUNK[2]] = np.clip(block, 0, 255).astype(np.uint8)[..., None]


class _CORSHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # header and body are separate writes

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def static_server(root: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    def handler(*args: Any, **kwargs: Any) -> _CORSHandler:
        return _CORSHandler(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


# --------------------------------------------------------------------------- pictures


def check_picture(png: bytes, who: str) -> None:
    """The xy panel (top left of neuroglancer's 4-panel layout) shows the data."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        if image.size != SHOT:
            raise AssertionError(f"{who}: screenshot is {image.size}, not {SHOT}")
        panel = np.asarray(image.convert("L"))[: SHOT[1] // 2, : SHOT[0] // 2]
    if panel.std() < 10:
        raise AssertionError(f"{who}: the screenshot's xy panel is uniform (no data shown)")


def guarded_screenshot(viewer: Any, timeout: float) -> bytes:
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(viewer.screenshot(size=list(SHOT))), daemon=True
    )
    thread.start()
    thread.join(timeout)
    if not result:
        raise TimeoutError(f"no screenshot from the plain viewer within {timeout} s")
    return bytes(result[0].screenshot.image)


def plain_round(url: str) -> float:
    import neuroglancer
    from lamina_view.browser import HeadlessChromium

    start = time.perf_counter()
    viewer = neuroglancer.Viewer()
    with viewer.txn() as s:
        s.layers["vol"] = neuroglancer.ImageLayer(source=f"precomputed://{url}")
    browser = HeadlessChromium(viewer.get_viewer_url())
    try:
        png = guarded_screenshot(viewer, TIMEOUT)
        elapsed = time.perf_counter() - start
    finally:
        browser.stop()
    check_picture(png, "plain neuroglancer")
    return elapsed


def lamina_round(path: Path, keep: list[Any]) -> float:
    from lamina_view.browser import HeadlessChromium

    import lamina

    layer = lamina.build_cv_layer(str(path))  # construction not timed
    start = time.perf_counter()
    view = lamina.view(layer)
    browser = HeadlessChromium(view.url)
    try:
        if not view.wait_for_client(TIMEOUT):
            raise TimeoutError(f"the browser did not connect: {browser.log_tail()}")
        png = view.screenshot(SHOT, timeout=TIMEOUT)
        elapsed = time.perf_counter() - start
    finally:
        browser.stop()
    check_picture(png, "lamina.view")
    for old in keep:
        old.close()
    keep[:] = [view]
    return elapsed


# --------------------------------------------------------------------------- chunk serving


def fetch_all(host: str, port: int, paths: Sequence[str]) -> tuple[float, int, list[bytearray]]:
    """GET each path in turn over one keep-alive connection: (seconds, bytes, bodies).

    A lean HTTP/1.1 client (one ``sendall`` per request, the body read with
    ``recv_into`` into a buffer of its ``Content-Length``), so that the time measured is
    the server's, not the client's."""
    sock = socket.create_connection((host, port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bodies = []
    total = 0
    start = time.perf_counter()
    for p in paths:
        sock.sendall(f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            part = sock.recv(65536)
            if not part:
                raise ConnectionError(f"GET {p}: the server closed the connection")
            head += part
        header, _, rest = head.partition(b"\r\n\r\n")
        status = header.split(b" ", 2)[1]
        length = -1
        for line in header.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        if status != b"200" or length < 0:
            raise AssertionError(f"GET {p}: {header.decode(errors='replace')}")
        body = bytearray(length)
        view = memoryview(body)
        got = len(rest)
        view[:got] = rest
        while got < length:
            n = sock.recv_into(view[got:])
            if not n:
                raise ConnectionError(f"GET {p}: the body ended early")
            got += n
        total += length
        bodies.append(body)
    elapsed = time.perf_counter() - start
    sock.close()
    return elapsed, total, bodies


#: How many connections a browser opens to one HTTP/1.1 host (Chromium's limit), and so
#: how many chunk requests neuroglancer has in flight at once against one server.
BROWSER_CONNECTIONS = 6


def fetch_concurrently(
    host: str, port: int, paths: Sequence[str], connections: int
) -> tuple[float, int, list[bytearray]]:
    """GET the paths over ``connections`` keep-alive connections at once, as a browser
    does (each connection takes every ``connections``-th path, in order): (seconds,
    bytes, bodies in the paths' order)."""
    if connections == 1:
        return fetch_all(host, port, paths)
    shares = [list(paths[i::connections]) for i in range(connections)]
    results: list[tuple[float, int, list[bytearray]]] = [(0.0, 0, [])] * connections

    def run(i: int) -> None:
        results[i] = fetch_all(host, port, shares[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    bodies: list[bytearray] = [bytearray()] * len(paths)
    for i, (_, _, got) in enumerate(results):
        bodies[i::connections] = got
    return elapsed, sum(total for _, total, _ in results), bodies


def fetch_child(
    host: str, port: int, paths: Sequence[str], rounds: int, connections: int = 1
) -> list[float]:
    """``rounds`` timed runs of :func:`fetch_concurrently` in another process (as a
    browser is: no contention for this interpreter's lock with the server's threads):
    seconds each."""
    out = subprocess.run(
        [sys.executable, __file__, "--fetch-child", host, str(port), str(rounds), str(connections)],
        input=json.dumps(list(paths)),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    return [float(v) for v in json.loads(out)]


#: How many times a native client fetches the list of chunk requests in one run, so that
#: its own start (a few ms) weighs little.
CURL_PASSES = 10


def fetch_curl(host: str, port: int, paths: Sequence[str], connections: int) -> float:
    """Seconds for curl, a native HTTP client as a browser is, to GET the paths
    :data:`CURL_PASSES` times over ``connections`` keep-alive connections (``--parallel``),
    bodies discarded; curl's own start (timed on one empty request) taken off."""
    urls = [f"http://{host}:{port}{p}" for p in paths] * CURL_PASSES
    args = ["curl", "-s", "--fail", "--parallel", "--parallel-max", str(connections)]
    for url in urls:
        args += ["-o", "/dev/null", url]
    start = time.perf_counter()
    subprocess.run(args, check=True)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://{host}:{port}/"], check=False)
    return max(elapsed - (time.perf_counter() - start), 1e-9) / CURL_PASSES


def read_all(layer: Any, boxes: Sequence[Any], pause: float = 0.0) -> tuple[float, int, list[Any]]:
    """One-chunk reads one after another: (seconds, bytes, arrays); with ``pause``, a sleep
    before each read, not timed."""
    arrays = []
    total = 0
    elapsed = 0.0
    for idx in boxes:
        if pause:
            time.sleep(pause)
        start = time.perf_counter()
        data = layer[idx]
        elapsed += time.perf_counter() - start
        total += data.nbytes
        arrays.append(data)
    return elapsed, total, arrays


class _ReadySource:
    """A source for the view's chunk server that answers each chunk request with the
    bytes fetched before: the server's HTTP cost with no read, the floor of its rate."""

    def __init__(self, names: Sequence[str], bodies: Sequence[bytearray]) -> None:
        self._bodies = {name: memoryview(body) for name, body in zip(names, bodies, strict=True)}

    def parse(self, scale_key: str, chunk_name: str) -> tuple[str, str]:
        return scale_key, chunk_name

    def read_chunk(self, scale_key: str, chunk_name: str) -> memoryview:
        return self._bodies[f"{scale_key}/{chunk_name}"]


def serving_rows(view: Any, path: Path, static_port: int, repeat: int) -> list[tuple[str, str]]:
    import lamina
    from lamina import VolumetricIndex

    (name, source), *_ = view.sources.items()
    served = list(source.served)
    if not served:
        raise AssertionError("the view served no chunk")
    base = view.viewer.state.layers[name].source[0].url.removeprefix("precomputed://")
    host_port, _, prefix = base.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    names = [
        f"{c.scale_key}/{c.start[0]}-{c.stop[0]}_{c.start[1]}-{c.stop[1]}_{c.start[2]}-{c.stop[2]}"
        for c in served
    ]
    view_paths = [f"/{prefix}/{n}" for n in names]
    # The same voxels as storage chunks: what the baseline reads one chunk at a time, and
    # the files the static server has.
    storage: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    for c in served:
        scale = source.scales[c.scale_key]
        step = scale.storage_chunk_size
        for x in range(c.start[0], c.stop[0], step[0]):
            for y in range(c.start[1], c.stop[1], step[1]):
                for z in range(c.start[2], c.stop[2], step[2]):
                    stop = tuple(
                        min(v + s, e) for v, s, e in zip((x, y, z), step, c.stop, strict=True)
                    )
                    storage.append((c.scale_key, (x, y, z), stop))
    file_paths = [f"/vol/{key}/{a[0]}-{b[0]}_{a[1]}-{b[1]}_{a[2]}-{b[2]}" for key, a, b in storage]
    boxes = [
        VolumetricIndex.from_coords(a, b, source.scales[key].resolution) for key, a, b in storage
    ]
    served_boxes = [
        VolumetricIndex.from_coords(c.start, c.stop, source.scales[c.scale_key].resolution)
        for c in served
    ]
    layer = lamina.build_cv_layer(str(path))
    # Warm-up round, checked: every served chunk is the layer's read, in raw order.
    _, _, bodies = fetch_all(host, int(port), view_paths)
    _, _, arrays = read_all(layer, served_boxes)
    for body, array in zip(bodies, arrays, strict=True):
        if body != array.transpose(1, 2, 3, 0).tobytes(order="F"):
            raise AssertionError("a served chunk differs from the layer's read")
    _, _, at_once = fetch_concurrently(host, int(port), view_paths, BROWSER_CONNECTIONS)
    if at_once != bodies:
        raise AssertionError("chunks fetched over several connections differ from one by one")
    fetch_all("127.0.0.1", static_port, file_paths)
    from lamina_view.dataserver import chunk_server

    chunk_server(host).add("ready", {"vol": _ReadySource(names, bodies)})  # type: ignore[dict-item]
    ready_paths = [f"/ready/vol/{n}" for n in names]
    nbytes = sum(len(body) for body in bodies)
    best = dict.fromkeys(("layer", "view", "browser", "curl", "static", "paced", "ready"), 0.0)
    native = shutil.which("curl") is not None
    for _ in range(max(5, repeat)):
        seconds, _, _ = read_all(layer, boxes)
        best["layer"] = max(best["layer"], nbytes / seconds)
        seconds, _, _ = read_all(layer, boxes, pause=0.0005)
        best["paced"] = max(best["paced"], nbytes / seconds)
        for key, port_, paths, connections in (
            ("view", int(port), view_paths, 1),
            ("browser", int(port), view_paths, BROWSER_CONNECTIONS),
            ("static", static_port, file_paths, 1),
            ("ready", int(port), ready_paths, 1),
        ):
            at = host if key != "static" else "127.0.0.1"
            for seconds in fetch_child(at, port_, paths, 1, connections):
                best[key] = max(best[key], nbytes / seconds)
        if native:
            seconds = fetch_curl(host, int(port), view_paths, BROWSER_CONNECTIONS)
            best["curl"] = max(best["curl"], nbytes / seconds)
    mb = 1e6
    per = nbytes / len(served)
    return [
        (
            f"chunk requests of the last screenshot: {len(served)} chunks, "
            f"{nbytes / mb:.1f} MB ({per / 1024:.0f} KiB each, {len(boxes)} storage chunks), "
            f"scales {sorted({c.scale_key for c in served})}",
            "",
        ),
        ("  one-chunk layer[...] reads, one at a time", f"{best['layer'] / mb:8.1f} MB/s"),
        (
            "  lamina view's server, fetched again one at a time",
            f"{best['view'] / mb:8.1f} MB/s  {best['view'] / best['layer']:5.2f}x"
            "  (target >= 0.8x)",
        ),
        (
            f"  lamina view's server, fetched as a browser does ({BROWSER_CONNECTIONS} "
            "connections at once)",
            f"{best['browser'] / mb:8.1f} MB/s  {best['browser'] / best['layer']:5.2f}x"
            "  (target >= 0.8x)",
        ),
        (
            f"  lamina view's server, fetched by curl ({BROWSER_CONNECTIONS} connections)",
            f"{best['curl'] / mb:8.1f} MB/s  {best['curl'] / best['layer']:5.2f}x  (target >= 0.8x)"
            if native
            else "curl is not installed",
        ),
        (
            "  (reference) the same chunk files from the static server",
            f"{best['static'] / mb:8.1f} MB/s",
        ),
        (
            "  (reference) the layer reads, each after a 0.5 ms pause",
            f"{best['paced'] / mb:8.1f} MB/s  (the view: {best['view'] / best['paced']:4.2f}x)",
        ),
        (
            "  (reference) the view's server sending those bytes with no read",
            f"{best['ready'] / mb:8.1f} MB/s  (the ceiling of the view's rate:"
            f" {best['ready'] / best['layer']:4.2f}x the layer reads)",
        ),
    ]


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per side (3)")
    parser.add_argument("--quick", action="store_true", help="512 x 512 x 32, for a smoke run")
    parser.add_argument("--dir", help="where to put the volume (default: a new temp dir)")
    parser.add_argument(
        "--storage-chunks",
        action="store_true",
        help="serve chunks as stored (128x128x16), not grown to 1 MiB blocks (for comparison)",
    )
    parser.add_argument("--fetch-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fetch_child:
        host, port, rounds, connections = args.fetch_child
        paths = json.loads(sys.stdin.read())
        times = [
            fetch_concurrently(host, int(port), paths, int(connections))[0]
            for _ in range(int(rounds))
        ]
        print(json.dumps(times))
        return
    os.environ.setdefault("CLOUD_VOLUME_CACHE_DIR", tempfile.mkdtemp(prefix="bench-view-cv-"))

    import neuroglancer
    from lamina_view.browser import find_chromium

    import lamina  # noqa: F401  (imports are not timed)

    if args.storage_chunks:
        from lamina_view import source

        source.MIN_CHUNK_BYTES = 1
    shape = QUICK_SHAPE if args.quick else FULL_SHAPE
    root = Path(tempfile.mkdtemp(prefix="bench-view-", dir=args.dir))
    keep: list[Any] = []
    try:
        print(versions(VERSIONED))
        print(f"chromium: {find_chromium()}; {os.cpu_count()} cores")
        write_volume(root / "vol", shape)
        print(
            f"volume {'x'.join(map(str, shape))} uint8 at {RES} nm, chunks "
            f"{'x'.join(map(str, CHUNK))}, raw, uncompressed (CloudVolume), in {root}"
        )
        server, port = static_server(root)
        url = f"http://127.0.0.1:{port}/vol"
        neuroglancer.set_server_bind_address("127.0.0.1")
        plain_round(url)  # warm-up: neuroglancer's server starts, files are read once
        lamina_round(root / "vol", keep)
        plain: list[float] = []
        ours: list[float] = []
        for _ in range(args.repeat):
            plain.append(plain_round(url))
            ours.append(lamina_round(root / "vol", keep))
        rows = [
            (
                f"(a) time to the first {SHOT[0]}x{SHOT[1]} screenshot showing the data "
                f"(median / best of {args.repeat})",
                "",
            ),
            (
                "  plain neuroglancer.Viewer, precomputed:// over loopback CORS HTTP",
                f"{statistics.median(plain):6.2f} s / {min(plain):5.2f} s",
            ),
            (
                "  lamina.view(layer)",
                f"{statistics.median(ours):6.2f} s / {min(ours):5.2f} s  "
                f"{statistics.median(ours) / statistics.median(plain):5.2f}x  (target <= 1.5x)",
            ),
            ("(b) chunk serving rate, decoded voxel bytes per second (best of 5+ rounds)", ""),
        ]
        rows += serving_rows(keep[0], root / "vol", port, args.repeat)
        width = max(len(label) for label, value in rows if value) + 2
        print()
        for label, value in rows:
            print(f"{label:{width}s}{value}")
        server.shutdown()
    finally:
        for view in keep:
            view.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
