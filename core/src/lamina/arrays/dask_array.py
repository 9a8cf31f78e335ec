"""``to_dask``: a layer as a lazy ``dask.array.Array`` of ``(C, X, Y, Z)``.

Each block is one read through the layer (its processors and resampling included) of a
box on the layer's storage grid (:mod:`lamina.arrays.blocks`), so no storage chunk is read
twice. The graph holds the layer once, in a :class:`LayerReader`, which pickles as the
layer does (by spec, not by data, for volumes on storage): the array computes on the
threaded scheduler, on lamina-dask's cluster or on any ``dask.distributed`` cluster.

Memory order: dask assembles a computed result in C order, so blocks are read straight
into C-ordered arrays (a layer that reads directly pastes each storage chunk into place);
a Fortran-ordered block, as precomputed volumes store them, would cost a transposing
copy at assembly, three times the read. The array ``to_dask`` returns computes itself
in the layer's own order instead (:mod:`lamina.arrays.layer_array`), as ``layer[...]``
reads; inside :func:`block_order` (``flows.store`` uses it with the destination's order,
and :func:`materialize` assembles without dask), blocks come in that order too, so a
volume copied through a Dask array is never transposed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lamina.arrays.blocks import (
    ArrayGeometry,
    BoxedArray,
    array_geometry,
    block_size,
    block_sizes,
)
from lamina.concurrency import run_all, shared_pool
from lamina.flows.identity import state_digest
from lamina.volumetric.data import new_volume_array
from lamina.volumetric.geometry import BBox3D, RawVec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = [
    "LayerReader",
    "assemble",
    "block_order",
    "chosen_block_order",
    "materialize",
    "to_dask",
]

_BLOCK_ORDER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lamina_block_order", default=None
)

#: Assembling at least this many bytes pastes blocks on threads (numpy copies release
#: the GIL); smaller results are pasted in the calling thread.
THREADED_ASSEMBLY_BYTES = 8 * 2**20


def chosen_block_order() -> str | None:
    """The order :func:`block_order` chose in this context (``None``: none chosen)."""
    return _BLOCK_ORDER.get()


@contextlib.contextmanager
def block_order(order: str) -> Iterator[None]:
    """Blocks a :class:`LayerReader` reads in this context (this thread, and what the
    synchronous scheduler runs in it) are in ``order``: ``"C"`` or ``"F"`` (a backend's
    ``memory_order``)."""
    token = _BLOCK_ORDER.set(order)
    try:
        yield
    finally:
        _BLOCK_ORDER.reset(token)


@attrs.frozen
class LayerReader(BoxedArray):
    """The array-like ``dask.array.from_array`` reads blocks from: ``reader[c, x, y, z]``
    (slices, relative to the array's first voxel) is one read through the layer, into a
    block in ``order`` (``None``: the :func:`block_order` in force, C by default)."""

    layer: Any
    geometry: ArrayGeometry
    order: str | None = None

    def in_layer_order(self) -> LayerReader:
        """This reader, reading blocks in its layer's memory order (as the layer reads)."""
        order = getattr(getattr(self.layer, "backend", None), "memory_order", "C")
        return attrs.evolve(self, order=order)

    def __getitem__(self, key: tuple[slice, ...]) -> npt.NDArray[Any]:
        channels, *spatial = key
        lo, hi = self.box(spatial)
        idx = VolumetricIndex.from_coords(lo, hi, self.geometry.resolution)
        shape = (self.shape[0], *(h - b for b, h in zip(lo, hi, strict=True)))
        out = new_volume_array(shape, self.dtype, self.order or _BLOCK_ORDER.get() or "C")
        read_into = getattr(self.layer, "read_into", None)
        if read_into is not None:
            read_into(idx, out)
        else:
            out[...] = np.asarray(self.layer[idx])
        return out[channels]


def materialize(array: Any, order: str = "C") -> npt.NDArray[Any]:
    """A Dask array's values, computed in this thread (dask's synchronous scheduler),
    with its blocks in ``order`` and assembled in that order (not dask's C order)."""
    from dask.core import flatten
    from dask.local import get_sync

    flat = list(flatten(array.__dask_keys__()))  # type: ignore[no-untyped-call]
    with block_order(order):
        graph = array.__dask_optimize__(array.__dask_graph__(), flat)
        blocks = get_sync(graph, flat)
    return assemble(blocks, array.chunks, array.dtype, order)


def assemble(
    blocks: Sequence[Any], chunks: Sequence[Sequence[int]], dtype: Any, order: str
) -> npt.NDArray[Any]:
    """One ``order`` array of ``blocks`` (in the order of dask's keys, flattened) laid out
    by dask's ``chunks``; a single block is returned as it is (not copied). Large results
    are pasted on a few threads."""
    if len(blocks) == 1:
        return np.asarray(blocks[0])
    shape = [sum(sizes) for sizes in chunks]
    out = new_volume_array(shape, dtype, order)
    starts = [list(itertools.accumulate(sizes, initial=0)) for sizes in chunks]
    positions = itertools.product(*(range(len(sizes)) for sizes in chunks))

    def paste(position: tuple[int, ...], block: Any) -> None:
        where = tuple(slice(starts[d][i], starts[d][i + 1]) for d, i in enumerate(position))
        out[where] = block

    pastes = [
        functools.partial(paste, position, block)
        for position, block in zip(positions, blocks, strict=True)
    ]
    pool = shared_pool("lamina-assemble", 2) if out.nbytes >= THREADED_ASSEMBLY_BYTES else None
    run_all(pastes, pool, caller_takes_first=True)
    return out


def _name(layer: Any, geometry: ArrayGeometry, chunks: Any) -> str:
    """A name that is the same for the same layer, box and blocks (dask's graph key)."""
    state = state_digest(layer) or f"unpicklable-{id(layer)}"  # then: this array only
    digest = hashlib.blake2b(repr((state, geometry, chunks)).encode(), digest_size=12)
    return f"lamina-{digest.hexdigest()}"


def to_dask(
    layer: Any,
    resolution: RawVec3D | None = None,
    bbox: BBox3D | None = None,
    chunks: Sequence[int] | None = None,
) -> Any:
    """``layer`` over ``bbox`` at ``resolution`` as a lazy ``dask.array.Array`` of
    ``(C, X, Y, Z)``.

    Args:
        layer: a volumetric layer (any format, a layer set member, a range map, a layer
            with processors).
        resolution: nm per voxel (default: the layer's default desired resolution, else
            its finest scale).
        bbox: the box (nm; default: the dataset's bounds at ``resolution``).
        chunks: x, y, z voxels of one block (or C first), whole multiples of the storage
            grid (default: as many whole cells as fit dask's ``array.chunk-size``, 128 MiB
            unless configured); blocks are aligned to the grid.

    Returns:
        a :class:`~lamina.arrays.layer_array.LayerArray`: a ``dask.array.Array`` whose
        ``compute()`` returns the layer's memory order (as ``layer[...]`` does) and whose
        boxes sliced out read only themselves; other arrays derived from it are plain
        Dask arrays.
    """
    try:
        from lamina.arrays.layer_array import LayerArray
    except ImportError:
        raise ImportError(
            "layer.to_dask needs dask: pip install 'lamina[arrays]' (or dask[array])"
        ) from None
    geometry = array_geometry(layer, resolution, bbox)
    return LayerArray.over(LayerReader(layer, geometry), block_size(geometry, chunks))


def dask_array_of(reader: LayerReader, size: tuple[int, int, int]) -> Any:
    """The plain Dask array of ``reader``'s box in blocks of ``size`` voxels, cut on
    the layer's grid (:func:`lamina.arrays.blocks.block_sizes`)."""
    import dask.array as da

    geometry = reader.geometry
    sizes = block_sizes(geometry, size)
    return da.from_array(  # type: ignore[no-untyped-call]
        reader,
        chunks=sizes,
        name=_name(reader.layer, geometry, sizes),
        meta=np.empty((0, 0, 0, 0), dtype=geometry.dtype),
        asarray=False,
        fancy=False,
        lock=False,
        inline_array=False,
    )
