"""Open any dataset by path, and describe it: ``lamina info PATH [--json]``.

Plugins register *path openers* (``lamina.PathOpener``) through the path-opener hook;
:func:`open_path` asks each in turn whether it recognises a path (``precomputed://…``,
``s3://…``, ``file.h5:/dataset``) and opens it with the first that does, so commands
such as ``lamina info`` accept every installed format. A path nothing recognises gets
an error listing the known forms and, where the form belongs to a lamina plugin, the
``pip install`` that adds it.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

from lamina.errors import PathNotFoundError, UnknownNameError
from lamina.plugins.contributions import Command, PathOpener, VolumeTemplate

__all__ = [
    "INFO_COMMAND",
    "describe_layer",
    "destination_exists",
    "open_or_create_path",
    "open_path",
    "render_description",
    "template_of",
]


def open_path(path: str, **options: Any) -> Any:
    """Open ``path`` with the first registered path opener that recognises it."""
    from lamina.plugins.known import distribution_for_path, install_hint
    from lamina.plugins.manager import get_host

    entries = get_host().registry.entries("path_openers")
    for entry in entries:
        opener: PathOpener = entry.obj
        if opener.recognises(path):
            return opener.open(path, **options)
    forms = [form for entry in entries for form in entry.obj.forms]
    hint = ""
    dist = distribution_for_path(path)
    local = os.path.expanduser(path.split(":/", 1)[0])
    if dist is None and "://" not in path and not os.path.exists(local):
        raise PathNotFoundError(f"{path}: no such file or directory")
    if dist is not None:
        hint = f" Paths like this are opened by {dist}: {install_hint(dist)}."
    raise UnknownNameError(
        f"no installed path opener recognises {path!r}.{hint} Recognised forms: "
        f"{', '.join(forms) if forms else '(no path opener is installed)'}."
    )


def _creator_for(path: str) -> PathOpener | None:
    """The first path opener that creates volumes at paths like ``path``."""
    from lamina.plugins.manager import get_host

    for entry in get_host().registry.entries("path_openers"):
        opener: PathOpener = entry.obj
        if opener.create is None:
            continue
        can_create = opener.can_create or opener.recognises
        if can_create(path):
            return opener
    return None


def destination_exists(path: str) -> bool:
    """Whether :func:`open_or_create_path` would open a volume stored at ``path`` (True)
    or create one (False), found without creating anything: a command checks its
    arguments against the new volume's geometry before it creates it. Raises
    :class:`~lamina.errors.UnknownNameError` when it could do neither."""
    from lamina.plugins.manager import get_host

    creator = _creator_for(path)
    if creator is not None:
        return creator.exists is not None and creator.exists(path)
    entries = get_host().registry.entries("path_openers")
    if any(entry.obj.recognises(path) for entry in entries):
        return True
    creators = [f for e in entries if e.obj.create is not None for f in e.obj.forms]
    raise UnknownNameError(
        f"nothing is stored at {path!r} and no installed plugin creates volumes at paths "
        f"like it. Paths new volumes can be made at: {', '.join(creators) or '(none)'}."
    )


def open_or_create_path(path: str, like: VolumeTemplate, **options: Any) -> Any:
    """The volume at ``path`` opened for writing, or, when nothing is stored there yet, a
    new one made like ``like`` by the first path opener that can create such paths.

    A caller that must not leave a volume behind on bad arguments checks them first,
    against ``like`` when :func:`destination_exists` says the volume is new."""
    creator = _creator_for(path)
    if creator is not None and creator.create is not None:
        if creator.exists is not None and creator.exists(path):
            return creator.open(path, **{"readonly": False, **options})
        return creator.create(path, like)
    destination_exists(path)  # raises, naming the forms new volumes can be made at
    return open_path(path, **{"readonly": False, **options})


def template_of(
    layer: Any,
    resolutions: Sequence[Any] | None = None,
    chunk_size: Sequence[int] | None = None,
) -> VolumeTemplate:
    """A :class:`VolumeTemplate` of a volumetric layer's volume (its finest scale's box
    and chunking), with other ``resolutions`` or ``chunk_size`` if given."""
    from lamina.volumetric.backend import VolumetricBackend

    backend = getattr(layer, "backend", layer)
    if not isinstance(backend, VolumetricBackend):
        raise TypeError(f"a volumetric layer is needed; got {type(layer).__name__}")
    finest = backend.resolutions[0]
    bounds = backend.get_bounds(finest).bbox
    chunk = backend.get_chunk_size(finest) if chunk_size is None else chunk_size
    encoding = None
    own = getattr(backend, "describe", None)
    if callable(own):
        scales = own().get("scales") or [{}]
        encoding = scales[0].get("encoding")
    res = backend.resolutions if resolutions is None else resolutions
    return VolumeTemplate(
        data_type=str(backend.dtype),
        num_channels=backend.num_channels,
        volume_type=backend.volume_type,
        resolutions=tuple(tuple(float(v) for v in r) for r in res),  # type: ignore[misc]
        bbox_start=tuple(float(v) for v in bounds.start),  # type: ignore[arg-type]
        bbox_end=tuple(float(v) for v in bounds.end),  # type: ignore[arg-type]
        chunk_size=tuple(int(v) for v in chunk),  # type: ignore[arg-type]
        encoding=encoding,
    )


def describe_layer(layer: Any) -> dict[str, Any]:
    """A JSON-able description: the backend's ``describe()``, else its volumetric geometry."""
    backend = getattr(layer, "backend", layer)
    own = getattr(backend, "describe", None)
    if callable(own):
        return dict(own())
    description: dict[str, Any] = {"path": backend.name, "format": type(backend).__name__}
    from lamina.volumetric.backend import VolumetricBackend

    if isinstance(backend, VolumetricBackend):
        description["data_type"] = str(backend.dtype)
        description["num_channels"] = backend.num_channels
        scales = []
        for res in backend.resolutions:
            offset = backend.get_voxel_offset(res)
            size = backend.get_dataset_size(res)
            scales.append(
                {
                    "resolution": list(res),
                    "voxel_offset": list(offset),
                    "size": list(size),
                    "chunk_size": list(backend.get_chunk_size(res)),
                    "bounds_nm": [list(offset * res), list((offset + size) * res)],
                }
            )
        description["scales"] = scales
    return description


