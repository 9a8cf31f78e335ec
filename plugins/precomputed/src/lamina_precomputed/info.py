"""Neuroglancer precomputed ``info`` files: paths, reading, and the core's creation policy
mapped to and from them.

* :func:`normalize_path` turns what a user writes (``/data/vol``, ``precomputed://gs://…``)
  into the cloud path cloud-files uses (``file:///data/vol``, ``gs://…``).
* :func:`read_info` checks what it reads (an empty, non-JSON or nonsensical info names
  the file).
* :class:`InfoSpec` is the core's :class:`~lamina.volumetric.creation.VolumeSpec` with
  the format's data types and encodings; :meth:`InfoSpec.make_info` writes it as an
  info.
* :func:`update_info` applies the core's ``info_overwrite`` /
  ``info_keep_existing_scales`` policy (:func:`lamina.volumetric.creation.plan_update`)
  to the info on disk.
* :func:`change_geometry` moves the voxel offset, dataset size or chunk size of every
  scale of any info — created here or found on disk — since ``with_changes`` must work
  on volumes built without ``info_*`` parameters too.

cloud-files is imported inside the functions that touch storage.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from lamina.errors import LaminaError
from lamina.volumetric.creation import (
    Reference,
    StoredVolume,
    VolumeMismatchError,
    VolumeSpec,
    number,
    plan_update,
    res_to_key,
    spec_from_parameters,
)
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.scales import scale_geometry, sorted_resolutions
from lamina_precomputed.codecs import PRECOMPUTED_DTYPES
from lamina_precomputed.sharding import identity_sharding, sharding_for_shard_size

__all__ = [
    "PRECOMPUTED_DTYPES",
    "InfoFileError",
    "InfoMismatchError",
    "InfoNotFoundError",
    "InfoSpec",
    "change_geometry",
    "merge_info",
    "normalize_path",
    "read_info",
    "res_to_key",
    "scale_resolution",
    "update_info",
    "write_info",
]

PrecomputedDType = Literal[
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32"
]
#: The chunk encodings of the precomputed format that CloudVolume writes.
PRECOMPUTED_ENCODINGS: tuple[str, ...] = (
    "raw",
    "jpeg",
    "png",
    "compressed_segmentation",
    "compresso",
    "crackle",
    "fpzip",
    "kempressed",
    "zfpc",
    "jxl",
)
VOLUME_TYPES: tuple[str, ...] = ("image", "segmentation")

# Keys of a reference scale never inherited into ``extra_scale_data``: the new scale's own
# geometry, encoding, sharding and name say where its chunks are and how they are stored.
_NOT_INHERITED = frozenset(
    {"sharding", "encoding", "voxel_offset", "size", "chunk_sizes", "resolution", "key", "locked"}
)
_PREFIX = "precomputed://"


class InfoNotFoundError(LaminaError, FileNotFoundError):
    """A precomputed volume has no ``info`` file where one was expected."""


class InfoFileError(LaminaError, ValueError):
    """An info file that is empty, not JSON, or does not describe a volume."""


class InfoMismatchError(VolumeMismatchError):
    """The info that would be written conflicts with the one on disk under the policy asked."""


# -- paths ---------------------------------------------------------------------------------
def normalize_path(path: str | os.PathLike[str]) -> str:
    """The cloud path of ``path``: local paths become absolute ``file://`` paths,
    ``precomputed://`` is dropped, trailing slashes are removed."""
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    if text.startswith(_PREFIX):
        text = text[len(_PREFIX) :]
    if not text:
        raise ValueError("path must not be empty")
    if "://" not in text:
        text = "file://" + os.path.abspath(os.path.expanduser(text))
    elif text.startswith("file://"):
        local = text[len("file://") :]
        text = "file://" + os.path.abspath(os.path.expanduser(local))
    return text.rstrip("/") if not text.endswith("://") else text


def scale_resolution(scale: Mapping[str, Any]) -> Vec3D[float]:
    """A scale's resolution as a float vector."""
    return Vec3D.from_seq(scale["resolution"], "resolution").float()


