"""xarray's ``engine="lamina"`` and ``lamina.open_dataarray``: dims c, x, y, z, coordinates
in nm at voxel centres (checked against the BBox3D), attrs, lazy selections in nm that
read only the box selected, and the engine found through xarray's entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from arrays_support import (
    BOX,
    SHAPE,
    R,
    Recorder,
    data,
    hdf5_layer,
    memory_layer,
    precomputed_layer,
    zarr_layer,
)

import lamina
from lamina.volumetric.memory import MemoryVolumetricBackend

xr = pytest.importorskip("xarray")


def _check(array: Any, name: str) -> None:
    assert array.dims == ("c", "x", "y", "z")
    assert array.shape == (1, *SHAPE)
    for d, dim in enumerate("xyz"):
        coords = array[dim].values
        assert coords[0] == BOX.start[d] + R[d] / 2  # the first voxel's centre, in nm
        assert coords[-1] == BOX.end[d] - R[d] / 2
        assert array[dim].attrs["units"] == "nm"
    assert array.attrs["resolution"] == [8.0, 8.0, 40.0]
    assert array.attrs["volume_type"] == "image"
    assert name in array.attrs["path"]
    np.testing.assert_array_equal(array.values, data())


@pytest.mark.parametrize("fmt", ["precomputed", "hdf5", "zarr"])
def test_open_dataarray_with_engine_lamina(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / {"precomputed": "vol", "hdf5": "vol.h5", "zarr": "vol.ome.zarr"}[fmt]
    {"precomputed": precomputed_layer, "hdf5": hdf5_layer, "zarr": zarr_layer}[fmt](path)
    array = xr.open_dataarray(str(path), engine="lamina", resolution=(8, 8, 40))
    _check(array, "vol")
    chunked = xr.open_dataarray(str(path), engine="lamina", chunks={})
    assert chunked.chunks is not None
    np.testing.assert_array_equal(chunked.values, data())


def test_open_dataarray_of_a_layer_and_sel_in_nm_reads_only_that_box(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = memory_layer()
    array = lamina.open_dataarray(layer)
    _check(array, "mem://")
    reads = Recorder(monkeypatch, MemoryVolumetricBackend)
    x0, x1 = 40 * 8, 72 * 8  # nm
    part = array.sel(x=slice(x0, x1), z=slice(10 * 40, 12 * 40)).values
    np.testing.assert_array_equal(part, data()[:, 24:56, :, 2:4])  # offset x 16, z 8
    assert reads.boxes == [((40, 32, 10), (72, 192, 12))]
    dask_backed = lamina.open_dataarray(layer, chunks=(64, 64, 8))
    assert dask_backed.chunks[1] == (64, 64, 64)  # from the voxel offset, on the grid
    np.testing.assert_array_equal(dask_backed.values, data())


def test_xarray_finds_the_engine_without_lamina_imported_first(tmp_path: Path) -> None:
    precomputed_layer(tmp_path / "vol")
    script = (
        "import sys, xarray as xr\n"
        "assert 'lamina' not in sys.modules\n"
        f"a = xr.open_dataarray({str(tmp_path / 'vol')!r}, engine='lamina',\n"
        "                      resolution=(8, 8, 40))\n"
        "print(a.dims, a.shape, int(a.sum()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    total = int(data().astype("int64").sum())
    shape = f"(1, {SHAPE[0]}, {SHAPE[1]}, {SHAPE[2]})"
    assert done.stdout.strip() == f"('c', 'x', 'y', 'z') {shape} {total}"
