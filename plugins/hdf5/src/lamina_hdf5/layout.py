"""The lamina HDF5 layout: paths, metadata of volumes and datasets, creation and policy.

Layout (``README.md`` has the full description):

* one HDF5 **group per volume**, with attributes ``lamina_layout = "lamina-hdf5/1"``,
  ``type`` (``"image"`` / ``"segmentation"``) and ``num_channels``;
* one **dataset per scale**, named by its resolution (``"4_4_40"``, x_y_z nm), shaped
  ``(Z, Y, X)`` for one channel and ``(C, Z, Y, X)`` for several, C order;
* each dataset's attributes list spatial values **in the dataset's own axis order**
  (z, y, x, as CREMI files do): ``axes`` (``"zyx"`` / ``"czyx"``), ``resolution`` (nm),
  ``offset`` (nm), ``voxel_offset`` (voxels) and ``chunk_size`` (the lamina chunk grid,
  voxels). lamina's API speaks x, y, z; the conversion happens here only.

h5py is imported inside the functions that touch files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from lamina.errors import LaminaError, UnknownResolutionError
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.scales import scale_geometry, sorted_resolutions

__all__ = [
    "COMPRESSIONS",
    "H5_SUFFIXES",
    "LAYOUT_VERSION",
    "DatasetMeta",
    "H5InfoMismatchError",
    "H5NotFoundError",
    "VolumeSpec",
    "find_volumes",
    "read_meta",
    "res_to_key",
    "split_path",
]

LAYOUT_VERSION = "lamina-hdf5/1"
H5_SUFFIXES: tuple[str, ...] = (".h5", ".hdf5", ".hdf", ".he5", ".nxs")
COMPRESSIONS: tuple[str | None, ...] = (None, "gzip", "lzf")
VOLUME_TYPES: tuple[str, ...] = ("image", "segmentation")
DEFAULT_GROUP = "volume"


class H5NotFoundError(LaminaError, FileNotFoundError):
    """No HDF5 file, volume or dataset where one was expected."""


class H5InfoMismatchError(LaminaError, RuntimeError):
    """The volume that would be created conflicts with the one in the file under the policy."""


# -- paths -----------------------------------------------------------------------------------------
def _has_suffix(path: str) -> bool:
    return path.lower().endswith(H5_SUFFIXES)


def split_path(path: str | os.PathLike[str]) -> tuple[str, str | None]:
    """``(absolute file path, object path inside the file or None)``.

    Accepted: ``FILE``, ``FILE:/GROUP`` (``FILE.h5:/volumes/raw``) and, as ``h5ls``
    writes it, ``FILE/GROUP`` where ``FILE`` is an existing file or has an HDF5 suffix.
    """
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise ValueError(f"path must be a non-empty str; got {path!r}")
    if text.startswith("file://"):
        text = text[len("file://") :]
    text = os.path.expanduser(text)
    if ":/" in text:
        head, _, inner = text.partition(":/")
        if head and not head.endswith(":"):
            return os.path.abspath(head), inner.strip("/") or None
    if os.path.isfile(text) or _has_suffix(text):
        return os.path.abspath(text), None
    parts = text.split("/")
    for cut in range(len(parts) - 1, 0, -1):
        head = "/".join(parts[:cut])
        if head and (os.path.isfile(head) or _has_suffix(head)):
            return os.path.abspath(head), "/".join(parts[cut:]).strip("/") or None
    return os.path.abspath(text), None


def res_to_key(resolution: RawVec3D) -> str:
    """``(4.0, 4.0, 40)`` → ``"4_4_40"`` (x_y_z nm)."""
    parts = []
    for v in Vec3D.from_seq(resolution, "resolution"):
        f = float(v)
        parts.append(str(int(f)) if f.is_integer() else repr(f))
    return "_".join(parts)


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


# -- what a dataset is ----------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class DatasetMeta:
    """One dataset as lamina sees it; vectors in x, y, z."""

    path: str  # inside the file, no leading slash
    axes: str  # the file's order, e.g. "czyx"
    resolution: Vec3D[float]
    voxel_offset: Vec3D[int]
    size: Vec3D[int]
    chunk_size: Vec3D[int]
    num_channels: int
    dtype: np.dtype[Any]
    compression: str | None
    compression_level: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.path.rsplit("/", 1)[-1],
            "dataset": "/" + self.path,
            "axes": self.axes,
            "resolution": [_number(v) for v in self.resolution],
            "voxel_offset": list(self.voxel_offset),
            "size": list(self.size),
            "chunk_size": list(self.chunk_size),
            "bounds_nm": [
                [_number(v) for v in self.voxel_offset * self.resolution],
                [_number(v) for v in (self.voxel_offset + self.size) * self.resolution],
            ],
            "compression": self.compression,
            "compression_level": self.compression_level,
            "encoding": _encoding(self.compression, self.compression_level),
        }


def _encoding(compression: str | None, level: int | None) -> str:
    if compression is None:
        return "raw (uncompressed)"
    return f"{compression} level {level}" if level is not None else str(compression)


def check_axes(axes: str, ndim: int, dataset: str) -> str:
    """``axes`` validated: x, y, z once each, c at most once, one letter per dimension."""
    text = str(axes).lower()
    if sorted(text.replace("c", "")) != ["x", "y", "z"] or text.count("c") > 1:
        raise ValueError(
            f"axes must name x, y and z once each and c at most once (e.g. 'zyx', 'czyx', "
            f"'xyzc'); got {axes!r} for dataset {dataset!r}"
        )
    if len(text) != ndim:
        raise ValueError(
            f"axes={axes!r} has {len(text)} letters but dataset {dataset!r} has {ndim} "
            "dimensions: pass axes= with one letter per dimension (attribute 'axes')"
        )
    return text


def _spatial_attr(ds: Any, name: str, axes: str, what: str, argument: str) -> Vec3D[float] | None:
    """Attribute ``name`` (in the file's spatial order) as x, y, z, or None when absent."""
    if name not in ds.attrs:
        return None
    raw = np.asarray(ds.attrs[name]).ravel()
    if raw.shape != (3,) or raw.dtype.kind not in "iuf":
        raise ValueError(
            f"attribute {name!r} of dataset {ds.name!r} must hold 3 numbers ({what}, in the "
            f"dataset's spatial order {''.join(a for a in axes if a != 'c')}); got "
            f"{ds.attrs[name]!r}. Pass {argument} to override it"
        )
    spatial = [a for a in axes if a != "c"]
    by_axis = dict(zip(spatial, (float(v) for v in raw), strict=True))
    return Vec3D(by_axis["x"], by_axis["y"], by_axis["z"])


def read_meta(
    ds: Any,
    *,
    resolution: RawVec3D | None = None,
    axes: str | None = None,
    voxel_offset: RawVec3D | None = None,
) -> DatasetMeta:
    """What lamina needs of dataset ``ds``: from the arguments, else its attributes.

    Arguments override attributes. ``axes`` defaults to the ``axes`` attribute, else
    ``"zyx"`` for a 3-D dataset; ``resolution`` to the ``resolution`` attribute (in the
    dataset's spatial order, as CREMI and lamina write it); the voxel offset to the
    ``voxel_offset`` attribute, else ``offset`` (nm) / resolution, else 0.
    """
    name = ds.name.lstrip("/")
    if ds.ndim not in (3, 4):
        raise ValueError(
            f"dataset {ds.name!r} has {ds.ndim} dimensions; lamina opens 3-D and 4-D datasets"
        )
    if axes is None:
        attr = ds.attrs.get("axes")
        if attr is None:
            if ds.ndim == 4:
                raise ValueError(
                    f"dataset {ds.name!r} is 4-D and has no 'axes' attribute: pass axes= "
                    "(the file's axis order, e.g. 'czyx' or 'xyzc')"
                )
            axes = "zyx"
        else:
            axes = attr.decode() if isinstance(attr, bytes) else str(attr)
    axes = check_axes(axes, ds.ndim, ds.name)
    if resolution is not None:
        res = Vec3D.from_seq(resolution, "resolution").float()
    else:
        found = _spatial_attr(ds, "resolution", axes, "nm per voxel", "resolution=")
        if found is None:
            raise ValueError(
                f"dataset {ds.name!r} has no 'resolution' attribute: pass resolution= "
                "(nm per voxel, in x, y, z order)"
            )
        res = found
    if not all(v > 0 for v in res):
        raise ValueError(f"resolution of dataset {ds.name!r} must be positive; got {res.pformat()}")
    if voxel_offset is not None:
        offset = Vec3D.from_seq(voxel_offset, "voxel_offset").int()
    else:
        vox = _spatial_attr(ds, "voxel_offset", axes, "voxels", "voxel_offset=")
        nm = _spatial_attr(ds, "offset", axes, "nm", "voxel_offset=")
        if vox is not None:
            offset = Vec3D(*(round(v) for v in vox))
            if nm is not None and any(
                abs(nm[d] - offset[d] * res[d]) > 1e-3 * res[d] for d in range(3)
            ):
                raise ValueError(
                    f"attributes 'offset' ({list(nm)} nm) and 'voxel_offset' ({list(offset)}) "
                    f"of dataset {ds.name!r} disagree at resolution {res.pformat()}: fix one, "
                    "or pass voxel_offset= (x, y, z voxels)"
                )
        elif nm is not None:
            vox_f = [nm[d] / res[d] for d in range(3)]
            if any(abs(v - round(v)) > 1e-5 for v in vox_f):
                raise ValueError(
                    f"attribute 'offset' ({list(nm)} nm) of dataset {ds.name!r} is not a whole "
                    f"number of voxels at resolution {res.pformat()} (attribute 'resolution'): "
                    "pass voxel_offset= (x, y, z voxels)"
                )
            offset = Vec3D(*(round(v) for v in vox_f))
        else:
            offset = Vec3D(0, 0, 0)
    shape = dict(zip(axes, ds.shape, strict=True))
    size = Vec3D(int(shape["x"]), int(shape["y"]), int(shape["z"]))
    grid = _spatial_attr(ds, "chunk_size", axes, "voxels", "a dataset without it")
    if grid is not None:
        chunk = Vec3D(*(max(1, round(v)) for v in grid))
    elif ds.chunks is not None:
        chunks = dict(zip(axes, ds.chunks, strict=True))
        chunk = Vec3D(int(chunks["x"]), int(chunks["y"]), int(chunks["z"]))
    else:  # contiguous storage has no chunk grid: every write is aligned
        chunk = Vec3D(1, 1, 1)
    return DatasetMeta(
        path=name,
        axes=axes,
        resolution=res,
        voxel_offset=offset,
        size=size,
        chunk_size=chunk,
        num_channels=int(shape.get("c", 1)),
        dtype=np.dtype(ds.dtype),
        compression=ds.compression,
        compression_level=ds.compression_opts if ds.compression == "gzip" else None,
    )


def is_lamina_group(obj: Any) -> bool:
    import h5py

    return isinstance(obj, h5py.Group) and obj.attrs.get("lamina_layout") == LAYOUT_VERSION


def group_scales(group: Any) -> list[DatasetMeta]:
    """The scales of a lamina volume group, finest first."""
    import h5py

    metas = [read_meta(obj) for obj in group.values() if isinstance(obj, h5py.Dataset)]
    order = {r: i for i, r in enumerate(sorted_resolutions(m.resolution for m in metas))}
    return sorted(metas, key=lambda m: order[m.resolution])


def find_volumes(f: Any) -> list[str]:
    """Paths (no leading slash) of every lamina volume group and every other 3-D/4-D
    dataset in the open file ``f``."""
    import h5py

    found: list[str] = []

    def visit(group: Any) -> None:
        for obj in group.values():
            if is_lamina_group(obj):
                found.append(obj.name.lstrip("/"))
            elif isinstance(obj, h5py.Group):
                visit(obj)
            elif isinstance(obj, h5py.Dataset) and obj.ndim in (3, 4):
                found.append(obj.name.lstrip("/"))

    visit(f)
    return found


# -- creating volumes ------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class VolumeSpec:
    """A volume to create: type, dtype, channels, chunk size, bbox, compression, scales."""

    scales: tuple[Vec3D[float], ...]
    type: str
    data_type: str
    num_channels: int
    chunk_size: Vec3D[int]
    bbox: BBox3D
    compression: str | None = None
    compression_level: int | None = None

    def __attrs_post_init__(self) -> None:
        if not self.scales:
            raise ValueError("info_scales must list at least one resolution")
        try:
            np.dtype(self.data_type)
        except TypeError as exc:
            raise ValueError(
                f"info_data_type must be a numpy dtype; got {self.data_type!r}"
            ) from exc
        if self.type not in VOLUME_TYPES:
            raise ValueError(f"info_type must be 'image' or 'segmentation'; got {self.type!r}")
        if not isinstance(self.num_channels, int) or self.num_channels < 1:
            raise ValueError(f"info_num_channels must be an int >= 1; got {self.num_channels!r}")
        if not self.chunk_size > 0:
            raise ValueError(f"info_chunk_size must be positive; got {self.chunk_size.pformat()}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(
                f"info_compression must be None, 'gzip' or 'lzf'; got {self.compression!r}"
            )
        if self.compression_level is not None:
            if self.compression != "gzip":
                raise ValueError("info_compression_level needs info_compression='gzip'")
            if not 0 <= int(self.compression_level) <= 9:
                raise ValueError(
                    f"info_compression_level must be 0..9; got {self.compression_level!r}"
                )

    @property
    def level(self) -> int | None:
        if self.compression != "gzip":
            return None
        return 4 if self.compression_level is None else int(self.compression_level)

    def scale_json(self, res: Vec3D[float]) -> dict[str, Any]:
        """What decides a scale's dataset (compared with an existing one by the policy)."""
        geo = scale_geometry(self.bbox, res, self.chunk_size)
        return {
            "resolution": [_number(v) for v in res],
            "voxel_offset": list(geo.voxel_offset),
            "size": list(geo.dataset_size),
            "chunk_size": list(self.chunk_size),
            "data_type": str(np.dtype(self.data_type)),
            "num_channels": self.num_channels,
            "compression": self.compression,
            "compression_level": self.level,
        }


def meta_json(meta: DatasetMeta) -> dict[str, Any]:
    """An existing scale, in the shape of :meth:`VolumeSpec.scale_json`."""
    return {
        "resolution": [_number(v) for v in meta.resolution],
        "voxel_offset": list(meta.voxel_offset),
        "size": list(meta.size),
        "chunk_size": list(meta.chunk_size),
        "data_type": str(meta.dtype),
        "num_channels": meta.num_channels,
        "compression": meta.compression,
        "compression_level": meta.compression_level,
    }


def _create_dataset(group: Any, spec: VolumeSpec, res: Vec3D[float]) -> None:
    geo = scale_geometry(spec.bbox, res, spec.chunk_size)
    size, chunk = geo.dataset_size, spec.chunk_size
    spatial = (int(size[2]), int(size[1]), int(size[0]))
    grid = (int(chunk[2]), int(chunk[1]), int(chunk[0]))
    axes = "zyx" if spec.num_channels == 1 else "czyx"
    shape = spatial if spec.num_channels == 1 else (spec.num_channels, *spatial)
    chunks = tuple(max(1, min(c, s)) for c, s in zip(grid, spatial, strict=True))
    if spec.num_channels > 1:
        chunks = (spec.num_channels, *chunks)
    ds = group.create_dataset(
        res_to_key(res),
        shape=shape,
        dtype=np.dtype(spec.data_type),
        chunks=chunks,
        compression=spec.compression,
        compression_opts=spec.level,
        fillvalue=np.zeros((), dtype=np.dtype(spec.data_type)),
    )
    off = geo.voxel_offset
    ds.attrs["axes"] = axes
    ds.attrs["resolution"] = np.array([res[2], res[1], res[0]], dtype=np.float64)
    ds.attrs["voxel_offset"] = np.array([off[2], off[1], off[0]], dtype=np.int64)
    ds.attrs["offset"] = np.array(
        [off[2] * res[2], off[1] * res[1], off[0] * res[0]], dtype=np.float64
    )
    ds.attrs["chunk_size"] = np.array(grid, dtype=np.int64)


def _diff(old: Mapping[str, Any], new: Mapping[str, Any], label: str) -> list[str]:
    return [
        f"{label}.{k}: {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


def apply_spec(
    f: Any,
    group_path: str,
    spec: VolumeSpec,
    *,
    overwrite: bool,
    keep_existing_scales: bool,
    where: str,
) -> None:
    """Create or extend the volume ``group_path`` in the open (writable) file ``f``.

    The policy of ``build_cv_layer``: a missing volume is created; an existing one is
    left as it is when it already matches. Otherwise, without ``overwrite`` a
    :class:`H5InfoMismatchError` lists what would change. With it, differing scales are
    re-created empty (their data is dropped) and, unless ``keep_existing_scales``,
    scales not asked for are deleted. Changing dtype or channel count while keeping the
    existing scales is refused.
    """
    import h5py

    obj = f.get(group_path)
    if obj is not None and not is_lamina_group(obj):
        kind = "dataset" if isinstance(obj, h5py.Dataset) else "group"
        raise H5InfoMismatchError(
            f"{where} is an existing {kind} that is not a lamina volume: lamina will not "
            "create a volume over it. Open a dataset without info_* parameters (with "
            "resolution= and axes=), or choose another dataset= for the new volume"
        )
    if obj is None:
        group = f.require_group(group_path)
        group.attrs["lamina_layout"] = LAYOUT_VERSION
        group.attrs["type"] = spec.type
        group.attrs["num_channels"] = spec.num_channels
        for res in spec.scales:
            _create_dataset(group, spec, res)
        return
    group = obj
    existing = {m.resolution: m for m in group_scales(group)}
    wanted = {res: spec.scale_json(res) for res in spec.scales}
    differing = {
        res for res, js in wanted.items() if res in existing and meta_json(existing[res]) != js
    }
    dropped = set() if keep_existing_scales else set(existing) - set(wanted)
    new = set(wanted) - set(existing)
    old_type = group.attrs.get("type")
    type_changes = old_type != spec.type
    if keep_existing_scales:
        kept = [m for r, m in existing.items() if r not in wanted]
        changed = [
            f"{what} {old} -> {now}"
            for m in kept
            for what, old, now in (
                ("data_type", str(m.dtype), str(np.dtype(spec.data_type))),
                ("num_channels", m.num_channels, spec.num_channels),
            )
            if old != now
        ]
        if changed:
            raise H5InfoMismatchError(
                f"the volume {where} cannot change its {sorted(set(changed))[0]} while "
                "keeping its existing scales (info_keep_existing_scales=True). To replace it, "
                "pass both info_overwrite=True and info_keep_existing_scales=False (the "
                "existing scales are deleted)."
            )
    if not (differing or dropped or type_changes or new):
        return
    if not overwrite and (differing or dropped or type_changes):
        lines = [f"type: {json.dumps(old_type)} -> {json.dumps(spec.type)}"] if type_changes else []
        for res in sorted(differing, key=lambda r: r[0] * r[1] * r[2]):
            lines.extend(_diff(meta_json(existing[res]), wanted[res], res_to_key(res)))
        lines.extend(f"- scales[{res_to_key(r)}]" for r in dropped)
        lines.extend(f"+ scales[{res_to_key(r)}]" for r in new)
        missing = sorted(existing[r].path.rsplit("/", 1)[-1] for r in differing | dropped)
        text = "\n  ".join(lines)
        raise H5InfoMismatchError(
            f"the volume {where} would change and info_overwrite=False.\n"
            f"Missing scales: {missing} (existing scales that would be dropped or changed)\n"
            f"Differences:\n  {text}\n"
            "Pass info_overwrite=True to write it anyway (changed scales are re-created "
            "empty), or build the layer without info_* parameters to use the volume as it is."
        )
    for res in differing | dropped:
        del group[existing[res].path.rsplit("/", 1)[-1]]
    group.attrs["type"] = spec.type
    group.attrs["num_channels"] = spec.num_channels
    for res in differing | new:
        _create_dataset(group, spec, res)


def spec_from_parameters(
    *,
    scales: Sequence[RawVec3D],
    reference: Mapping[str, Any] | None,
    inherit_all_params: bool,
    type: str | None,
    data_type: str | None,
    num_channels: int | None,
    chunk_size: RawVec3D | None,
    bbox: BBox3D | None,
    compression: str | None,
    compression_level: int | None,
    reference_path: str | None,
) -> VolumeSpec:
    """The spec from ``info_*`` parameters, filling gaps from a reference description
    (``{"type", "data_type", "num_channels", "chunk_size", "bbox", "compression",
    "compression_level"}``): the bbox always, the rest with ``inherit_all_params``."""
    if reference is None:
        if inherit_all_params:
            raise ValueError(
                "info_inherit_all_params=True needs info_reference_path: there is no "
                "reference to inherit from"
            )
        missing = [
            n
            for n, v in (
                ("info_type", type),
                ("info_data_type", data_type),
                ("info_num_channels", num_channels),
                ("info_chunk_size", chunk_size),
                ("info_bbox", bbox),
            )
            if v is None
        ]
        if missing:
            raise ValueError(
                "creating a new volume needs "
                f"{', '.join(missing)} (missing): nothing is stored at the path yet to "
                "take them from. Give them, or info_reference_path to take them from "
                "another volume"
            )
    else:
        if bbox is None:
            bbox = reference["bbox"]
        if inherit_all_params:
            type = type if type is not None else reference.get("type")
            data_type = data_type if data_type is not None else reference.get("data_type")
            num_channels = (
                num_channels if num_channels is not None else reference.get("num_channels")
            )
            chunk_size = chunk_size if chunk_size is not None else reference.get("chunk_size")
            if compression is None and compression_level is None:
                compression = reference.get("compression")
                compression_level = reference.get("compression_level")
        missing = [
            n
            for n, v in (
                ("info_type", type),
                ("info_data_type", data_type),
                ("info_num_channels", num_channels),
                ("info_chunk_size", chunk_size),
            )
            if v is None
        ]
        if missing:
            raise ValueError(
                f"creating a volume from the reference {reference_path} without "
                f"info_inherit_all_params=True needs {', '.join(missing)} (missing); "
                "give them, or pass info_inherit_all_params=True"
            )
    if not isinstance(bbox, BBox3D):
        raise TypeError(f"info_bbox must be a lamina.BBox3D; got {type_name(bbox)}")
    return VolumeSpec(
        scales=sorted_resolutions(scales),
        type=str(type),
        data_type=str(np.dtype(str(data_type))),
        num_channels=int(num_channels),  # type: ignore[arg-type]
        chunk_size=Vec3D.from_seq(chunk_size, "info_chunk_size").int(),  # type: ignore[arg-type]
        bbox=bbox,
        compression=compression,
        compression_level=compression_level,
    )


def type_name(value: object) -> str:
    return type(value).__name__


def reference_description(
    reference_path: str, reference_scale: RawVec3D | None = None
) -> dict[str, Any]:
    """What a new volume may inherit from ``reference_path``: an HDF5 volume (``FILE``,
    ``FILE:/GROUP`` or ``FILE/GROUP``) or, with lamina-precomputed installed, a
    precomputed volume."""
    file_path, inner = split_path(reference_path)
    if os.path.isfile(file_path):
        import h5py

        with h5py.File(file_path, "r") as f:
            if inner is None:
                vols = find_volumes(f)
                if len(vols) != 1:
                    raise ValueError(
                        f"info_reference_path {reference_path!r} holds {len(vols)} volumes "
                        f"({', '.join(vols) or 'none'}): name one as FILE/GROUP"
                    )
                inner = vols[0]
            obj = f.get(inner)
            if obj is None:
                raise H5NotFoundError(f"info_reference_path: {file_path} has no object {inner!r}")
            metas = group_scales(obj) if is_lamina_group(obj) else [read_meta(obj)]
            vtype = obj.attrs.get("type") if is_lamina_group(obj) else None
        if reference_scale is None:
            ref = metas[0]
        else:
            want = Vec3D.from_seq(reference_scale, "info_reference_scale").float()
            matches = [m for m in metas if m.resolution == want]
            if not matches:
                known = ", ".join(m.resolution.pformat() for m in metas)
                raise UnknownResolutionError(
                    f"info_reference_scale {want.pformat()} is not a scale of the reference "
                    f"{reference_path}; its resolutions are: {known}"
                )
            ref = matches[0]
        return {
            "type": str(vtype) if vtype is not None else None,
            "data_type": str(ref.dtype),
            "num_channels": ref.num_channels,
            "chunk_size": ref.chunk_size,
            "bbox": BBox3D.from_coords(
                ref.voxel_offset, ref.voxel_offset + ref.size, ref.resolution
            ),
            "compression": ref.compression,
            "compression_level": ref.compression_level,
        }
    try:
        from lamina_precomputed.info import InfoSpec
    except ImportError as exc:
        raise H5NotFoundError(
            f"info_reference_path {reference_path!r} is not an HDF5 file; to use a "
            "precomputed volume as the reference, pip install lamina-precomputed"
        ) from exc
    spec = InfoSpec.from_optional_reference(
        scales=[(1, 1, 1)],
        reference_path=reference_path,
        inherit_all_params=True,
        reference_scale=reference_scale,
    )
    return {
        "type": spec.type,
        "data_type": spec.data_type,
        "num_channels": spec.num_channels,
        "chunk_size": spec.chunk_size,
        "bbox": spec.bbox,
        "compression": None,
        "compression_level": None,
    }


def isclose_vec(a: Vec3D[float], b: Vec3D[float]) -> bool:
    return all(math.isclose(x, y) for x, y in zip(a, b, strict=True))
