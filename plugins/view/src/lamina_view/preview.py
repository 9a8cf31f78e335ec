"""``lamina preview``: one z-slice of a volumetric layer as a PNG, through Pillow.

Columns are x and rows y, the first row being the lowest y, as neuroglancer's xy panel
shows it. Image data keeps its contrast as stored: uint8 (and bool, as 0/255) is written
as 8-bit grey and uint16 as 16-bit grey, unchanged; other dtypes are mapped linearly
from neuroglancer's default range for the dtype (the whole range of an integer dtype,
[0, 1] for floats, clipped) to 8 bits, never stretched to the slice's own minimum and
maximum. Three uint8 channels are written as RGB; otherwise the first channel is shown.
Segmentation ids are shown in distinct colours (0 black), the same colour for the same
id in every slice.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina.volumetric.geometry import BBox3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina_view.source import volume_type_of

__all__ = ["preview", "render_slice", "segment_colors", "slice_index"]


def _finest(layer: Any) -> Vec3D[float]:
    resolutions = tuple(layer.backend.resolutions)
    if resolutions:
        return Vec3D.from_seq(resolutions[0]).float()
    ddr = getattr(layer, "default_desired_resolution", None)
    if ddr is None:
        raise ValueError(
            f"{layer.backend.name} lists no resolution and the layer has no "
            "default_desired_resolution: pass resolution=(x, y, z)"
        )
    return Vec3D.from_seq(ddr).float()


def _bounds(layer: Any, resolution: Vec3D[float]) -> VolumetricIndex:
    """The volume's extent at ``resolution``: the scale's own bounds when the backend
    stores it, else the finest scale's box covered in whole voxels of ``resolution``."""
    backend = layer.backend
    if resolution in tuple(Vec3D.from_seq(r).float() for r in backend.resolutions):
        return backend.get_bounds(resolution)  # type: ignore[no-any-return]
    box: BBox3D = backend.get_bounds(_finest(layer)).bbox
    start = [int(np.floor(box.bounds[d][0] / resolution[d])) for d in range(3)]
    stop = [int(np.ceil(box.bounds[d][1] / resolution[d])) for d in range(3)]
    return VolumetricIndex.from_coords(start, stop, resolution)


def slice_index(layer: Any, resolution: Any = None, z: int | None = None) -> VolumetricIndex:
    """The index of the z-slice shown: the whole x-y extent of the volume at
    ``resolution`` (default: the finest), one voxel thick at voxel ``z`` (voxel offset
    included; default ``offset_z + size_z // 2``)."""
    res = _finest(layer) if resolution is None else Vec3D.from_seq(resolution).float()
    bounds = _bounds(layer, res)
    start, stop = bounds.start, bounds.stop
    if z is None:
        z = int(start[2] + (stop[2] - start[2]) // 2)
    if not isinstance(z, int | np.integer) or isinstance(z, bool):
        raise TypeError(f"z must be a whole voxel coordinate; got {z!r}")
    if not start[2] <= z < stop[2]:
        raise ValueError(
            f"z={z} is outside the volume at {res.pformat()} nm: its z voxels are "
            f"{start[2]}..{stop[2] - 1} (voxel offset included)"
        )
    return VolumetricIndex.from_coords((start[0], start[1], z), (stop[0], stop[1], z + 1), res)


def segment_colors(ids: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """An RGB colour for each id: 0 black, every other id a bright colour from a hash of
    its value (the same id always gets the same colour), distinct for the ids given."""
    flat = np.asarray(ids).astype(np.uint64).ravel()
    for seed in range(64):
        h = flat + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
        with np.errstate(over="ignore"):
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h = h ^ (h >> np.uint64(31))
        wide = np.stack(
            [(h >> np.uint64(shift)) & np.uint64(0xFF) for shift in (0, 8, 16)], axis=-1
        ).astype(np.uint16)
        rgb = (48 + wide * 207 // 255).astype(np.uint8)  # bright enough to tell from 0's black
        rgb[flat == 0] = 0
        packed = rgb[:, 0].astype(np.uint32) << 16 | rgb[:, 1].astype(np.uint32) << 8 | rgb[:, 2]
        if len(np.unique(packed)) == len(np.unique(flat)):
            return rgb.reshape(*np.shape(ids), 3)
    raise ValueError("could not give the ids distinct colours")  # pragma: no cover


def _image_plane(plane: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``(Y, X)`` image data as uint8 (8-bit grey) or uint16 (16-bit grey) for Pillow."""
    dtype = plane.dtype
    if dtype == np.uint8:
        return plane
    if dtype == np.bool_:
        return plane.astype(np.uint8) * 255
    if dtype == np.uint16:
        return plane
    if dtype.kind == "f":
        scaled = np.clip(np.nan_to_num(plane.astype(np.float64)), 0.0, 1.0) * 255.0
        return np.rint(scaled).astype(np.uint8)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        shifted = plane.astype(np.float64) - float(info.min)
        scaled = shifted * (255.0 / (float(info.max) - float(info.min)))
        return np.rint(scaled).astype(np.uint8)
    raise TypeError(f"cannot preview data of dtype {dtype}")


def render_slice(layer: Any, resolution: Any = None, z: int | None = None) -> Any:
    """The z-slice of ``layer`` (see :func:`slice_index`) as a ``PIL.Image.Image``."""
    from PIL import Image

    idx = slice_index(layer, resolution, z)
    data = np.asarray(layer[idx])  # (C, X, Y, 1)
    kind = volume_type_of(layer.backend, data.dtype)
    planes = data[:, :, :, 0].transpose(0, 2, 1)  # (C, Y, X): rows are y, columns x
    if kind == "segmentation":
        ids, inverse = np.unique(planes[0], return_inverse=True)
        rgb = segment_colors(ids)[inverse.reshape(planes[0].shape)]
        return Image.fromarray(np.ascontiguousarray(rgb))
    if planes.shape[0] == 3 and planes.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(planes.transpose(1, 2, 0)))
    array = _image_plane(planes[0])
    if array.dtype == np.uint16:
        image = Image.new("I;16", (array.shape[1], array.shape[0]))
        image.frombytes(np.ascontiguousarray(array, dtype="<u2").tobytes())
        return image
    return Image.fromarray(np.ascontiguousarray(array))


def preview(
    layer: Any,
    out: str | os.PathLike[str],
    resolution: Any = None,
    z: int | None = None,
) -> VolumetricIndex:
    """Write the z-slice of ``layer`` as a PNG at ``out``; returns the index shown."""
    idx = slice_index(layer, resolution, z)
    image = render_slice(layer, idx.resolution, idx.start[2])
    image.save(os.fspath(out), format="PNG")
    return idx