# -- storage -------------------------------------------------------------------------------
def read_info(path: str) -> dict[str, Any]:
    """The info of the volume at ``path`` (a normalised cloud path)."""
    info = read_info_or_none(path)
    if info is None:
        raise InfoNotFoundError(
            f"no precomputed volume at {path}: there is no info file at {path}/info. "
            "To create one, pass info_scales with the other info_* parameters "
            "(or info_reference_path)."
        )
    return info


def read_info_or_none(path: str) -> dict[str, Any] | None:
    """The info at ``path``, or ``None`` when there is none (local files are read
    without importing cloud-files, so opening a local volume stays cheap)."""
    from lamina_precomputed.storage import FileStore

    raw = FileStore(path).get("info")
    if raw is None:
        return None
    where = f"{path}/info"
    if not raw.strip():
        raise InfoFileError(f"the info file {where} is empty: it is not a precomputed volume")
    try:
        info = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InfoFileError(f"the info file {where} is not valid JSON: {exc}") from None
    check_info(info, where)
    return info  # type: ignore[no-any-return]


def check_info(info: Any, where: str) -> None:
    """Refuse an info that does not describe a volume: missing keys, a size, chunk size
    or resolution that is not positive, a voxel offset that is not whole numbers."""
    if not isinstance(info, dict):
        raise InfoFileError(f"the info file {where} is not a JSON object")
    missing = [k for k in ("data_type", "num_channels", "scales") if k not in info]
    if missing:
        raise InfoFileError(f"the info file {where} has no {', '.join(missing)}")
    scales = info["scales"]
    if not isinstance(scales, list) or not scales:
        raise InfoFileError(f"the info file {where} lists no scales")
    for i, scale in enumerate(scales):
        label = f"{where}, scale {scale.get('key', i) if isinstance(scale, dict) else i}"
        if not isinstance(scale, dict):
            raise InfoFileError(f"{label}: a scale is a JSON object; got {scale!r}")
        for key in ("key", "resolution", "size", "voxel_offset", "chunk_sizes"):
            if key not in scale:
                raise InfoFileError(f"{label}: no {key!r}")
        chunk = scale["chunk_sizes"][0] if scale["chunk_sizes"] else None
        checks: list[tuple[str, Any, Callable[[float], bool], str]] = [
            ("resolution", scale["resolution"], lambda v: v > 0, "positive numbers"),
            ("size", scale["size"], lambda v: v >= 0 and v == int(v), "whole numbers >= 0"),
            ("voxel_offset", scale["voxel_offset"], lambda v: v == int(v), "whole numbers"),
            ("chunk_sizes[0]", chunk, lambda v: v > 0 and v == int(v), "whole numbers > 0"),
        ]
        for name, value, test, wanted in checks:
            if (
                not isinstance(value, list)
                or len(value) != 3
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
                or not all(test(v) for v in value)
            ):
                raise InfoFileError(f"{label}: {name} must be 3 {wanted}; got {value!r}")


def write_info(path: str, info: Mapping[str, Any]) -> None:
    """Write ``info`` to ``path`` uncompressed (one form), with ``Cache-Control:
    no-cache`` and a JSON content type on object storage."""
    from lamina_precomputed.storage import FileStore

    body = json.dumps(dict(info), indent=2, default=_json_number).encode()
    FileStore(path).put_many(
        {"info": body}, cache_control="no-cache", content_type="application/json"
    )


