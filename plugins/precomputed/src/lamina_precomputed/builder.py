"""``build_cv_layer``: a volumetric layer over a precomputed volume (the reference's parameters)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lamina.volumetric.geometry import BBox3D, RawVec3D
from lamina.volumetric.interpolation import InterpolationMode
from lamina.volumetric.layer import (
    VolumetricLayer,
    build_volumetric_layer,
    check_layer_arguments,
)
from lamina_precomputed.backend import CVBackend
from lamina_precomputed.info import InfoSpec, normalize_path, read_info_or_none

__all__ = ["build_cv_layer", "build_ts_layer"]


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
    info_shard_size: RawVec3D | None = None,
    mask_value_thr: float = 0,
    cache_bytes_limit: int | None = None,
    engine: str | None = None,
) -> VolumetricLayer:
    """Build a CloudVolume layer: every parameter of the reference's ``build_cv_layer``.

    The volume is a Neuroglancer precomputed one, read and written by
    :class:`~lamina_precomputed.backend.CVBackend` on one of two engines (TensorStore's
    C++ driver or lamina's CloudVolume-compatible chunk IO: see ``engine`` and
    :mod:`lamina_precomputed.engine`); the layer is a
    :class:`~lamina.volumetric.layer.VolumetricLayer` (the index forms and the layer
    parameters are those of :func:`lamina.build_volumetric_layer`).

    Without ``info_scales`` the volume's info must exist and is used as it is; any other
    ``info_*`` argument is then an error (``ValueError``). With ``info_scales`` an info
    is created or extended from the ``info_*`` arguments (and ``info_reference_path``),
    under the ``info_overwrite`` / ``info_keep_existing_scales`` policy; on an existing
    volume, what is not given (type, dtype, channels, chunk size, encoding, bounds) comes
    from the volume itself, so ``info_scales=[(32, 32, 40)]`` alone adds that scale. New
    volumes default to ``raw`` encoding and uncompressed chunk files. The ``info_*``
    arguments are all checked before the info is written.

    Keyword-only additions to the reference's parameters: ``info_reference_scale``,
    ``info_shard_size``, ``mask_value_thr``, ``cache_bytes_limit`` and ``engine``.

    Args:
        path: where the volume is: a local path (made absolute, ``~`` expanded),
            ``file://``, ``gs://``, ``s3://`` or ``mem://`` (this process only),
            optionally behind ``precomputed://``. Without ``info_scales`` an info file
            must be there (:class:`~lamina_precomputed.info.InfoNotFoundError`, a
            ``FileNotFoundError``); an info that is not JSON or does not describe a
            volume is an :class:`~lamina_precomputed.info.InfoFileError` (a
            ``ValueError``), and a volume none of whose scales lamina can decode is
            refused (``UnsupportedEncodingError``, a ``ValueError``).
        cv_kwargs: CloudVolume's options, over lamina's defaults
            (:data:`~lamina_precomputed.backend.DEFAULT_CV_KWARGS`): ``bounded=False``
            and ``fill_missing=True`` (out-of-bounds regions and missing chunks read as
            the background value), ``non_aligned_writes=False`` (writes must be aligned
            to the chunk grid, or the shard grid of a sharded scale), ``autocrop=False``
            (a write reaching outside the bounds is refused; ``True`` crops it),
            ``delete_black_uploads=False`` (all-zero chunks are stored), ``cache=False``
            (the disk cache: ``True`` or its directory), ``compress=False``,
            ``lru_bytes=0``. Also honoured: ``compress_level``,
            ``overwrite_partial_chunks``, ``background_color``, ``cdn_cache``,
            ``secrets``, ``use_https``, ``progress``; a few more are accepted without
            effect. ``mip`` (the resolution comes from the index), ``info``,
            ``provenance`` and unknown keys are a ``ValueError``. Default ``None``: the
            defaults.
        default_desired_resolution: the resolution (nm) of the arrays read and written
            when the index does not give one; default ``None``: every index must give
            one (``ValueError``).
        index_resolution: the resolution (nm) slices count voxels at; default ``None``:
            the index's own resolution.
        data_resolution: read and write the volume at this resolution (nm), resampling
            to and from the one asked for; default ``None``: no resampling. A resolution
            the info does not list is an :class:`~lamina.errors.UnknownResolutionError`
            (a ``ValueError``) naming the path and the resolutions it has.
        interpolation_mode: the resampling mode (``"img"``, ``"segmentation"``,
            ``"mask"``, ``"field"`` or a torch mode); required with ``data_resolution``
            (``ValueError``).
        readonly: refuse writes and ``delete()`` (``ReadonlyLayerError``, an
            ``IOError``); default ``False``.
        info_reference_path: a precomputed volume the new info is modelled on: its
            reference scale gives the bounds when ``info_bbox`` is not given and, with
            ``info_inherit_all_params``, everything else not given. Default ``None``: on
            an existing volume, the volume itself is the reference (everything not given
            is inherited); on a new one, ``info_type``, ``info_data_type``,
            ``info_num_channels``, ``info_chunk_size`` and ``info_bbox`` are required
            (``ValueError`` naming those missing).
        info_inherit_all_params: take the type, data type, channel count, encoding,
            chunk size and the reference scale's other keys (all but ``sharding``,
            ``encoding``, the geometry, ``key`` and ``locked``) from the reference where
            not given. Default ``False``: with ``info_reference_path``, type, data type,
            channels and chunk size must be given (``ValueError``). ``True`` on a new
            volume without ``info_reference_path`` is a ``ValueError``.
        info_type: ``"image"`` or ``"segmentation"`` (anything else is a
            ``ValueError``).
        info_data_type: a precomputed data type: ``"uint8"``, ``"int8"``,
            ``"uint16"``, ``"int16"``, ``"uint32"``, ``"int32"``, ``"uint64"`` or
            ``"float32"`` (anything else is a ``ValueError``).
        info_num_channels: the channel count, an int >= 1 (``ValueError``).
        info_chunk_size: the chunk size (voxels, x, y, z, positive), the same at every
            new scale.
        info_bbox: the region (a ``BBox3D``, nm) every new scale covers, widened to
            whole voxels at each (start floored, end ceiled); default: the bounds of the
            reference scale. Anything but a ``BBox3D`` is a ``TypeError``.
        info_encoding: the chunk encoding of every new scale; default ``"raw"``. lamina
            reads and writes ``raw`` (every data type), ``jpeg`` (uint8, 1 or 3
            channels), ``png`` (uint8 or uint16, 1 to 4 channels),
            ``compressed_segmentation`` (uint32 or uint64), ``compresso`` and ``crackle``
            (unsigned integers, 1 channel); any other combination is refused
            (``ValueError``) before anything is written.
        info_scales: the resolutions (nm, x, y, z) of the scales to create or add, each
            keyed like ``"4_4_40"``; an empty list is a ``ValueError``. Default
            ``None``: use the info at ``path`` as it is.
        info_extra_scale_data: more keys for every new scale (e.g. ``sharding``); they
            win over the keys inherited from the reference.
        info_overwrite: allow the info on disk to change (an existing scale changed or
            dropped, a top-level field changed). Default ``False``: such a change raises
            :class:`~lamina_precomputed.info.InfoMismatchError` (a ``RuntimeError``)
            listing the missing scales and the differences, and nothing is written;
            adding scales needs no overwrite.
        info_keep_existing_scales: keep the scales already in the info that
            ``info_scales`` does not list (default ``True``); the data type and channel
            count then cannot change (``InfoMismatchError``: their chunks would no longer
            decode). ``False``, with ``info_overwrite=True``, leaves only
            ``info_scales`` in the info; the dropped scales' chunk files are not deleted.
        allow_slice_rounding: widen regions off the voxel grid to whole voxels (start
            floored, stop ceiled) instead of raising ``ValueError``; default ``False``.
        index_procs: callables ``VolumetricIndex -> VolumetricIndex`` applied before
            every read and write.
        read_procs: data and joint processors of reads; ``read_procs[0]`` sits closest
            to the volume.
        write_procs: the same for writes; ``write_procs[0]`` sits closest to the user.
        info_reference_scale: the resolution (nm) of the reference's scale that gives
            the bounds and the inherited keys (the existing volume's, without
            ``info_reference_path``); default: the finest. A resolution the reference
            does not have is an ``UnknownResolutionError``; on a new volume without
            ``info_reference_path`` it is a ``ValueError``.
        info_shard_size: voxels (x, y, z) of the box each shard of every new scale
            covers: identity-hashed shards of raw chunk data (TensorStore's and
            Igneous's layout for images), the flows' write grid; a box Morton order
            cannot make from the chunk grid is a ``ValueError`` listing those it can,
            and a box covering a scale's whole grid makes it one shard. Default
            ``None``: unsharded (or ``info_extra_scale_data``'s ``sharding``).
        mask_value_thr: the threshold of ``interpolation_mode="mask"`` (a voxel is 1
            where a voxel it covers is strictly greater); default 0.
        cache_bytes_limit: the in-memory chunk cache: the bytes of decoded chunks kept
            (it sets ``cv_kwargs["lru_bytes"]``; on the TensorStore engine, the size of
            its cache pool); default ``None``: ``lru_bytes``, 0 unless given. A negative
            value is a ``ValueError``.
        engine: ``"auto"`` (the faster engine where both serve a scale exactly:
            TensorStore on S3 and GCS, the CloudVolume engine on local files; the
            CloudVolume engine wherever TensorStore cannot serve a scale exactly),
            ``"tensorstore"`` (TensorStore; a ``ValueError`` naming the reasons where it
            cannot serve the volume exactly: ``mem://``, ``fill_missing=False``, a disk
            cache, compressed chunk files, compresso or crackle...) or
            ``"cloudvolume"``; default ``None``: ``$LAMINA_PRECOMPUTED_ENGINE`` (whose
            ``tensorstore`` falls back to the CloudVolume engine where TensorStore
            cannot go), else ``"auto"``. ``layer.backend.engine`` says which is used.

    Returns:
        The :class:`~lamina.volumetric.layer.VolumetricLayer`.
    """
    return _build_precomputed_layer(**locals())


def build_ts_layer(
    path: str | os.PathLike[str],
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
    cache_bytes_limit: int | None = None,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
    *,
    info_reference_scale: RawVec3D | None = None,
    info_shard_size: RawVec3D | None = None,
    mask_value_thr: float = 0,
) -> VolumetricLayer:
    """Build a TensorStore layer: the reference's ``build_ts_layer`` (its 0.4 parameters).

    :func:`build_cv_layer` on the TensorStore engine (``engine="tensorstore"``, lamina's
    default ``cv_kwargs``): the same creation policy, alignment rules, bounds handling
    and ``with_changes`` keys. A volume TensorStore cannot serve exactly (``mem://``,
    CloudVolume's compressed local chunks, compresso or crackle) is a ``ValueError``
    naming why; :func:`build_cv_layer` with ``engine="auto"`` serves it.

    Args:
        path: where the volume is: a local path, ``file://``, ``gs://`` or ``s3://``,
            optionally behind ``precomputed://``; as for :func:`build_cv_layer`.
        default_desired_resolution: the resolution (nm) of the arrays read and written
            when the index does not give one; default ``None``: every index gives one.
        index_resolution: the resolution (nm) slices count voxels at; default: the
            index's own.
        data_resolution: read and write at this resolution (nm), resampling to and
            from the one asked for; default ``None``: no resampling.
        interpolation_mode: the resampling mode; required with ``data_resolution``.
        readonly: refuse writes and ``delete()``; default ``False``.
        info_reference_path: the precomputed volume a new info is modelled on.
        info_inherit_all_params: take everything not given from the reference.
        info_type: ``"image"`` or ``"segmentation"``.
        info_data_type: a precomputed data type (``"uint8"`` ... ``"float32"``).
        info_num_channels: the channel count, an int >= 1.
        info_chunk_size: the chunk size (voxels, x, y, z) of every new scale.
        info_bbox: the region (a ``BBox3D``, nm) every new scale covers.
        info_encoding: the chunk encoding of every new scale; default ``"raw"``
            (TensorStore's: ``raw``, ``jpeg``, ``png``, ``compressed_segmentation``).
        info_scales: the resolutions of the scales to create or add; default
            ``None``: use the info at ``path`` as it is (any other ``info_*`` is then
            a ``ValueError``).
        info_extra_scale_data: more keys for every new scale (e.g. ``sharding``).
        info_overwrite: allow the info on disk to change; default ``False``.
        info_keep_existing_scales: keep the scales ``info_scales`` does not list;
            default ``True``.
        cache_bytes_limit: bytes of TensorStore's chunk cache (its cache pool);
            default ``None``: no cache.
        allow_slice_rounding: widen regions off the voxel grid to whole voxels;
            default ``False``.
        index_procs: callables ``VolumetricIndex -> VolumetricIndex`` applied first.
        read_procs: data and joint processors of reads.
        write_procs: data and joint processors of writes.
        info_reference_scale: the reference's scale that gives the bounds and the
            inherited keys; default: the finest.
        info_shard_size: voxels of the box each shard of every new scale covers
            (identity-hashed shards); default ``None``: unsharded.
        mask_value_thr: the threshold of ``interpolation_mode="mask"``; default 0.

    Returns:
        The :class:`~lamina.volumetric.layer.VolumetricLayer`.
    """
    return _build_precomputed_layer(cv_kwargs=None, engine="tensorstore", **locals())


def _build_precomputed_layer(
    path: str | os.PathLike[str],
    *,
    cv_kwargs: Mapping[str, Any] | None,
    engine: str | None,
    cache_bytes_limit: int | None,
    info_reference_path: str | None,
    info_inherit_all_params: bool,
    info_type: str | None,
    info_data_type: str | None,
    info_num_channels: int | None,
    info_chunk_size: RawVec3D | None,
    info_bbox: BBox3D | None,
    info_encoding: str | None,
    info_scales: Sequence[RawVec3D] | None,
    info_extra_scale_data: Mapping[str, Any] | None,
    info_overwrite: bool,
    info_keep_existing_scales: bool,
    info_reference_scale: RawVec3D | None,
    info_shard_size: RawVec3D | None,
    **layer: Any,
) -> VolumetricLayer:
    """What both builders do (their parameters, ``layer`` those of
    :func:`~lamina.volumetric.layer.build_volumetric_layer`): check the layer's
    arguments, create or extend the info under the creation policy
    (:meth:`InfoSpec.from_optional_reference`), open the backend on ``engine`` and build
    the layer."""
    check_layer_arguments(  # before the info is written
        default_desired_resolution=layer["default_desired_resolution"],
        index_resolution=layer["index_resolution"],
        data_resolution=layer["data_resolution"],
        interpolation_mode=layer["interpolation_mode"],
    )
    # scales added to an existing volume: what is not given comes from the volume
    existing = info_scales is not None and read_info_or_none(normalize_path(path)) is not None
    spec = InfoSpec.from_optional_reference(
        scales=info_scales,
        reference_path=info_reference_path,
        inherit_all_params=info_inherit_all_params,
        existing_path=os.fspath(path) if existing else None,
        type=info_type,
        data_type=info_data_type,
        chunk_size=info_chunk_size,
        num_channels=info_num_channels,
        encoding=info_encoding,
        bbox=info_bbox,
        extra_scale_data=info_extra_scale_data,
        reference_scale=info_reference_scale,
        shard_size=info_shard_size,
    )
    backend = CVBackend(
        os.fspath(path),
        cv_kwargs=cv_kwargs,
        info_spec=spec,
        info_overwrite=info_overwrite,
        info_keep_existing_scales=info_keep_existing_scales,
        cache_bytes_limit=cache_bytes_limit,
        engine=engine,
    )
    return build_volumetric_layer(backend, **layer)
