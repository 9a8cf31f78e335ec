"""``build_h5_layer``: a volumetric layer over an HDF5 volume or dataset."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from lamina.volumetric.creation import reference_of
from lamina.volumetric.geometry import BBox3D, RawVec3D
from lamina.volumetric.interpolation import InterpolationMode
from lamina.volumetric.layer import (
    VolumetricLayer,
    build_volumetric_layer,
    check_layer_arguments,
)
from lamina_hdf5.backend import H5Backend
from lamina_hdf5.layout import spec_from_parameters, split_path

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

    The volume is a lamina volume group (one dataset per scale, named by its resolution)
    or any 3-D/4-D dataset, such as a CREMI file's; the layer is a
    :class:`~lamina.volumetric.layer.VolumetricLayer` (the index forms and the layer
    parameters are those of :func:`lamina.build_volumetric_layer`). Without
    ``info_scales`` the volume must exist and any other ``info_*`` argument is an error
    (``ValueError``); with it, a lamina volume is created or extended from the ``info_*``
    arguments (and ``info_reference_path``) under the ``info_overwrite`` /
    ``info_keep_existing_scales`` policy, and on an existing volume what is not given
    comes from the volume itself.

    Keyword-only: ``resolution``, ``axes`` and ``voxel_offset`` for datasets lamina did
    not write; ``info_reference_scale``; ``mask_value_thr``; and ``keep_open``.

    Args:
        path: the HDF5 file (``~`` expanded, ``file://`` accepted); ``FILE:/GROUP``
            also works, and ``FILE/GROUP`` as ``h5ls`` writes it (``FILE`` an existing
            file or one with an HDF5 suffix). Without ``info_scales``, a missing file is
            an :class:`~lamina_hdf5.layout.H5NotFoundError` (a ``FileNotFoundError``).
        dataset: the lamina volume group or any 3-D/4-D dataset inside the file;
            default ``None``: the part of ``path`` after ``:/``, else the file's only
            volume (several are a ``ValueError`` listing them), else, when creating,
            ``"volume"``.
        default_desired_resolution: the resolution (nm) of the arrays read and written
            when the index does not give one; default ``None``: every index must give
            one (``ValueError``).
        index_resolution: the resolution (nm) slices count voxels at; default ``None``:
            the index's own resolution.
        data_resolution: read and write the volume at this resolution (nm), resampling
            to and from the one asked for; default ``None``: no resampling. A resolution
            the volume does not have is an :class:`~lamina.errors.UnknownResolutionError`.
        interpolation_mode: the resampling mode (``"img"``, ``"segmentation"``,
            ``"mask"``, ``"field"`` or a torch mode); required with ``data_resolution``
            (``ValueError``).
        readonly: refuse writes and ``delete()`` (``ReadonlyLayerError``, an
            ``IOError``); default ``False``.
        info_reference_path: the volume the new one is modelled on: an HDF5 volume
            (``FILE``, ``FILE:/GROUP`` or ``FILE/GROUP``; a file holding several must
            name one, ``ValueError``) or, with lamina-precomputed installed, a
            precomputed volume. Its reference scale gives the bounds when ``info_bbox``
            is not given and, with ``info_inherit_all_params``, everything else not
            given. Default ``None``: on an existing volume, the volume itself is the
            reference (everything not given is inherited); on a new one,
            ``info_type``, ``info_data_type``, ``info_num_channels``,
            ``info_chunk_size`` and ``info_bbox`` are required (``ValueError`` naming
            those missing).
        info_inherit_all_params: take the type, data type, channel count, chunk size
            and compression (with its level, when neither is given) from the reference
            where not given. Default ``False``: with ``info_reference_path``, type, data
            type, channels and chunk size must be given (``ValueError``). ``True`` on a
            new volume without ``info_reference_path`` is a ``ValueError``.
        info_type: ``"image"`` or ``"segmentation"`` (anything else is a
            ``ValueError``).
        info_data_type: any numpy data type name (``"uint8"``, ``"uint64"``,
            ``"float32"``...); anything else is a ``ValueError``.
        info_num_channels: the channel count, an int >= 1 (``ValueError``).
        info_chunk_size: the HDF5 chunk shape (x, y, z), voxels, positive
            (``ValueError``); the same at every new scale.
        info_bbox: the region (a ``BBox3D``, nm) every new scale covers, widened to
            whole voxels at each (start floored, end ceiled); default: the bounds of the
            reference scale. Anything but a ``BBox3D`` is a ``TypeError``.
        info_compression: ``None`` (default: uncompressed), ``"gzip"`` or ``"lzf"``
            (anything else is a ``ValueError``).
        info_compression_level: the gzip level, 0-9; default ``None``: 4. It needs
            ``info_compression="gzip"`` (``ValueError``).
        info_scales: the resolutions (nm, x, y, z) of the scales to create or add, one
            dataset each, named like ``"4_4_40"``; an empty list is a ``ValueError``.
            Default ``None``: use the volume in the file as it is.
        info_overwrite: allow the volume to change: scales that differ from what is
            asked are re-created empty (their data is dropped), scales not asked for
            are deleted (with ``info_keep_existing_scales=False``), the type changes.
            Default ``False``: such a change raises
            :class:`~lamina_hdf5.layout.H5InfoMismatchError` (a ``RuntimeError``)
            listing what would change, and nothing is written; adding scales needs no
            overwrite. An existing object that is not a lamina volume is never
            overwritten (``H5InfoMismatchError``).
        info_keep_existing_scales: keep the scales that ``info_scales`` does not list
            (default ``True``); the data type and channel count then cannot change
            (``H5InfoMismatchError``). ``False``, with ``info_overwrite=True``, deletes
            the scales not asked for.
        allow_slice_rounding: widen regions off the voxel grid to whole voxels (start
            floored, stop ceiled) instead of raising ``ValueError``; default ``False``.
        index_procs: callables ``VolumetricIndex -> VolumetricIndex`` applied before
            every read and write.
        read_procs: data and joint processors of reads; ``read_procs[0]`` sits closest
            to the volume.
        write_procs: the same for writes; ``write_procs[0]`` sits closest to the user.
        info_reference_scale: the resolution (nm) of the reference's scale that gives
            the bounds and the inherited parameters; default: the finest. A resolution
            the reference does not have is an ``UnknownResolutionError``; without
            ``info_reference_path`` it is a ``ValueError``.
        resolution: the dataset's resolution (nm, x, y, z, positive), overriding its
            ``resolution`` attribute (read in the file's spatial order); required when
            the dataset has none (``ValueError``). For datasets lamina did not write:
            with ``info_scales`` it is a ``ValueError`` (a new volume takes its
            resolutions from ``info_scales``).
        axes: the file's axis order (``"zyx"``, ``"czyx"``, ``"xyzc"``...: x, y and z
            once each, c at most once, one letter per dimension, else ``ValueError``),
            overriding the ``axes`` attribute; default: that attribute, else ``"zyx"``
            for a 3-D dataset (a 4-D one without it needs ``axes``). Refused with
            ``info_scales``, like ``resolution``.
        voxel_offset: the dataset's start (voxels, x, y, z), overriding its
            attributes; default: the ``voxel_offset`` attribute, else ``offset`` (nm)
            divided by the resolution, else 0. Refused with ``info_scales`` (a new
            volume's start comes from ``info_bbox``).
        keep_open: with the default ``True``, each process keeps one read-only handle
            per file open between reads. That handle holds no lock between calls, is
            independent of any ``h5py.File`` you open, is checked against the file
            before every read (so it sees every completed write, and waits while a
            writer has the file open), is never used after ``fork``, and is closed by
            ``clear_cache()``, ``with_changes``, ``delete()``, any lamina write to the
            file and at exit (see :mod:`lamina_hdf5.handles`). With ``False`` (and where
            the system has no ``flock``) every read opens and closes the file.
        mask_value_thr: the threshold of ``interpolation_mode="mask"`` (a voxel is 1
            where a voxel it covers is strictly greater); default 0.

    Returns:
        The :class:`~lamina.volumetric.layer.VolumetricLayer`.
    """
    check_layer_arguments(  # before the file is written
        default_desired_resolution=default_desired_resolution,
        index_resolution=index_resolution,
        data_resolution=data_resolution,
        interpolation_mode=interpolation_mode,
    )
    spec = spec_from_parameters(
        scales=info_scales,
        reference_path=info_reference_path,
        reference_scale=info_reference_scale,
        inherit_all_params=info_inherit_all_params,
        type=info_type,
        data_type=info_data_type,
        num_channels=info_num_channels,
        chunk_size=info_chunk_size,
        bbox=info_bbox,
        compression=info_compression,
        compression_level=info_compression_level,
        # scales added to an existing volume: what is not given comes from the volume
        existing_path=(
            _existing_volume(path, dataset)
            if info_scales is not None and info_reference_path is None
            else None
        ),
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


def _existing_volume(path: str | os.PathLike[str], dataset: str | None) -> str | None:
    """The path of the volume at ``path`` (and ``dataset``) when one is stored there
    already, in the form the core's creation policy opens it by."""
    file_path, inner = split_path(path)
    if not os.path.isfile(file_path):
        return None
    where = dataset or inner
    target = f"{file_path}:/{where}" if where else file_path
    try:
        reference_of(target)
    except (LookupError, ValueError, OSError):
        return None  # no such volume in the file (yet)
    return target
