"""The path forms of this plugin's formats, shared by the path opener (which must import
nothing heavy) and the metadata store."""

from __future__ import annotations

from typing import Final

__all__ = ["PREFIXES", "REMOTE"]

#: Path prefixes that name this plugin's formats (``zarr2://`` / ``zarr3://`` pick the
#: Zarr version of a new volume; ``n5://`` an N5 container).
PREFIXES: Final = ("zarr://", "zarr2://", "zarr3://", "n5://")
#: The object storage schemes (everything else is a local path).
REMOTE: Final = ("s3://", "gs://")
