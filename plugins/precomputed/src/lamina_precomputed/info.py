"""Neuroglancer precomputed ``info`` files: paths, reading, creation and the update policy.

* :func:`normalize_path` turns what a user writes (``/data/vol``, ``precomputed://gs://…``)
  into the cloud path CloudVolume and cloud-files use (``file:///data/vol``, ``gs://…``).
* :class:`InfoSpec` describes a new info from ``info_*`` parameters alone or from a
  reference volume (reference §2.E E2–E9). Every scale's voxel offset and size cover
  the whole bbox (W7, through :func:`lamina.volumetric.scales.scale_geometry`); the
  reference scale is the finest one unless chosen (W8).
* :func:`update_info` applies the ``info_overwrite`` / ``info_keep_existing_scales``
  policy (E10–E11) with errors listing the missing scales and a diff of what would
  change; changing dtype or channel count names the two flags to set (W9).
* :func:`change_geometry` moves the voxel offset, dataset size or chunk size of every
  scale of any info — created here or found on disk (W4).

cloud-files is imported inside the functions that touch storage.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from lamina.errors import LaminaError, UnknownResolutionError
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.scales import scale_geometry, sorted_resolutions
from lamina_precomputed.codecs import PRECOMPUTED_DTYPES

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

# Keys of a reference scale that are never inherited into ``extra_scale_data`` (E6).
_NOT_INHERITED = frozenset(
    {"sharding", "encoding", "voxel_offset", "size", "chunk_sizes", "resolution", "key", "locked"}
)
_PREFIX = "precomputed://"


class InfoNotFoundError(LaminaError, FileNotFoundError):
    """A precomputed volume has no ``info`` file where one was expected."""


class InfoFileError(LaminaError, ValueError):
    """An info file that is empty, not JSON, or does not describe a volume."""


class InfoMismatchError(LaminaError, RuntimeError):
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


def res_to_key(resolution: RawVec3D) -> str:
    """The conventional scale key: ``(4.0, 4.0, 40)`` → ``"4_4_40"`` (E9)."""
    parts = []
    for v in Vec3D.from_seq(resolution, "resolution"):
        f = float(v)
        parts.append(str(int(f)) if f.is_integer() else repr(f))
    return "_".join(parts)


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


# -- creation ------------------------------------------------------------------------------
def _reference_scale(info: Mapping[str, Any], path: str, chosen: RawVec3D | None) -> dict[str, Any]:
    scales = info.get("scales") or []
    if not scales:
        raise InfoMismatchError(f"the reference info at {path} has no scales")
    if chosen is None:  # the finest scale (W8), not simply the first listed
        return dict(min(scales, key=lambda s: _volume(scale_resolution(s))))
    res = Vec3D.from_seq(chosen, "info_reference_scale").float()
    for scale in scales:
        if scale_resolution(scale) == res:
            return dict(scale)
    known = ", ".join(scale_resolution(s).pformat() for s in scales)
    raise UnknownResolutionError(
        f"info_reference_scale {res.pformat()} is not a scale of the reference {path}; "
        f"its resolutions are: {known}"
    )


def _volume(res: Vec3D[float]) -> float:
    return float(res[0] * res[1] * res[2])


def _missing(what: Mapping[str, Any]) -> list[str]:
    return [name for name, value in what.items() if value is None]


@attrs.frozen(kw_only=True)
class InfoSpec:
    """What a new info holds: one chunk size and one encoding for every scale (E2).

    Build it with :meth:`from_optional_reference`; :meth:`make_info` gives the info
    dict, scales finest first.
    """

    scales: tuple[Vec3D[float], ...]
    type: str
    data_type: str
    num_channels: int
    chunk_size: Vec3D[int]
    bbox: BBox3D
    encoding: str = "raw"
    extra_scale_data: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not self.scales:
            raise ValueError("info_scales must list at least one resolution")
        if self.data_type not in PRECOMPUTED_DTYPES:
            raise ValueError(
                f"info_data_type must be one of {', '.join(PRECOMPUTED_DTYPES)}; "
                f"got {self.data_type!r}"
            )
        if self.type not in (*VOLUME_TYPES, "annotation"):
            raise ValueError(f"info_type must be 'image' or 'segmentation'; got {self.type!r}")
        if not isinstance(self.num_channels, int) or self.num_channels < 1:
            raise ValueError(f"info_num_channels must be an int >= 1; got {self.num_channels!r}")
        if self.encoding not in PRECOMPUTED_ENCODINGS:
            raise ValueError(
                f"info_encoding must be one of {', '.join(PRECOMPUTED_ENCODINGS)}; "
                f"got {self.encoding!r}"
            )

    @classmethod
    def from_optional_reference(
        cls,
        scales: Sequence[RawVec3D],
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
    ) -> InfoSpec:
        """The spec from parameters, filling what is not given from a reference (E4–E7).

        Without a reference, type, data type, channels, chunk size and bbox are
        required. With one, the bbox comes from its reference scale (the finest unless
        ``reference_scale`` is given) and, with ``inherit_all_params``, everything else
        not given too. The encoding defaults to ``"raw"``.
        """
        extra: dict[str, Any] = dict(extra_scale_data or {})
        if reference_path is None:
            if inherit_all_params:
                raise ValueError(
                    "info_inherit_all_params=True needs info_reference_path: there is no "
                    "reference to inherit from"
                )
            if reference_scale is not None:
                raise ValueError("info_reference_scale needs info_reference_path")
            missing = _missing(
                {
                    "info_type": type,
                    "info_data_type": data_type,
                    "info_num_channels": num_channels,
                    "info_chunk_size": chunk_size,
                    "info_bbox": bbox,
                }
            )
            if missing:
                raise ValueError(
                    "creating a new volume needs "
                    f"{', '.join(missing)} (missing): nothing is stored at the path yet to "
                    "take them from. Give them, or info_reference_path to take them from "
                    "another volume"
                )
        else:
            ref_path = normalize_path(reference_path)
            ref = read_info(ref_path)
            ref_scale = _reference_scale(ref, ref_path, reference_scale)
            if bbox is None:
                res = scale_resolution(ref_scale)
                offset = Vec3D.from_seq(ref_scale["voxel_offset"], "voxel_offset")
                size = Vec3D.from_seq(ref_scale["size"], "size")
                bbox = BBox3D.from_coords(offset, offset + size, res)
            if inherit_all_params:
                type = type if type is not None else ref.get("type")
                data_type = data_type if data_type is not None else ref.get("data_type")
                if num_channels is None:
                    num_channels = ref.get("num_channels")
                encoding = encoding if encoding is not None else ref_scale.get("encoding")
                if chunk_size is None:
                    chunk_size = ref_scale["chunk_sizes"][0]
                inherited = {k: v for k, v in ref_scale.items() if k not in _NOT_INHERITED}
                extra = {**copy.deepcopy(inherited), **extra}
            missing = _missing(
                {
                    "info_type": type,
                    "info_data_type": data_type,
                    "info_num_channels": num_channels,
                    "info_chunk_size": chunk_size,
                }
            )
            if missing:
                raise ValueError(
                    f"creating an info from the reference {ref_path} without "
                    f"info_inherit_all_params=True needs {', '.join(missing)} (missing); "
                    "give them, or pass info_inherit_all_params=True"
                )
        if not isinstance(bbox, BBox3D):
            raise TypeError(f"info_bbox must be a lamina.BBox3D; got {type_name(bbox)}")
        assert type is not None
        assert data_type is not None
        assert chunk_size is not None
        return cls(
            scales=sorted_resolutions(scales),
            type=str(type),
            data_type=str(data_type),
            num_channels=num_channels,  # type: ignore[arg-type]
            chunk_size=Vec3D.from_seq(chunk_size, "info_chunk_size").int(),
            bbox=bbox,
            encoding="raw" if encoding is None else str(encoding),
            extra_scale_data=extra,
        )

    def make_scale(self, resolution: RawVec3D) -> dict[str, Any]:
        """One scale dict: key, encoding, chunk size, extra data, then offset and size."""
        res = Vec3D.from_seq(resolution, "resolution").float()
        scale: dict[str, Any] = {
            "key": res_to_key(res),
            "encoding": self.encoding,
            "chunk_sizes": [list(self.chunk_size)],
            "resolution": [_number(v) for v in res],
        }
        if self.encoding == "compressed_segmentation":
            scale["compressed_segmentation_block_size"] = [8, 8, 8]
        scale.update(copy.deepcopy(dict(self.extra_scale_data)))
        geo = scale_geometry(self.bbox, res, self.chunk_size)
        scale["voxel_offset"] = list(geo.voxel_offset)
        scale["size"] = list(geo.dataset_size)
        return scale

    def make_info(self) -> dict[str, Any]:
        """The info dict: type, data type, channels and one scale per resolution."""
        return {
            "type": self.type,
            "data_type": self.data_type,
            "num_channels": self.num_channels,
            "scales": [self.make_scale(res) for res in self.scales],
        }


def type_name(value: object) -> str:
    return type(value).__name__


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


# -- the update policy (E10, E11) ------------------------------------------------------------
def _sorted_scales(scales: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(scales, key=lambda s: (_volume(scale_resolution(s)), tuple(s["resolution"])))


def _scale_label(scale: Mapping[str, Any]) -> str:
    return str(scale.get("key", res_to_key(scale["resolution"])))


def _diff_lines(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        if key not in old:
            lines.append(f"+ {name}: {json.dumps(new[key])}")
        elif key not in new:
            lines.append(f"- {name}: {json.dumps(old[key])}")
        elif old[key] != new[key]:
            lines.append(f"{name}: {json.dumps(old[key])} -> {json.dumps(new[key])}")
    return lines


def merge_info(
    existing: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    overwrite: bool,
    keep_existing_scales: bool,
    path: str,
) -> dict[str, Any]:
    """The info to store when ``new`` is asked for and ``existing`` is on disk (E10).

    Scales are matched by resolution; a new scale takes the key of the existing one it
    replaces unless its key was given explicitly. Top-level keys the new info does not
    mention (``mesh``, ``skeletons``…) are kept.
    """
    try:
        return _merge(existing, new, overwrite, keep_existing_scales, path)
    except KeyError as exc:
        raise KeyError(
            f"the info at {path} (or the one to be written) is malformed: missing key {exc}"
        ) from exc


def _merge(
    existing: Mapping[str, Any],
    new: Mapping[str, Any],
    overwrite: bool,
    keep_existing_scales: bool,
    path: str,
) -> dict[str, Any]:
    old_scales = {scale_resolution(s): dict(s) for s in existing["scales"]}
    new_scales: dict[Vec3D[float], dict[str, Any]] = {}
    for scale in new["scales"]:
        res = scale_resolution(scale)
        scale = dict(scale)
        old = old_scales.get(res)
        if old is not None and scale.get("key") == res_to_key(res) and "key" in old:
            scale["key"] = old["key"]  # the data lives under the existing key
        new_scales[res] = scale
    if keep_existing_scales:
        changed = [
            f"{k} {json.dumps(existing.get(k))} -> {json.dumps(new.get(k))}"
            for k in ("data_type", "num_channels")
            if k in new and existing.get(k) != new.get(k)
        ]
        if changed:
            raise InfoMismatchError(
                f"the info at {path} cannot change its {' and '.join(changed)} while "
                "keeping its existing scales (info_keep_existing_scales=True): their "
                "chunks would no longer decode. To replace the info, pass both "
                "info_overwrite=True and info_keep_existing_scales=False (the existing "
                "scales are dropped from the info; their chunk files are not deleted)."
            )
        merged_scales = {**old_scales, **new_scales}
    else:
        merged_scales = new_scales
    result: dict[str, Any] = {k: copy.deepcopy(v) for k, v in existing.items() if k != "scales"}
    result.update({k: copy.deepcopy(v) for k, v in new.items() if k != "scales"})
    result["scales"] = _sorted_scales(list(merged_scales.values()))
    if not overwrite:
        missing = [
            _scale_label(old) for res, old in old_scales.items() if merged_scales.get(res) != old
        ]
        top = _diff_lines(
            {k: v for k, v in existing.items() if k != "scales"},
            {k: v for k, v in result.items() if k != "scales"},
        )
        lines = list(top)
        for res in sorted(set(old_scales) | set(merged_scales), key=_volume):
            old, now = old_scales.get(res), merged_scales.get(res)
            label = _scale_label(old if old is not None else now)  # type: ignore[arg-type]
            if old is None:
                lines.append(f"+ scales[{label}]: {json.dumps(now)}")
            elif now is None:
                lines.append(f"- scales[{label}]: {json.dumps(old)}")
            elif old != now:
                lines.extend(_diff_lines(old, now, prefix=f"scales[{label}]."))
        if missing or top:
            text = "\n  ".join(lines)
            raise InfoMismatchError(
                f"the info at {path} would change and info_overwrite=False.\n"
                f"Missing scales: {missing} (existing scales that would be dropped or "
                f"changed)\nDifferences:\n  {text}\n"
                "Pass info_overwrite=True to write it anyway, or build the layer without "
                "info_* parameters to use the info as it is."
            )
    return result


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


# -- geometry changes (E12, W4) ----------------------------------------------------------------
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
    (W7 rule). ``chunk_size_res=(size, res)`` gives every scale that chunk size.
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
