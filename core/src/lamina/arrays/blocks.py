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

__all__ = [
    "ArrayGeometry",
    "BoxedArray",
    "array_geometry",
    "block_edges",
    "block_size",
    "block_sizes",
    "default_block_size",
]

Int3 = tuple[int, int, int]

#: A block's bytes by default when dask's ``array.chunk-size`` setting cannot be read.
DEFAULT_BLOCK_BYTES = 128 * 2**20


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


def _block_bytes_limit() -> int:
    """Dask's ``array.chunk-size`` setting in bytes (what ``chunks="auto"`` aims at)."""
    try:
        import dask.config
        from dask.utils import parse_bytes
    except ImportError:
        return DEFAULT_BLOCK_BYTES
    setting = dask.config.get("array.chunk-size", DEFAULT_BLOCK_BYTES)
    return int(parse_bytes(setting)) if isinstance(setting, str) else int(setting)


def default_block_size(geometry: ArrayGeometry) -> Int3:
    """The largest block of ``k`` grid cells per axis (fewer on an axis the box spans in
    fewer cells) whose voxels of every channel fit dask's ``array.chunk-size`` (128 MiB
    unless configured), as ``dask.array.from_array(chunks="auto")`` sizes blocks: a few
    large blocks cost less per voxel to read, schedule and assemble than many small
    ones. At least one cell, however large."""
    offset, cell = geometry.grid if geometry.grid is not None else (geometry.start, (1, 1, 1))
    cells_spanned = [  # the grid cells the box touches on each axis
        -(-(stop - o) // k) - (start - o) // k
        for start, stop, o, k in zip(geometry.start, geometry.stop, offset, cell, strict=True)
    ]
    voxel_bytes = geometry.num_channels * geometry.dtype.itemsize
    limit = _block_bytes_limit()

    def size(k: int) -> Int3:
        return tuple(c * min(k, n) for c, n in zip(cell, cells_spanned, strict=True))  # type: ignore[return-value]

    def fits(k: int) -> bool:
        x, y, z = size(k)
        return x * y * z * voxel_bytes <= limit

    low, high = 1, max(cells_spanned)  # the largest k that fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return size(low)


def block_size(geometry: ArrayGeometry, chunks: Sequence[int] | None) -> Int3:
    """The x, y, z voxels of one block: ``chunks`` (x, y, z, or C first) checked to be
    whole grid cells when the layer has a grid, or :func:`default_block_size`."""
    c = geometry.num_channels
    if chunks is None:
        return default_block_size(geometry)
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
    return size  # type: ignore[return-value]


def block_sizes(
    geometry: ArrayGeometry, chunks: Sequence[int] | None
) -> tuple[tuple[int, ...], ...]:
    """Dask's ``chunks`` of ``geometry``'s array: ``(C,)`` then each axis's block sizes,
    blocks of :func:`block_size` cut on the layer's grid (or from the box's start)."""
    size = block_size(geometry, chunks)
    offset = geometry.grid[0] if geometry.grid is not None else geometry.start
    axes = []
    for d in range(3):
        cuts = block_edges(geometry.start[d], geometry.stop[d], offset[d], size[d])
        axes.append(tuple(b - a for a, b in itertools.pairwise(cuts) if b > a))
    return ((geometry.num_channels,), *axes)
