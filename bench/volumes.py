"""What several benchmarks share: the raw uint8 test volume made by plain CloudVolume,
and the versions line printed above a table."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["new_raw_volume", "versions"]


def new_raw_volume(
    path: str | Path,
    shape: Sequence[int],
    resolution: Sequence[float],
    chunk_size: Sequence[int],
    **cv_kwargs: Any,
) -> Any:
    """An empty one-channel uint8 volume at the local ``path``, raw encoding, made and
    opened by CloudVolume itself (``compress=False, progress=False`` unless
    ``cv_kwargs`` say otherwise): the files every library under test reads."""
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="image",
        data_type="uint8",
        encoding="raw",
        resolution=list(resolution),
        voxel_offset=[0, 0, 0],
        chunk_size=list(chunk_size),
        volume_size=list(shape),
    )
    options = {"compress": False, "progress": False, **cv_kwargs}
    vol = CloudVolume(f"file://{path}", info=info, **options)
    vol.commit_info()
    return vol


def versions(names: Sequence[str]) -> str:
    """``python 3.11.7, numpy 2.4.6, …`` for the distributions ``names``."""
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return f"python {sys.version.split()[0]}, " + ", ".join(parts)
