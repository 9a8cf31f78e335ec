"""``build_zarr_layer``: a volumetric layer over a Zarr / OME-Zarr / N5 volume."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from lamina.volumetric import creation
from lamina.volumetric.geometry import BBox3D, RawVec3D
from lamina.volumetric.interpolation import InterpolationMode
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer, check_layer_arguments
from lamina_zarr.backend import ZarrBackend
from lamina_zarr.creation import DEFAULT_ENCODING, ENCODINGS, apply_spec
from lamina_zarr.nodes import MetaStore, normalize_path, read_node
from lamina_zarr.ome import read_image

__all__ = ["build_zarr_layer"]


def _format_of_path(path: str | os.PathLike[str], zarr_format: int | None, stored: Any) -> int:
    """``zarr_format``, or the one a ``zarr2://`` / ``zarr3://`` prefix names, or the
    stored volume's, or 3; a prefix and an argument that disagree are an error."""
    text = os.fspath(path)
    implied = 2 if text.startswith("zarr2://") else 3 if text.startswith("zarr3://") else None
    if zarr_format is not None and implied is not None and zarr_format != implied:
        raise ValueError(f"zarr_format={zarr_format} contradicts the path's prefix ({text})")
    own = stored if stored in (2, 3) else None
    return zarr_format or implied or own or 3


