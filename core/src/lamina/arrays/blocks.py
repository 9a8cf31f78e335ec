"""Where a layer's array is cut into blocks: on the layer's storage grid at the resolution
read, so that no storage chunk (or shard) is read by two blocks.

A layer read at one of its backend's scales uses that scale's write grid (its chunks, or
the shards of a sharded scale) from the scale's voxel offset. A layer that resamples
(``data_resolution``) reads the data resolution's grid, which lines up with voxels at
the resolution read when the ratio makes it whole; otherwise there is no grid to follow
and blocks are cut from the box's start.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D

__all__ = ["ArrayGeometry", "BoxedArray", "array_geometry", "block_edges", "block_sizes"]

Int3 = tuple[int, int, int]

#: A block covers about this many voxels per axis by default (whole grid cells).
DEFAULT_BLOCK_VOXELS = (512, 512, 64)


@attrs.frozen
class ArrayGeometry:
    """A layer's array at one resolution: its box in voxels, channels, dtype, and the
    storage grid (``offset``, ``cell``) its blocks follow (``None``: there is none)."""

    resolution: Vec3D[float]
    start: Int3
    stop: Int3
    num_channels: int
    dtype: np.dtype[Any]
    grid: tuple[Int3, Int3] | None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.num_channels, *(b - a for a, b in zip(self.start, self.stop, strict=True)))  # type: ignore[return-value]

    @property
    def bbox(self) -> BBox3D:
        return BBox3D.from_coords(self.start, self.stop, self.resolution)


class BoxedArray:
    """What dask and numpy ask of an array-like over a layer's box (``shape``, ``dtype``,
    ``ndim``), and the voxel box a key of slices addresses."""

    geometry: ArrayGeometry

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.geometry.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.geometry.dtype

    @property
    def ndim(self) -> int:
        return 4

    def box(self, spatial: Sequence[slice]) -> tuple[list[int], list[int]]:
        """The voxel box (start, stop) of slices relative to the array's first voxel."""
        lo, hi = [], []
        for d, part in enumerate(spatial):
            begin, end, step = part.indices(self.shape[d + 1])
            if step != 1:
                raise IndexError("a layer's array is read and written in boxes (step 1)")
            lo.append(self.geometry.start[d] + begin)
            hi.append(self.geometry.start[d] + end)
        return lo, hi


def _whole(values: Vec3D[float]) -> Int3 | None:
    """``values`` as whole numbers, or ``None`` when they are not."""
    if all(abs(v - round(v)) < 1e-6 for v in values):
        return (round(values[0]), round(values[1]), round(values[2]))
    return None


def array_geometry(
    layer: Any, resolution: RawVec3D | None = None, bbox: BBox3D | None = None
) -> ArrayGeometry:
    """The geometry of ``layer``'s array at ``resolution`` (default: the layer's default
    desired resolution, else its backend's finest) over ``bbox`` (default: the dataset's
    bounds, grown to whole voxels)."""
    backend = getattr(layer, "backend", None)
    if backend is None or not hasattr(backend, "get_write_grid_size"):
        raise TypeError(
            f"layer must be a volumetric layer (e.g. lamina.build_cv_layer(...)); got "
            f"{type(layer).__name__}"
        )
    if resolution is not None:
        res = Vec3D.from_seq(resolution, "resolution").float()
    elif getattr(layer, "default_desired_resolution", None) is not None:
        res = layer.default_desired_resolution
    else:
        res = backend.resolutions[0]
    data_res = getattr(layer, "data_resolution", None) or res
    if data_res not in backend.resolutions:
        from lamina.errors import UnknownResolutionError

        scales = ", ".join(r.pformat() for r in backend.resolutions)
        raise UnknownResolutionError(
            f"resolution {res.pformat()} nm is not a scale of {backend.name} (its scales: "
            f"{scales}); give one of them, or build the layer with data_resolution= to "
            "read others by resampling"
        )
    if bbox is None:
        bbox = backend.get_bounds(data_res).bbox.snapped((0, 0, 0), res, "expand")
    start = _whole(bbox.start / res)
    stop = _whole(bbox.end / res)
    if start is None or stop is None:
        raise ValueError(
            f"bbox {bbox.pformat()} nm is not whole voxels at {res.pformat()} nm: give a box "
            "on the voxel grid (BBox3D.from_coords(start, end, resolution))"
        )
    if any(b <= a for a, b in zip(start, stop, strict=True)):
        raise ValueError(f"bbox {bbox.pformat()} is empty")
    ratio = data_res / res
    offset = _whole(backend.get_voxel_offset(data_res) * ratio)
    cell = _whole(backend.get_write_grid_size(data_res) * ratio)
    grid = None if offset is None or cell is None or min(cell) < 1 else (offset, cell)
    return ArrayGeometry(res, start, stop, backend.num_channels, np.dtype(backend.dtype), grid)


def block_edges(start: int, stop: int, offset: int, step: int) -> list[int]:
    """The cuts of ``[start, stop)`` into blocks of ``step`` on the grid ``offset + k *
    step`` (the first and last blocks cut short at the box's ends)."""
    first = offset + ((start - offset) // step + 1) * step
    return [start, *range(first, stop, step), stop]


def block_sizes(
    geometry: ArrayGeometry, chunks: Sequence[int] | None
) -> tuple[tuple[int, ...], ...]:
    """Dask's ``chunks`` of ``geometry``'s array: ``(C,)`` then each axis's block sizes,
    from ``chunks`` (x, y, z voxels, or C first; default about 512 x 512 x 64), which
    must be whole grid cells when the layer has a grid."""
    c = geometry.num_channels
    if chunks is None:
        cell = geometry.grid[1] if geometry.grid is not None else (1, 1, 1)
        size = tuple(k * max(1, t // k) for k, t in zip(cell, DEFAULT_BLOCK_VOXELS, strict=True))
    else:
        given = [int(v) for v in chunks]
        if len(given) == 4:
            if given[0] != c:
                raise ValueError(
                    f"chunks {list(chunks)}: the channel axis is one block of all {c} channels; "
                    f"give ({c}, x, y, z) or (x, y, z)"
                )
            given = given[1:]
        if len(given) != 3 or min(given) < 1:
            raise ValueError(
                f"chunks must be x, y, z voxels (or C, x, y, z), each >= 1; got {chunks!r}"
            )
        size = tuple(given)
        if geometry.grid is not None:
            cell = geometry.grid[1]
            if any(s % k for s, k in zip(size, cell, strict=True)):
                nearest = [max(k, round(s / k) * k) for s, k in zip(size, cell, strict=True)]
                raise ValueError(
                    f"chunks {list(size)} must be whole multiples of the storage grid "
                    f"{list(cell)} (chunks, or shards) at {geometry.resolution.pformat()} nm, "
                    f"so that no chunk is read twice; try {nearest}"
                )
    offset = geometry.grid[0] if geometry.grid is not None else geometry.start
    axes = []
    for d in range(3):
        cuts = block_edges(geometry.start[d], geometry.stop[d], offset[d], size[d])
        axes.append(tuple(b - a for a, b in itertools.pairwise(cuts) if b > a))
    return ((c,), *axes)
