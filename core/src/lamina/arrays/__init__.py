"""Layers in the PyData array ecosystem: Dask arrays, xarray, and Dask arrays written into
layers.

* :func:`to_dask` (also ``layer.to_dask(...)``): a lazy ``dask.array.Array`` ``(C, X, Y,
  Z)`` over a layer's box at a resolution, in blocks aligned to the layer's storage
  grid, read through the layer (processors and resampling included);
* :class:`LayerTarget`: a target for ``dask.array.store`` that writes a layer, refusing
  writes off its write grid (two blocks would race for a chunk);
* :func:`open_dataarray` (and xarray's ``engine="lamina"``, registered through xarray's
  entry point): an ``xarray.DataArray`` with dims ``c, x, y, z`` and coordinates in nm;
* ``lamina.flows.store`` writes a Dask or numpy array into any layer as a flow.

Needs the ``arrays`` extra (``pip install 'lamina[arrays]'``: dask and xarray); nothing
here is imported by ``import lamina``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "to_dask": "lamina.arrays.dask_array",
    "LayerTarget": "lamina.arrays.target",
    "open_dataarray": "lamina.arrays.xarray_backend",
    "block_edges": "lamina.arrays.blocks",
}

__all__ = ["LayerTarget", "block_edges", "open_dataarray", "to_dask"]

if TYPE_CHECKING:
    from lamina.arrays.blocks import block_edges
    from lamina.arrays.dask_array import to_dask
    from lamina.arrays.target import LayerTarget
    from lamina.arrays.xarray_backend import open_dataarray

__getattr__ = module_getattr(__name__, _LAZY, globals())
