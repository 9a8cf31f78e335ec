"""One volume-creation policy for every format: the ``info_*`` parameters, inheritance
from a reference volume, and the ``info_overwrite`` / ``info_keep_existing_scales`` rules
with their errors.

Every volume builder (``build_cv_layer``, ``build_h5_layer``, a third party's) takes the
same ``info_*`` parameters and follows the same rules, so they live here once; a format
only maps the result to and from its own metadata (a precomputed ``info`` file, HDF5
attributes):

* :func:`spec_from_parameters` resolves the parameters into a :class:`VolumeSpec`,
  filling what is not given from a reference volume (any format lamina opens:
  :func:`reference_of`) and naming what is missing;
* :func:`plan_update` applies the policy to what is stored and what is asked for, both
  described the same way (:class:`StoredVolume`: top-level attributes and one JSON-able
  description per scale), and says what to create, replace and drop — or raises
  :class:`VolumeMismatchError` listing the ``Missing scales`` and the ``Differences``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from lamina.errors import LaminaError, UnknownResolutionError
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.scales import ScaleGeometry, scale_geometry, sorted_resolutions

__all__ = [
    "VOLUME_TYPES",
    "Reference",
    "StoredVolume",
    "UpdatePlan",
    "VolumeMismatchError",
    "VolumeSpec",
    "number",
    "plan_update",
    "reference_of",
    "refuse_info_without_scales",
    "res_to_key",
    "spec_from_parameters",
]

VOLUME_TYPES: tuple[str, ...] = ("image", "segmentation")


class VolumeMismatchError(LaminaError, RuntimeError):
    """The volume that would be written conflicts with the stored one under the policy
    asked for (formats raise their own subclass: precomputed's ``InfoMismatchError``)."""


def number(value: float) -> int | float:
    """``4.0`` → ``4``, ``4.5`` → ``4.5``: how resolutions are written in metadata."""
    return int(value) if float(value).is_integer() else float(value)


def res_to_key(resolution: RawVec3D) -> str:
    """The conventional name of a scale: ``(4.0, 4.0, 40)`` → ``"4_4_40"``."""
    return "_".join(
        str(int(v)) if float(v).is_integer() else repr(float(v))
        for v in Vec3D.from_seq(resolution, "resolution")
    )


# -- the info_* parameters -------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class Reference:
    """What a new volume may take from an existing one (``info_reference_path``).

    ``format`` and ``scale`` (the reference scale's own description, as its format's
    ``describe()`` gives it) let a format take its own extras (an encoding's
    parameters) from a reference of its own format, and nothing from another's.
    """

    path: str
    format: str | None
    type: str | None
    data_type: str
    num_channels: int
    chunk_size: Vec3D[int]
    bbox: BBox3D
    encoding: str | None = None
    scale: Mapping[str, Any] = attrs.field(factory=dict)


def reference_of(path: str, scale: RawVec3D | None = None) -> Reference:
    """The volume at ``path`` (opened by whichever installed format recognises it) as a
    reference: its finest scale, or the one at ``scale``."""
    from lamina.describe import describe_layer
    from lamina.paths import open_path
    from lamina.volumetric.backend import VolumetricBackend

    layer = open_path(path, readonly=True)
    backend = getattr(layer, "backend", None)
    if not isinstance(backend, VolumetricBackend):
        names = [v.get("volume", "?") for v in describe_layer(layer).get("volumes", [])]
        raise ValueError(
            f"info_reference_path {path!r} is not one volume"
            + (f": it holds {len(names)} ({', '.join(names)}); name one" if names else "")
        )
    resolutions = list(backend.resolutions)
    if scale is None:
        res = resolutions[0]
    else:
        res = Vec3D.from_seq(scale, "info_reference_scale").float()
        if res not in resolutions:
            known = ", ".join(r.pformat() for r in resolutions)
            raise UnknownResolutionError(
                f"info_reference_scale {res.pformat()} is not a scale of the reference "
                f"{path}; its resolutions are: {known}"
            )
    description = describe_layer(layer)
    described = [
        s
        for s in description.get("scales", [])
        if Vec3D.from_seq(s.get("resolution", (0, 0, 0))).float() == res
    ]
    own = dict(described[0]) if described else {}
    return Reference(
        path=path,
        format=description.get("format"),
        type=backend.volume_type,
        data_type=str(backend.dtype),
        num_channels=backend.num_channels,
        chunk_size=backend.get_chunk_size(res),
        bbox=backend.get_bounds(res).bbox,
        encoding=own.get("encoding"),
        scale=own,
    )


@attrs.frozen(kw_only=True)
class VolumeSpec:
    """A volume to create or extend: the ``info_*`` parameters resolved.

    One chunk size and one encoding for every scale; each scale covers the whole
    ``bbox`` (:func:`lamina.volumetric.scales.scale_geometry`). ``encoding`` is the
    format's (``None``: its default) and ``extra_scale_data`` its own per-scale keys;
    ``reference`` is the volume the rest came from, if any.
    """

    scales: tuple[Vec3D[float], ...]
    type: str
    data_type: str
    num_channels: int
    chunk_size: Vec3D[int]
    bbox: BBox3D
    encoding: str | None = None
    extra_scale_data: Mapping[str, Any] = attrs.field(factory=dict)
    reference: Reference | None = None

    def __attrs_post_init__(self) -> None:
        if not self.scales:
            raise ValueError("info_scales must list at least one resolution")
        if self.type not in VOLUME_TYPES:
            raise ValueError(f"info_type must be 'image' or 'segmentation'; got {self.type!r}")
        _check_data_type(self.data_type)
        if (
            isinstance(self.num_channels, bool)
            or not isinstance(self.num_channels, int)
            or self.num_channels < 1
        ):
            raise ValueError(f"info_num_channels must be an int >= 1; got {self.num_channels!r}")
        if not self.chunk_size > 0:
            raise ValueError(
                f"info_chunk_size must be positive whole numbers; got {self.chunk_size.pformat()}"
            )

    def geometry(self, resolution: RawVec3D) -> ScaleGeometry:
        """The voxel offset, size and chunk size of the scale at ``resolution``."""
        return scale_geometry(self.bbox, resolution, self.chunk_size)


def spec_from_parameters(
    *,
    scales: Sequence[RawVec3D] | None,
    type: str | None = None,
    data_type: str | None = None,
    num_channels: int | None = None,
    chunk_size: RawVec3D | None = None,
    bbox: BBox3D | None = None,
    encoding: str | None = None,
    extra_scale_data: Mapping[str, Any] | None = None,
    reference_path: str | None = None,
    reference_scale: RawVec3D | None = None,
    inherit_all_params: bool = False,
    existing_path: str | None = None,
    inherited_extras: Callable[[Reference], Mapping[str, Any]] | None = None,
    format_parameters: Mapping[str, Any] | None = None,
    used_as_stored: str = "the volume at the path",
) -> VolumeSpec | None:
    """The :class:`VolumeSpec` of a builder's ``info_*`` parameters; ``None`` without
    ``info_scales``, when the volume is used as stored and any other ``info_*``
    parameter given is an error naming it.

    Args:
        scales: ``info_scales``, one resolution (nm) per scale, or ``None``.
        type, data_type, num_channels, chunk_size, bbox, encoding, extra_scale_data:
            ``info_type`` … ``info_extra_scale_data``; ``None`` where not given.
        reference_path: ``info_reference_path``: the bbox (of its finest scale, or
            ``reference_scale``) comes from that volume, in any format lamina opens, and
            with ``inherit_all_params`` every parameter not given.
        reference_scale: ``info_reference_scale``; needs ``reference_path`` (or
            ``existing_path``).
        inherit_all_params: ``info_inherit_all_params``.
        existing_path: the path of the volume already stored where the new one goes
            (the format knows whether there is one): what is not given comes from it,
            as from a reference with ``inherit_all_params`` (so ``info_scales`` alone
            adds scales to it); ``reference_path``, when given, wins.
        inherited_extras: the format's own per-scale keys to take from a reference (of
            its own format) when everything is inherited.
        format_parameters: the format's own ``info_*`` parameters by name
            (``{"info_compression": …}``), refused like the others without ``scales``.
        used_as_stored: what is used without ``info_scales``, for that error
            (``"the info at the path"``).

    Raises:
        ValueError: a parameter is missing (named, with why) or not valid.
    """
    if scales is None:
        given = {
            "info_reference_path": reference_path,
            "info_type": type,
            "info_data_type": data_type,
            "info_num_channels": num_channels,
            "info_chunk_size": chunk_size,
            "info_bbox": bbox,
            "info_encoding": encoding,
            "info_extra_scale_data": extra_scale_data,
            "info_reference_scale": reference_scale,
            "info_inherit_all_params": inherit_all_params,
            **(format_parameters or {}),
        }
        refuse_info_without_scales(given, used_as_stored)
        return None
    extra: dict[str, Any] = dict(extra_scale_data or {})
    if reference_path is None and existing_path is None:
        if inherit_all_params:
            raise ValueError(
                "info_inherit_all_params=True needs info_reference_path: there is no "
                "reference to inherit from"
            )
        if reference_scale is not None:
            raise ValueError("info_reference_scale needs info_reference_path")
        reference = None
    elif reference_path is not None:
        reference = reference_of(reference_path, reference_scale)
    else:
        assert existing_path is not None
        reference = reference_of(existing_path, reference_scale)
        inherit_all_params = True
    if reference is not None:
        if bbox is None:
            bbox = reference.bbox
        if inherit_all_params:
            type = type if type is not None else reference.type
            data_type = data_type if data_type is not None else reference.data_type
            num_channels = num_channels if num_channels is not None else reference.num_channels
            chunk_size = chunk_size if chunk_size is not None else reference.chunk_size
            encoding = encoding if encoding is not None else reference.encoding
            if inherited_extras is not None:
                extra = {**inherited_extras(reference), **extra}
    required = {
        "info_type": type,
        "info_data_type": data_type,
        "info_num_channels": num_channels,
        "info_chunk_size": chunk_size,
        "info_bbox": bbox,
    }
    missing = [name for name, value in required.items() if value is None]
    if missing:
        if reference is None:
            why = (
                "nothing is stored at the path yet to take them from. Give them, or "
                "info_reference_path to take them from another volume"
            )
        else:
            why = (
                f"the reference {reference.path} gives only its box without "
                "info_inherit_all_params=True. Give them, or pass "
                "info_inherit_all_params=True"
            )
        raise ValueError(f"creating a new volume needs {', '.join(missing)} (missing): {why}")
    if not isinstance(bbox, BBox3D):
        raise TypeError(f"info_bbox must be a lamina.BBox3D; got {type_name(bbox)}")
    return VolumeSpec(
        scales=sorted_resolutions(scales),
        type=str(type),
        data_type=_check_data_type(data_type),
        num_channels=num_channels,  # type: ignore[arg-type]
        chunk_size=_whole_chunk_size(chunk_size),  # type: ignore[arg-type]
        bbox=bbox,
        encoding=None if encoding is None else str(encoding),
        extra_scale_data=extra,
        reference=reference,
    )


def refuse_info_without_scales(given: dict[str, Any], what: str) -> None:
    """Raise when volume-creation arguments (``info_*``) come without ``info_scales``.

    ``given`` maps argument names to values (``None``/``False`` meaning "not given");
    ``what`` says what is used instead (``"the info at the path"``). Every volume
    builder calls it when ``info_scales`` is not given.
    """
    named = [name for name, value in given.items() if value is not None and value is not False]
    if named:
        raise ValueError(
            f"{', '.join(named)} given without info_scales: the info_* parameters "
            "describe the scales to create, so list them in info_scales (e.g. "
            f"info_scales=[(4, 4, 40)]); without info_scales {what} is used as it is"
        )


#: The dtype kinds a volume may have: bool, signed and unsigned integers, floats and
#: complex numbers (no objects, strings, raw bytes or dates).
NUMERIC_KINDS = "biufc"


def _check_data_type(data_type: object) -> str:
    """``info_data_type`` as a dtype name; a ``ValueError`` naming it otherwise."""
    try:
        dtype = np.dtype(str(data_type))
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in NUMERIC_KINDS:
        raise ValueError(
            "info_data_type must name a numeric numpy dtype (bool, int*, uint*, float*, "
            f"complex*); got {data_type!r}"
        )
    return str(dtype)


def _whole_chunk_size(chunk_size: RawVec3D) -> Vec3D[int]:
    """``info_chunk_size`` as whole positive numbers; a ``ValueError`` with what was given."""
    size = Vec3D.from_seq(chunk_size, "info_chunk_size")
    if not all(float(v).is_integer() and v > 0 for v in size):
        raise ValueError(
            f"info_chunk_size must be three positive whole numbers (x, y, z); got {chunk_size!r}"
        )
    return size.int()


def type_name(value: object) -> str:
    """``type(value).__name__``, for messages saying what was given."""
    return type(value).__name__


# -- the update policy -----------------------------------------------------------------------
@attrs.frozen
class StoredVolume:
    """A volume as the policy compares it: top-level attributes (``type``,
    ``data_type``, ``num_channels`` and any other) and one JSON-able description per
    scale (its geometry, encoding and format-specific keys), keyed by resolution."""

    attributes: Mapping[str, Any]
    scales: Mapping[Vec3D[float], Mapping[str, Any]]


@attrs.frozen
class UpdatePlan:
    """What to store: the merged ``attributes`` and ``scales``, and which scales are
    ``created`` (new), ``replaced`` (stored, now different) and ``dropped``."""

    attributes: dict[str, Any]
    scales: dict[Vec3D[float], dict[str, Any]]
    created: frozenset[Vec3D[float]]
    replaced: frozenset[Vec3D[float]]
    dropped: frozenset[Vec3D[float]]

    @property
    def changes(self) -> bool:
        return bool(self.created or self.replaced or self.dropped)


def plan_update(
    stored: StoredVolume | None,
    wanted: StoredVolume,
    *,
    overwrite: bool,
    keep_existing_scales: bool,
    where: str,
    label: Callable[[Vec3D[float], Mapping[str, Any]], str] | None = None,
    error: type[VolumeMismatchError] = VolumeMismatchError,
) -> UpdatePlan:
    """Apply the policy: ``wanted`` is asked for where ``stored`` is (``None``: nothing).

    * Adding scales needs no flag (``keep_existing_scales=True``, the default, keeps the
      others).
    * Changing a stored scale or a top-level attribute needs ``overwrite``.
    * Dropping scales needs ``overwrite`` and ``keep_existing_scales=False``.
    * Changing the data type or channel count needs both, since the kept scales'
      chunks would no longer decode.

    Top-level attributes ``wanted`` does not mention are kept. A refusal is ``error``
    (a :class:`VolumeMismatchError`) listing the ``Missing scales`` (stored scales that
    would be dropped or changed) and the ``Differences``; nothing is written by the
    caller then.
    """
    name = label or (lambda res, _: res_to_key(res))
    if stored is None:
        return UpdatePlan(
            attributes=dict(wanted.attributes),
            scales={r: dict(s) for r, s in wanted.scales.items()},
            created=frozenset(wanted.scales),
            replaced=frozenset(),
            dropped=frozenset(),
        )
    old, new = stored.scales, wanted.scales
    if keep_existing_scales:
        changed = [
            f"{k} {json.dumps(stored.attributes.get(k))} -> {json.dumps(wanted.attributes.get(k))}"
            for k in ("data_type", "num_channels")
            if k in wanted.attributes and stored.attributes.get(k) != wanted.attributes.get(k)
        ]
        if changed:
            raise error(
                f"the volume {where} cannot change its {' and '.join(changed)} while keeping "
                "its existing scales (info_keep_existing_scales=True): their chunks would "
                "no longer decode. To replace the volume, pass both info_overwrite=True and "
                "info_keep_existing_scales=False (the existing scales are dropped)."
            )
        merged = {**{r: dict(s) for r, s in old.items()}, **{r: dict(s) for r, s in new.items()}}
    else:
        merged = {r: dict(s) for r, s in new.items()}
    attributes = {**stored.attributes, **wanted.attributes}
    replaced = frozenset(r for r in new if r in old and dict(old[r]) != dict(new[r]))
    dropped = frozenset(r for r in old if r not in merged)
    created = frozenset(r for r in new if r not in old)
    top = _diff_lines(stored.attributes, attributes)
    if not overwrite and (replaced or dropped or top):
        lines = list(top)
        for res in sorted(set(old) | set(merged), key=lambda r: (r[0] * r[1] * r[2], tuple(r))):
            before, after = old.get(res), merged.get(res)
            shown = name(res, before if before is not None else after or {})
            if before is None:
                lines.append(f"+ scales[{shown}]: {json.dumps(after, default=str)}")
            elif after is None:
                lines.append(f"- scales[{shown}]: {json.dumps(before, default=str)}")
            elif dict(before) != dict(after):
                lines.extend(_diff_lines(before, after, prefix=f"scales[{shown}]."))
        missing = [name(r, old[r]) for r in sorted(replaced | dropped, key=lambda r: tuple(r))]
        text = "\n  ".join(lines)
        raise error(
            f"the volume {where} would change and info_overwrite=False.\n"
            f"Missing scales: {missing} (existing scales that would be dropped or changed)\n"
            f"Differences:\n  {text}\n"
            "Pass info_overwrite=True to write it anyway, or build the layer without info_* "
            "parameters to use the volume as it is."
        )
    return UpdatePlan(
        attributes=attributes,
        scales=merged,
        created=created,
        replaced=replaced,
        dropped=dropped,
    )


def _diff_lines(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new)):
        shown = f"{prefix}{key}"
        if key not in old:
            lines.append(f"+ {shown}: {json.dumps(new[key], default=str)}")
        elif key not in new:
            lines.append(f"- {shown}: {json.dumps(old[key], default=str)}")
        elif old[key] != new[key]:
            lines.append(
                f"{shown}: {json.dumps(old[key], default=str)} -> "
                f"{json.dumps(new[key], default=str)}"
            )
    return lines
