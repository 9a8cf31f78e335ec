"""``build_cv_layer``: a volumetric layer over a precomputed volume (reference §2.F F15)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lamina.volumetric.geometry import BBox3D, RawVec3D
from lamina.volumetric.interpolation import InterpolationMode
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer
from lamina.volumetric.scales import refuse_info_without_scales
from lamina_precomputed.backend import CVBackend
from lamina_precomputed.info import InfoSpec, normalize_path, read_info_or_none

__all__ = ["build_cv_layer"]


def build_cv_layer(
    path: str | os.PathLike[str],
    cv_kwargs: Mapping[str, Any] | None = None,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    data_resolution: RawVec3D | None = None,
    interpolation_mode: InterpolationMode | None = None,
    readonly: bool = False,
    info_reference_path: str | None = None,
    info_inherit_all_params: bool = False,
    info_type: str | None = None,
    info_data_type: str | None = None,
    info_num_channels: int | None = None,
    info_chunk_size: RawVec3D | None = None,
    info_bbox: BBox3D | None = None,
    info_encoding: str | None = None,
    info_scales: Sequence[RawVec3D] | None = None,
    info_extra_scale_data: Mapping[str, Any] | None = None,
    info_overwrite: bool = False,
    info_keep_existing_scales: bool = True,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
    *,
    info_reference_scale: RawVec3D | None = None,
    mask_value_thr: float = 0,
    cache_bytes_limit: int | None = None,
) -> VolumetricLayer:
    """Build a CloudVolume layer: every parameter of the reference's ``build_cv_layer``.

    Without ``info_scales`` the volume's info must exist and is used as it is; any other
    ``info_*`` argument is then an error. With ``info_scales`` an info is created or
    extended from the ``info_*`` arguments (and ``info_reference_path``), under the
    ``info_overwrite`` / ``info_keep_existing_scales`` policy; on an existing volume,
    what is not given (type, dtype, channels, chunk size, encoding, bounds) comes from
    the volume itself, so ``info_scales=[(32, 32, 40)]`` alone adds that scale. New
    volumes default to ``raw`` encoding and uncompressed chunk files.

    Keyword-only additions: ``info_reference_scale`` (the reference scale, default the
    finest), ``mask_value_thr`` (for ``interpolation_mode="mask"``) and
    ``cache_bytes_limit`` (CloudVolume's in-memory chunk cache per handle, default 0).
    """
    if info_scales is None:
        refuse_info_without_scales(
            {
                "info_reference_path": info_reference_path,
                "info_type": info_type,
                "info_data_type": info_data_type,
                "info_num_channels": info_num_channels,
                "info_chunk_size": info_chunk_size,
                "info_bbox": info_bbox,
                "info_encoding": info_encoding,
                "info_extra_scale_data": info_extra_scale_data,
                "info_reference_scale": info_reference_scale,
                "info_inherit_all_params": info_inherit_all_params,
            },
            "the info at the path",
        )
        spec = None
    else:
        reference, inherit = info_reference_path, info_inherit_all_params
        if reference is None and read_info_or_none(normalize_path(path)) is not None:
            # scales added to an existing volume: what is not given comes from the volume
            reference, inherit = os.fspath(path), True
        spec = InfoSpec.from_optional_reference(
            scales=info_scales,
            reference_path=reference,
            inherit_all_params=inherit,
            type=info_type,
            data_type=info_data_type,
            chunk_size=info_chunk_size,
            num_channels=info_num_channels,
            encoding=info_encoding,
            bbox=info_bbox,
            extra_scale_data=info_extra_scale_data,
            reference_scale=info_reference_scale,
        )
    backend = CVBackend(
        os.fspath(path),
        cv_kwargs=cv_kwargs,
        info_spec=spec,
        info_overwrite=info_overwrite,
        info_keep_existing_scales=info_keep_existing_scales,
        cache_bytes_limit=cache_bytes_limit,
    )
    return build_volumetric_layer(
        backend,
        default_desired_resolution=default_desired_resolution,
        index_resolution=index_resolution,
        data_resolution=data_resolution,
        interpolation_mode=interpolation_mode,
        mask_value_thr=mask_value_thr,
        readonly=readonly,
        allow_slice_rounding=allow_slice_rounding,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
