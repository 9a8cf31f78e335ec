"""Levels of processing chunks: how one ``apply`` task is cut, padded and blended.

The reference system's subchunkable apply, as arithmetic on boxes and numpy arrays (no
storage here). Level 0 is the top: the flow's task. At every level a box of that
level's ``chunk`` voxels is computed over its *region*, the box padded by the level's
``crop + blend`` pads; the region's output is cropped by ``crop``, which leaves the box
padded by ``blend``: an output that overlaps each neighbour's by ``2 * blend`` voxels and
is blended with it. Above the last level a region is cut into the next level's chunks
(which must divide it: :func:`plan_levels` checks the reference's divisibility rule and
names the nearest sizes that pass), whose blended outputs make the region's output; at
the last level the region is ``fn``'s input. So a top-level task reads its inputs once,
padded by the sum of every level's pads (:attr:`Levels.input_pad`).

Blending: an output's weight ramps up over its first ``2 * blend`` voxels and down over
its last, per axis, wherever a neighbour overlaps it (never at the edge of the region
being assembled, where it has none): ``linear`` k / (2b + 1) for k = 1 … 2b, and
``quadratic`` its smooth version; the two ramps that meet in an overlap sum to 1 at every
voxel, so weights sum to 1 everywhere. ``max`` takes the maximum of the overlapping
outputs; ``defer`` (top level only) blends as ``quadratic`` does, in a pass of its own.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lamina.flows.checks import FlowArgumentError
from lamina.volumetric.data import cast_rounded

__all__ = [
    "BLEND_MODES",
    "Box",
    "Evaluator",
    "Level",
    "Levels",
    "accumulator_dtype",
    "blend_weights",
    "box_intersection",
    "box_slices",
    "lowest_value",
    "plan_levels",
    "ramp",
    "tiles",
]

BLEND_MODES = ("linear", "quadratic", "max", "defer")

Int3 = tuple[int, int, int]
#: A box of voxels: ``(start, stop)``, stop exclusive.
Box = tuple[Int3, Int3]


def _add(a: Sequence[int], b: Sequence[int]) -> Int3:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _sub(a: Sequence[int], b: Sequence[int]) -> Int3:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


@attrs.frozen
class Level:
    """One level: the size of its chunks, and the crop and blend pads around each."""

    chunk: Int3
    crop: Int3
    blend: Int3
    mode: str

    @property
    def pad(self) -> Int3:
        """What a chunk's region adds on each side: ``crop + blend``."""
        return _add(self.crop, self.blend)

    @property
    def region(self) -> Int3:
        """The size of a chunk's region: ``chunk + 2 * (crop + blend)``."""
        return _add(self.chunk, _add(self.pad, self.pad))


@attrs.frozen
class Levels:
    """Every level, the top (the flow's task) first."""

    levels: tuple[Level, ...]

    @property
    def top(self) -> Level:
        return self.levels[0]

    @property
    def input_pad(self) -> Int3:
        """How far a top-level task's inputs reach beyond its box: every level's pads."""
        total = (0, 0, 0)
        for level in self.levels:
            total = _add(total, level.pad)
        return total

    def is_plain(self) -> bool:
        """One level without blending: a task's output is its box, nothing to blend."""
        return len(self.levels) == 1 and self.top.blend == (0, 0, 0)


