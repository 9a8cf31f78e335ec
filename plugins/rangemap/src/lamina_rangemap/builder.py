"""``build_range_mapped_layer``: one builder for volumetric and key-value range maps.

The kind is told by the form of the ranges: ``(BBox3D, layer)`` pairs make a
volumetric range map, ``((start, end), layer)`` or ``("prefix", layer)`` pairs a
key-value one. A mix of the two is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, overload

from lamina.keyvalue.layer import KeyValueLayer, build_db_layer
from lamina.volumetric.geometry import BBox3D, RawVec3D
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer
from lamina_rangemap.errors import RangeMapError
from lamina_rangemap.keyvalue import KeyRange, RangeMapDBBackend
from lamina_rangemap.volumetric import RangeMapBackend

__all__ = ["build_range_mapped_layer", "range_kind"]

#: What a key range may be given as: a prefix, a (start, end) pair or a KeyRange.
KeyRangeLike = str | tuple[str | None, str | None] | KeyRange


def _kind_of(value: Any) -> Literal["volumetric", "keyvalue"] | None:
    if isinstance(value, BBox3D):
        return "volumetric"
    if isinstance(value, str | KeyRange):
        return "keyvalue"
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(v is None or isinstance(v, str) for v in value)
    ):
        return "keyvalue"
    return None


def range_kind(ranges: Any) -> Literal["volumetric", "keyvalue"]:
    """``"volumetric"`` or ``"keyvalue"``, from the form of the ranges (``RangeMapError``
    for an empty, malformed or mixed sequence)."""
    if isinstance(ranges, str | bytes) or not isinstance(ranges, Sequence):
        raise RangeMapError(
            "ranges must be a sequence of (range, layer) pairs: (BBox3D, layer) for a "
            'volumetric range map, ((start, end), layer) or ("prefix", layer) for a '
            f"key-value one; got {type(ranges).__name__}"
        )
    if not ranges:
        raise RangeMapError("ranges is empty: a range map needs at least one (range, layer) pair")
    kinds: dict[str, list[int]] = {}
    for i, entry in enumerate(ranges):
        if isinstance(entry, str | bytes) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise RangeMapError(f"ranges[{i}] must be a (range, layer) pair; got {entry!r}")
        kind = _kind_of(entry[0])
        if kind is None:
            raise RangeMapError(
                f"ranges[{i}]: a range is a BBox3D (volumetric) or a key range — a prefix str "
                f"or a (start, end) pair of str or None; got {type(entry[0]).__name__}: "
                f"{entry[0]!r}"
            )
        kinds.setdefault(kind, []).append(i)
    if len(kinds) > 1:
        raise RangeMapError(
            "ranges mixes box ranges (volumetric) at positions "
            f"{kinds['volumetric']} with key ranges at positions {kinds['keyvalue']}; a range "
            "map is either volumetric or key-value"
        )
    (found,) = kinds
    return "volumetric" if found == "volumetric" else "keyvalue"


@overload
def build_range_mapped_layer(
    ranges: Sequence[tuple[BBox3D, VolumetricLayer]],
    fill_value: float | None = None,
    readonly: bool = False,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> VolumetricLayer: ...


@overload
def build_range_mapped_layer(
    ranges: Sequence[tuple[KeyRangeLike, KeyValueLayer]],
    fill_value: None = None,
    readonly: bool = False,
    default_desired_resolution: None = None,
    index_resolution: None = None,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> KeyValueLayer: ...


@overload
def build_range_mapped_layer(
    ranges: Sequence[Any],
    fill_value: float | None = None,
    readonly: bool = False,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> VolumetricLayer | KeyValueLayer: ...


def build_range_mapped_layer(
    ranges: Sequence[Any],
    fill_value: float | None = None,
    readonly: bool = False,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> VolumetricLayer | KeyValueLayer:
    """A layer mapping index ranges to other layers; later ranges take precedence.

    The kind of range map is told by the form of the ranges. Volumetric: a
    :class:`lamina.VolumetricLayer` over a :class:`~lamina_rangemap.RangeMapBackend`,
    indexed in every volumetric user form; a voxel is owned by the last range whose box
    holds it. Key-value: a :class:`lamina.KeyValueLayer` over a
    :class:`~lamina_rangemap.RangeMapDBBackend`; a key is owned by the last range
    holding it, keeps its name in its source, and reads as missing when no range holds
    it. Reads ask each source only for what it owns, through its own layer (so each
    keeps its resolutions and processors); writes are split the same way, and a write
    reaching what no range covers is refused before anything is written. For key ranges
    the volumetric-only arguments must be left at their defaults (``RangeMapError``).

    Args:
        ranges: the ``(range, layer)`` pairs, in increasing precedence. Volumetric:
            ``(BBox3D, VolumetricLayer)`` (boxes in nm, finite and not empty; a
            ``VolumetricBackend`` is taken as ``build_volumetric_layer(backend)``), every
            source with the same dtype and channel count and at least one resolution in
            common. Key-value: ``((start, end), KeyValueLayer)`` (half-open in
            code-point order, ``None`` for an open end), ``("prefix", KeyValueLayer)``
            or ``(KeyRange, KeyValueLayer)``. An empty, malformed or mixed sequence is
            a :class:`~lamina_rangemap.errors.RangeMapError` (a ``ValueError``).
        fill_value: volumetric only: what a region no box covers reads as (a number
            the sources' dtype holds); default ``None``: such a read is an
            :class:`~lamina_rangemap.errors.UncoveredRegionError` naming the uncovered
            box.
        readonly: refuse writes through the range-mapped layer (``ReadonlyLayerError``,
            an ``IOError``); default ``False``. Each source keeps its own ``readonly``.
        default_desired_resolution: volumetric only, as in
            :func:`lamina.build_volumetric_layer`: the resolution (nm) of the arrays
            read and written when the index does not give one.
        index_resolution: volumetric only, as in :func:`lamina.build_volumetric_layer`:
            the resolution (nm) slices count voxels at.
        allow_slice_rounding: volumetric only, as in
            :func:`lamina.build_volumetric_layer` (regions off the voxel grid widened to
            whole voxels); it also lets box edges off the voxel grid of the asked
            resolution be rounded: a voxel belongs to the boxes holding its centre.
        index_procs: index processors of the range-mapped layer itself, applied before
            the index is split among the sources; each source keeps its own.
        read_procs: data and joint processors of the range-mapped layer's reads, on the
            stitched data; each source keeps its own.
        write_procs: the same for writes, before the data is split among the sources.

    Returns:
        A :class:`lamina.VolumetricLayer` for box ranges, a :class:`lamina.KeyValueLayer`
        for key ranges.
    """
    kind = range_kind(ranges)
    if kind == "volumetric":
        backend = RangeMapBackend(ranges=ranges, fill_value=fill_value)
        return build_volumetric_layer(
            backend,
            default_desired_resolution=default_desired_resolution,
            index_resolution=index_resolution,
            readonly=readonly,
            allow_slice_rounding=allow_slice_rounding,
            index_procs=index_procs,
            read_procs=read_procs,
            write_procs=write_procs,
        )
    given = {
        "fill_value": fill_value,
        "default_desired_resolution": default_desired_resolution,
        "index_resolution": index_resolution,
    }
    volumetric_only = [name for name, value in given.items() if value is not None]
    if allow_slice_rounding:
        volumetric_only.append("allow_slice_rounding")
    if volumetric_only:
        raise RangeMapError(
            f"{', '.join(volumetric_only)} apply to volumetric range maps only; the ranges "
            "given are key ranges (a key outside every range reads as missing)"
        )
    return build_db_layer(
        RangeMapDBBackend(ranges=ranges),
        readonly=readonly,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
