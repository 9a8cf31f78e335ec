"""A layer as the target of ``dask.array.store``.

``dask.array.store(array, target, lock=False)`` writes each block of ``array`` with
``target[key] = block``. Blocks that split a storage chunk (or shard) between them would
race for it, so :class:`LayerTarget` refuses a write off the layer's write grid, naming
the chunking to use: ``array.rechunk(target.chunks)`` lines the blocks up with the grid.
(``lamina.flows.store`` does all of that, resumably, on lamina's executors.)
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from lamina.arrays.blocks import ArrayGeometry, BoxedArray, array_geometry, block_sizes
from lamina.volumetric.geometry import BBox3D, RawVec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = ["LayerTarget"]


@attrs.frozen(init=False)
class LayerTarget(BoxedArray):
    """Writes into ``layer`` at ``resolution`` over ``bbox`` (default: the dataset's
    bounds); ``target[c, x, y, z] = block`` with slices relative to the box's first
    voxel. ``chunks`` is the write-grid-aligned chunking to rechunk an array to."""

    layer: Any
    geometry: ArrayGeometry

    def __init__(
        self, layer: Any, resolution: RawVec3D | None = None, bbox: BBox3D | None = None
    ) -> None:
        geometry = array_geometry(layer, resolution, bbox)
        self.__attrs_init__(layer, geometry)

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """Dask chunks on the layer's write grid: rechunk an array to these to store it."""
        return block_sizes(self.geometry, None)

    def __setitem__(self, key: tuple[slice, ...], value: Any) -> None:
        channels, *spatial = key
        if channels != slice(None) and channels.indices(self.shape[0])[:2] != (0, self.shape[0]):
            raise IndexError("a LayerTarget writes every channel at once")
        lo, hi = self.box(spatial)
        idx = VolumetricIndex.from_coords(lo, hi, self.geometry.resolution)
        backend = self.layer.backend
        if not backend.is_write_aligned(idx):
            raise ValueError(
                f"a block of {idx.pformat()} is not on the write grid of {backend.name} "
                f"({backend.describe_write_grid(idx.resolution)}): two blocks would write one "
                "chunk. Rechunk the array to target.chunks first "
                "(dask.array.store(array.rechunk(target.chunks), target, lock=False)), or use "
                "lamina.flows.store(array, layer)"
            )
        self.layer[idx] = np.asarray(value)