def _vector(value: Any, what: str, minimum: int) -> Int3:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 3:
        raise FlowArgumentError(f"{what} must be 3 whole numbers (x, y, z); got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not float(v).is_integer() or v < minimum:
            raise FlowArgumentError(
                f"{what} must be 3 whole numbers >= {minimum} (x, y, z); got {list(value)}"
            )
        out.append(int(v))
    return (out[0], out[1], out[2])


def _per_level(value: Any, n: int, what: str, minimum: int) -> list[Int3]:
    """One vector for every level, or one per level (the reference's two forms)."""
    nested = (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and isinstance(value[0], Sequence)
        and not isinstance(value[0], str)
    )
    if not nested:
        return [_vector(value, what, minimum)] * n
    if len(value) != n:
        raise FlowArgumentError(
            f"{what} gives {len(value)} levels, but processing_chunk_sizes has {n}: give one "
            "x, y, z per level (largest first), or one x, y, z for every level"
        )
    return [_vector(v, f"{what}[{i}]", minimum) for i, v in enumerate(value)]


def _modes(value: Any, n: int) -> list[str]:
    modes = [value] * n if isinstance(value, str) else list(value)
    if len(modes) != n:
        raise FlowArgumentError(
            f"processing_blend_modes gives {len(modes)} modes, but processing_chunk_sizes has "
            f"{n} levels: give one mode, or one per level"
        )
    for i, mode in enumerate(modes):
        if mode not in BLEND_MODES:
            raise FlowArgumentError(
                f"processing_blend_modes[{i}] must be one of {', '.join(BLEND_MODES)}; got {mode!r}"
            )
        if mode == "defer" and i > 0:
            raise FlowArgumentError(
                f"processing_blend_modes[{i}] is 'defer', which only the top level (0) may "
                "be: the levels below are blended in the worker's memory"
            )
    return modes


def _nearest_divisors(region: Int3, size: Int3) -> Int3:
    best = []
    for r, s in zip(region, size, strict=True):
        divisors = [d for d in range(1, r + 1) if r % d == 0]
        best.append(min(divisors, key=lambda d: (abs(d - s), d)))
    return (best[0], best[1], best[2])


def _nearest_upper(upper: Int3, pad: Int3, size: Int3) -> Int3:
    """The upper level's chunk nearest ``upper`` whose region ``size`` divides."""
    best = []
    for u, p, s in zip(upper, pad, size, strict=True):
        low = max(1, (u + 2 * p) // s)
        candidates = [m * s - 2 * p for m in (low, low + 1) if m * s - 2 * p > 0]
        best.append(min(candidates, key=lambda c: (abs(c - u), c)) if candidates else u)
    return (best[0], best[1], best[2])


def _auto_divisible(chunks: list[Int3], levels: list[tuple[Int3, Int3]]) -> list[Int3]:
    """The reference's ``auto_divisibility``: the last level's chunk is kept, and each
    level above is rounded down to the largest chunk whose region the one below divides."""
    out = list(chunks)
    for i in range(len(chunks) - 1, 0, -1):
        crop, blend = levels[i - 1]
        pad = _add(crop, blend)
        region = _add(chunks[i - 1], _add(pad, pad))
        below = out[i]
        rounded = tuple(r // b * b - 2 * p for r, b, p in zip(region, below, pad, strict=True))
        if min(rounded) <= 0:
            raise FlowArgumentError(
                f"auto_divisibility: no chunk of level {i - 1} near "
                f"{list(chunks[i - 1])} holds whole chunks of level {i} ({list(below)}) "
                f"with pads {list(pad)}: make processing_chunk_sizes[{i - 1}] larger"
            )
        out[i - 1] = (rounded[0], rounded[1], rounded[2])
    return out


def plan_levels(
    chunk_sizes: Any,
    crop_pads: Any = (0, 0, 0),
    blend_pads: Any = (0, 0, 0),
    blend_modes: Any = "quadratic",
    auto_divisibility: bool = False,
) -> Levels:
    """The levels of ``processing_chunk_sizes`` (largest first) and their pads and modes,
    checked: pads >= 0, ``2 * blend <= chunk``, and each level's region a whole number
    of the next level's chunks (else an error naming the level, the sizes and the
    nearest sizes that pass; ``auto_divisibility`` rounds the upper levels instead)."""
    if (
        isinstance(chunk_sizes, str)
        or not isinstance(chunk_sizes, Sequence)
        or not chunk_sizes
        or not all(isinstance(c, Sequence) and not isinstance(c, str) for c in chunk_sizes)
    ):
        raise FlowArgumentError(
            "processing_chunk_sizes must be a list of x, y, z sizes, one per level, largest "
            f"first, e.g. [[512, 512, 64], [256, 256, 64]]; got {chunk_sizes!r}"
        )
    n = len(chunk_sizes)
    chunks = [_vector(c, f"processing_chunk_sizes[{i}]", 1) for i, c in enumerate(chunk_sizes)]
    crops = _per_level(crop_pads, n, "processing_crop_pads", 0)
    blends = _per_level(blend_pads, n, "processing_blend_pads", 0)
    modes = _modes(blend_modes, n)
    if auto_divisibility:
        chunks = _auto_divisible(chunks, list(zip(crops, blends, strict=True)))
    for i in range(n):
        if any(2 * b > c for b, c in zip(blends[i], chunks[i], strict=True)):
            raise FlowArgumentError(
                f"processing_blend_pads[{i}] = {list(blends[i])} must be at most half of "
                f"processing_chunk_sizes[{i}] = {list(chunks[i])}: an output overlaps only "
                "its direct neighbours"
            )
    for i in range(1, n):
        pad = _add(crops[i - 1], blends[i - 1])
        region = _add(chunks[i - 1], _add(pad, pad))
        if any(r % c for r, c in zip(region, chunks[i], strict=True)):
            raise FlowArgumentError(
                f"processing_chunk_sizes[{i}] = {list(chunks[i])} must divide the region of "
                f"level {i - 1}: processing_chunk_sizes[{i - 1}] + 2 x (crop + blend pads) = "
                f"{list(chunks[i - 1])} + 2 x {list(pad)} = {list(region)}. Nearest sizes "
                f"that do: processing_chunk_sizes[{i}] = "
                f"{list(_nearest_divisors(region, chunks[i]))}, or processing_chunk_sizes"
                f"[{i - 1}] = {list(_nearest_upper(chunks[i - 1], pad, chunks[i]))} "
                "(auto_divisibility=True picks the latter)"
            )
    return Levels(
        tuple(Level(c, k, b, m) for c, k, b, m in zip(chunks, crops, blends, modes, strict=True))
    )


def tiles(box: Box, size: Int3) -> list[Box]:
    """The boxes of ``size`` tiling ``box`` exactly (x fastest)."""
    lo, hi = box
    counts = [(hi[d] - lo[d]) // size[d] for d in range(3)]
    out: list[Box] = []
    for k in range(counts[2]):
        for j in range(counts[1]):
            for i in range(counts[0]):
                start = (lo[0] + i * size[0], lo[1] + j * size[1], lo[2] + k * size[2])
                out.append((start, _add(start, size)))
    return out


def ramp(mode: str, pad: int) -> npt.NDArray[np.float64]:
    """The rising weights over an overlap of ``2 * pad`` voxels; ``ramp + ramp[::-1]`` is 1."""
    k = np.arange(1, 2 * pad + 1, dtype=np.float64)
    if mode == "linear":
        return k / (2 * pad + 1)
    u = k / (pad + 0.5)  # quadratic (and defer): two parabolas meeting at the middle
    return np.where(k <= pad, u**2 / 2, 1 - (2 - u) ** 2 / 2)


@functools.lru_cache(maxsize=64)
def blend_weights(
    mode: str,
    shape: Int3,
    blend: Int3,
    ramp_start: tuple[bool, ...],
    ramp_stop: tuple[bool, ...],
    dtype: str = "float64",
) -> npt.NDArray[Any]:
    """The ``(X, Y, Z)`` weights of one output of ``shape``: 1, ramped over ``2 * blend``
    voxels at each side where a neighbour overlaps it (``ramp_start``, ``ramp_stop``);
    computed in float64, given as ``dtype`` (cached: a level's outputs share a few)."""
    profiles = []
    for d in range(3):
        profile = np.ones(shape[d], dtype=np.float64)
        b = blend[d]
        if b:
            rising = ramp(mode, b)
            if ramp_start[d]:
                profile[: 2 * b] *= rising
            if ramp_stop[d]:
                profile[-2 * b :] *= rising[::-1]
        profiles.append(profile)
    weights = profiles[0][:, None, None] * profiles[1][None, :, None] * profiles[2][None, None, :]
    typed: npt.NDArray[Any] = weights.astype(dtype, copy=False)
    typed.flags.writeable = False
    return typed


def accumulator_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """Where weighted outputs of ``dtype`` are summed: float32 where it holds their sum
    to well within rounding (8- and 16-bit integers, float16/32), else float64."""
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return np.dtype(np.float32)
    if dtype.kind in "biu" and dtype.itemsize <= 2:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def lowest_value(dtype: np.dtype[Any]) -> Any:
    """Where a running maximum of ``dtype`` values starts: below every value."""
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    return False if dtype.kind == "b" else -np.inf


def box_slices(box: Box, within: Box) -> tuple[slice, slice, slice]:
    return tuple(  # type: ignore[return-value]
        slice(box[0][d] - within[0][d], box[1][d] - within[0][d]) for d in range(3)
    )


def box_intersection(a: Box, b: Box) -> Box:
    lo = (max(a[0][0], b[0][0]), max(a[0][1], b[0][1]), max(a[0][2], b[0][2]))
    hi = (min(a[1][0], b[1][0]), min(a[1][1], b[1][1]), min(a[1][2], b[1][2]))
    return lo, hi


def blend_into(
    region: Box, boxes: Sequence[Box], outputs: Sequence[npt.NDArray[Any]], level: Level
) -> npt.NDArray[Any]:
    """The output over ``region`` of the outputs of ``boxes`` (which tile it), each
    covering its box padded by ``level.blend``: placed where they do not overlap,
    blended by ``level.mode`` where they do."""
    first = outputs[0]
    shape = (first.shape[0], *(region[1][d] - region[0][d] for d in range(3)))
    if level.blend == (0, 0, 0):
        out = np.empty(shape, dtype=first.dtype)
        for box, output in zip(boxes, outputs, strict=True):
            out[(slice(None), *box_slices(box, region))] = output
        return out
    if level.mode == "max":
        out = np.full(shape, lowest_value(first.dtype), dtype=first.dtype)
    else:
        out = np.zeros(shape, dtype=accumulator_dtype(first.dtype))
    for box, output in zip(boxes, outputs, strict=True):
        covered = (_sub(box[0], level.blend), _add(box[1], level.blend))
        part = box_intersection(covered, region)
        target = out[(slice(None), *box_slices(part, region))]
        source = output[(slice(None), *box_slices(part, covered))]
        if level.mode == "max":
            np.maximum(target, source, out=target)
            continue
        ramp_start = tuple(box[0][d] > region[0][d] for d in range(3))
        ramp_stop = tuple(box[1][d] < region[1][d] for d in range(3))
        size = (covered[1][0] - covered[0][0], covered[1][1] - covered[0][1])
        shape = (*size, covered[1][2] - covered[0][2])
        weights = blend_weights(
            level.mode, shape, level.blend, ramp_start, ramp_stop, out.dtype.name
        )[box_slices(part, covered)]
        target += source * weights
    if level.mode == "max":
        return out
    return cast_rounded(out, first.dtype, in_place=True)


#: ``call(regions)``: ``fn``'s ``(C, X, Y, Z)`` output for each region (its input box).
BottomCall = Callable[[list[Box]], list[npt.NDArray[Any]]]


class Evaluator:
    """One top-level task's output, level by level, in this process's memory: the last
    level's regions go to ``call`` (which runs ``fn`` on them), the others are cut into
    the next level's chunks and blended."""

    def __init__(self, levels: Levels, call: BottomCall) -> None:
        self.levels = levels
        self.call = call

    def outputs(self, index: int, boxes: list[Box]) -> list[npt.NDArray[Any]]:
        """The output of each box of level ``index``: the box padded by its blend pad."""
        level = self.levels.levels[index]
        regions = [(_sub(lo, level.pad), _add(hi, level.pad)) for lo, hi in boxes]
        if index == len(self.levels.levels) - 1:
            results = self.call(regions)
            for region, result in zip(regions, results, strict=True):
                want = tuple(region[1][d] - region[0][d] for d in range(3))
                if result.ndim != 4 or tuple(result.shape[1:]) != want:
                    raise ValueError(
                        f"fn returned an array of shape {result.shape}; expected (C, "
                        f"{want[0]}, {want[1]}, {want[2]}): the (C, X, Y, Z) shape of its input "
                        f"region {list(region[0])} - {list(region[1])} (a chunk of "
                        f"{list(level.chunk)} padded by crop + blend pads {list(level.pad)})"
                    )
        else:
            below = self.levels.levels[index + 1]
            results = []
            for region in regions:
                children = tiles(region, below.chunk)
                results.append(
                    blend_into(region, children, self.outputs(index + 1, children), below)
                )
        crop = level.crop
        if crop == (0, 0, 0):
            return results
        return [
            r[:, crop[0] : r.shape[1] - crop[0], crop[1] : r.shape[2] - crop[1]][
                ..., crop[2] : r.shape[3] - crop[2]
            ]
            for r in results
        ]


def task_count(levels: Levels) -> int:
    """How many times ``fn`` runs in one top-level task (chunks of the last level)."""
    count = 1
    for above, below in zip(levels.levels, levels.levels[1:], strict=False):
        count *= math.prod(r // c for r, c in zip(above.region, below.chunk, strict=True))
    return count
