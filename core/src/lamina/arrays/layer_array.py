"""The Dask array ``layer.to_dask()`` returns: a ``dask.array.Array`` that computes in
its layer's memory order.

Dask assembles a computed array in C order, and copies a single block. For a layer
stored x fastest (precomputed, Zarr as lamina reads it) that means either blocks read
transposed or a transposing assembly: two to three times the read itself. A
:class:`LayerArray` computes as ``layer[...]`` reads instead: its own compute reads blocks
in the layer's order (its graph optimisation swaps in a reader in that order) and
assembles them in the order they came in (:func:`~lamina.arrays.dask_array.assemble`,
no copy of a single block). Values are the same either way; only the memory layout of
the result differs, and ``np.ascontiguousarray`` gives C order when that is wanted.

A box sliced out of it (``array[:, 0:256, 0:256, 0:16]``, steps of 1) is a LayerArray
over that box, on the same grid, reading only the box (a range of channels is then taken
from it by dask): dask itself would read every block the box touches in whole. That
holds for layers whose reads are the backend's alone (``layer.reads_directly``: no
processors, no resampling), where a voxel's value does not depend on the box read; for
others, and once an item assignment has changed the array, slicing is dask's own.
Other arrays derived from it (arithmetic, a new chunking, fancy indexing) are plain
Dask arrays, whose blocks are in C order so that dask's own assembly stays cheap, except
where one graph computes or persists them together with the LayerArray (the blocks they
share are read once, in the layer's order: the values are the same).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import dask.array as da
import numpy as np
import numpy.typing as npt
from dask.core import flatten

from lamina.arrays.blocks import ArrayGeometry
from lamina.arrays.dask_array import LayerReader, assemble, chosen_block_order, dask_array_of

__all__ = ["LayerArray"]

Int3 = tuple[int, int, int]


class LayerArray(da.Array):
    """A ``dask.array.Array`` over a layer whose ``compute()`` returns the layer's memory
    order. Pickles (and persists) as a plain Dask array."""

    #: The array's name when it was made, the reader of its box and the block size it
    #: was cut in (``None`` in an array dask made as a LayerArray without them).
    _lamina_source: tuple[str, LayerReader, Int3] | None = None

    @classmethod
    def over(cls, reader: LayerReader, size: tuple[int, int, int]) -> LayerArray:
        """The array of ``reader``'s box in blocks of ``size`` voxels on its grid."""
        plain = dask_array_of(reader, size)
        array: LayerArray = cls(plain.dask, plain.name, plain.chunks, meta=plain._meta)
        array._lamina_source = (array.name, reader, size)
        return array

    def __getitem__(self, index: Any) -> Any:
        """A box of voxels (slices with step 1) of a layer that reads directly is a
        LayerArray over that box; anything else is dask's own indexing."""
        source = self._direct_source()
        box = None if source is None else _box_of(index, source[0].geometry)
        if source is None or box is None:
            return super().__getitem__(index)  # type: ignore[no-untyped-call]
        reader, size = source
        channels, start, stop = box
        geometry = attrs.evolve(reader.geometry, start=start, stop=stop)
        part = LayerArray.over(attrs.evolve(reader, geometry=geometry), size)
        if channels == slice(None):
            return part
        return da.Array.__getitem__(part, channels)  # type: ignore[no-untyped-call]

    def read_box(self, box: Sequence[slice], order: str) -> npt.NDArray[Any] | None:
        """The values of the voxel box ``box`` (x, y, z slices from the array's first
        voxel) in one read through the layer, in ``order``, without dask: what
        ``array[:, *box].compute()`` gives. ``None`` where a box sliced out is dask's
        own (see :meth:`__getitem__`): read it through dask then."""
        source = self._direct_source()
        if source is None:
            return None
        return attrs.evolve(source[0], order=order)[(slice(None), *box)]

    def _direct_source(self) -> tuple[LayerReader, Int3] | None:
        """The reader and block size of this array when a box of it may be read straight
        from its layer: the array is as it was made (no item assignment has changed it)
        and the layer's reads are its backend's alone (no processors, no resampling, whose
        values could depend on the box read). ``None`` otherwise."""
        source = self._lamina_source
        if source is None or source[0] != self.name:
            return None
        _, reader, size = source
        return (reader, size) if getattr(reader.layer, "reads_directly", False) else None

    @staticmethod
    def __dask_optimize__(dsk: Mapping[Any, Any], keys: Any, **kwargs: Any) -> Any:
        """Dask's optimisation of an array graph, with every :class:`LayerReader` reading
        in its layer's order (unless :func:`~lamina.arrays.dask_array.block_order` chose
        one)."""
        if chosen_block_order() is not None:
            return da.Array.__dask_optimize__(dsk, keys, **kwargs)
        graph = dict(dsk)  # every key of the graph, before dask fuses its tasks
        for key, node in graph.items():
            value = getattr(node, "value", node)  # dask may wrap data in a DataNode
            if isinstance(value, LayerReader) and value.order is None:
                reader = value.in_layer_order()
                graph[key] = reader if node is value else type(node)(key, reader)
        return da.Array.__dask_optimize__(graph, keys, **kwargs)

    def __dask_postcompute__(self) -> tuple[Any, tuple[Any, ...]]:
        return _assemble_in_block_order, (self.chunks, self.dtype)


def _box_of(index: Any, geometry: ArrayGeometry) -> tuple[slice, Int3, Int3] | None:
    """(channel slice, start, stop) of the voxel box ``index`` selects in ``geometry``'s
    array, or ``None`` when ``index`` is not a non-empty box (steps of 1)."""
    from dask.array.slicing import normalize_index

    shape = geometry.shape
    try:
        key = index if isinstance(index, tuple) else (index,)
        parts = normalize_index(key, shape)  # type: ignore[no-untyped-call]
    except (IndexError, TypeError, ValueError):
        return None
    if len(parts) != 4 or not all(isinstance(p, slice) and p.step in (None, 1) for p in parts):
        return None
    spans = [part.indices(shape[d + 1])[:2] for d, part in enumerate(parts[1:])]
    if any(end <= begin for begin, end in spans):
        return None
    (x0, x1), (y0, y1), (z0, z1) = spans
    sx, sy, sz = geometry.start
    return parts[0], (sx + x0, sy + y0, sz + z0), (sx + x1, sy + y1, sz + z1)


def _order_of(block: npt.NDArray[Any]) -> str:
    """``"F"`` for a block laid out x fastest (as ``new_volume_array(..., "F")`` makes
    them), else ``"C"``."""
    if block.flags.c_contiguous:
        return "C"
    return "F" if np.moveaxis(block, 0, -1).flags.f_contiguous else "C"


def _assemble_in_block_order(
    results: Any, chunks: Sequence[Sequence[int]], dtype: Any
) -> npt.NDArray[Any]:
    """The computed array, from dask's nested block results, in the blocks' own order."""
    blocks = [np.asarray(b) for b in flatten(results, container=(list, tuple))]  # type: ignore[no-untyped-call]
    order = "F" if all(_order_of(b) == "F" for b in blocks) else "C"
    return assemble(blocks, chunks, dtype, order)
