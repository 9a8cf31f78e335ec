"""The subchunkable apply (issue 23) against the same function without pads or blending,
and against a plain numpy script doing the same blended computation, in one run.

The volume: 1024 x 1024 x 128 uint8 random voxels (``--quick``: 512 x 512 x 64), raw,
128 x 128 x 16 chunks, local disk, written by CloudVolume; the outputs: float32 volumes
of the same geometry written by lamina. The function: a float32 3 x 3 x 3 convolution in
numpy (27 shifted multiply-adds, the cost of a small model, in its input's memory
layout; the border voxels, which it cannot see around, are left 0 and cropped away by the
pads).

* **plain**: ``flows.apply(conv, src, dst, chunk_size=(256, 256, 64))``: ``fn`` on the
  same 256 x 256 x 64 chunks with no pads and no blending (its borders are wrong: the
  baseline cost, not a result to use);
* **blended**: two levels, top-level tasks of 512 x 512 x 64 cut in the worker into
  256 x 256 x 64 chunks with crop pads of (8, 8, 1) and blend pads of (16, 16, 0),
  ``quadratic`` blending: ``fn`` sees 304 x 304 x 66 voxels per 256 x 256 x 64 chunk, so
  it computes ``pad factor`` = 1.45x the voxels of the plain run;
* **numpy script**: the whole volume in memory (read before timing), cut into the same
  256 x 256 x 64 chunks with the same pads, ``conv`` on each, cropped, weighted with the
  same ramps and summed into a float32 result: the same blended computation with no
  storage and no flow.

Ratios: the blended run's time over the plain run's at equal executor, divided by the
pad factor (the overhead of subchunking and blending beyond the voxels the pads add;
target <= 1.3); the numpy script's time over the blended run's on ``serial`` (target
>= 0.8). Best of ``--repeat`` rounds after a warm-up round.

    python bench/bench_apply.py [--repeat 3] [--quick] [--executors serial,processes]

Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from volumes import new_raw_volume, versions

RES = (8, 8, 40)
CHUNK = (128, 128, 16)
TOP = (512, 512, 64)
SUB = (256, 256, 64)
CROP = (8, 8, 1)
BLEND = (16, 16, 0)
KERNEL = (np.random.default_rng(7).random((3, 3, 3)) / 13.5).astype(np.float32)


def conv(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A float32 3 x 3 x 3 convolution of ``(C, X, Y, Z)``; border voxels stay 0."""
    x = a.astype(np.float32)
    out = np.zeros_like(x)  # in x's memory layout (a layer's read is Fortran-ordered)
    inner = out[:, 1:-1, 1:-1, 1:-1]
    tmp = np.empty_like(inner)
    nx, ny, nz = x.shape[1] - 2, x.shape[2] - 2, x.shape[3] - 2
    for i in range(3):
        for j in range(3):
            for k in range(3):
                np.multiply(x[:, i : i + nx, j : j + ny, k : k + nz], KERNEL[i, j, k], out=tmp)
                inner += tmp
    return out


def make_source(path: Path, shape: tuple[int, int, int]) -> None:
    vol = new_raw_volume(path, shape, RES, CHUNK)
    rng = np.random.default_rng(0)
    for z in range(0, shape[2], CHUNK[2]):
        vol[:, :, z : z + CHUNK[2]] = rng.integers(0, 256, (*shape[:2], CHUNK[2]), dtype=np.uint8)


def new_output(path: Path, shape: tuple[int, int, int]) -> Any:
    import lamina

    shutil.rmtree(path, ignore_errors=True)
    return lamina.build_cv_layer(
        f"file://{path}",
        info_type="image",
        info_data_type="float32",
        info_num_channels=1,
        info_encoding="raw",
        info_chunk_size=CHUNK,
        info_bbox=lamina.BBox3D.from_coords((0, 0, 0), shape, RES),
        info_scales=[RES],
        default_desired_resolution=RES,
        index_resolution=RES,
    )


def plain_run(src: Any, dst: Any, executor: str) -> float:
    from lamina.flows import apply

    start = time.perf_counter()
    apply(conv, src, dst, chunk_size=SUB, executor=executor, workers=2, progress=False)
    return time.perf_counter() - start


def blended_run(src: Any, dst: Any, executor: str) -> float:
    from lamina.flows import apply

    start = time.perf_counter()
    apply(
        conv,
        src,
        dst,
        processing_chunk_sizes=[TOP, SUB],
        processing_crop_pads=[(0, 0, 0), CROP],
        processing_blend_pads=[(0, 0, 0), BLEND],
        processing_blend_modes="quadratic",
        executor=executor,
        workers=2,
        progress=False,
    )
    return time.perf_counter() - start


