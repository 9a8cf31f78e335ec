"""``to_dask``: a layer as a lazy ``dask.array.Array`` of ``(C, X, Y, Z)``.

Each block is one read through the layer (its processors and resampling included) of a
box on the layer's storage grid (:mod:`lamina.arrays.blocks`), so no storage chunk is read
twice. The graph holds the layer once, in a :class:`LayerReader`, which pickles as the
layer does (by spec, not by data, for volumes on storage): the array computes on the
threaded scheduler, on lamina-dask's cluster or on any ``dask.distributed`` cluster.

Memory order: dask assembles a computed result in C order, so blocks are read straight
into C-ordered arrays (a layer that reads directly pastes each storage chunk into place);
a Fortran-ordered block, as precomputed volumes store them, would cost a transposing
copy at assembly, three times the read. Inside :func:`block_order` (``flows.store`` uses
it with the destination's order, and :func:`materialize` assembles without dask), blocks
come in that order instead, so a volume copied through a Dask array is never transposed.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lamina.arrays.blocks import ArrayGeometry, BoxedArray, array_geometry, block_sizes
from lamina.flows.identity import state_digest
from lamina.volumetric.data import new_volume_array
from lamina.volumetric.geometry import BBox3D, RawVec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = ["LayerReader", "block_order", "materialize", "to_dask"]

_BLOCK_ORDER: contextvars.ContextVar[str] = contextvars.ContextVar(
    "lamina_block_order", default="C"
)


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
    (slices, relative to the array's first voxel) is one read through the layer."""

    layer: Any
    geometry: ArrayGeometry

    def __getitem__(self, key: tuple[slice, ...]) -> npt.NDArray[Any]:
        channels, *spatial = key
        lo, hi = self.box(spatial)
        idx = VolumetricIndex.from_coords(lo, hi, self.geometry.resolution)
        shape = (self.shape[0], *(h - b for b, h in zip(lo, hi, strict=True)))
        out = new_volume_array(shape, self.dtype, _BLOCK_ORDER.get())
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
    if len(blocks) == 1:
        return np.asarray(blocks[0])
    out = new_volume_array(array.shape, array.dtype, order)
    starts = [list(itertools.accumulate(sizes, initial=0)) for sizes in array.chunks]
    positions = itertools.product(*(range(len(sizes)) for sizes in array.chunks))
    for position, block in zip(positions, blocks, strict=True):
        where = tuple(slice(starts[d][i], starts[d][i + 1]) for d, i in enumerate(position))
        out[where] = block
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
            grid (default: about 512 x 512 x 64 of them); blocks are aligned to the grid.
    """
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(
            "layer.to_dask needs dask: pip install 'lamina[arrays]' (or dask[array])"
        ) from None
    geometry = array_geometry(layer, resolution, bbox)
    sizes = block_sizes(geometry, chunks)
    reader = LayerReader(layer, geometry)
    return da.from_array(  # type: ignore[no-untyped-call]
        reader,
        chunks=sizes,
        name=_name(layer, geometry, sizes),
        meta=np.empty((0, 0, 0, 0), dtype=geometry.dtype),
        asarray=False,
        fancy=False,
        lock=False,
        inline_array=False,
    )