def build_zarr_layer(
    path: str | os.PathLike[str],
    *,
    axes: str | Sequence[str] | None = None,
    resolution: RawVec3D | None = None,
    time_index: int | None = None,
    zarr_format: int | None = None,
    engine: str | None = None,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    data_resolution: RawVec3D | None = None,
    interpolation_mode: InterpolationMode | None = None,
    readonly: bool = False,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
    mask_value_thr: float = 0,
    cache_bytes_limit: int = 0,
    info_scales: Sequence[RawVec3D] | None = None,
    info_reference_path: str | None = None,
    info_reference_scale: RawVec3D | None = None,
    info_inherit_all_params: bool = False,
    info_type: str | None = None,
    info_data_type: str | None = None,
    info_num_channels: int | None = None,
    info_chunk_size: RawVec3D | None = None,
    info_bbox: BBox3D | None = None,
    info_encoding: str | None = None,
    info_shard_size: RawVec3D | None = None,
    info_overwrite: bool = False,
    info_keep_existing_scales: bool = True,
) -> VolumetricLayer:
    """A layer over the Zarr volume at ``path``: an OME-Zarr multiscale image (each
    dataset a resolution), a plain Zarr v2 or v3 array, or an N5 dataset.

    Reads return ``(C, X, Y, Z)`` arrays at any resolution, as from every lamina layer:
    OME-Zarr's ``(c, z, y, x)`` axes, units (converted to nm) and origin
    (``coordinateTransformations``, pixel-centre convention) are read from its metadata.
    Without ``info_scales`` the volume must exist; with them lamina's creation policy
    (as for ``build_cv_layer``) creates or extends an OME-Zarr image: OME-NGFF 0.5 on
    Zarr v3 (default), 0.4 on Zarr v2.

    Args:
        path: the image's group, the array or the N5 dataset: a local path, ``file://``,
            ``s3://`` or ``gs://``, optionally behind ``zarr://``, ``zarr2://``,
            ``zarr3://`` or ``n5://``.
        axes: a plain array's axis names in its order (``"czyx"``, ``"zyx"``,
            ``"tczyx"``); default: a Zarr v3 array's ``dimension_names``, an N5
            dataset's ``axes`` attribute or ``"xyz"``. OME-Zarr images give their own.
        resolution: a plain array's resolution (nm, x y z); N5 datasets default to their
            ``resolution`` / ``pixelResolution`` attribute.
        time_index: the time point to read from an array with a time axis (required
            there, refused elsewhere).
        zarr_format: 2 or 3 for a new volume (default 3, or the path's ``zarr2://`` /
            ``zarr3://`` prefix); an existing volume keeps its own unless this differs
            and ``info_overwrite`` is given (then it is rewritten, empty).
        engine: ``"auto"`` (default: reads of local Zarr arrays by lamina's own chunk
            reader, everything else by TensorStore), ``"tensorstore"`` (TensorStore's
            drivers for all), ``"lamina"`` (lamina's reader; local Zarr v2/v3 only) or
            ``"zarr-python"`` (local Zarr only). A process forked after its parent used
            TensorStore writes through zarr-python.
        default_desired_resolution: the resolution of reads and writes whose index gives
            none.
        index_resolution: the resolution slices count voxels at.
        data_resolution: read and write at this stored resolution, resampling.
        interpolation_mode: the resampling mode (with ``data_resolution``).
        readonly: refuse writes and ``delete()``.
        allow_slice_rounding: widen regions off the voxel grid to whole voxels.
        index_procs: index processors of every read and write.
        read_procs: processors of reads.
        write_procs: processors of writes.
        mask_value_thr: the threshold of the ``mask`` interpolation.
        cache_bytes_limit: bytes of decoded chunks TensorStore keeps (0: none).
        info_scales: the resolutions (nm) of the scales to create or add.
        info_reference_path: a volume of any installed format giving the box and, with
            ``info_inherit_all_params``, every ``info_*`` not given.
        info_reference_scale: the reference's scale to take them from (default finest).
        info_inherit_all_params: take everything not given from the reference.
        info_type: ``"image"`` or ``"segmentation"`` (an OME ``image-label``).
        info_data_type: a bool, int, uint or float dtype.
        info_num_channels: the channel count (the ``c`` axis), >= 1.
        info_chunk_size: voxels per chunk (x, y, z); every channel is in each chunk.
        info_bbox: the ``BBox3D`` (nm) every new scale covers.
        info_encoding: the compression: ``"zstd"`` (default), ``"blosc"``, ``"gzip"``
            or ``"raw"``.
        info_shard_size: voxels (x, y, z) per shard (Zarr v3 ``sharding_indexed``), whole
            multiples of the chunk size; the write grid of the new scales.
        info_overwrite: let stored scales or attributes change.
        info_keep_existing_scales: keep stored scales ``info_scales`` does not list.
    """
    layer: dict[str, Any] = {
        "default_desired_resolution": default_desired_resolution,
        "index_resolution": index_resolution,
        "data_resolution": data_resolution,
        "interpolation_mode": interpolation_mode,
    }
    check_layer_arguments(**layer)  # before anything is written
    root = normalize_path(path)
    node = read_node(MetaStore(root))
    exists = node is not None
    fmt = _format_of_path(path, zarr_format, node.format if node is not None else None)
    if (
        info_scales is not None
        and node is not None
        and (node.array is not None or read_image(node.attributes, root) is None)
    ):
        kind = "an N5 container" if node.format == "n5" else "a Zarr node"
        raise ValueError(
            f"{root} holds {kind} that is not an OME-Zarr image: lamina creates and "
            "extends OME-Zarr images only; choose another path"
        )
    spec = creation.spec_from_parameters(
        scales=info_scales,
        type=info_type,
        data_type=info_data_type,
        num_channels=info_num_channels,
        chunk_size=info_chunk_size,
        bbox=info_bbox,
        encoding=info_encoding,
        reference_path=info_reference_path,
        reference_scale=info_reference_scale,
        inherit_all_params=info_inherit_all_params,
        existing_path=root if exists and info_reference_path is None else None,
        format_parameters={"info_shard_size": info_shard_size},
        used_as_stored=f"the volume at {root}",
    )
    if spec is not None:
        if info_encoding is not None and info_encoding not in ENCODINGS:
            raise ValueError(
                f"info_encoding must be one of {', '.join(ENCODINGS)}; got {info_encoding!r}"
            )
        encoding = spec.encoding if spec.encoding in ENCODINGS else DEFAULT_ENCODING
        apply_spec(
            root,
            spec,
            zarr_format=fmt,
            encoding=encoding,
            shard_size=info_shard_size,
            overwrite=info_overwrite,
            keep_existing_scales=info_keep_existing_scales,
        )
    backend = ZarrBackend(
        root,
        axes=axes,
        resolution=resolution,
        time_index=time_index,
        engine=engine,
        cache_bytes_limit=cache_bytes_limit,
    )
    return build_volumetric_layer(
        backend,
        **layer,
        mask_value_thr=mask_value_thr,
        readonly=readonly,
        allow_slice_rounding=allow_slice_rounding,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
