"""lamina-dynamodb against raw boto3, on moto, in one run.

The same rows are written and read back through a lamina DynamoDB layer and through
raw boto3 (``Table.batch_writer()`` for the writes, ``batch_get_item`` with 100 keys
per call for the reads, both on boto3's resource API, which converts values to and
from Python as the layer does). Each side gets a fresh table. The table printed gives
seconds (best of ``--repeat``), rows per second, and the layer's throughput as a
ratio of raw boto3's (``raw seconds / layer seconds``; the target is >= 0.9).

Modes (``--mode``):

* ``server`` (default, the realistic one): moto's ``ThreadedMotoServer`` on
  127.0.0.1 in a process of its own; every request is HTTP over loopback.
* ``inprocess``: moto's ``mock_aws`` in this process (no HTTP; the service's work
  competes with the client for this process's GIL).
* ``both``.

``--profile`` adds a cProfile breakdown of the layer's write and read (where the time
goes: the plugin's encoding, botocore, waiting on the server).

Run::

    python bench/bench_dynamodb.py            # 10,000 rows, server mode
    python bench/bench_dynamodb.py --quick    # 2,000 rows, one repeat
    python bench/bench_dynamodb.py --rows 5000 --mode both --profile

Needs ``lamina-dynamodb`` and ``moto[server]``. Speed is measured here, never
asserted in tests.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto_server import moto_server

REGION = "us-east-1"
KEY = "~key"  # lamina_dynamodb.KEY_ATTRIBUTE: the raw table uses the same schema

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent/bench-aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/bench-aws-credentials",
    }
)
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
    os.environ.pop(_name, None)


# -- moto -----------------------------------------------------------------------------------
@contextmanager
def moto(mode: str) -> Iterator[str | None]:
    """Yield the endpoint of moto in ``mode`` (``None`` in process)."""
    if mode == "inprocess":
        from moto import mock_aws

        with mock_aws():
            yield None
        return
    with moto_server() as endpoint:
        yield endpoint


def _new_table(endpoint: str | None) -> str:
    import boto3

    name = f"bench-{uuid.uuid4().hex[:10]}"
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


# -- the rows --------------------------------------------------------------------------------
def make_rows(n: int) -> tuple[list[str], list[dict[str, Any]]]:
    """``n`` rows of an int, a 48-character str and 64 bytes (types raw boto3 stores)."""
    rng = __import__("random").Random(5)
    keys = [f"row-{i:07d}" for i in range(n)]
    rows = [
        {
            "n": i,
            "text": f"row {i:07d} " + "".join(rng.choices("abcdefghij", k=36)),
            "blob": rng.randbytes(64),
        }
        for i in range(n)
    ]
    return keys, rows


# -- the two sides ----------------------------------------------------------------------------
def raw_write(
    endpoint: str | None, table: str, keys: list[str], rows: list[dict[str, Any]]
) -> None:
    import boto3

    resource = boto3.resource("dynamodb", region_name=REGION, endpoint_url=endpoint)
    with resource.Table(table).batch_writer() as writer:
        for key, row in zip(keys, rows, strict=True):
            writer.put_item(Item={KEY: key, **row})


def raw_read(endpoint: str | None, table: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    import boto3

    resource = boto3.resource("dynamodb", region_name=REGION, endpoint_url=endpoint)
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {
            table: {"Keys": [{KEY: k} for k in keys[start : start + 100]], "ConsistentRead": True}
        }
        while request:
            response = resource.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(table, []):
                out[item.pop(KEY)] = item
            request = response.get("UnprocessedKeys") or {}
    return out


def layer_for(endpoint: str | None, table: str) -> Any:
    from lamina_dynamodb import build_dynamodb_layer

    return build_dynamodb_layer(table, region=REGION, endpoint_url=endpoint)


def layer_write(layer: Any, keys: list[str], rows: list[dict[str, Any]]) -> None:
    layer[keys] = rows  # whole rows: BatchWriteItem, 25 per request


def layer_read(layer: Any, keys: list[str]) -> list[dict[str, Any]]:
    from lamina import DBIndex

    # Whole rows, like raw boto3's batch_get_item without a projection: the layer's
    # standard index form (``layer[keys]`` shapes rows that have a "value" column only).
    # BatchGetItem, 100 keys per request.
    result: list[dict[str, Any]] = layer[DBIndex(dict.fromkeys(keys, ("value",)))]
    return result


def _check(
    raw_rows: dict[str, dict[str, Any]],
    layer_rows: list[dict[str, Any]],
    keys: list[str],
    rows: list[dict[str, Any]],
) -> None:
    assert layer_rows == rows, "the layer read back other rows than it wrote"
    assert len(raw_rows) == len(keys)
    first = raw_rows[keys[0]]
    assert int(first["n"]) == rows[0]["n"]
    assert bytes(first["blob"].value) == rows[0]["blob"]


def timed(func: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func(*args)
    return time.perf_counter() - start, result


# -- one mode -----------------------------------------------------------------------------------
#: The rows of the table: (label, raw side, layer side).
_ROWS = (
    ("write", "raw write", "layer write"),
    ("read", "raw read", "layer read"),
    # Diagnostics of the read: both sides on the same stored items (the layer stores
    # the same attributes as raw boto3, so these agree with the row above within noise).
    ("read, raw's table", "raw read", "layer read of raw's table"),
    ("read, layer's table", "raw read of layer's table", "layer read"),
)


def _keep_best(best: dict[str, float], name: str, seconds: float) -> None:
    best[name] = min(best.get(name, seconds), seconds)


def run_mode(
    mode: str, n: int, repeat: int, profile: bool, diagnostics: bool
) -> list[tuple[str, ...]]:
    keys, rows = make_rows(n)
    best: dict[str, float] = {}
    with moto(mode) as endpoint:
        # warm up: clients, service models, connections
        warm = _new_table(endpoint)
        raw_write(endpoint, warm, keys[:50], rows[:50])
        raw_read(endpoint, warm, keys[:50])
        warm_layer = layer_for(endpoint, warm)
        layer_write(warm_layer, keys[:50], rows[:50])
        layer_read(warm_layer, keys[:50])
        for _ in range(repeat):  # alternate the sides so that drift hits both alike
            raw_table = _new_table(endpoint)
            t, _ = timed(raw_write, endpoint, raw_table, keys, rows)
            _keep_best(best, "raw write", t)
            t, raw_rows = timed(raw_read, endpoint, raw_table, keys)
            _keep_best(best, "raw read", t)

            layer_table = _new_table(endpoint)
            layer = layer_for(endpoint, layer_table)
            t, _ = timed(layer_write, layer, keys, rows)
            _keep_best(best, "layer write", t)
            t, layer_rows = timed(layer_read, layer, keys)
            _keep_best(best, "layer read", t)
            _check(raw_rows, layer_rows, keys, rows)

            if diagnostics:
                t, _ = timed(layer_read, layer_for(endpoint, raw_table), keys)
                _keep_best(best, "layer read of raw's table", t)
                t, _ = timed(raw_read, endpoint, layer_table, keys)
                _keep_best(best, "raw read of layer's table", t)
        if profile:
            from lamina.keyvalue.layer import build_db_layer

            # one request at a time, so that the profile sees the requests' work
            layer = layer_for(endpoint, _new_table(endpoint))
            layer = build_db_layer(layer.backend.with_changes(max_concurrency=1))
            _profile(f"{mode}: layer write of {n} rows", lambda: layer_write(layer, keys, rows))
            _profile(f"{mode}: layer read of {n} rows", lambda: layer_read(layer, keys))
    out = []
    for label, raw_name, layer_name in _ROWS:
        if raw_name not in best or layer_name not in best:
            continue
        raw_s, layer_s = best[raw_name], best[layer_name]
        out.append(
            (
                mode,
                label,
                f"{n:,}",
                f"{raw_s:.3f}",
                f"{layer_s:.3f}",
                f"{n / raw_s:,.0f}",
                f"{n / layer_s:,.0f}",
                f"{raw_s / layer_s:.2f}x",
            )
        )
    return out


def _profile(title: str, func: Callable[[], Any]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    func()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    groups = {
        "lamina_dynamodb": 0.0,
        "lamina (core)": 0.0,
        "botocore/boto3": 0.0,
        "socket / waiting on the server": 0.0,
        "other": 0.0,
    }
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "lamina_dynamodb" in filename:
            groups["lamina_dynamodb"] += tt
        elif "/lamina/" in filename:
            groups["lamina (core)"] += tt
        elif "botocore" in filename or "boto3" in filename or "urllib3" in filename:
            groups["botocore/boto3"] += tt
        elif (
            name
            in (
                "<method 'recv_into' of '_socket.socket' objects>",
                "<method 'sendall' of '_socket.socket' objects>",
            )
            or "socket" in name
        ):
            groups["socket / waiting on the server"] += tt
        else:
            groups["other"] += tt
    print(f"\nprofile — {title}: {total:.2f} s under cProfile")
    for group, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {group:<32} {seconds:6.2f} s  {100 * seconds / total:5.1f} %")
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(8)
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    print("\n".join("  " + line for line in lines[-9:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows written and read")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the best counts")
    parser.add_argument("--mode", choices=("server", "inprocess", "both"), default="server")
    parser.add_argument("--quick", action="store_true", help="2,000 rows, one repeat")
    parser.add_argument("--profile", action="store_true", help="profile the layer's side")
    parser.add_argument(
        "--no-diagnostics",
        action="store_true",
        help="skip the two diagnostic reads (each side on the other's table)",
    )
    args = parser.parse_args(argv)
    n, repeat = (min(args.rows, 2_000), 1) if args.quick else (args.rows, args.repeat)
    modes = ("server", "inprocess") if args.mode == "both" else (args.mode,)

    import boto3
    import moto

    import lamina

    print(
        f"lamina-dynamodb vs raw boto3 on moto {moto.__version__} (boto3 {boto3.__version__}, "
        f"lamina {getattr(lamina, '__version__', '?')}, Python {sys.version.split()[0]}); "
        f"{n:,} rows of an int, a 48-char str and 64 bytes; best of {repeat}"
    )
    header = ("mode", "op", "rows", "raw s", "layer s", "raw rows/s", "layer rows/s", "layer/raw")
    table = [header]
    for mode in modes:
        table.extend(run_mode(mode, n, repeat, args.profile, not args.no_diagnostics))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print()
    for i, row in enumerate(table):
        print(
            "  ".join(
                cell.rjust(w) if j > 1 else cell.ljust(w)
                for j, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(
        "\nlayer/raw: the layer's throughput over raw boto3's (>= 0.90x is the target).\n"
        "read, raw's table / read, layer's table: both sides reading the same stored items\n"
        "(those raw boto3 wrote / those the layer wrote): the client-side cost alone."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
