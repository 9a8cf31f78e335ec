"""lamina-augment (issue 25): the augmentations' cost per 128 x 128 x 16 sample, next to the
read of the sample itself and against the same operations written directly in numpy, in
one run.

The sample: uint8 (an EM image), read from an in-memory layer at 128 x 128 x 16 (the
"read" row is that read). Each augmentation runs with ``prob=1`` on the read's array; its
numpy twin does the same arithmetic on the same array with a generator made once (the
augmentation makes one per call: the price of per-call randomness), converting to float32
and back as the augmentation must to return the dtype it was given. Best of ``--repeat``
rounds of ``--samples`` calls, the two sides in alternating rounds; ratio: numpy's time
over lamina's (target >= 0.9).

    python bench/bench_augment.py [--repeat 5] [--samples 300]

Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from volumes import versions


def _best(fn: Callable[[], Any], samples: int, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(samples):
            fn()
        best = min(best, (time.perf_counter() - start) / samples)
    return best


def _best_pair(
    ours: Callable[[], Any], twin: Callable[[], Any], samples: int, repeat: int
) -> tuple[float, float]:
    """Best per-call times of the two, measured in alternating rounds (so a machine
    that speeds up or slows down meanwhile favours neither)."""
    a = b = float("inf")
    for _ in range(repeat):
        a = min(a, _best(ours, samples, 1))
        b = min(b, _best(twin, samples, 1))
    return a, b


def _to_uint8(values: Any) -> Any:
    """Back to uint8 the fast way: rounded and clipped in place, then cast."""
    np.rint(values, out=values)
    np.clip(values, np.float32(0), np.float32(255), out=values)
    return values.astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds; the best counts")
    parser.add_argument("--samples", type=int, default=300, help="calls per round")
    args = parser.parse_args()
    from lamina_augment import (
        FlipRotateAug,
        MisalignProcessor,
        apply_to_random_sections,
        brightness_aug,
        clamp_values_aug,
        contrast_aug,
        gamma_aug,
        gaussian_noise_aug,
        missing_section_aug,
        uniform_distr,
    )

    import lamina

    res = (8, 8, 40)
    box = lamina.BBox3D.from_coords((0, 0, 0), (512, 512, 64), res)
    layer = lamina.build_memory_volumetric_layer(
        box, [res], (128, 128, 16), default_desired_resolution=res, index_resolution=res
    )
    layer[0:512, 0:512, 0:64] = np.random.default_rng(0).integers(
        0, 256, (1, 512, 512, 64), dtype=np.uint8
    )
    sample = layer[128:256, 128:256, 16:32]
    rng = np.random.default_rng(1)

    rows: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        (
            "brightness_aug (uniform -20..20)",
            lambda: brightness_aug(sample, uniform_distr(-20, 20)),
            lambda: _to_uint8(sample.astype(np.float32) + np.float32(rng.uniform(-20, 20))),
        ),
        (
            "clamp_values_aug (low 20, high 230)",
            lambda: clamp_values_aug(sample, low_distr=20, high_distr=230),
            lambda: _to_uint8(np.clip(sample.astype(np.float32), np.float32(20), np.float32(230))),
        ),
        (
            "contrast_aug (factor 0.8..1.2, center 128)",
            lambda: contrast_aug(sample, uniform_distr(0.8, 1.2), center=128.0),
            lambda: _to_uint8(
                128 + np.float32(rng.uniform(0.8, 1.2)) * (sample.astype(np.float32) - 128)
            ),
        ),
        (
            "gamma_aug (gamma 0.7..1.4)",
            lambda: gamma_aug(sample, uniform_distr(0.7, 1.4)),
            lambda: _to_uint8(
                255 * (sample.astype(np.float32) / 255) ** np.float32(rng.uniform(0.7, 1.4))
            ),
        ),
        (
            "gaussian_noise_aug (std 5)",
            lambda: gaussian_noise_aug(sample, 5.0),
            lambda: _to_uint8(
                sample.astype(np.float32) + rng.normal(0, 5.0, sample.shape).astype(np.float32)
            ),
        ),
    ]

    def missing_twin() -> Any:
        out = sample.copy()
        out[..., rng.choice(16, size=2, replace=False)] = 0
        return out

    def sections_twin() -> Any:
        out = sample.astype(np.float32)
        for z in rng.choice(16, size=2, replace=False):
            out[..., z] = 255 - out[..., z]
        return _to_uint8(out)

    def flip_twin() -> Any:
        a = sample
        if rng.random() < 0.5:
            a = np.flip(a, 1)
        if rng.random() < 0.5:
            a = np.flip(a, 2)
        return np.ascontiguousarray(np.rot90(a, int(rng.integers(0, 4)), axes=(1, 2)))

    flips = FlipRotateAug()
    rows += [
        (
            "missing_section_aug (2 sections)",
            lambda: missing_section_aug(sample, 2),
            missing_twin,
        ),
        (
            "apply_to_random_sections (2, inverted)",
            lambda: apply_to_random_sections(sample, lambda s: 255 - s, 2),
            sections_twin,
        ),
        (
            "flip_rotate_aug (data step)",
            lambda: flips.process_data(sample, "read", flips.process_index(index, "read")[1]),
            flip_twin,
        ),
    ]
    from lamina import VolumetricIndex

    index = VolumetricIndex.from_coords((128, 128, 16), (256, 256, 32), res)
    misaligned = layer.with_procs(
        read_procs=[MisalignProcessor(prob=1.0, disp_min_in_unit=16, disp_max_in_unit=64)]
    )

    read = _best(lambda: layer[128:256, 128:256, 16:32], args.samples, args.repeat)
    print(versions(["numpy", "lamina", "lamina-augment"]))
    print(f"per 128 x 128 x 16 uint8 sample; best of {args.repeat} rounds of {args.samples}\n")
    print(f"{'read of the sample':<44}{read * 1e6:9.1f} µs")
    with_misalign = _best(lambda: misaligned[128:256, 128:256, 16:32], args.samples, args.repeat)
    print(f"{'read through MisalignProcessor (step)':<44}{with_misalign * 1e6:9.1f} µs")
    for label, ours, twin in rows:
        a, b = _best_pair(ours, twin, args.samples, args.repeat)
        ratio = f"{b / a:5.2f}x (target >= 0.9)"
        print(f"{label:<44}{a * 1e6:9.1f} µs   numpy {b * 1e6:9.1f} µs   {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
