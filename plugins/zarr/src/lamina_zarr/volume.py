"""A stored Zarr / OME-Zarr / N5 volume as lamina sees it: its scales, each a stored
array with lamina's geometry (resolution in nm, voxel offset, size, chunks, write grid).

Three kinds of node are volumes:

* an OME-NGFF multiscale image (a group with ``multiscales``): each dataset a scale, the
  axes, units and origin from the metadata (:mod:`lamina_zarr.ome`);
* a plain Zarr array (v2 or v3): one scale, read with ``axes=`` (the array's axis names
  in its order, e.g. ``"czyx"``; a v3 array's ``dimension_names`` serve when they name
  x, y, z) and ``resolution=`` (nm, x y z) given by the caller;
* an N5 dataset: one scale, axes ``"xyz"`` (N5 lists dimensions fastest first) unless
  ``axes=`` says otherwise, resolution from its ``resolution`` or ``pixelResolution``
  attribute (with the unit it names) or ``resolution=``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from lamina.errors import UnknownResolutionError
from lamina.volumetric.geometry import RawVec3D, Vec3D
from lamina_zarr.axes import AxesError, AxisOrder, unit_to_nm
from lamina_zarr.nodes import (
    ArrayMeta,
    MetaStore,
    Node,
    ZarrFormat,
    ZarrNotFoundError,
    join,
    read_node,
)
from lamina_zarr.ome import OmeImage, read_image

__all__ = ["ZarrScale", "ZarrVolume", "format_name", "read_volume"]


@attrs.frozen
class ZarrScale:
    """One scale: the array at ``path`` (relative to the root; ``""``: the root itself)
    and its geometry at ``resolution`` (nm, x y z)."""

    path: str
    resolution: Vec3D[float]
    voxel_offset: Vec3D[int]
    size: Vec3D[int]
    chunk_size: Vec3D[int]
    write_grid: Vec3D[int]
    encoding: str
    meta: ArrayMeta = attrs.field(eq=False, repr=False)

    def describe(self) -> dict[str, Any]:
        """This scale for ``lamina info`` (the core's keys, and the array's path)."""
        end = self.voxel_offset + self.size
        text: dict[str, Any] = {
            "resolution": list(self.resolution),
            "voxel_offset": list(self.voxel_offset),
            "size": list(self.size),
            "chunk_size": list(self.chunk_size),
            "bounds_nm": [list(self.voxel_offset * self.resolution), list(end * self.resolution)],
            "encoding": self.encoding,
            "write_grid": list(self.write_grid),
            "notes": [f"array {self.path or '.'}"],
        }
        if self.write_grid != self.chunk_size:
            text["sharded"] = True
            text["shard_box"] = list(self.write_grid)
        return text


@attrs.frozen
class ZarrVolume:
    """A stored volume: its format, axes, dtype, channels, type and scales (finest
    first), and the OME-NGFF version it was read with (``None``: a plain array)."""

    root: str
    format: ZarrFormat
    axes: AxisOrder
    dtype: np.dtype[Any]
    num_channels: int
    volume_type: str | None
    scales: tuple[ZarrScale, ...]
    ome_version: str | None = None
    name: str | None = None

    def scale(self, resolution: RawVec3D) -> ZarrScale:
        """The scale at ``resolution``; an :class:`UnknownResolutionError` lists them."""
        res = Vec3D.from_seq(resolution, "resolution").float()
        for scale in self.scales:
            if scale.resolution == res:
                return scale
        known = ", ".join(s.resolution.pformat() for s in self.scales)
        raise UnknownResolutionError(f"{self.root} has no scale {res.pformat()}; it has {known}")


def read_volume(
    root: str,
    *,
    axes: str | Sequence[str] | None = None,
    resolution: RawVec3D | None = None,
    time_index: int | None = None,
) -> ZarrVolume:
    """The volume stored at ``root`` (a normalised path); a :class:`ZarrNotFoundError`
    when nothing is, and an :class:`~lamina_zarr.axes.AxesError` saying what to give
    when its axes or resolution are not known."""
    store = MetaStore(root)
    node = read_node(store)
    if node is None:
        raise ZarrNotFoundError(
            f"no Zarr array or group (zarr.json, .zarray, .zgroup) and no N5 container "
            f"(attributes.json) at {root}"
        )
    if node.array is None:
        image = read_image(node.attributes, root)
        if image is None:
            raise ZarrNotFoundError(
                f"{root} is a {format_name(node.format)} group without OME-NGFF multiscales "
                "metadata: open one of its arrays (its path), or an OME-Zarr image"
            )
        if axes is not None or resolution is not None:
            raise ValueError(
                f"{root} is an OME-Zarr image: its axes and resolutions come from its "
                "metadata; axes= and resolution= are for plain arrays"
            )
        return _from_image(store, node, image, time_index)
    return _from_array(store, node, axes, resolution, time_index)


def format_name(fmt: ZarrFormat) -> str:
    """``Zarr v2``, ``Zarr v3`` or ``N5``."""
    return "N5" if fmt == "n5" else f"Zarr v{fmt}"


def _check_time(axes: AxisOrder, shape: Sequence[int], time_index: int | None, where: str) -> None:
    if not axes.has_time:
        if time_index is not None:
            raise AxesError(f"{where} has no time axis; time_index= applies to those that do")
        return
    length = shape[axes.index("t")]
    if time_index is None:
        raise AxesError(
            f"{where} has a time axis of {length} points: lamina reads one volume at a time; "
            f"choose one with time_index= (0 to {length - 1})"
        )
    if isinstance(time_index, bool) or not isinstance(time_index, int):
        raise TypeError(f"time_index must be an int; got {time_index!r}")
    if not 0 <= time_index < length:
        raise AxesError(f"time_index must be in 0..{length - 1} for {where}; got {time_index}")


def _from_image(
    store: MetaStore, node: Node, image: OmeImage, time_index: int | None
) -> ZarrVolume:
    scales: list[ZarrScale] = []
    dtype: np.dtype[Any] | None = None
    channels = None
    finest: Sequence[float] | None = None
    for dataset in image.datasets:
        where = join(store.root, dataset.path)
        child = read_node(store, dataset.path)
        if child is None or child.array is None:
            raise ZarrNotFoundError(
                f"the OME-Zarr image {store.root} lists {where}: no array there"
            )
        meta = child.array
        if len(meta.shape) != len(image.axes.letters):
            raise AxesError(
                f"{where} has {len(meta.shape)} dimensions; the image's axes are "
                f"{image.axes.letters!r}"
            )
        _check_time(image.axes, meta.shape, time_index, where)
        if dtype is not None and meta.dtype != dtype:
            raise ValueError(f"{where} is {meta.dtype}, the image's first dataset {dtype}")
        dtype = meta.dtype
        n = image.axes.channels(meta.shape)
        if channels is not None and n != channels:
            raise ValueError(f"{where} has {n} channels, the image's first dataset {channels}")
        channels = n
        res = image.axes.spatial(dataset.scale)
        finest = finest or res
        corner = [
            t - (s - f) / 2
            for t, s, f in zip(image.axes.spatial(dataset.translation), res, finest, strict=True)
        ]
        scales.append(_scale(dataset.path, res, corner, image.axes, meta, where))
    assert dtype is not None
    assert channels is not None
    _check_distinct(scales, store.root)
    return ZarrVolume(
        root=store.root,
        format=node.format,
        axes=image.axes,
        dtype=dtype,
        num_channels=channels,
        volume_type="segmentation" if image.label else "image",
        scales=tuple(sorted(scales, key=lambda s: math.prod(s.resolution))),
        ome_version=image.version,
        name=image.name,
    )


def _from_array(
    store: MetaStore,
    node: Node,
    axes: str | Sequence[str] | None,
    resolution: RawVec3D | None,
    time_index: int | None,
) -> ZarrVolume:
    meta = node.array
    assert meta is not None
    where = store.root
    if axes is None:
        axes = _default_axes(node, meta)
    if axes is None:
        raise AxesError(
            f"{where} is a plain {format_name(node.format)} array without OME-NGFF metadata: "
            f"give axes= (its {len(meta.shape)} axis names in its order, e.g. 'czyx' or "
            "'zyx') and resolution= (nm, x y z)"
        )
    order = AxisOrder.parse(axes, len(meta.shape), where)
    _check_time(order, meta.shape, time_index, where)
    if resolution is None and node.format == "n5":
        resolution = _n5_resolution(node.attributes, order, where)
    if resolution is None:
        raise AxesError(
            f"{where} is a plain {format_name(node.format)} array: give resolution= (nm per "
            "voxel, x y z), which it does not record"
        )
    res = Vec3D.from_seq(resolution, "resolution").float()
    scale = _scale("", tuple(res), [0.0, 0.0, 0.0], order, meta, where)
    return ZarrVolume(
        root=store.root,
        format=node.format,
        axes=order,
        dtype=meta.dtype,
        num_channels=order.channels(meta.shape),
        volume_type=None,
        scales=(scale,),
    )


def _default_axes(node: Node, meta: ArrayMeta) -> str | None:
    """The axes an array names itself: Zarr v3 ``dimension_names`` when they are axis
    letters; N5 ``axes`` attribute or, for a 3-D dataset, ``"xyz"``."""
    names = meta.dimension_names
    if node.format == "n5":
        attr = node.attributes.get("axes")
        if isinstance(attr, list) and all(isinstance(a, str) for a in attr):
            names = tuple(attr)
        elif len(meta.shape) == 3:
            return "xyz"
    if names and all(len(n) == 1 and n.lower() in "xyzct" for n in names):
        return "".join(n.lower() for n in names)
    return None


def _n5_resolution(attributes: Mapping[str, Any], axes: AxisOrder, where: str) -> RawVec3D | None:
    """An N5 dataset's ``resolution`` (nm) or ``pixelResolution`` (``{"dimensions": …,
    "unit": …}``) attribute, in x y z."""
    found = attributes.get("pixelResolution")
    factor = 1.0
    values = None
    if isinstance(found, Mapping):
        values = found.get("dimensions")
        factor = unit_to_nm(found.get("unit"), f"{where}, pixelResolution")
    elif isinstance(found, list):
        values = found
    units: list[Any] | None = None
    if values is None:
        values = attributes.get("resolution")
        found_units = attributes.get("units")  # TensorStore writes one per axis
        units = found_units if isinstance(found_units, list) else None
    if values is None:
        return None
    spatial = [letter for letter in axes.letters if letter in "xyz"]
    if not isinstance(values, list) or len(values) not in (3, len(axes.letters)):
        raise AxesError(f"{where}: resolution attribute {values!r} is not one value per axis")
    letters = spatial if len(values) == 3 else list(axes.letters)
    by_letter = dict(zip(letters, values, strict=True))
    factors = dict.fromkeys(letters, factor)
    if units is not None and len(units) == len(letters):
        named = zip(letters, units, strict=True)
        factors = {a: unit_to_nm(u, f"{where}, units of axis {a}") for a, u in named}
    return tuple(float(by_letter[a]) * factors[a] for a in "xyz")


def _scale(
    path: str,
    resolution: Sequence[float],
    corner_nm: Sequence[float],
    axes: AxisOrder,
    meta: ArrayMeta,
    where: str,
) -> ZarrScale:
    if any(r <= 0 for r in resolution):
        raise ValueError(f"{where}: resolution must be positive; got {tuple(resolution)}")
    offset = []
    for axis, c, r in zip("xyz", corner_nm, resolution, strict=True):
        voxels = c / r
        nearest = round(voxels)
        if abs(voxels - nearest) > 1e-6 * max(1.0, abs(voxels)):
            warnings.warn(
                f"{where}: the {axis} origin {c:g} nm is not on the {r:g} nm voxel grid; "
                f"lamina places the volume at voxel {nearest} ({nearest * r:g} nm)",
                stacklevel=4,
            )
        offset.append(nearest)
    return ZarrScale(
        path=path,
        resolution=Vec3D(*(float(r) for r in resolution)),
        voxel_offset=Vec3D(*offset),
        size=Vec3D(*axes.spatial(meta.shape)),
        chunk_size=Vec3D(*axes.spatial(meta.chunks)),
        write_grid=Vec3D(*axes.spatial(meta.write_chunks)),
        encoding=meta.encoding,
        meta=meta,
    )


def _check_distinct(scales: Sequence[ZarrScale], root: str) -> None:
    seen: dict[Vec3D[float], str] = {}
    for scale in scales:
        if scale.resolution in seen:
            raise ValueError(
                f"{root}: datasets {seen[scale.resolution]!r} and {scale.path!r} have the same "
                f"resolution {scale.resolution.pformat()}"
            )
        seen[scale.resolution] = scale.path
