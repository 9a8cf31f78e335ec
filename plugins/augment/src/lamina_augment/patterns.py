"""``square_tile_pattern_aug``: brightness changed by a pattern of square tiles, as uneven
staining or charging leaves it (the reference system's, under its name and parameters).

Per z section: ``repeats`` patterns, each a grid of ``tile_size`` squares every
``tile_stride`` voxels (a voxel's value is the number of tiles covering it), rotated by
``rotation_degree`` about the centre (nearest voxel), cropped at a random offset and
weighted by a draw from U(-1, 1), are summed, scaled so the largest change is a drawn
``max_brightness_change`` with a random sign, and added to the section — except where the
section equals ``preserve_data_val`` (empty or padded regions). Unlike the reference's,
the magnitude is drawn for every section (the reference drew it once and kept it), and
boxes need not be square in x-y.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina_augment.calls import run_augmentation
from lamina_augment.distributions import Distribution, to_distribution

__all__ = ["square_tile_pattern_aug"]


def _coverage(length: int, stride: int, size: int, count: int) -> npt.NDArray[np.float64]:
    """How many of ``count`` tiles of ``size`` every ``stride`` cover each position."""
    covered = np.zeros(length, dtype=np.float64)
    for k in range(count):
        covered[k * stride : k * stride + size] += 1
    return covered


def _rotated(pattern: npt.NDArray[np.float64], degrees: float) -> npt.NDArray[np.float64]:
    """``pattern`` rotated about its centre (nearest voxel, 0 where nothing lands)."""
    if degrees == 0:
        return pattern
    h, w = pattern.shape
    theta = math.radians(degrees)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    sy = np.rint(cy + (y - cy) * math.cos(theta) - (x - cx) * math.sin(theta)).astype(int)
    sx = np.rint(cx + (y - cy) * math.sin(theta) + (x - cx) * math.cos(theta)).astype(int)
    inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
    out = np.zeros_like(pattern)
    out[inside] = pattern[sy[inside], sx[inside]]
    return out


def _tile_pattern(side: int, stride: int, size: int, degrees: float) -> npt.NDArray[np.float64]:
    rpad = 0 if degrees == 0 else stride * math.ceil(0.5 * (math.hypot(side, side) - side) / stride)
    full_pad = rpad + stride
    count = math.ceil((side + 2 * full_pad) / stride)
    length = (count - 1) * stride + size
    line = _coverage(length, stride, size, count)
    pattern = _rotated(np.outer(line, line), degrees)
    return pattern[rpad : length - rpad, rpad : length - rpad] if rpad else pattern


def square_tile_pattern_aug(
    data: Any,
    tile_size: Distribution | float,
    tile_stride: Distribution | float,
    max_brightness_change: Distribution | float,
    rotation_degree: Distribution | float = 0.0,
    preserve_data_val: float | None = 0,
    repeats: int = 1,
    device: str = "cpu",
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """Add a random pattern of square tiles to each section (see the module docstring).

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor.
        tile_size: a tile's side in voxels (a number or a distribution).
        tile_stride: the distance between tiles' starts in voxels.
        max_brightness_change: the largest change (its sign is drawn).
        rotation_degree: the pattern's rotation in degrees.
        preserve_data_val: voxels of this value are left unchanged (``None``: none).
        repeats: how many patterns are summed per section.
        device: the reference's torch device; accepted, computed on the CPU here.
        prob: the chance that a call applies.
        seed: makes the sequence of calls reproducible.
    """
    size_d = to_distribution(tile_size, "square_tile_pattern_aug: tile_size")
    stride_d = to_distribution(tile_stride, "square_tile_pattern_aug: tile_stride")
    change_d = to_distribution(
        max_brightness_change, "square_tile_pattern_aug: max_brightness_change"
    )
    rotation_d = to_distribution(rotation_degree, "square_tile_pattern_aug: rotation_degree")
    del device

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        _, nx, ny, nz = a.shape
        side = max(nx, ny)
        out = a.copy()
        for z in range(nz):
            change = (1 if rng.random() < 0.5 else -1) * float(change_d.sample(rng))
            combined = np.zeros((nx, ny), dtype=np.float64)
            for _ in range(repeats):
                stride = max(1, int(stride_d.sample(rng)))
                size = max(1, int(size_d.sample(rng)))
                pattern = _tile_pattern(side, stride, size, float(rotation_d.sample(rng)))
                pattern = pattern * rng.uniform(-1.0, 1.0)
                ox = int(rng.integers(0, pattern.shape[0] - nx + 1))
                oy = int(rng.integers(0, pattern.shape[1] - ny + 1))
                combined += pattern[ox : ox + nx, oy : oy + ny]
            peak = np.abs(combined).max()
            if peak > 1e-6:
                combined = combined / peak * change
            section = out[..., z]
            shift = np.broadcast_to(combined, section.shape).copy()
            if preserve_data_val is not None:
                shift[section == preserve_data_val] = 0
            out[..., z] = section + shift
        return out

    return run_augmentation("square_tile_pattern_aug", data, prob, seed, body)