def _vec(values: Any) -> str:
    return "(" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) + ")"


def render_description(description: dict[str, Any]) -> str:
    """The description for a person: one line per field, a block per scale; a file of
    several volumes (``"volumes"``: their descriptions) a block per volume."""
    lines = [str(description.get("path", "?"))]
    volumes = description.get("volumes")
    if isinstance(volumes, list) and volumes and isinstance(volumes[0], dict):
        for key, value in description.items():
            if key not in ("path", "volumes"):
                lines.append(f"  {key.replace('_', ' ')}: {value}")
        lines.append(f"  volumes: {len(volumes)}")
        for volume in volumes:
            lines.append(f"  volume {volume.get('volume', volume.get('path', '?'))}")
            lines.extend(_describe_volume(volume, "    ", skip=("path", "volume", "format")))
        return "\n".join(lines)
    lines.extend(_describe_volume(description, "  ", skip=("path",)))
    return "\n".join(lines)


def _describe_volume(description: dict[str, Any], indent: str, skip: tuple[str, ...]) -> list[str]:
    lines = []
    for key, value in description.items():
        if key not in (*skip, "scales"):
            lines.append(f"{indent}{key.replace('_', ' ')}: {value}")
    scales = description.get("scales", [])
    lines.append(f"{indent}scales: {len(scales)}")
    for scale in scales:
        res = "x".join(f"{v:g}" for v in scale["resolution"])
        head = f"{indent}  {res} nm"
        if scale.get("key") is not None:
            head += f" (key {scale['key']})"
        lines.append(head)
        lines.append(
            f"{indent}    voxel offset {_vec(scale['voxel_offset'])}, size {_vec(scale['size'])}, "
            f"chunk size {_vec(scale['chunk_size'])}"
        )
        lo, hi = scale["bounds_nm"]
        lines.append(f"{indent}    bounds {_vec(lo)} - {_vec(hi)} nm")
        extras = [f"encoding {scale['encoding']}"] if scale.get("encoding") else []
        if scale.get("sharded"):
            sharding = scale.get("sharding") or {}
            shard = f"sharded ({sharding['hash']} hash)" if "hash" in sharding else "sharded"
            if scale.get("shard_box"):
                shard += f", shard box {_vec(scale['shard_box'])}"
            extras.append(shard)
        if scale.get("write_grid") and scale["write_grid"] != scale["chunk_size"]:
            extras.append(f"write grid {_vec(scale['write_grid'])}")
        if extras:
            lines.append(f"{indent}    " + ", ".join(extras))
    return lines


def _add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the dataset: precomputed://…, s3://…, a local directory…")
    parser.add_argument("--json", action="store_true", help="print the description as JSON")


def _run_info(args: argparse.Namespace) -> int:
    description = describe_layer(open_path(args.path))
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        print(render_description(description))
    return 0


INFO_COMMAND = Command(
    help="describe a dataset: scales, dtype, channels, chunk sizes, bounds, encoding",
    description=(
        "Describe the dataset at PATH: its scales (resolution, voxel offset, size, chunk "
        "size, bounds, encoding), data type and channels. Any installed plugin's path "
        "forms are accepted."
    ),
    add_arguments=_add_info_arguments,
    run=_run_info,
)
