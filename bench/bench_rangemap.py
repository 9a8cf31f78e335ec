"""A range map over local precomputed volumes: one read spanning 4 sources against the 4
direct reads of its parts one after another, on each lamina-precomputed engine.

Run: ``python bench/bench_rangemap.py [--repeat N]`` with lamina-rangemap and
lamina-precomputed installed. Prints one line per engine; asserts nothing about time.

The sources: 4 precomputed volumes of 512 x 512 x 56 uint8 random voxels (128 x 128 x 8
raw chunks) stacked in z, read as one 512 x 512 x 224 range map. Best of ``--repeat``
rounds, the two reads interleaved; the range map's result is compared with the sources'.
For reference, the cost of the result's fresh memory alone (a new array of its size with
every page touched once), which the direct reads, each smaller than glibc's largest
reused allocation (32 MiB), do not pay.
Target (issue 21): the range-map read takes at most 1.1x the direct reads. (S3 with
latency: ``bench_layerset.py``.)
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from bench_precomputed import interleaved_best
from volumes import versions

PART = (512, 512, 56)
PARTS = 4
TARGET = 1.1


def run(engine: str, repeat: int) -> tuple[float, float, float]:
    import lamina
    from lamina import BBox3D, Vec3D

    res = Vec3D(8, 8, 40)
    root = tempfile.mkdtemp(prefix="bench-rangemap-")
    x, y, dz = PART
    ranges: list[tuple[Any, Any]] = []
    datas = []
    for i in range(PARTS):
        box = BBox3D.from_coords((0, 0, i * dz), (x, y, (i + 1) * dz), res)
        lamina.build_cv_layer(
            f"{root}/s{i}", info_scales=[res], info_type="image", info_data_type="uint8",
            info_num_channels=1, info_chunk_size=(128, 128, 8), info_bbox=box,
        )  # fmt: skip
        layer = lamina.build_cv_layer(f"{root}/s{i}", engine=engine)
        data = np.random.default_rng(i).integers(0, 255, (1, *PART), dtype=np.uint8)
        layer[res, 0:x, 0:y, i * dz : (i + 1) * dz] = data
        ranges.append((box, layer))
        datas.append(data)
    mapped = lamina.build_range_mapped_layer(
        ranges, default_desired_resolution=res, index_resolution=res
    )
    if not np.array_equal(mapped[0:x, 0:y, 0 : PARTS * dz], np.concatenate(datas, axis=3)):
        raise AssertionError(f"{engine}: the range map does not read its sources' data")

    def direct() -> None:
        for i, (_, layer) in enumerate(ranges):
            layer[res, 0:x, 0:y, i * dz : (i + 1) * dz]

    def through_the_map() -> None:
        mapped[0:x, 0:y, 0 : PARTS * dz]

    def fresh_memory() -> None:
        """What the range map's result costs before any read: a new array of its size,
        its pages touched once (the kernel zeroes each on first touch)."""
        np.empty((1, x, y, PARTS * dz), np.uint8, order="F").fill(1)

    direct()
    through_the_map()
    fns = {"direct": direct, "mapped": through_the_map, "fresh": fresh_memory}
    best = interleaved_best(fns, repeat)
    return best["direct"], best["mapped"], best["fresh"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds, best counts (7)")
    args = parser.parse_args(argv)
    print(versions(("numpy", "tensorstore", "lamina-precomputed", "lamina-rangemap")))
    print(f"512x512x224 uint8 over {PARTS} local sources; best of {args.repeat}")
    for engine in ("cloudvolume", "tensorstore"):
        direct, mapped, fresh = run(engine, args.repeat)
        ratio = mapped / direct
        met = "yes" if ratio <= TARGET else "NO"
        print(
            f"{engine:12s} 4 direct reads {direct * 1e3:6.1f} ms, one range-map read "
            f"{mapped * 1e3:6.1f} ms: {ratio:.2f}x (target <= {TARGET}x: {met}); "
            f"a new array of the result's size, filled: {fresh * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
