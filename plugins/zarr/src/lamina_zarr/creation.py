"""New Zarr volumes under lamina's creation policy: OME-NGFF images (0.5 on Zarr v3, 0.4
on Zarr v2) of ``(c, z, y, x)`` arrays, one per scale, named ``s0``, ``s1``, … as the
``ome-zarr`` library names them.

:func:`apply_spec` creates or extends a volume (``info_*`` parameters resolved by
:mod:`lamina.volumetric.creation`); :func:`add_scales` adds pyramid levels
(``add_resolutions``). Arrays are chunked ``(C, cz, cy, cx)`` (all channels in one chunk,
as precomputed stores them) and, on Zarr v3 with a shard size, sharded
(``sharding_indexed``, its index at the end, crc32c-checked); compression is
``zstd`` (the default, as zarr-python's), ``blosc``, ``gzip`` or ``raw``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from lamina.volumetric import creation
from lamina.volumetric.geometry import RawVec3D, Vec3D
from lamina.volumetric.scales import ScaleGeometry, sorted_resolutions
from lamina_zarr.axes import AxisOrder
from lamina_zarr.nodes import MetaStore, ZarrNotFoundError, join_key, read_node
from lamina_zarr.ome import image_attributes
from lamina_zarr.volume import ZarrScale, ZarrVolume, read_volume

__all__ = [
    "DEFAULT_ENCODING",
    "ENCODINGS",
    "STANDARD_AXES",
    "ZarrInfoMismatchError",
    "add_scales",
    "apply_spec",
    "check_new_volume",
]

#: The compressions a new volume may use (``info_encoding``).
ENCODINGS: Final = ("zstd", "blosc", "gzip", "raw")
DEFAULT_ENCODING: Final = "zstd"
#: The axes of every array lamina creates.
STANDARD_AXES: Final = AxisOrder("czyx")


class ZarrInfoMismatchError(creation.VolumeMismatchError):
    """The Zarr volume asked for conflicts with the stored one under the policy."""


def check_new_volume(
    zarr_format: int, data_type: str, encoding: str, shard_size: RawVec3D | None
) -> None:
    """Refuse, before anything is written, what a new volume of ``zarr_format`` cannot
    hold."""
    if zarr_format not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3; got {zarr_format!r}")
    if encoding not in ENCODINGS:
        raise ValueError(f"info_encoding must be one of {', '.join(ENCODINGS)}; got {encoding!r}")
    if np.dtype(data_type).kind not in "biuf":
        raise ValueError(
            f"info_data_type must be a bool, int, uint or float dtype for Zarr; got {data_type!r}"
        )
    if shard_size is not None and zarr_format != 3:
        raise ValueError("info_shard_size needs zarr_format=3: Zarr v2 has no shards")


def _compressor_v3(encoding: str, dtype: np.dtype[Any]) -> list[dict[str, Any]]:
    if encoding == "zstd":
        return [{"name": "zstd", "configuration": {"level": 3, "checksum": False}}]
    if encoding == "gzip":
        return [{"name": "gzip", "configuration": {"level": 6}}]
    if encoding == "blosc":
        shuffle = "shuffle" if dtype.itemsize > 1 else "bitshuffle"
        config = {"cname": "zstd", "clevel": 5, "shuffle": shuffle, "typesize": dtype.itemsize}
        return [{"name": "blosc", "configuration": {**config, "blocksize": 0}}]
    return []


def _compressor_v2(encoding: str) -> dict[str, Any] | None:
    if encoding == "zstd":
        return {"id": "zstd", "level": 3}
    if encoding == "gzip":
        return {"id": "gzip", "level": 6}
    if encoding == "blosc":
        return {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0}
    return None


def _fill(dtype: np.dtype[Any]) -> Any:
    return False if dtype.kind == "b" else (0.0 if dtype.kind == "f" else 0)


def array_metadata(
    zarr_format: int,
    axes: AxisOrder,
    dtype: np.dtype[Any],
    num_channels: int,
    size: Sequence[int],
    chunk: Sequence[int],
    shard: Sequence[int] | None,
    encoding: str,
) -> tuple[str, dict[str, Any]]:
    """(file name, metadata) of a new array of ``axes`` (no time axis)."""
    shape = axes.stored(size, num_channels, 1)
    chunks = axes.stored(chunk, num_channels, 1)
    if zarr_format == 2:
        return ".zarray", {
            "zarr_format": 2,
            "shape": shape,
            "chunks": chunks,
            "dtype": dtype.newbyteorder("<").str if dtype.itemsize > 1 else dtype.str,
            "compressor": _compressor_v2(encoding),
            "fill_value": _fill(dtype),
            "order": "C",
            "filters": None,
            "dimension_separator": "/",
        }
    endian = [{"name": "bytes", "configuration": {"endian": "little"}}]
    codecs = endian + _compressor_v3(encoding, dtype)
    grid = chunks
    if shard is not None:
        grid = axes.stored(shard, num_channels, 1)
        codecs = [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": chunks,
                    "codecs": codecs,
                    "index_codecs": [*endian, {"name": "crc32c"}],
                    "index_location": "end",
                },
            }
        ]
    return "zarr.json", {
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": dtype.name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": _fill(dtype),
        "codecs": codecs,
        "attributes": {},
        "dimension_names": list(axes.letters),
    }


def _described(scale: ZarrScale) -> dict[str, Any]:
    """A scale as the policy compares it."""
    return {
        "resolution": [creation.number(v) for v in scale.resolution],
        "voxel_offset": list(scale.voxel_offset),
        "size": list(scale.size),
        "chunk_size": list(scale.chunk_size),
        "shard_size": None if scale.write_grid == scale.chunk_size else list(scale.write_grid),
        "encoding": scale.encoding,
    }


def _wanted(
    res: Vec3D[float], geo: ScaleGeometry, shard: RawVec3D | None, encoding: str
) -> dict[str, Any]:
    return {
        "resolution": [creation.number(v) for v in res],
        "voxel_offset": list(geo.voxel_offset),
        "size": list(geo.dataset_size),
        "chunk_size": list(geo.chunk_size),
        "shard_size": None if shard is None else [int(v) for v in shard],
        "encoding": encoding,
    }


def _stored(root: str) -> tuple[ZarrVolume | None, creation.StoredVolume | None]:
    try:
        volume = read_volume(root)
    except ZarrNotFoundError:
        if read_node(MetaStore(root)) is not None:
            raise ValueError(
                f"{root} holds a Zarr group or array that is not an OME-Zarr image: lamina "
                "creates volumes as OME-Zarr images; choose another path"
            ) from None
        return None, None
    if volume.format == "n5" or volume.ome_version is None:
        raise ValueError(
            f"{root} is a plain {'N5 dataset' if volume.format == 'n5' else 'Zarr array'}: "
            "lamina creates and extends OME-Zarr images only; choose another path"
        )
    attributes = {
        "type": volume.volume_type,
        "data_type": str(volume.dtype),
        "num_channels": volume.num_channels,
        "zarr_format": volume.format,
    }
    scales = {s.resolution: _described(s) for s in volume.scales}
    return volume, creation.StoredVolume(attributes, scales)


def apply_spec(
    root: str,
    spec: creation.VolumeSpec,
    *,
    zarr_format: int,
    encoding: str,
    shard_size: RawVec3D | None,
    overwrite: bool,
    keep_existing_scales: bool,
) -> None:
    """Create or extend the OME-Zarr image at ``root`` as ``spec`` asks, under the
    creation policy; nothing is written when it refuses."""
    check_new_volume(zarr_format, spec.data_type, encoding, shard_size)
    if shard_size is not None:
        shard = Vec3D.from_seq(shard_size, "info_shard_size").int()
        if any(s % c for s, c in zip(shard, spec.chunk_size, strict=True)):
            raise ValueError(
                f"info_shard_size must be whole multiples of info_chunk_size "
                f"{spec.chunk_size.pformat()}; got {shard.pformat()}"
            )
    volume, stored = _stored(root)
    attributes = {
        "type": spec.type,
        "data_type": spec.data_type,
        "num_channels": spec.num_channels,
        "zarr_format": zarr_format,
    }
    wanted = {res: _wanted(res, spec.geometry(res), shard_size, encoding) for res in spec.scales}
    plan = creation.plan_update(
        stored,
        creation.StoredVolume(attributes, wanted),
        overwrite=overwrite,
        keep_existing_scales=keep_existing_scales,
        where=root,
        error=ZarrInfoMismatchError,
    )
    if volume is not None and not plan.changes and plan.attributes == stored.attributes:  # type: ignore[union-attr]
        return
    _write(root, volume, plan, spec.type == "segmentation")


def _write(root: str, volume: ZarrVolume | None, plan: creation.UpdatePlan, label: bool) -> None:
    store = MetaStore(root)
    fmt = int(plan.attributes["zarr_format"])
    axes = STANDARD_AXES if volume is None else volume.axes
    existing = None
    paths = {s.resolution: s.path for s in volume.scales} if volume is not None else {}
    channels = int(plan.attributes["num_channels"])
    dtype = np.dtype(plan.attributes["data_type"])
    afresh = volume is not None and (
        volume.format != fmt or volume.dtype != dtype or volume.num_channels != channels
    )  # another format, dtype or channel count: every array is written anew
    if afresh or not set(paths) - (plan.replaced | plan.dropped):
        axes = STANDARD_AXES  # nothing stored is kept: the new arrays are (c, z, y, x)
    elif axes.has_time:
        raise ValueError(
            f"{root} stores arrays with a time axis ({axes.letters!r}): lamina adds scales to "
            "images of one time point; replace every scale (info_overwrite=True, "
            "info_keep_existing_scales=False) or choose another path"
        )
    if volume is not None and afresh:
        for path in paths.values():
            store.delete_tree(path)
        if volume.format != fmt:
            for name in ("zarr.json", ".zgroup", ".zattrs"):
                store.delete_file(name)
        paths = {}
        rewrite = set(plan.scales)
    else:
        rewrite = set(plan.created | plan.replaced)
        node = read_node(store) if volume is not None else None
        existing = node.attributes if node is not None else None
    for res in plan.replaced | plan.dropped:
        if res in paths:
            store.delete_tree(paths[res])
    for res in plan.dropped:
        paths.pop(res, None)
    for res in sorted_resolutions(rewrite):
        paths.setdefault(res, _free_name(set(paths.values())))
        scale = plan.scales[res]
        encoding = scale["encoding"] if scale["encoding"] in ENCODINGS else DEFAULT_ENCODING
        name, meta = array_metadata(
            fmt, axes, dtype, channels, scale["size"], scale["chunk_size"], scale["shard_size"],
            encoding,
        )  # fmt: skip
        store.write_json(join_key(paths[res], name), meta)
    ordered = sorted_resolutions(plan.scales)
    datasets = [
        (paths[res], tuple(res), tuple(plan.scales[res]["voxel_offset"])) for res in ordered
    ]
    name = root.rstrip("/").rsplit("/", 1)[-1]
    attributes = image_attributes(fmt, axes, datasets, name=name, label=label, existing=existing)
    if fmt == 2:
        store.write_json(".zgroup", {"zarr_format": 2})
        store.write_json(".zattrs", attributes)
    else:
        store.write_json(
            "zarr.json", {"zarr_format": 3, "node_type": "group", "attributes": attributes}
        )


def _free_name(taken: set[str]) -> str:
    n = 0
    while f"s{n}" in taken:
        n += 1
    return f"s{n}"


def add_scales(
    volume: ZarrVolume, resolutions: Sequence[Vec3D[float]], chunk_size: RawVec3D | None
) -> None:
    """Add empty scales at ``resolutions`` to the OME-Zarr image ``volume`` (each covering
    the finest scale's box, voxel offset floored and size ceiled; the finest scale's
    chunk size, shard size and compression unless ``chunk_size`` is given)."""
    from lamina.volumetric.geometry import BBox3D
    from lamina.volumetric.scales import scale_geometry

    if volume.ome_version is None or volume.format == "n5":
        raise ValueError(
            f"{volume.root} is a plain array: lamina adds scales to OME-Zarr images only"
        )
    if volume.axes.has_time:
        raise ValueError(
            f"{volume.root} has a time axis: lamina adds scales to images of one time point"
        )
    finest = volume.scales[0]
    bbox = BBox3D.from_coords(
        finest.voxel_offset, finest.voxel_offset + finest.size, finest.resolution
    )
    chunk = finest.chunk_size if chunk_size is None else Vec3D.from_seq(chunk_size).int()
    shard = None if finest.write_grid == finest.chunk_size else finest.write_grid
    if shard is not None and chunk_size is not None:
        shard = None  # another chunk size: the finest shards need not fit it
    scales: dict[Vec3D[float], dict[str, Any]] = {
        s.resolution: _described(s) for s in volume.scales
    }
    created = []
    for res in resolutions:
        if res in scales:
            continue
        geo = scale_geometry(bbox, res, chunk)
        scales[res] = _wanted(res, geo, shard, finest.encoding)
        created.append(res)
    if not created:
        return
    plan = creation.UpdatePlan(
        attributes={
            "type": volume.volume_type,
            "data_type": str(volume.dtype),
            "num_channels": volume.num_channels,
            "zarr_format": volume.format,
        },
        scales=scales,
        created=frozenset(created),
        replaced=frozenset(),
        dropped=frozenset(),
    )
    _write(volume.root, volume, plan, volume.volume_type == "segmentation")
