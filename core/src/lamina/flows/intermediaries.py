"""The intermediaries of an ``apply`` whose top-level outputs cannot be written directly.

When top-level outputs overlap (a top-level blend pad), or their boxes are not on the
destination's write grid, a task writing its own output would race its neighbours for
the chunks they share. So each top-level task stores its output — weighted for blending
(:func:`lamina.flows.subchunking.blend_weights`) — as one ``.npy`` file of its own,
``<directory>/<task number>.npy``, written under a temporary name and renamed (a killed
worker leaves no half file); then a second pass, the *blend* pass, whose tasks lie on the
destination's write grid (one owner per chunk: race-free on every executor and on object
storage), reads the files that overlap its box, sums them (``linear``, ``quadratic``,
``defer``), takes their maximum (``max``) or places them (no blend pad), and writes.

The directory is named after the run, so ``resume=True`` finds what the first pass
stored; it must be on a file system every worker sees (a local directory for the
``serial``, ``threads`` and ``processes`` executors and a local Dask cluster, a shared
one for a cluster of machines). It is removed once the blend pass is done, unless kept.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lamina.flows.subchunking import (
    Box,
    Int3,
    blend_weights,
    box_intersection,
    box_slices,
    lowest_value,
    tiles,
)
from lamina.volumetric.data import cast_rounded
from lamina.volumetric.index import VolumetricIndex

__all__ = ["BlendTask", "TaskOutputs", "TopGrid"]


def _slices(part: Box, within: Box) -> tuple[slice, ...]:
    return (slice(None), *box_slices(part, within))


@attrs.frozen
class TopGrid:
    """The top-level tasks: boxes of ``chunk`` tiling ``region`` from its start, x
    fastest; task ``n``'s output covers its box padded by ``blend``, inside ``region``."""

    region: Box
    chunk: Int3
    blend: Int3

    @property
    def counts(self) -> Int3:
        lo, hi = self.region
        c = self.chunk
        return ((hi[0] - lo[0]) // c[0], (hi[1] - lo[1]) // c[1], (hi[2] - lo[2]) // c[2])

    def boxes(self) -> list[Box]:
        return tiles(self.region, self.chunk)

    def box(self, n: int) -> Box:
        nx, ny, _ = self.counts
        position = (n % nx, (n // nx) % ny, n // (nx * ny))
        lo = tuple(self.region[0][d] + position[d] * self.chunk[d] for d in range(3))
        return (lo[0], lo[1], lo[2]), (
            lo[0] + self.chunk[0],
            lo[1] + self.chunk[1],
            lo[2] + self.chunk[2],
        )

    def covered(self, n: int) -> Box:
        """What task ``n``'s stored output covers: its box padded by ``blend``, in the region."""
        lo, hi = self.box(n)
        b = self.blend
        padded = (
            (lo[0] - b[0], lo[1] - b[1], lo[2] - b[2]),
            (hi[0] + b[0], hi[1] + b[1], hi[2] + b[2]),
        )
        return box_intersection(padded, self.region)

    def weights(self, n: int, mode: str, dtype: str = "float64") -> npt.NDArray[Any]:
        """Task ``n``'s blending weights over :meth:`covered`: ramped where a neighbour
        task overlaps it, 1 at the region's edges."""
        lo, hi = self.box(n)
        region_lo, region_hi = self.region
        b = self.blend
        padded = (
            (lo[0] - b[0], lo[1] - b[1], lo[2] - b[2]),
            (hi[0] + b[0], hi[1] + b[1], hi[2] + b[2]),
        )
        shape = tuple(padded[1][d] - padded[0][d] for d in range(3))
        ramp_start = tuple(lo[d] > region_lo[d] for d in range(3))
        ramp_stop = tuple(hi[d] < region_hi[d] for d in range(3))
        full = blend_weights(mode, shape, b, ramp_start, ramp_stop, dtype)  # type: ignore[arg-type,unused-ignore]
        return full[_slices(self.covered(n), padded)[1:]]

    def overlapping(self, box: Box) -> list[int]:
        """The tasks whose stored output overlaps ``box``."""
        ranges = []
        for d in range(3):
            origin, c, b, n = self.region[0][d], self.chunk[d], self.blend[d], self.counts[d]
            first = max(0, (box[0][d] - origin - b) // c)
            last = min(n - 1, (box[1][d] - 1 - origin + b) // c)
            ranges.append(range(first, last + 1))
        nx, ny, _ = self.counts
        return [i + nx * (j + ny * k) for k in ranges[2] for j in ranges[1] for i in ranges[0]]


@attrs.frozen
class TaskOutputs:
    """The stored outputs of a run's top-level tasks, one ``.npy`` file each."""

    directory: str

    def path(self, n: int) -> Path:
        return Path(self.directory) / f"{n}.npy"

    def save(self, n: int, array: npt.NDArray[Any]) -> int:
        """Store task ``n``'s output (renamed into place once whole); its size in bytes."""
        path = self.path(n)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        with part.open("wb") as file:
            np.save(file, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(part, path)
        return int(array.nbytes)

    def load(self, n: int) -> npt.NDArray[Any]:
        path = self.path(n)
        try:
            stored: npt.NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)
            return stored
        except FileNotFoundError:
            raise FileNotFoundError(
                f"the stored output of top-level task {n} ({path}) is missing: the first "
                "pass did not finish, or its intermediaries were removed. Run the flow again "
                "without resume"
            ) from None

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@attrs.frozen
class BlendTask:
    """One task of the blend pass: the stored outputs overlapping its box, combined by
    ``combine`` (``"sum"``, ``"max"`` or ``"place"``) and written into ``dst``."""

    outputs: TaskOutputs
    grid: TopGrid
    combine: str
    dst: Any
    dtype: str

    def __call__(self, idx: VolumetricIndex) -> int:
        box: Box = (tuple(idx.start), tuple(idx.stop))  # type: ignore[assignment]
        out: npt.NDArray[Any] | None = None
        for n in self.grid.overlapping(box):
            covered = self.grid.covered(n)
            part = box_intersection(covered, box)
            if any(part[0][d] >= part[1][d] for d in range(3)):
                continue
            data = self.outputs.load(n)[_slices(part, covered)]
            if out is None:
                out = self._start(data, tuple(idx.shape))
            target = out[_slices(part, box)]
            if self.combine == "sum":
                target += data
            elif self.combine == "max":
                np.maximum(target, data, out=target)
            else:
                target[...] = data
        if out is None:
            raise AssertionError(f"no top-level task covers {idx.pformat()}")
        result = cast_rounded(out, self.dtype, in_place=True) if self.combine == "sum" else out
        self.dst[idx] = result
        return int(result.nbytes)

    def _start(self, data: npt.NDArray[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
        full = (data.shape[0], *shape)
        if self.combine == "max":
            return np.full(full, lowest_value(data.dtype), dtype=data.dtype)
        return np.zeros(full, dtype=data.dtype)
