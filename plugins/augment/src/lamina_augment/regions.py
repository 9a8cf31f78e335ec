"""Augmentations of parts of a block: random sections, random boxes, missing sections,
blur. ``fn`` arguments are any augmentation (or function) of a part's data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina_augment.calls import run_augmentation
from lamina_augment.distributions import Distribution, to_distribution

__all__ = [
    "apply_to_random_boxes",
    "apply_to_random_sections",
    "gaussian_blur_aug",
    "missing_section_aug",
]


def apply_to_random_sections(
    data: Any,
    fn: Callable[[Any], Any],
    num_sections: Distribution | int = 1,
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """``fn`` applied to a drawn number of distinct z sections (each given the
    section's original ``(C, X, Y)`` data), the others unchanged (the reference's).

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor.
        fn: ``fn(section) -> section`` of ``(C, X, Y)`` data.
        num_sections: how many sections (a number or a distribution; at most Z).
        prob: the chance that a call applies.
        seed: makes the sequence of calls reproducible.
    """
    count = to_distribution(num_sections, "apply_to_random_sections: num_sections")

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        k = int(count.sample(rng))
        if not 0 <= k <= a.shape[3]:
            raise ValueError(
                f"apply_to_random_sections: num_sections drew {k}; the data has {a.shape[3]}"
            )
        for z in rng.permutation(a.shape[3])[:k]:  # distinct: each fn sees
            a[..., z] = np.asarray(fn(a[..., z]))  # its section as it was, in place
        return a

    return run_augmentation("apply_to_random_sections", data, prob, seed, body)


def apply_to_random_boxes(
    data: Any,
    fn: Callable[[Any], Any],
    box_size_px: Distribution | int | Sequence[Distribution | int],
    num_boxes: Distribution | int | None = 1,
    density: Distribution | float | None = None,
    vary_box_sizes: bool = True,
    allow_partial_boxes: bool = True,
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """``fn`` applied to random boxes of the block (each given the box's original data;
    where boxes overlap the later one wins), as the reference's: a drawn number of boxes,
    or boxes until they cover a drawn fraction (``density``; counted inside the block,
    overlaps once). numpy and torch alike (the reference's took torch only).

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor.
        fn: ``fn(part) -> part`` of ``(C, x, y, z)`` data.
        box_size_px: the box's x, y, z size in voxels (one number or distribution for
            all three, or one per axis).
        num_boxes: how many boxes (ignored when ``density`` is given).
        density: the fraction of the block the boxes cover.
        vary_box_sizes: draw each box's size (else one size per call).
        allow_partial_boxes: boxes may reach over the block's faces.
        prob: the chance that a call applies.
        seed: makes the sequence of calls reproducible.
    """
    sizes = box_size_px if isinstance(box_size_px, Sequence) else [box_size_px] * 3
    if len(sizes) != 3:
        raise ValueError(f"apply_to_random_boxes: box_size_px has {len(sizes)} sizes; give 1 or 3")
    size_distrs = [to_distribution(s, "apply_to_random_boxes: box_size_px") for s in sizes]
    count = (
        None
        if num_boxes is None
        else to_distribution(num_boxes, "apply_to_random_boxes: num_boxes")
    )
    cover = None if density is None else to_distribution(density, "apply_to_random_boxes: density")
    if count is None and cover is None:
        raise ValueError("apply_to_random_boxes: give num_boxes or density")

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        shape = a.shape[1:]

        def draw_size() -> list[int]:
            size = [int(d.sample(rng)) for d in size_distrs]
            if min(size) < 1 or (
                not allow_partial_boxes and any(b > s for b, s in zip(size, shape, strict=True))
            ):
                raise ValueError(
                    f"apply_to_random_boxes: box size {size} for a block of {list(shape)}"
                )
            return size

        def draw_box(size: list[int]) -> tuple[slice, ...]:
            low = [1 - b if allow_partial_boxes else 0 for b in size]
            high = [
                s - 1 if allow_partial_boxes else s - b for b, s in zip(size, shape, strict=True)
            ]
            start = [int(rng.integers(lo, hi + 1)) for lo, hi in zip(low, high, strict=True)]
            return tuple(
                slice(max(s, 0), min(s + b, n)) for s, b, n in zip(start, size, shape, strict=True)
            )

        size = draw_size()
        boxes: list[tuple[slice, ...]] = []
        if cover is None:
            assert count is not None
            for _ in range(int(count.sample(rng))):
                boxes.append(draw_box(draw_size() if vary_box_sizes else size))
        else:
            target = float(cover.sample(rng))
            covered = np.zeros(shape, dtype=bool)
            while covered.mean() < min(target, 1.0):
                box = draw_box(draw_size() if vary_box_sizes else size)
                boxes.append(box)
                covered[box] = True
        out = a.copy()
        for box in boxes:
            part = (slice(None), *box)
            out[part] = np.asarray(fn(a[part]), dtype=np.float64)
        return out

    return run_augmentation("apply_to_random_boxes", data, prob, seed, body)


def missing_section_aug(
    data: Any,
    num_sections: Distribution | int = 1,
    fill: float = 0.0,
    partial: bool = False,
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """Missing sections, as a section lost in imaging: a drawn number of z sections
    filled with ``fill`` (``partial``: each only on one side of a random straight cut).

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor.
        num_sections: how many sections (a number or a distribution).
        fill: the value of the missing voxels.
        partial: lose a random part of each section (cut by a random line) instead of
            all of it.
        prob: the chance that a call applies.
        seed: makes the sequence of calls reproducible.
    """
    count = to_distribution(num_sections, "missing_section_aug: num_sections")

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        k = min(int(count.sample(rng)), a.shape[3])
        chosen = rng.permutation(a.shape[3])[:k]
        value = a.dtype.type(fill)
        if not partial:
            a[..., chosen] = value
            return a
        x, y = np.meshgrid(np.arange(a.shape[1]), np.arange(a.shape[2]), indexing="ij")
        for z in chosen:
            angle = rng.uniform(0, 2 * np.pi)
            px, py = rng.uniform(0, a.shape[1]), rng.uniform(0, a.shape[2])
            side = (x - px) * np.cos(angle) + (y - py) * np.sin(angle) > 0
            a[:, side, z] = value
        return a

    return run_augmentation("missing_section_aug", data, prob, seed, body, in_float=False)


def _gaussian_kernel(sigma: float) -> npt.NDArray[np.float64]:
    radius = max(1, int(np.ceil(3 * sigma)))
    taps: npt.NDArray[np.float64] = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    normalized: npt.NDArray[np.float64] = taps / taps.sum()
    return normalized


def _blur_axis(a: npt.NDArray[Any], kernel: npt.NDArray[np.float64], axis: int) -> npt.NDArray[Any]:
    """``a`` convolved with ``kernel`` along ``axis`` (edges repeated)."""
    r = len(kernel) // 2
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r, r)
    padded = np.pad(a, pad, mode="edge")
    out = np.zeros_like(a)
    n = a.shape[axis]
    for i, tap in enumerate(kernel):
        out += tap * np.take(padded, np.arange(i, i + n), axis=axis)
    return out


def gaussian_blur_aug(
    data: Any,
    sigma_distr: Distribution | float,
    per_section: bool = True,
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """A Gaussian blur in x and y of a drawn sigma (voxels), as out-of-focus imaging:
    one sigma for the block, or one per z section.

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor.
        sigma_distr: the blur's sigma in voxels (a number or a distribution; 0: none).
        per_section: draw a sigma for each z section.
        prob: the chance that a call applies.
        seed: makes the sequence of calls reproducible.
    """
    sigma = to_distribution(sigma_distr, "gaussian_blur_aug: sigma_distr")

    def blur(a: npt.NDArray[Any], s: float) -> npt.NDArray[Any]:
        if s <= 0:
            return a
        kernel = _gaussian_kernel(s)
        return _blur_axis(_blur_axis(a, kernel, 1), kernel, 2)

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        if not per_section:
            return blur(a, float(sigma.sample(rng)))
        out = np.empty_like(a)
        for z in range(a.shape[3]):
            out[..., z : z + 1] = blur(a[..., z : z + 1], float(sigma.sample(rng)))
        return out

    return run_augmentation("gaussian_blur_aug", data, prob, seed, body)