def _json_number(value: Any) -> Any:
    """numpy numbers in an info, as JSON numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"an info value of type {type(value).__name__} is not JSON: {value!r}")


# -- creation: the core's policy, mapped to and from info files -----------------------------
@attrs.frozen(kw_only=True)
class InfoSpec(VolumeSpec):
    """What a new info holds (the core's :class:`~lamina.volumetric.creation.VolumeSpec`,
    checked against what the precomputed format stores: its data types and encodings,
    ``"raw"`` by default). Build it with :meth:`from_optional_reference`;
    :meth:`make_info` gives the info dict, scales finest first. ``shard_size``: voxels
    of the box each identity-hashed shard of every new scale covers (``None``:
    unsharded, unless ``extra_scale_data`` names a sharding)."""

    shard_size: tuple[int, int, int] | None = None

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.data_type not in PRECOMPUTED_DTYPES:
            raise ValueError(
                f"info_data_type must be one of {', '.join(PRECOMPUTED_DTYPES)}; "
                f"got {self.data_type!r}"
            )
        if self.encoding not in PRECOMPUTED_ENCODINGS:
            raise ValueError(
                f"info_encoding must be one of {', '.join(PRECOMPUTED_ENCODINGS)}; "
                f"got {self.encoding!r}"
            )

    @classmethod
    def from_optional_reference(
        cls,
        scales: Sequence[RawVec3D] | None,
        reference_path: str | None = None,
        inherit_all_params: bool = False,
        type: str | None = None,
        data_type: str | None = None,
        chunk_size: RawVec3D | None = None,
        num_channels: int | None = None,
        encoding: str | None = None,
        bbox: BBox3D | None = None,
        extra_scale_data: Mapping[str, Any] | None = None,
        reference_scale: RawVec3D | None = None,
        existing_path: str | None = None,
        shard_size: RawVec3D | None = None,
    ) -> InfoSpec | None:
        """The spec of ``build_cv_layer``'s ``info_*`` parameters under the core's policy
        (:func:`lamina.volumetric.creation.spec_from_parameters`); ``None`` without
        ``scales`` (the info at the path is used as it is). A reference of
        another format lends its box, type, dtype, channels and chunk size; a
        precomputed one, with ``inherit_all_params``, also its encoding and the scale's
        own keys (``compressed_segmentation_block_size``…). ``existing_path``: the volume
        already at the path, the reference of everything not given. ``shard_size``: see
        the class."""
        spec = spec_from_parameters(
            scales=scales,
            type=type,
            data_type=data_type,
            num_channels=num_channels,
            chunk_size=chunk_size,
            bbox=bbox,
            encoding=encoding,
            extra_scale_data=extra_scale_data,
            reference_path=reference_path,
            reference_scale=reference_scale,
            inherit_all_params=inherit_all_params,
            existing_path=existing_path,
            inherited_extras=_inherited_scale_keys,
            format_parameters={"info_shard_size": shard_size},
            used_as_stored="the info at the path",
        )
        if spec is None:
            return None
        own_encoding = spec.reference is not None and spec.reference.format == FORMAT
        fields = {f.name: getattr(spec, f.name) for f in attrs.fields(VolumeSpec)}
        if spec.encoding is None or (encoding is None and not own_encoding):
            fields["encoding"] = "raw"
        if shard_size is not None:
            fields["shard_size"] = tuple(Vec3D.from_seq(shard_size, "info_shard_size").int())
        info_spec = cls(**fields)
        info_spec.make_info()  # a shard size no scale can have is refused here
        return info_spec

    def make_scale(self, resolution: RawVec3D) -> dict[str, Any]:
        """One scale dict: key, encoding, chunk size, extra data, then offset and size."""
        res = Vec3D.from_seq(resolution, "resolution").float()
        scale: dict[str, Any] = {
            "key": res_to_key(res),
            "encoding": self.encoding,
            "chunk_sizes": [list(self.chunk_size)],
            "resolution": [number(v) for v in res],
        }
        if self.encoding == "compressed_segmentation":
            scale["compressed_segmentation_block_size"] = [8, 8, 8]
        scale.update(copy.deepcopy(dict(self.extra_scale_data)))
        geo = self.geometry(res)
        scale["voxel_offset"] = list(geo.voxel_offset)
        scale["size"] = list(geo.dataset_size)
        if self.shard_size is not None and "sharding" not in scale:
            grid = [
                -(-int(s) // int(c)) for s, c in zip(geo.dataset_size, self.chunk_size, strict=True)
            ]
            try:
                scale["sharding"] = sharding_for_shard_size(grid, self.chunk_size, self.shard_size)
            except ValueError as exc:
                raise ValueError(f"info_shard_size, scale {scale['key']}: {exc}") from None
        return scale

    def make_info(self) -> dict[str, Any]:
        """The info dict: type, data type, channels and one scale per resolution."""
        return {
            "type": self.type,
            "data_type": self.data_type,
            "num_channels": self.num_channels,
            "scales": [self.make_scale(res) for res in self.scales],
        }


#: What ``lamina info`` calls this format (``describe()["format"]``).
FORMAT = "neuroglancer precomputed"


def _inherited_scale_keys(reference: Reference) -> dict[str, Any]:
    """The reference scale's own keys a new precomputed scale takes with
    ``info_inherit_all_params`` (from a precomputed reference only): every key but the
    geometry, encoding, sharding, key and lock."""
    if reference.format != FORMAT:
        return {}
    info = read_info(normalize_path(reference.path))
    for scale in info["scales"]:
        if list(scale_resolution(scale)) == list(reference.scale.get("resolution", [])):
            return {k: copy.deepcopy(v) for k, v in scale.items() if k not in _NOT_INHERITED}
    return {}


# -- the update policy ----------------------------------------------------------------------------
def _stored(info: Mapping[str, Any]) -> StoredVolume:
    return StoredVolume(
        attributes={k: v for k, v in info.items() if k != "scales"},
        scales={scale_resolution(s): dict(s) for s in info["scales"]},
    )


def merge_info(
    existing: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    overwrite: bool,
    keep_existing_scales: bool,
    path: str,
) -> dict[str, Any]:
    """The info to store when ``new`` is asked for and ``existing`` is on disk, under the
    core's policy (:func:`lamina.volumetric.creation.plan_update`). Scales are matched by
    resolution; a new scale takes the key of the stored one it replaces unless its key
    was given explicitly. Top-level keys the new info does not mention (``mesh``,
    ``skeletons``…) are kept."""
    try:
        stored = _stored(existing)
        wanted = _stored(new)
    except KeyError as exc:
        raise KeyError(
            f"the info at {path} (or the one to be written) is malformed: missing key {exc}"
        ) from exc
    scales = dict(wanted.scales)
    for res, scale in scales.items():
        old = stored.scales.get(res)
        if old is not None and scale.get("key") == res_to_key(res) and "key" in old:
            scales[res] = {**scale, "key": old["key"]}  # the data lives under the stored key
    plan = plan_update(
        stored,
        StoredVolume(wanted.attributes, scales),
        overwrite=overwrite,
        keep_existing_scales=keep_existing_scales,
        where=path,
        label=lambda res, scale: str(scale.get("key", res_to_key(res))),
        error=InfoMismatchError,
    )
    result: dict[str, Any] = copy.deepcopy(plan.attributes)
    result["scales"] = _sorted_scales(list(plan.scales.values()))
    return result


def _sorted_scales(scales: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(scales, key=lambda s: (_volume(scale_resolution(s)), tuple(s["resolution"])))


def _volume(res: Vec3D[float]) -> float:
    return float(res[0] * res[1] * res[2])


def update_info(
    path: str,
    new: Mapping[str, Any],
    *,
    overwrite: bool = False,
    keep_existing_scales: bool = True,
) -> tuple[dict[str, Any], bool]:
    """Store the info for ``new`` at ``path`` under the policy; return it and whether it
    was written (only when it differs from what is on disk)."""
    existing = read_info_or_none(path)
    if existing is None:
        result = copy.deepcopy(dict(new))
        result["scales"] = _sorted_scales(result["scales"])
        write_info(path, result)
        return result, True
    result = merge_info(
        existing, new, overwrite=overwrite, keep_existing_scales=keep_existing_scales, path=path
    )
    if result == existing:
        return existing, False
    write_info(path, result)
    return result, True


# -- geometry changes ---------------------------------------------------------------------------
def change_geometry(
    info: Mapping[str, Any],
    voxel_offset_res: tuple[RawVec3D, RawVec3D] | None = None,
    chunk_size_res: tuple[RawVec3D, RawVec3D] | None = None,
    dataset_size_res: tuple[RawVec3D, RawVec3D] | None = None,
) -> dict[str, Any]:
    """A copy of ``info`` with new geometry for every scale.

    ``voxel_offset_res=(offset, res)`` moves the dataset's start to ``offset × res`` nm
    (the end stays); ``dataset_size_res=(size, res)`` moves its end to the start plus
    ``size × res`` nm; both are applied to the box of the scale at ``res`` (the finest
    scale when ``res`` is not one) and every scale is recomputed to cover the new box
    (whole voxels covering the box). ``chunk_size_res=(size, res)`` gives every scale that
    chunk size.
    """
    result = copy.deepcopy(dict(info))
    scales: list[dict[str, Any]] = result["scales"]
    if not scales:
        return result
    chunk: Vec3D[int] | None = None
    if chunk_size_res is not None:
        chunk = Vec3D.from_seq(_pair(chunk_size_res, "chunk_size_res")[0], "chunk size").int()
        if not chunk > 0:
            raise ValueError(f"chunk_size_res needs a positive chunk size; got {chunk.pformat()}")
    if voxel_offset_res is None and dataset_size_res is None:
        if chunk is not None:
            for scale in scales:
                scale["chunk_sizes"] = [list(chunk)]
        return result
    anchor_res = (voxel_offset_res or dataset_size_res or ((), ()))[1]
    anchor = _scale_at(scales, anchor_res)
    res = scale_resolution(anchor)
    offset = Vec3D.from_seq(anchor["voxel_offset"], "voxel_offset")
    start = offset * res
    end = (offset + Vec3D.from_seq(anchor["size"], "size")) * res
    if voxel_offset_res is not None:
        off, r = _pair(voxel_offset_res, "voxel_offset_res")
        start = Vec3D.from_seq(off, "voxel offset") * Vec3D.from_seq(r, "resolution")
    if dataset_size_res is not None:
        size, r = _pair(dataset_size_res, "dataset_size_res")
        end = start + Vec3D.from_seq(size, "dataset size") * Vec3D.from_seq(r, "resolution")
    if not end >= start:
        raise ValueError(
            f"the dataset would end ({end.pformat()} nm) before it starts ({start.pformat()} nm)"
        )
    bbox = BBox3D.from_coords(start, end)
    for scale in scales:
        own_chunk = chunk if chunk is not None else scale["chunk_sizes"][0]
        geo = scale_geometry(bbox, scale_resolution(scale), own_chunk)
        scale["voxel_offset"] = list(geo.voxel_offset)
        scale["size"] = list(geo.dataset_size)
        scale["chunk_sizes"] = [list(geo.chunk_size)]
    return result


def _pair(value: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{what} must be a pair (values, resolution); got {value!r}")
    return value[0], value[1]


def _scale_at(scales: Sequence[dict[str, Any]], res: Any) -> dict[str, Any]:
    try:
        wanted = Vec3D.from_seq(res, "resolution").float()
    except (TypeError, ValueError):
        wanted = None
    for scale in scales:
        if scale_resolution(scale) == wanted:
            return scale
    return min(scales, key=lambda s: _volume(scale_resolution(s)))


def added_scales(
    info: Mapping[str, Any], resolutions: Iterable[RawVec3D], chunk_size: RawVec3D | None
) -> list[dict[str, Any]]:
    """The scales ``add_resolutions`` adds to ``info``: one per resolution it does not
    have, each the finest scale's encoding and other keys with ``chunk_size`` (default:
    the finest one's), covering the finest scale's bounds; sharded with shards of as
    many chunks when the finest scale has identity-hashed shards, else unsharded."""
    scales = _sorted_scales([dict(scale) for scale in info["scales"]])
    have = {scale_resolution(scale) for scale in scales}
    finest = scales[0]
    res0 = scale_resolution(finest)
    offset = Vec3D.from_seq(finest["voxel_offset"], "voxel_offset")
    bbox = BBox3D.from_coords(offset, offset + Vec3D.from_seq(finest["size"]), res0)
    chunk = finest["chunk_sizes"][0] if chunk_size is None else list(chunk_size)
    added = []
    for res in sorted_resolutions(resolutions):
        if res in have:
            continue
        geo = scale_geometry(bbox, res, chunk)
        scale = {
            k: copy.deepcopy(v)
            for k, v in finest.items()
            if k not in ("key", "sharding", "voxel_offset", "size", "chunk_sizes")
        }
        scale.update(
            key=res_to_key(res),
            resolution=[number(v) for v in res],
            chunk_sizes=[list(geo.chunk_size)],
            voxel_offset=list(geo.voxel_offset),
            size=list(geo.dataset_size),
        )
        sharding = finest.get("sharding")
        if sharding and sharding.get("hash") == "identity":  # shards of as many chunks
            grid = [-(-s // c) for s, c in zip(geo.dataset_size, geo.chunk_size, strict=True)]
            low = int(sharding["preshift_bits"]) + int(sharding["minishard_bits"])
            scale["sharding"] = identity_sharding(grid, low)
        added.append(scale)
    return added
