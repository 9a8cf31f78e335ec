"""Value classes that plugins register through the command and path-opener hooks.

They live here, not in the modules that use them, so that a plugin's hook module can
import them without pulling in the command line or any format library.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Command", "PathOpener", "VolumeTemplate"]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """Default for commands that take no arguments."""


@attrs.frozen(kw_only=True)
class Command:
    """A ``lamina`` subcommand.

    Attributes:
        help: one line, shown by ``lamina --help``.
        run: called with the parsed ``argparse.Namespace``; returns the exit code.
        add_arguments: adds the command's arguments to its ``argparse`` parser.
        description: the longer text shown by ``lamina COMMAND --help``.
    """

    help: str
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    description: str | None = None


@attrs.frozen(kw_only=True)
class VolumeTemplate:
    """What a new volume should be like, for :attr:`PathOpener.create` (``lamina copy``
    making a DST like its SRC). Plain values only, so hook modules import nothing heavy.

    Attributes:
        data_type: numpy dtype name (``"uint8"``).
        num_channels: channels per voxel.
        volume_type: ``"image"``, ``"segmentation"`` or ``None`` (unknown).
        resolutions: every scale (nm, x, y, z), finest first.
        bbox_start, bbox_end: the volume's box in nm.
        chunk_size: voxels per storage chunk (x, y, z), for every scale.
        encoding: the source's chunk encoding where the formats share one
            (precomputed's ``"raw"``, ``"compressed_segmentation"``…); ``None``: the
            format's default.
        shard_size: voxels (x, y, z) of each shard's box, for formats that store chunks
            in shards (:attr:`PathOpener.shards`); ``None``: unsharded.
    """

    data_type: str
    num_channels: int
    volume_type: str | None
    resolutions: tuple[tuple[float, float, float], ...]
    bbox_start: tuple[float, float, float]
    bbox_end: tuple[float, float, float]
    chunk_size: tuple[int, int, int]
    encoding: str | None = None
    shard_size: tuple[int, int, int] | None = None

    def builder_kwargs(self) -> dict[str, Any]:
        """The keywords every lamina volume builder shares (``build_cv_layer``'s
        ``info_*`` names) that make a volume like this one, indexed and read at its
        finest scale. A creating opener adds its format's own (an encoding, a
        compression)."""
        from lamina.volumetric.geometry import BBox3D

        finest = self.resolutions[0]
        return {
            "default_desired_resolution": finest,
            "index_resolution": finest,
            "info_type": "segmentation" if self.volume_type == "segmentation" else "image",
            "info_data_type": self.data_type,
            "info_num_channels": self.num_channels,
            "info_chunk_size": self.chunk_size,
            "info_scales": list(self.resolutions),
            "info_bbox": BBox3D.from_coords(self.bbox_start, self.bbox_end),
        }


@attrs.frozen(kw_only=True)
class PathOpener:
    """Opens paths of one format (``precomputed://…``, ``*.h5``) as layers; registered
    under the format's name (``"precomputed"``), which ``format=`` / ``--format`` name.

    An opener claims only paths it positively recognises (its prefix, its suffix, its
    metadata file): when two formats claim a path, the higher ``priority`` wins, and two
    of the same priority are an error listing both, so that nothing is guessed.

    Attributes:
        recognises: whether this opener handles ``path``; cheap (no IO that can hang).
        open: opens ``path`` as a layer; keyword options are the command's options.
        forms: the path forms it accepts, for error messages (``"precomputed://PATH"``).
        exists: whether a volume is stored at ``path`` (for openers that can create).
        can_create: whether ``create`` makes volumes at paths like ``path`` (default:
            the paths it recognises).
        create: makes a new, empty, writable volume at ``path`` like a
            :class:`VolumeTemplate` and returns its layer (``lamina copy SRC DST`` with a
            DST that does not exist yet).
        priority: which opener wins when several claim a path (higher first; 0 by
            default): a second engine for a format can outrank the first.
        engines: the engines ``open`` and ``create`` accept as ``engine=`` (``engine=`` /
            ``--engine``), when the format can be read and written by several; empty:
            one engine, and ``--engine`` does not apply.
        shards: whether ``create`` honours a template's ``shard_size`` (a template with
            one is refused by formats that do not).
    """

    recognises: Callable[[str], bool]
    open: Callable[..., Any]
    forms: tuple[str, ...] = ()
    exists: Callable[[str], bool] | None = None
    can_create: Callable[[str], bool] | None = None
    create: Callable[..., Any] | None = None
    priority: int = 0
    engines: tuple[str, ...] = ()
    shards: bool = False
