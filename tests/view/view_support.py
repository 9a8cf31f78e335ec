"""The synthetic volume of the lamina-view tests and how to read a screenshot of it.

The volume is 256 x 256 x 32 voxels at 8 x 8 x 40 nm on a dark background (10), with
bright squares at known places: two in the slices z < 16 and another one in z >= 16, so
a screenshot tells which slice it shows. With the xy layout, a zoom of one voxel per
pixel and the viewer centred on voxel (128, 128), screen pixel (px, py) of a W x H shot
shows voxel (128 - W/2 + px, 128 - H/2 + py).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

import lamina
from lamina import BBox3D

RES = (8, 8, 40)
SHAPE = (256, 256, 32)
CHUNK = (64, 64, 16)
BACKGROUND = 10
#: (x0, x1, y0, y1, z0, z1, value)
SQUARES = (
    (20, 60, 30, 50, 0, 16, 250),
    (150, 200, 180, 240, 0, 16, 180),
    (100, 140, 60, 90, 16, 32, 220),
)
#: (x0, x1, y0, y1, id) in every slice; id 0 elsewhere.
SEGMENTS = ((20, 60, 30, 50, 7), (150, 200, 180, 240, 12345), (100, 140, 100, 120, 3))
SHOT = (400, 300)


def pattern() -> npt.NDArray[np.uint8]:
    """The image volume, ``(1, X, Y, Z)``."""
    data = np.full((1, *SHAPE), BACKGROUND, dtype=np.uint8)
    for x0, x1, y0, y1, z0, z1, value in SQUARES:
        data[0, x0:x1, y0:y1, z0:z1] = value
    return data


def segments(dtype: Any = np.uint32) -> npt.NDArray[Any]:
    """The segmentation volume, ``(1, X, Y, Z)``."""
    data = np.zeros((1, *SHAPE), dtype=dtype)
    for x0, x1, y0, y1, seg in SEGMENTS:
        data[0, x0:x1, y0:y1, :] = seg
    return data


def bbox(offset: tuple[int, int, int] = (0, 0, 0)) -> BBox3D:
    """The test volume's box: ``SHAPE`` voxels from ``offset`` at ``RES``."""
    return BBox3D.from_coords(offset, tuple(o + s for o, s in zip(offset, SHAPE, strict=True)), RES)


def memory_layer(data: npt.NDArray[Any], **options: Any) -> Any:
    layer = lamina.build_memory_volumetric_layer(
        bbox(),
        [RES],
        chunk_size=CHUNK,
        dtype=data.dtype,
        index_resolution=RES,
        default_desired_resolution=RES,
        **options,
    )
    layer[0 : SHAPE[0], 0 : SHAPE[1], 0 : SHAPE[2]] = data
    return layer


def precomputed_layer(path: Path, data: npt.NDArray[Any], volume_type: str = "image") -> Any:
    layer = lamina.build_cv_layer(
        str(path),
        index_resolution=RES,
        default_desired_resolution=RES,
        info_type=volume_type,
        info_data_type=str(data.dtype),
        info_num_channels=1,
        info_chunk_size=CHUNK,
        info_bbox=bbox(),
        info_scales=[RES, (16, 16, 40)],
    )
    layer[0 : SHAPE[0], 0 : SHAPE[1], 0 : SHAPE[2]] = data
    layer[(16, 16, 40), 0 : SHAPE[0], 0 : SHAPE[1], 0 : SHAPE[2]] = data[:, ::2, ::2, :]
    return layer


def _filled(build: Any, data: npt.NDArray[Any], offset: tuple[int, int, int], *where: Any) -> Any:
    """A new one-scale image volume made by ``build(*where, ...)`` holding ``data`` from
    ``offset``."""
    layer = build(
        *where,
        index_resolution=RES,
        default_desired_resolution=RES,
        info_type="image",
        info_data_type=str(data.dtype),
        info_num_channels=1,
        info_chunk_size=CHUNK,
        info_bbox=bbox(offset),
        info_scales=[RES],
    )
    layer[bbox(offset)] = data
    return layer


def zarr_layer(path: Path, data: npt.NDArray[Any], offset: tuple[int, int, int] = (0, 0, 0)) -> Any:
    """A new OME-Zarr image (Zarr v3, lamina-zarr) at ``path`` holding ``data`` from ``offset``."""
    return _filled(lamina.build_zarr_layer, data, offset, str(path))


def hdf5_layer(path: Path, data: npt.NDArray[Any], offset: tuple[int, int, int] = (0, 0, 0)) -> Any:
    """A lamina volume ``raw`` in the HDF5 file ``path`` holding ``data`` from ``offset``."""
    return _filled(lamina.build_h5_layer, data, offset, str(path), "raw")


def show_xy(view: Any, z: int) -> None:
    """The xy layout at one voxel per pixel, centred on voxel (128, 128, z), no overlays."""
    with view.viewer.txn() as s:
        s.layout = "xy"
        s.cross_section_scale = 1
        s.position = [128, 128, z + 0.5]
        s.show_axis_lines = False
        s.show_scale_bar = False
        s.show_default_annotations = False


def pixels(png: bytes) -> npt.NDArray[np.uint8]:
    """``(H, W, 4)`` RGBA."""
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGBA"))


def voxel_window(size: tuple[int, int] = SHOT) -> tuple[slice, slice, slice, slice]:
    """(rows, columns) of the shot that show the volume, and the (y, x) voxels they show."""
    w, h = size
    x0, y0 = 128 - w // 2, 128 - h // 2
    cols = slice(max(0, -x0), min(w, SHAPE[0] - x0))
    rows = slice(max(0, -y0), min(h, SHAPE[1] - y0))
    xs = slice(cols.start + x0, cols.stop + x0)
    ys = slice(rows.start + y0, rows.stop + y0)
    return rows, cols, ys, xs


def assert_shows_slice(png: bytes, data: npt.NDArray[np.uint8], z: int) -> None:
    """The shot (see :func:`show_xy`) shows slice ``z`` of ``data``, voxel for pixel."""
    image = pixels(png)
    assert image.shape == (SHOT[1], SHOT[0], 4)
    rows, cols, ys, xs = voxel_window()
    grey = image[rows, cols, :3].astype(int)
    expected = data[0, xs, ys, z].T.astype(int)  # rows are y, columns x
    assert (np.abs(grey[..., 0] - grey[..., 1]) <= 1).all(), "an image layer renders grey"
    diff = np.abs(grey[..., 0] - expected)
    wrong = diff > 2
    assert wrong.mean() < 0.002, (
        f"{int(wrong.sum())} of {wrong.size} pixels differ from slice z={z} (max diff "
        f"{int(diff.max())}); first at (row, col) {np.argwhere(wrong)[:5].tolist()}"
    )
