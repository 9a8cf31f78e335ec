"""Precomputed volumes on S3 (moto's server on loopback, in a process of its own): lamina's
two engines side by side, unsharded and sharded.

Run: ``python bench/bench_precomputed_s3.py [--repeat N] [--delay-ms D]`` with
``lamina-precomputed``, ``tensorstore``, ``moto[server]`` and ``boto3`` installed. Prints
one table; asserts nothing about time.

The volume: 512 x 512 x 64 uint8 random voxels, 128 x 128 x 16 raw chunks, written once
by lamina, unsharded and in one identity-hashed shard; each engine then reads the whole
volume, 20 random 128 x 128 x 16 cutouts and 20 1-voxel reads (the same boxes for both),
best of ``--repeat`` rounds, every result compared with the source. ``--delay-ms`` makes
moto wait that long before each request, standing for a cloud service's latency. This is
the measurement behind ``engine="auto"`` taking TensorStore on S3 (bench/README.md,
"Precomputed engines").
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from bench_precomputed import SHARDING, interleaved_best
from moto_server import moto_server
from volumes import versions

SHAPE = (512, 512, 64)
CHUNK = (128, 128, 16)
CUTOUT = (128, 128, 16)
ENGINES = ("tensorstore", "cloudvolume")
Box = tuple[int, int, int, int, int, int]


def boxes(rng: np.random.Generator, size: Sequence[int], n: int) -> list[Box]:
    lo = [rng.integers(0, SHAPE[d] - size[d] + 1, n) for d in range(3)]
    return [
        (int(x), int(y), int(z), int(x) + size[0], int(y) + size[1], int(z) + size[2])
        for x, y, z in zip(*lo, strict=True)
    ]


def run(endpoint: str, repeat: int) -> list[tuple[str, str, str, float]]:
    import boto3

    from lamina import BBox3D, Vec3D, build_cv_layer

    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    res = Vec3D(8.0, 8.0, 40.0)
    data = np.random.default_rng(0).integers(0, 256, (1, *SHAPE), dtype=np.uint8)
    rng = np.random.default_rng(1)
    cases = {
        "the whole volume": [(0, 0, 0, *SHAPE)],
        "20 random 128x128x16 cutouts": boxes(rng, CUTOUT, 20),
        "20 1-voxel reads": boxes(rng, (1, 1, 1), 20),
    }
    rows = []
    for layout, extra in (("unsharded", None), ("sharded", {"sharding": SHARDING})):
        path = f"s3://{bucket}/{layout}"
        params: dict[str, Any] = dict(
            info_type="image",
            info_data_type="uint8",
            info_num_channels=1,
            info_chunk_size=CHUNK,
            info_bbox=BBox3D.from_coords((0, 0, 0), SHAPE, res),
            info_scales=[res],
        )
        if extra:
            params["info_extra_scale_data"] = extra
        build_cv_layer(path, engine="tensorstore", **params)[res, 0:512, 0:512, 0:64] = data
        for engine in ENGINES:
            layer = build_cv_layer(path, engine=engine)
            for case, case_boxes in cases.items():
                for x0, y0, z0, x1, y1, z1 in case_boxes:  # warm-up and check
                    got = layer[res, x0:x1, y0:y1, z0:z1]
                    if not np.array_equal(got, data[:, x0:x1, y0:y1, z0:z1]):
                        raise AssertionError(f"{engine}, {layout}: wrong data at {case}")

                def read(case_boxes: list[Box] = case_boxes, layer: Any = layer) -> None:
                    for x0, y0, z0, x1, y1, z1 in case_boxes:
                        layer[res, x0:x1, y0:y1, z0:z1]

                best = interleaved_best({engine: read}, repeat)[engine]
                rows.append((layout, case, engine, best))
            if layout == "unsharded":
                rows += batch_rows(layer, engine, cases["20 random 128x128x16 cutouts"], repeat)
    return rows


def batch_rows(layer: Any, engine: str, cutouts: list[Box], repeat: int) -> list[Any]:
    """``LayerDataset`` batches of 8 of the cutouts (repeated to 64 samples) through
    ``DataLoader(batch_size=8)``: a batch's samples read at once (``__getitems__``) and,
    for comparison, one after another."""
    try:
        import torch.utils.data
    except ImportError:
        return []
    from lamina import VolumetricIndex
    from lamina.torch import LayerDataset

    boxes = (cutouts * 4)[:64]
    res = layer.backend.resolutions[0]

    class Indexer:
        def __len__(self) -> int:
            return len(boxes)

        def __call__(self, i: int) -> Any:
            x0, y0, z0, x1, y1, z1 = boxes[i]
            return VolumetricIndex.from_coords((x0, y0, z0), (x1, y1, z1), res)

    rows = []
    for mode in ("at once", "one after another"):
        dataset = LayerDataset(layer, Indexer())
        if mode == "one after another":
            dataset.__getitems__ = lambda idx, d=dataset: [d[i] for i in idx]  # type: ignore[method-assign]
        loader = torch.utils.data.DataLoader(dataset, batch_size=8, num_workers=0)

        def epoch(loader: Any = loader) -> None:
            for _ in loader:
                pass

        epoch()
        best = interleaved_best({mode: epoch}, repeat)[mode]
        rows.append(("unsharded", f"64 samples, batches of 8 read {mode}", engine, best))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds, best counts (3)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="moto's delay per request")
    args = parser.parse_args(argv)
    print(versions(("numpy", "cloud-files", "tensorstore", "moto", "lamina-precomputed")))
    with moto_server(delay_s=args.delay_ms / 1000, service="s3") as endpoint:
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_SESSION_TOKEN="bench",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL_S3=endpoint,
        )
        rows = run(endpoint, args.repeat)
    print(f"moto on loopback, {args.delay_ms:g} ms per request; best of {args.repeat}")
    print(
        f"{'layout':10s} {'read':50s} {'tensorstore':>12s} {'cloudvolume':>12s} "
        f"{'ts speed-up':>12s}"
    )
    by_key = {(layout, case, engine): t for layout, case, engine, t in rows}
    for layout, case in dict.fromkeys((layout, case) for layout, case, _, _ in rows):
        ts, cv = by_key[(layout, case, "tensorstore")], by_key[(layout, case, "cloudvolume")]
        print(f"{layout:10s} {case:50s} {ts:>10.3f} s {cv:>10.3f} s {cv / ts:>11.2f}x")


if __name__ == "__main__":
    main()
