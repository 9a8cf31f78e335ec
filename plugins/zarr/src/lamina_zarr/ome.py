"""OME-NGFF multiscale images (0.4 on Zarr v2, 0.5 on Zarr v3): reading their axes,
units and coordinate transformations, and writing them.

An image lists its datasets finest first, each with a ``scale`` and optionally a
``translation`` per axis (and the multiscale may add one of each for all). lamina's
geometry follows the standard's pixel-centre convention, as the ``ome-zarr`` library
writes and reads it: the finest dataset's translation is its voxel offset times its
resolution, and a coarser dataset's is ``t0 + (s_k - s0) / 2``. So the corner of voxel
``i`` of dataset ``k`` lies at ``translation_k - (s_k - s0) / 2 + i * s_k`` nm, which is
``(voxel_offset_k + i) * s_k`` in lamina's terms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from lamina_zarr.axes import AxesError, AxisOrder, unit_to_nm

__all__ = ["VERSIONS", "OmeDataset", "OmeImage", "image_attributes", "read_image"]

#: The OME-NGFF version written on each Zarr format.
VERSIONS: Final = {2: "0.4", 3: "0.5"}
_TYPES: Final = {"space", "channel", "time"}


@attrs.frozen
class OmeDataset:
    """One dataset of an image: its path, and per stored axis its scale and translation
    (space axes in nm)."""

    path: str
    scale: tuple[float, ...]
    translation: tuple[float, ...]


@attrs.frozen
class OmeImage:
    """An OME-NGFF multiscale image: its version, axes, datasets (finest first), name and
    whether it is a label image (``image-label``: a segmentation)."""

    version: str
    axes: AxisOrder
    datasets: tuple[OmeDataset, ...]
    name: str | None
    label: bool


def _multiscales(attributes: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]] | None:
    """(version, the attributes holding ``multiscales``) of a 0.5 (``ome``) or 0.4 image."""
    ome = attributes.get("ome")
    if isinstance(ome, Mapping) and "multiscales" in ome:
        return str(ome.get("version", "0.5")), ome
    if "multiscales" in attributes:
        return None, attributes
    return None


def read_image(attributes: Mapping[str, Any], where: str) -> OmeImage | None:
    """The first multiscale image in a group's ``attributes``, ``None`` without OME-NGFF
    metadata; metadata lamina cannot read is an error naming ``where`` and the field."""
    found = _multiscales(attributes)
    if found is None:
        return None
    version, holder = found
    try:
        multiscale = holder["multiscales"][0]
        version = version or str(multiscale.get("version", "0.4"))
        axes_json = multiscale["axes"]
        names = [a["name"] if isinstance(a, Mapping) else a for a in axes_json]
        kinds = [a.get("type") if isinstance(a, Mapping) else None for a in axes_json]
        units = [a.get("unit") if isinstance(a, Mapping) else None for a in axes_json]
        outer = _transforms(multiscale.get("coordinateTransformations"), len(names), where)
        datasets = []
        for entry in multiscale["datasets"]:
            scale, translation = _transforms(
                entry.get("coordinateTransformations"), len(names), where
            )
            datasets.append((str(entry["path"]), scale, translation))
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(
            f"{where}: OME-NGFF multiscales metadata lamina cannot read: {exc!r}"
        ) from None
    for name, kind in zip(names, kinds, strict=True):
        if kind is not None and kind not in _TYPES:
            raise AxesError(
                f"{where}: axis {name!r} has type {kind!r}; lamina reads space, channel and "
                "time axes"
            )
    letters = [_letter(str(n), k) for n, k in zip(names, kinds, strict=True)]
    axes = AxisOrder.parse(letters, len(letters), where)
    factors = [
        unit_to_nm(u, f"{where}, axis {n!r}") if letter in "xyz" else 1.0
        for n, u, letter in zip(names, units, letters, strict=True)
    ]
    (outer_scale, outer_translation) = outer
    image = []
    for path, scale, translation in datasets:
        s = [_nm(a * b * f) for a, b, f in zip(scale, outer_scale, factors, strict=True)]
        t = [
            _nm((a * b + c) * f)
            for a, b, c, f in zip(translation, outer_scale, outer_translation, factors, strict=True)
        ]
        image.append(OmeDataset(path, tuple(s), tuple(t)))
    if not image:
        raise ValueError(f"{where}: the OME-NGFF image lists no datasets")
    name = multiscale.get("name")
    return OmeImage(
        version, axes, tuple(image), None if name is None else str(name), "image-label" in holder
    )


def _nm(value: float) -> float:
    """``value`` (nm, converted from another unit) to 12 significant digits: 0.0069 µm is
    6.9 nm, not 6.8999999999999995, so that ``(6.9, 6.9, 40)`` names the scale."""
    return float(f"{value:.12g}")


def _letter(name: str, kind: str | None) -> str:
    """The axis letter of an OME axis: channel and time axes by type, space by name."""
    if kind == "channel":
        return "c"
    if kind == "time":
        return "t"
    return name.lower()


def _transforms(value: Any, ndim: int, where: str) -> tuple[list[float], list[float]]:
    """The composed (scale, translation) of a ``coordinateTransformations`` list."""
    scale = [1.0] * ndim
    translation = [0.0] * ndim
    for transform in value or []:
        kind = transform.get("type")
        if kind == "identity":
            continue
        if kind not in ("scale", "translation"):
            raise ValueError(
                f"{where}: coordinate transformation {kind!r}; lamina reads scale and translation"
            )
        if kind in transform:
            values = [float(v) for v in transform[kind]]
        else:
            raise ValueError(f"{where}: a {kind} transformation given by 'path' is not read")
        if len(values) != ndim:
            raise ValueError(f"{where}: a {kind} of {len(values)} values for {ndim} axes")
        if kind == "scale":
            scale = [a * b for a, b in zip(scale, values, strict=True)]
            translation = [a * b for a, b in zip(translation, values, strict=True)]
        else:
            translation = [a + b for a, b in zip(translation, values, strict=True)]
    return scale, translation


# -- writing -------------------------------------------------------------------------------------
def image_attributes(
    zarr_format: int,
    axes: AxisOrder,
    datasets: Sequence[tuple[str, Sequence[float], Sequence[int]]],
    *,
    name: str,
    label: bool,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The group attributes of an OME-NGFF image (0.4 for Zarr v2, 0.5 for v3) whose
    datasets are ``(path, resolution x y z in nm, voxel offset x y z)``, finest first.

    With the ``existing`` attributes of the image, everything else in them is kept (other
    keys, the multiscale's name, type and metadata); its axes and datasets are rewritten
    in nanometres, every transformation per dataset."""
    version = VERSIONS[zarr_format]
    axes_json: list[dict[str, str]] = []
    for letter in axes.letters:
        if letter == "c":
            axes_json.append({"name": "c", "type": "channel"})
        elif letter == "t":
            axes_json.append({"name": "t", "type": "time"})
        else:
            axes_json.append({"name": letter, "type": "space", "unit": "nanometer"})
    finest = datasets[0][1]
    entries = []
    for path, resolution, offset in datasets:
        corner = [o * r for o, r in zip(offset, resolution, strict=True)]
        centre = [c + (r - f) / 2 for c, r, f in zip(corner, resolution, finest, strict=True)]
        entries.append(
            {
                "path": path,
                "coordinateTransformations": [
                    {"type": "scale", "scale": axes.stored(_numbers(resolution), 1.0, 1.0)},
                    {"type": "translation", "translation": axes.stored(_numbers(centre), 0.0, 0.0)},
                ],
            }
        )
    attributes = {k: v for k, v in (existing or {}).items()}
    found = _multiscales(attributes)
    holder: dict[str, Any]
    if zarr_format == 2:
        holder = attributes
        first: dict[str, Any] = {"version": version, "name": name}
    else:
        holder = dict(attributes.get("ome") or {})
        holder["version"] = version
        attributes["ome"] = holder
        first = {"name": name}
    if found is not None:
        first = dict(found[1]["multiscales"][0])
        first.pop("coordinateTransformations", None)
        if zarr_format == 2:
            first["version"] = version
    first["axes"] = axes_json
    first["datasets"] = entries
    rest = list(found[1]["multiscales"][1:]) if found is not None else []
    holder["multiscales"] = [first, *rest]
    if label and "image-label" not in holder:
        holder["image-label"] = {"version": version} if zarr_format == 2 else {}
    return attributes


def _numbers(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values]
