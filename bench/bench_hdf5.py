"""lamina-hdf5 vs raw h5py on one 1024x1024x128 uint8 file with 128x128x16 chunks.

Rows: full read, 100 aligned 256x256x16 cutouts, 100 non-aligned 200x200x10 cutouts,
full write (lamina gets the (C, X, Y, Z) view of the very array h5py writes), and a
1-voxel read (us per call, through the layer and through the backend). Raw h5py keeps
its file open; lamina opens and closes the file on every call (its documented policy).
Ratios are raw time / lamina time (>= 0.95 is the target); best of ``--repeat`` runs.

    python bench/bench_hdf5.py [--quick] [--dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from lamina_hdf5 import build_h5_layer

from lamina import BBox3D, VolumetricIndex

SHAPE_XYZ = (1024, 1024, 128)
CHUNK_XYZ = (128, 128, 16)
RES = (4, 4, 40)


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cutouts(n: int, size: tuple[int, int, int], aligned: bool, seed: int) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        start = []
        for d in range(3):
            hi = SHAPE_XYZ[d] - size[d]
            if aligned:
                start.append(int(rng.integers(0, hi // CHUNK_XYZ[d] + 1)) * CHUNK_XYZ[d])
            else:
                start.append(int(rng.integers(1, hi)))
        out.append(tuple(start))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--dir", default=None, help="where to put the file (default: a tmp dir)")
    args = parser.parse_args()
    repeat = 1 if args.quick else 5
    voxel_calls = 200 if args.quick else 2000
    root = Path(args.dir or tempfile.mkdtemp(prefix="lamina-bench-h5-"))
    path = root / "bench.h5"
    path.unlink(missing_ok=True)
    layer = build_h5_layer(
        path,
        "vol",
        index_resolution=RES,
        default_desired_resolution=RES,
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=CHUNK_XYZ,
        info_bbox=BBox3D.from_coords((0, 0, 0), SHAPE_XYZ, RES),
        info_scales=[RES],
    )
    backend: Any = layer.backend
    zyx = np.random.default_rng(0).integers(0, 255, SHAPE_XYZ[::-1], dtype=np.uint8)
    cxyz = zyx.transpose(2, 1, 0)[np.newaxis]  # the (C, X, Y, Z) view of the same array
    rows: list[tuple[str, float, float, str]] = []

    f = h5py.File(path, "r+")
    ds = f["vol/4_4_40"]

    def raw_write() -> None:
        ds[...] = zyx
        f.flush()

    def lamina_write() -> None:
        layer[0 : SHAPE_XYZ[0], 0 : SHAPE_XYZ[1], 0 : SHAPE_XYZ[2]] = cxyz

    # writes first (raw needs its handle closed while lamina writes: HDF5 refuses to
    # open a file twice in one process with different flags)
    t_raw_w = best(raw_write, repeat)
    f.close()
    t_lam_w = best(lamina_write, repeat)
    f = h5py.File(path, "r")
    ds = f["vol/4_4_40"]

    t_raw = best(lambda: ds[...], repeat)
    t_lam = best(lambda: layer[0 : SHAPE_XYZ[0], 0 : SHAPE_XYZ[1], 0 : SHAPE_XYZ[2]], repeat)
    rows.append(("full read (128 MiB)", t_raw, t_lam, "s"))
    for label, size, aligned in (
        ("100 aligned 256x256x16", (256, 256, 16), True),
        ("100 non-aligned 200x200x10", (200, 200, 10), False),
    ):
        boxes = cutouts(100, size, aligned, seed=1)

        def raw_cut(boxes: list[tuple[int, ...]] = boxes, size: tuple[int, ...] = size) -> None:
            for x, y, z in boxes:
                ds[z : z + size[2], y : y + size[1], x : x + size[0]]

        def lam_cut(boxes: list[tuple[int, ...]] = boxes, size: tuple[int, ...] = size) -> None:
            for x, y, z in boxes:
                layer[x : x + size[0], y : y + size[1], z : z + size[2]]

        rows.append((label, best(raw_cut, repeat), best(lam_cut, repeat), "s"))
    rows.append(("full write (128 MiB)", t_raw_w, t_lam_w, "s"))

    points = cutouts(voxel_calls, (1, 1, 1), False, seed=2)
    idxs = [
        VolumetricIndex.from_coords((x, y, z), (x + 1, y + 1, z + 1), RES) for x, y, z in points
    ]

    def raw_voxel() -> None:
        for x, y, z in points:
            ds[z, y, x]

    def lam_voxel() -> None:
        for x, y, z in points:
            layer[x : x + 1, y : y + 1, z : z + 1]

    def backend_voxel() -> None:
        for idx in idxs:
            backend.read(idx)

    kept = backend.with_changes(keep_open=True)

    def kept_voxel() -> None:
        for idx in idxs:
            kept.read(idx)

    kept_layer = build_h5_layer(
        path, "vol", index_resolution=RES, default_desired_resolution=RES, keep_open=True
    )
    kept_rows = []
    us = 1e6 / voxel_calls
    t_raw_v = best(raw_voxel, repeat) * us
    f.close()  # lamina's per-call opens
    t_lam_v = best(lam_voxel, repeat) * us
    t_back_v = best(backend_voxel, repeat) * us
    t_kept_v = best(kept_voxel, repeat) * us
    for label, size, aligned in (
        ("100 aligned, keep_open", (256, 256, 16), True),
        ("100 non-aligned, keep_open", (200, 200, 10), False),
    ):
        boxes = cutouts(100, size, aligned, seed=1)

        def kept_cut(boxes: list[tuple[int, ...]] = boxes, size: tuple[int, ...] = size) -> None:
            for x, y, z in boxes:
                kept_layer[x : x + size[0], y : y + size[1], z : z + size[2]]

        raw_t = next(r[1] for r in rows if r[0].startswith(label.split(",")[0]))
        kept_rows.append((label, raw_t, best(kept_cut, repeat), "s"))
    kept.clear_cache()
    with h5py.File(path, "r") as g:
        d = g["vol/4_4_40"]
        t_open = best(lambda: [h5py.File(path, "r").close() for _ in range(100)], repeat) * 1e4
        del d

    print(f"file: {path} ({'quick' if args.quick else f'best of {repeat}'})")
    print(f"{'row':30} {'raw h5py':>12} {'lamina':>12} {'ratio':>8}  target")
    for label, raw, lam, unit in rows + kept_rows:
        ratio = raw / lam
        ok = "ok" if ratio >= 0.95 else "MISSED"
        print(f"{label:30} {raw:10.4f} {unit} {lam:10.4f} {unit} {ratio:8.3f}  >=0.95 {ok}")
    for label, value in (
        ("1-voxel, layer", t_lam_v),
        ("1-voxel, backend.read", t_back_v),
        ("1-voxel, backend keep_open", t_kept_v),
    ):
        ok = "ok" if value <= t_raw_v + 50 else "MISSED"
        print(
            f"{label:30} {t_raw_v:9.1f} us {value:9.1f} us {value - t_raw_v:+8.1f}  "
            f"<= raw+50 us {ok}"
        )
    print(f"(h5py.File open+close alone: {t_open:.1f} us)")


if __name__ == "__main__":
    main()
