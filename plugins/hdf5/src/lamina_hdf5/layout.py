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

import math
import os
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from lamina.errors import LaminaError
from lamina.volumetric.creation import (
    StoredVolume,
    VolumeMismatchError,
    number,
    plan_update,
    res_to_key,
)
from lamina.volumetric.creation import VolumeSpec as CoreVolumeSpec
from lamina.volumetric.creation import spec_from_parameters as core_spec_from_parameters
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
DEFAULT_GROUP = "volume"


class H5NotFoundError(LaminaError, FileNotFoundError):
    """No HDF5 file, volume or dataset where one was expected."""


class H5InfoMismatchError(VolumeMismatchError):
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
            "resolution": [number(v) for v in self.resolution],
            "voxel_offset": list(self.voxel_offset),
            "size": list(self.size),
            "chunk_size": list(self.chunk_size),
            "bounds_nm": [
                [number(v) for v in self.voxel_offset * self.resolution],
                [number(v) for v in (self.voxel_offset + self.size) * self.resolution],
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
class VolumeSpec(CoreVolumeSpec):
    """A volume to create: the core's :class:`~lamina.volumetric.creation.VolumeSpec`
    plus HDF5's compression (``None``, ``"gzip"`` with a level 0-9, or ``"lzf"``)."""

    compression: str | None = None
    compression_level: int | None = None

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
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
            "resolution": [number(v) for v in res],
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
        "resolution": [number(v) for v in meta.resolution],
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
    plan = plan_update(
        StoredVolume(
            {
                "type": group.attrs.get("type"),
                "data_type": str(next(iter(existing.values())).dtype) if existing else None,
                "num_channels": int(group.attrs.get("num_channels", 1)),
            },
            {res: meta_json(meta) for res, meta in existing.items()},
        ),
        StoredVolume(
            {"type": spec.type, "data_type": spec.data_type, "num_channels": spec.num_channels},
            {res: spec.scale_json(res) for res in spec.scales},
        ),
        overwrite=overwrite,
        keep_existing_scales=keep_existing_scales,
        where=where,
        label=lambda res, _: res_to_key(res),
        error=H5InfoMismatchError,
    )
    if not plan.changes and plan.attributes.get("type") == group.attrs.get("type"):
        return
    for res in plan.replaced | plan.dropped:
        del group[existing[res].path.rsplit("/", 1)[-1]]  # re-created empty, or dropped
    group.attrs["type"] = spec.type
    group.attrs["num_channels"] = spec.num_channels
    for res in sorted(plan.replaced | plan.created, key=lambda r: tuple(r)):
        _create_dataset(group, spec, res)


def spec_from_parameters(
    *,
    scales: Sequence[RawVec3D] | None,
    reference_path: str | None,
    reference_scale: RawVec3D | None = None,
    inherit_all_params: bool,
    type: str | None,
    data_type: str | None,
    num_channels: int | None,
    chunk_size: RawVec3D | None,
    bbox: BBox3D | None,
    compression: str | None,
    compression_level: int | None,
    existing_path: str | None = None,
) -> VolumeSpec | None:
    """The spec of ``build_h5_layer``'s ``info_*`` parameters under the core's policy
    (:func:`lamina.volumetric.creation.spec_from_parameters`); with everything
    inherited from an HDF5 reference, its compression too. ``None`` without ``scales``
    (the volume in the file is used as it is)."""
    spec = core_spec_from_parameters(
        scales=scales,
        type=type,
        data_type=data_type,
        num_channels=num_channels,
        chunk_size=chunk_size,
        bbox=bbox,
        reference_path=reference_path,
        reference_scale=reference_scale,
        inherit_all_params=inherit_all_params,
        existing_path=existing_path,
        format_parameters={
            "info_compression": compression,
            "info_compression_level": compression_level,
        },
        used_as_stored="the volume in the file",
    )
    if spec is None:
        return None
    inherited = spec.reference is not None and (inherit_all_params or existing_path is not None)
    if compression is None and compression_level is None and inherited:
        assert spec.reference is not None
        own = spec.reference.scale if spec.reference.format == FORMAT else {}
        compression = own.get("compression")
        compression_level = own.get("compression_level")
    fields = {f.name: getattr(spec, f.name) for f in attrs.fields(CoreVolumeSpec)}
    return VolumeSpec(**fields, compression=compression, compression_level=compression_level)


#: What ``lamina info`` calls this format (``describe()["format"]``).
FORMAT = "HDF5 (lamina-hdf5)"


def isclose_vec(a: Vec3D[float], b: Vec3D[float]) -> bool:
    return all(math.isclose(x, y) for x, y in zip(a, b, strict=True))