def numpy_script(volume: npt.NDArray[Any]) -> tuple[float, npt.NDArray[Any]]:
    """The same blended computation on the whole volume in memory (see the docstring)."""
    from lamina.flows.subchunking import blend_weights

    pad = tuple(c + b for c, b in zip(CROP, BLEND, strict=True))
    start = time.perf_counter()
    padded = np.pad(volume, ((0, 0), *((p, p) for p in pad)))
    result = np.zeros(volume.shape, dtype=np.float32)
    shape = volume.shape[1:]
    out_shape = tuple(s + 2 * b for s, b in zip(SUB, BLEND, strict=True))
    for x in range(0, shape[0], SUB[0]):
        for y in range(0, shape[1], SUB[1]):
            for z in range(0, shape[2], SUB[2]):
                lo = (x, y, z)
                region = padded[
                    :,
                    x : x + SUB[0] + 2 * pad[0],
                    y : y + SUB[1] + 2 * pad[1],
                    z : z + SUB[2] + 2 * pad[2],
                ]
                out = conv(region)[
                    :, CROP[0] : -CROP[0], CROP[1] : -CROP[1], CROP[2] : out_shape[2] + CROP[2]
                ]
                first = tuple(lo[d] > 0 for d in range(3))
                last = tuple(lo[d] + SUB[d] < shape[d] for d in range(3))
                w = blend_weights("quadratic", out_shape, BLEND, first, last, "float32")  # type: ignore[arg-type]
                a = [max(0, lo[d] - BLEND[d]) for d in range(3)]
                b = [min(shape[d], lo[d] + SUB[d] + BLEND[d]) for d in range(3)]
                inside = tuple(
                    slice(a[d] - lo[d] + BLEND[d], b[d] - lo[d] + BLEND[d]) for d in range(3)
                )
                result[:, a[0] : b[0], a[1] : b[1], a[2] : b[2]] += (
                    out[(slice(None), *inside)] * w[inside]
                )
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the best counts")
    parser.add_argument("--quick", action="store_true", help="a 512 x 512 x 64 volume")
    parser.add_argument("--executors", default="serial,processes", help="comma-separated")
    parser.add_argument("--dir", default=None, help="work directory (default: a tmp dir)")
    args = parser.parse_args()
    import lamina

    shape = (512, 512, 64) if args.quick else (1024, 1024, 128)
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-apply-"))
    work.mkdir(parents=True, exist_ok=True)
    src_path = work / "src"
    if not (src_path / "info").exists():
        make_source(src_path, shape)
    src = lamina.build_cv_layer(
        f"file://{src_path}", default_desired_resolution=RES, index_resolution=RES
    )
    volume = src[0 : shape[0], 0 : shape[1], 0 : shape[2]]
    executors = args.executors.split(",")
    best: dict[str, float] = {}
    for round_number in range(args.repeat + 1):
        for executor in executors:
            for arm, run in (("plain", plain_run), ("blended", blended_run)):
                seconds = run(src, new_output(work / f"{arm}-{executor}", shape), executor)
                if round_number:
                    key = f"{arm} {executor}"
                    best[key] = min(best.get(key, seconds), seconds)
        seconds, _ = numpy_script(volume)
        if round_number:
            best["script"] = min(best.get("script", seconds), seconds)
    pad_factor = np.prod(
        [s + 2 * (c + b) for s, c, b in zip(SUB, CROP, BLEND, strict=True)]
    ) / np.prod(SUB)
    print(versions(["numpy", "lamina", "lamina-precomputed"]))
    print(f"apply of a float32 3x3x3 convolution over {shape} uint8; best of {args.repeat}")
    print(f"pad factor (voxels fn computes / voxels written): {pad_factor:.3f}\n")
    print(f"{'run':<28}{'seconds':>9}  ratio")
    for executor in executors:
        plain, blended = best[f"plain {executor}"], best[f"blended {executor}"]
        print(f"{'plain ' + executor:<28}{plain:>9.2f}")
        overhead = blended / plain / pad_factor
        print(
            f"{'blended ' + executor:<28}{blended:>9.2f}  {blended / plain:.2f}x plain, "
            f"{overhead:.2f}x beyond the pads (target <= 1.3)"
        )
    script = best["script"]
    print(
        f"{'numpy script (in memory)':<28}{script:>9.2f}  lamina blended serial: "
        f"{script / best.get('blended serial', float('nan')):.2f}x its throughput (target >= 0.8)"
    )
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
