"""Layers as Dask arrays (issue 24) against lamina's own reads and copies, in one run.

The volume: 1024 x 1024 x 128 uint8 random voxels (``--quick``: 512 x 512 x 64), raw,
128 x 128 x 16 chunks, on local disk, written by CloudVolume. Rows (best of ``--repeat``
rounds after a warm-up; the rows compared with each other run in the same rounds, in a
shuffled order):

* ``layer.to_dask().compute()`` on dask's threaded scheduler, against one direct read of
  the whole volume through the layer (target >= 0.9x its throughput). With the default
  blocks (whole chunks up to dask's ``array.chunk-size``, 128 MiB) this volume is one
  block; a row with 512 x 512 x 64 blocks (8 of them) shows the cost of assembling many;
* the same arrays computed on a 2-worker ``dask.distributed`` LocalCluster (the result
  gathered into this process), against ``flows.copy`` of the volume into an in-memory
  layer with 2 threads (target >= 0.9x);
* ``flows.store(src.to_dask(), dst)`` into a new precomputed volume, against
  ``flows.copy(src, dst)`` of the same data, both on ``threads`` x 2 (target >= 0.9x).

    python bench/bench_arrays.py [--repeat 3] [--quick]

Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_precomputed import interleaved_best
from volumes import new_raw_volume, versions

RES = (8, 8, 40)
CHUNK = (128, 128, 16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the best counts")
    parser.add_argument("--quick", action="store_true", help="a 512 x 512 x 64 volume")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    import lamina
    from lamina import BBox3D
    from lamina.flows import copy, store

    shape = (512, 512, 64) if args.quick else (1024, 1024, 128)
    work = Path(tempfile.mkdtemp(prefix="bench-arrays-"))
    vol = new_raw_volume(work / "src", shape, RES, CHUNK)
    rng = np.random.default_rng(0)
    for z in range(0, shape[2], CHUNK[2]):
        vol[:, :, z : z + CHUNK[2]] = rng.integers(0, 256, (*shape[:2], CHUNK[2]), dtype=np.uint8)
    src = lamina.build_cv_layer(
        f"file://{work / 'src'}", default_desired_resolution=RES, index_resolution=RES
    )
    box = BBox3D.from_coords((0, 0, 0), shape, RES)
    nbytes = int(np.prod(shape))

    def new_dst() -> Any:
        shutil.rmtree(work / "dst", ignore_errors=True)
        return lamina.build_cv_layer(
            f"file://{work / 'dst'}",
            info_reference_path=f"file://{work / 'src'}",
            info_scales=[RES],
            info_inherit_all_params=True,
        )

    memory = lamina.build_memory_volumetric_layer(box, [RES], CHUNK, index_resolution=RES)
    blocks = (512, 512, 64) if not args.quick else (256, 256, 32)
    time.sleep(2.5)  # lamina's reader trusts a directory listing 2 s after its last change

    def measured(fns: dict[str, Callable[[], Any]]) -> dict[str, float]:
        for fn in fns.values():
            fn()  # warm-up
        return interleaved_best(fns, args.repeat, shuffle=True)

    reads = measured(
        {
            "direct": lambda: src[box],
            "threaded": lambda: src.to_dask().compute(scheduler="threads"),
            "blocks": lambda: src.to_dask(chunks=blocks).compute(scheduler="threads"),
        }
    )
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = Client(cluster)
    try:
        gathered = measured(
            {
                "copy": lambda: copy(src, memory, executor="threads", workers=2, progress=False),
                "cluster": lambda: client.compute(src.to_dask()).result(),
                "blocks": lambda: client.compute(src.to_dask(chunks=blocks)).result(),
            }
        )
    finally:
        client.close()
        cluster.close()
    written = measured(
        {
            "copy": lambda: copy(src, new_dst(), executor="threads", workers=2, progress=False),
            "store": lambda: store(
                src.to_dask(), new_dst(), executor="threads", workers=2, progress=False
            ),
        }
    )
    rows = [
        ("direct read of the whole volume through the layer", reads["direct"], ""),
        (
            "to_dask().compute(), threaded scheduler",
            reads["threaded"],
            f"{reads['direct'] / reads['threaded']:.2f}x (target >= 0.9)",
        ),
        (
            f"to_dask(chunks={blocks}).compute(), threaded",
            reads["blocks"],
            f"{reads['direct'] / reads['blocks']:.2f}x",
        ),
        ("flows.copy into memory, threads x2", gathered["copy"], ""),
        (
            "to_dask().compute(), 2-worker LocalCluster",
            gathered["cluster"],
            f"{gathered['copy'] / gathered['cluster']:.2f}x (target >= 0.9)",
        ),
        (
            f"to_dask(chunks={blocks}).compute(), LocalCluster",
            gathered["blocks"],
            f"{gathered['copy'] / gathered['blocks']:.2f}x",
        ),
        ("flows.copy into a new precomputed volume, threads x2", written["copy"], ""),
        (
            "flows.store(src.to_dask(), dst), threads x2",
            written["store"],
            f"{written['copy'] / written['store']:.2f}x (target >= 0.9)",
        ),
    ]
    print(versions(["numpy", "dask", "lamina", "lamina-precomputed"]))
    print(f"{shape} uint8, {CHUNK} raw chunks, local disk; best of {args.repeat}\n")
    for label, seconds, ratio in rows:
        print(f"{label:<58}{seconds:7.3f} s {nbytes / seconds / 1e6:7.0f} MB/s  {ratio}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
