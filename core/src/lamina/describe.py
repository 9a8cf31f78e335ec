"""Describe a dataset: ``lamina info PATH [--format NAME] [--json]``.

A backend that knows its format describes itself (``describe()``: encodings, sharding,
the volumes of an HDF5 file); any other volumetric backend is described by its geometry,
so ``lamina info`` works on every installed format.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lamina.paths import add_format_argument, open_path
from lamina.plugins.contributions import Command

__all__ = ["INFO_COMMAND", "describe_layer", "render_description"]


def describe_layer(layer: Any) -> dict[str, Any]:
    """A JSON-able description: the backend's ``describe()``, else its volumetric geometry."""
    backend = getattr(layer, "backend", layer)
    own = getattr(backend, "describe", None)
    if callable(own):
        return dict(own())
    description: dict[str, Any] = {"path": backend.name, "format": type(backend).__name__}
    from lamina.volumetric.backend import VolumetricBackend

    if isinstance(backend, VolumetricBackend):
        if backend.volume_type is not None:
            description["type"] = backend.volume_type
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
        extras.extend(str(note) for note in scale.get("notes", ()))  # a format's own words
        if extras:
            lines.append(f"{indent}    " + ", ".join(extras))
    return lines


def _add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the dataset: precomputed://…, s3://…, a local directory…")
    add_format_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the description as JSON")


def _run_info(args: argparse.Namespace) -> int:
    description = describe_layer(open_path(args.path, format=args.format, engine=args.engine))
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
