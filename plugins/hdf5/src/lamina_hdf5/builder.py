"""``build_h5_layer``: a volumetric layer over an HDF5 volume or dataset."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from lamina.volumetric.geometry import BBox3D, RawVec3D
from lamina.volumetric.interpolation import InterpolationMode
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer
from lamina.volumetric.scales import refuse_info_without_scales
from lamina_hdf5.backend import H5Backend
from lamina_hdf5.layout import VolumeSpec, reference_description, spec_from_parameters, split_path

__all__ = ["build_h5_layer"]


def build_h5_layer(
    path: str | os.PathLike[str],
    dataset: str | None = None,
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
    info_compression: str | None = None,
    info_compression_level: int | None = None,
    info_scales: Sequence[RawVec3D] | None = None,
    info_overwrite: bool = False,
    info_keep_existing_scales: bool = True,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
    *,
    info_reference_scale: RawVec3D | None = None,
    resolution: RawVec3D | None = None,
    axes: str | None = None,
    voxel_offset: RawVec3D | None = None,
    keep_open: bool = True,
    mask_value_thr: float = 0,
) -> VolumetricLayer:
    """Build a layer over an HDF5 file, with the volumetric parameters of ``build_cv_layer``.

    ``path`` is the file (``FILE:/GROUP`` also works); ``dataset`` the lamina volume
    group or any 3-D/4-D dataset inside it (``None``: the file's only one). Without
    ``info_scales`` the volume must exist and any other ``info_*`` argument is an error;
    with it, a lamina volume is created or extended from the ``info_*`` arguments (and
    ``info_reference_path``: an HDF5 ``FILE/GROUP`` or a precomputed volume) under the
    ``info_overwrite`` / ``info_keep_existing_scales`` policy. ``info_compression`` is
    ``None`` (default), ``"gzip"`` (``info_compression_level`` 0-9, default 4) or ``"lzf"``;
    ``info_chunk_size`` is the HDF5 chunk shape (x, y, z).

    Keyword-only: ``resolution`` (nm, x, y, z), ``axes`` (the file's order, ``"zyx"``,
    ``"czyx"``, ``"xyzc"``…) and ``voxel_offset`` (x, y, z) for datasets lamina did not
    write, overriding their attributes; ``info_reference_scale``; ``mask_value_thr``; and
    ``keep_open``. With the default ``keep_open=True``, each process keeps one read-only
    handle per file open between reads. That handle holds no lock between calls, is
    independent of any ``h5py.File`` you open, is checked against the file before every
    read (so it sees every completed write, and waits while a writer has the file open),
    is never used after ``fork``, and is closed by ``clear_cache()``, ``with_changes``,
    ``delete()``, any lamina write to the file and at exit (see
    :mod:`lamina_hdf5.handles`). With ``keep_open=False`` every read opens and closes the
    file.
    """
    spec: VolumeSpec | None = None
    if info_scales is None:
        refuse_info_without_scales(
            {
                "info_reference_path": info_reference_path,
                "info_type": info_type,
                "info_data_type": info_data_type,
                "info_num_channels": info_num_channels,
                "info_chunk_size": info_chunk_size,
                "info_bbox": info_bbox,
                "info_compression": info_compression,
                "info_compression_level": info_compression_level,
                "info_reference_scale": info_reference_scale,
                "info_inherit_all_params": info_inherit_all_params,
            },
            "the volume in the file",
        )
    else:
        reference = (
            None
            if info_reference_path is None
            else reference_description(info_reference_path, info_reference_scale)
        )
        if info_reference_path is None and info_reference_scale is not None:
            raise ValueError("info_reference_scale needs info_reference_path")
        inherit = info_inherit_all_params
        if reference is None:
            # scales added to an existing volume: what is not given comes from the volume
            reference = _existing_volume(path, dataset)
            inherit = inherit or reference is not None
        spec = spec_from_parameters(
            scales=info_scales,
            reference=reference,
            inherit_all_params=inherit,
            type=info_type,
            data_type=info_data_type,
            num_channels=info_num_channels,
            chunk_size=info_chunk_size,
            bbox=info_bbox,
            compression=info_compression,
            compression_level=info_compression_level,
            reference_path=info_reference_path,
        )
    backend = H5Backend(
        path,
        dataset,
        spec=spec,
        overwrite=info_overwrite,
        keep_existing_scales=info_keep_existing_scales,
        resolution=resolution,
        axes=axes,
        voxel_offset=voxel_offset,
        keep_open=keep_open,
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


def _existing_volume(path: str | os.PathLike[str], dataset: str | None) -> dict[str, Any] | None:
    """What the volume at ``path`` (and ``dataset``) is, when one is stored there already."""
    file_path, inner = split_path(path)
    if not os.path.isfile(file_path):
        return None
    where = dataset or inner
    try:
        return reference_description(f"{file_path}:/{where}" if where else file_path)
    except (LookupError, ValueError, OSError):
        return None  # no such volume in the file (yet)
