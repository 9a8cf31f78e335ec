"""xarray's ``engine="lamina"``: any path lamina opens as a lazily read ``DataArray``.

``xr.open_dataarray(path, engine="lamina", resolution=(8, 8, 40))`` (xarray finds the
engine through its ``xarray.backends`` entry point, without lamina imported first) and
:func:`open_dataarray` (for a path or a layer built in Python) give dims ``c, x, y, z``,
coordinates in nm at voxel centres (the volume's offset included), and in ``attrs`` the
resolution, the layer's path and its volume type. Reads are lazy: a selection in nm
(``.sel(x=slice(…))``) reads only the box it selects, through the layer; ``chunks=``
(xarray's) makes it a Dask array on the layer's storage grid.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina.arrays.blocks import ArrayGeometry, array_geometry, block_sizes
from lamina.volumetric.geometry import BBox3D, RawVec3D
from lamina.volumetric.index import VolumetricIndex

try:  # the entry point's class; lamina works without xarray
    from xarray.backends import BackendArray, BackendEntrypoint
except ImportError:  # pragma: no cover - only without the arrays extra
    BackendArray = object
    BackendEntrypoint = object

__all__ = ["LaminaBackendEntrypoint", "open_dataarray"]

DIMS = ("c", "x", "y", "z")


class LayerBackendArray(BackendArray):  # type: ignore[misc]
    """A layer's box as xarray's lazily indexed array: each selection is one read of the
    box it covers (then stepped or reduced to integers as asked)."""

    def __init__(self, layer: Any, geometry: ArrayGeometry) -> None:
        self.layer = layer
        self.geometry = geometry
        self.shape = geometry.shape
        self.dtype = geometry.dtype

    def __getitem__(self, key: Any) -> Any:
        from xarray.core import indexing

        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key: tuple[Any, ...]) -> npt.NDArray[Any]:
        """Read the box the key's slices and integers cover, then cut the key out of it."""
        lo: list[int] = []
        hi: list[int] = []
        local: list[slice | int] = []
        for d, part in enumerate(key[1:]):
            size = self.shape[d + 1]
            if isinstance(part, slice):
                picked = range(*part.indices(size))
                if not picked:
                    begin, end, cut = 0, 1, slice(0, 0)
                else:
                    begin, end = min(picked[0], picked[-1]), max(picked[0], picked[-1]) + 1
                    stop = picked[-1] - begin + (1 if picked.step > 0 else -1)
                    cut = slice(picked[0] - begin, stop if stop >= 0 else None, picked.step)
                local.append(cut)
            else:
                begin = int(part) % size
                end = begin + 1
                local.append(0)
            lo.append(self.geometry.start[d] + begin)
            hi.append(self.geometry.start[d] + end)
        idx = VolumetricIndex.from_coords(lo, hi, self.geometry.resolution)
        data = np.asarray(self.layer[idx])
        return data[(key[0], *local)]


def _coordinates(geometry: ArrayGeometry) -> dict[str, Any]:
    res = geometry.resolution
    coords: dict[str, Any] = {"c": np.arange(geometry.num_channels)}
    for d, name in enumerate(DIMS[1:]):
        voxels = np.arange(geometry.start[d], geometry.stop[d], dtype=np.float64)
        coords[name] = (name, (voxels + 0.5) * res[d], {"units": "nm"})
    return coords


def _attrs(layer: Any, geometry: ArrayGeometry) -> dict[str, Any]:
    backend = layer.backend
    return {
        "resolution": [float(v) for v in geometry.resolution],
        "resolution_units": "nm",
        "path": str(backend.name),
        "volume_type": str(getattr(backend, "volume_type", None) or "image"),
    }


def _name(layer: Any) -> str:
    path = str(layer.backend.name).rstrip("/")
    return os.path.basename(path.split("://", 1)[-1]) or "data"


def _variable(layer: Any, geometry: ArrayGeometry) -> Any:
    import xarray as xr
    from xarray.core import indexing

    data = indexing.LazilyIndexedArray(LayerBackendArray(layer, geometry))
    variable = xr.Variable(DIMS, data, attrs=_attrs(layer, geometry))
    sizes = block_sizes(geometry, None)
    variable.encoding["preferred_chunks"] = {dim: sizes[i][0] for i, dim in enumerate(DIMS)}
    return variable


def _layer(layer_or_path: Any, format: str | None) -> Any:
    if isinstance(layer_or_path, str | os.PathLike):
        from lamina.paths import open_path

        return open_path(os.fspath(layer_or_path), format=format)
    return layer_or_path


def open_dataarray(
    layer_or_path: Any,
    resolution: RawVec3D | None = None,
    bbox: BBox3D | None = None,
    chunks: Sequence[int] | None = None,
    format: str | None = None,
) -> Any:
    """A layer (or the path of one) as a lazily read ``xarray.DataArray`` (see the
    module docstring).

    Args:
        layer_or_path: a volumetric layer, or a path lamina opens.
        resolution: nm per voxel (default: the layer's default, else its finest scale).
        bbox: the box (nm; default: the dataset's bounds).
        chunks: x, y, z voxels of Dask blocks (or C first): a Dask-backed array on the
            layer's storage grid (default: read lazily, no Dask).
        format: the path's format, where it is ambiguous (``"precomputed"``, ``"hdf5"``…).
    """
    import xarray as xr

    layer = _layer(layer_or_path, format)
    geometry = array_geometry(layer, resolution, bbox)
    if chunks is not None:
        from lamina.arrays.dask_array import to_dask

        data = to_dask(layer, geometry.resolution, geometry.bbox, chunks)
        return xr.DataArray(
            data,
            dims=DIMS,
            coords=_coordinates(geometry),
            attrs=_attrs(layer, geometry),
            name=_name(layer),
        )
    return xr.DataArray(
        _variable(layer, geometry), coords=_coordinates(geometry), name=_name(layer)
    )


class LaminaBackendEntrypoint(BackendEntrypoint):  # type: ignore[misc]
    """xarray's ``engine="lamina"`` (registered through xarray's entry point)."""

    description = "Any volume lamina opens (precomputed, HDF5, …) as (c, x, y, z) in nm"
    url = "https://github.com/lamina/lamina"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "resolution", "bbox", "format")

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        resolution: RawVec3D | None = None,
        bbox: BBox3D | None = None,
        format: str | None = None,
    ) -> Any:
        """The volume at ``filename_or_obj`` as a Dataset of one variable."""
        import xarray as xr

        layer = _layer(filename_or_obj, format)
        geometry = array_geometry(layer, resolution, bbox)
        name = _name(layer)
        dropped = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables or ())
        variables = {} if name in dropped else {name: _variable(layer, geometry)}
        return xr.Dataset(variables, coords=_coordinates(geometry), attrs=_attrs(layer, geometry))

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Only when asked by name (``engine="lamina"``): lamina opens many formats, some
        of which other engines read too."""
        return False
