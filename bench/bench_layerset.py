"""Layer sets and range maps over precomputed volumes on S3 with cloud-like latency.

moto's S3 server runs on 127.0.0.1 in a process of its own, behind a WSGI middleware
that waits ``--delay`` seconds (default 0.05) before each request, standing for the
latency of cloud storage. Every volume is uint8, resolution (8, 8, 40), raw encoding,
128 x 128 x 16 chunks (``--chunk``), written once through lamina. Rows (best of ``--repeat`` rounds,
3x as many for the range-map rows, whose reads are short; the two sides of a row
interleaved in each round):

* **layer set, concurrent vs one after another**: a ``build_volumetric_layer_set`` of 4
  precomputed members (256 x 256 x 32 each) read at their full extent, with the
  default bounded thread pool vs ``max_workers=1`` (members read one after another).
  Target: concurrent >= 2x faster. Twice: members in ``--chunk`` chunks (8 GETs per
  member read), then members stored as one chunk each (1 GET per member read).
* **range map inside one source vs that source directly**: ``build_range_mapped_layer``
  over 4 sources tiling 512 x 512 x 32 (each a 256 x 256 x 32 quadrant in x, y); a read
  of one whole quadrant through the map vs the same read on the source's own layer.
  Target: the map takes <= 1.1x the direct read's time.
* **range map spanning 4 sources vs 4 direct reads**: the whole 512 x 512 x 32 through
  the map vs the 4 quadrants read directly one after another (reported, no target).

Each read's data is checked against what was written before anything is timed.

    python bench/bench_layerset.py [--repeat 5] [--delay 0.05] [--chunk 128,128,16]

Caveat: moto's server shares this machine's cores with the client (it serves S3 only,
without moto's per-request dispatch: see ``moto_server``). A member read is 8 GET
requests (128 x 128 x 16 chunks; no info or HEAD request). Each costs client CPU, most
of it in botocore (signing, endpoint rules, HTTP, parsing), and CPU in moto. The
client's share runs under one GIL, so 4 concurrent members (32 requests) are bound by it
rather than by the latency, which real S3 (whose work is elsewhere) would not change.
The benchmark prints what it measured of this: the CPU time of this process and of the
moto server per concurrent set read, and per GET request (recorded figures: see
bench/README.md, "S3 on moto").

Needs lamina-layerset, lamina-rangemap, lamina-precomputed and moto[server].
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from moto_server import SERVER_PROCESS_NAME, moto_server

RES = (8, 8, 40)
CHUNK = [128, 128, 16]  # --chunk changes it
MEMBER = (256, 256, 32)
#: one member's whole extent, the read of every row but the spanning one
WINDOW = (slice(0, MEMBER[0]), slice(0, MEMBER[1]), slice(0, MEMBER[2]))

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _box(start: tuple[int, int, int]) -> Any:
    from lamina import BBox3D

    stop = tuple(s + n for s, n in zip(start, MEMBER, strict=True))
    return BBox3D.from_coords(start, stop, RES)


def _volume(
    path: str, start: tuple[int, int, int], data: np.ndarray[Any, Any], chunk: list[int] = CHUNK
) -> Any:
    import lamina

    box = _box(start)
    layer = lamina.build_cv_layer(
        path,
        default_desired_resolution=RES,
        index_resolution=RES,
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=chunk,
        info_encoding="raw",
        info_scales=[RES],
        info_bbox=box,
    )
    layer[box] = data
    return layer


def _server_cpu_s() -> float:
    """CPU seconds used so far by the moto server's process."""
    import multiprocessing

    (server,) = [p for p in multiprocessing.active_children() if p.name == SERVER_PROCESS_NAME]
    fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _requests_per_read(chunk: list[int]) -> int:
    """GET requests of one member read: the chunks it touches."""
    return int(np.prod([-(-m // c) for m, c in zip(MEMBER, chunk, strict=True)]))


Row = tuple[str, float, float, str, str]


def _layer_set_row(root: str, chunk: list[int], repeat: int, label: str) -> tuple[Row, str]:
    """The layer-set row for 4 members of ``chunk``-sized chunks, and a line on the CPU
    time a concurrent set read costs this process and the moto server."""
    import lamina

    rng = np.random.default_rng(1)
    member_data = [rng.integers(0, 255, (1, *MEMBER), dtype="uint8") for _ in range(4)]
    members = {
        f"m{i}": _volume(f"{root}/m{i}", (0, 0, 0), d, chunk) for i, d in enumerate(member_data)
    }
    concurrent = lamina.build_volumetric_layer_set(
        members, default_desired_resolution=RES, index_resolution=RES
    )
    serial = lamina.build_volumetric_layer_set(
        members, default_desired_resolution=RES, index_resolution=RES, max_workers=1
    )
    for layer_set in (concurrent, serial):
        got = layer_set[WINDOW]
        for i, d in enumerate(member_data):
            np.testing.assert_array_equal(got[f"m{i}"], d)
    t_conc = t_serial = float("inf")
    client_cpu = server_cpu = 0.0
    for _ in range(repeat):
        cpu, server = time.process_time(), _server_cpu_s()
        t_conc = min(t_conc, timed(lambda: concurrent[WINDOW]))
        client_cpu += time.process_time() - cpu
        server_cpu += _server_cpu_s() - server
        t_serial = min(t_serial, timed(lambda: serial[WINDOW]))
    gets = 4 * _requests_per_read(chunk)
    cpu_line = (
        f"{label}: a concurrent set read is {gets} GETs; CPU {client_cpu / repeat:.3f} s in "
        f"this process ({client_cpu / repeat / gets * 1e3:.1f} ms per GET) and "
        f"{server_cpu / repeat:.3f} s in moto's server "
        f"({server_cpu / repeat / gets * 1e3:.1f} ms per GET), on {os.cpu_count()} cores; "
        f"2x needs the set read within {t_serial / 2:.3f} s"
    )
    row = (label, t_conc, t_serial, f"{t_serial / t_conc:.2f}x faster", ">= 2x")
    return row, cpu_line


def run(repeat: int, delay: float) -> tuple[list[Row], list[str]]:
    import boto3

    import lamina

    rng = np.random.default_rng(0)
    rows = []
    cpu_lines = []
    with moto_server(delay, service="s3") as endpoint:
        os.environ["AWS_ENDPOINT_URL_S3"] = endpoint
        bucket = f"bench-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        root = f"s3://{bucket}"

        # -- the layer set: 4 members over the same extent, in CHUNK and in one chunk ------
        chunk_text = "x".join(map(str, CHUNK))
        for chunk, label in (
            (CHUNK, f"layer set of 4, concurrent vs one after another ({chunk_text} chunks)"),
            (list(MEMBER), "the same, one GET per member (256x256x32 chunks)"),
        ):
            name = "x".join(map(str, chunk))
            row, cpu_line = _layer_set_row(f"{root}/set-{name}", chunk, repeat, label)
            rows.append(row)
            cpu_lines.append(cpu_line)

        # -- the range map: 4 quadrants ----------------------------------------------------
        quadrants = [(0, 0, 0), (256, 0, 0), (0, 256, 0), (256, 256, 0)]
        source_data = [rng.integers(0, 255, (1, *MEMBER), dtype="uint8") for _ in range(4)]
        sources = [
            _volume(f"{root}/map/q{i}", start, d)
            for i, (start, d) in enumerate(zip(quadrants, source_data, strict=True))
        ]
        ranges = [(_box(start), layer) for start, layer in zip(quadrants, sources, strict=True)]
        mapped = lamina.build_range_mapped_layer(
            ranges, default_desired_resolution=RES, index_resolution=RES
        )
        whole = np.zeros((1, 512, 512, 32), dtype="uint8")
        for (x, y, _), d in zip(quadrants, source_data, strict=True):
            whole[:, x : x + 256, y : y + 256] = d
        np.testing.assert_array_equal(mapped[0:512, 0:512, 0:32], whole)
        np.testing.assert_array_equal(mapped[WINDOW], source_data[0])

        # the range-map rows read ~0.08 s at a time and their target is tight: 3x the rounds
        t_map = t_direct = float("inf")
        for _ in range(3 * repeat):
            t_map = min(t_map, timed(lambda: mapped[WINDOW]))
            t_direct = min(t_direct, timed(lambda: sources[0][WINDOW]))
        rows.append(
            (
                "range map inside one source vs the source directly",
                t_map,
                t_direct,
                f"{t_map / t_direct:.2f}x the time",
                "<= 1.1x",
            )
        )

        def four_direct() -> None:
            for (x, y, _), layer in zip(quadrants, sources, strict=True):
                layer[x : x + 256, y : y + 256, 0:32]

        t_map4 = t_direct4 = float("inf")
        for _ in range(3 * repeat):
            t_map4 = min(t_map4, timed(lambda: mapped[0:512, 0:512, 0:32]))
            t_direct4 = min(t_direct4, timed(four_direct))
        rows.append(
            (
                "range map spanning 4 sources vs 4 direct reads",
                t_map4,
                t_direct4,
                f"{t_map4 / t_direct4:.2f}x the time",
                "(reported)",
            )
        )
    return rows, cpu_lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best counts")
    parser.add_argument(
        "--delay", type=float, default=0.05, help="seconds of latency per S3 request"
    )
    parser.add_argument(
        "--chunk",
        default="128,128,16",
        help="chunk size x,y,z of every volume (256,256,32: one request per member read)",
    )
    args = parser.parse_args()
    CHUNK[:] = [int(v) for v in args.chunk.split(",")]
    rows, cpu_lines = run(args.repeat, args.delay)
    print(
        f"\nprecomputed on S3 (moto server, {args.delay * 1000:.0f} ms per request), "
        f"uint8, {CHUNK[0]}x{CHUNK[1]}x{CHUNK[2]} chunks; best of {args.repeat} "
        f"(range map rows: of {3 * args.repeat})\n"
    )
    header = ("row", "lamina s", "baseline s", "ratio", "target")
    table = [header] + [(r[0], f"{r[1]:.3f}", f"{r[2]:.3f}", r[3], r[4]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for line in cpu_lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
