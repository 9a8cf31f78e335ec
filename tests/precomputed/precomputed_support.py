"""Helpers shared by the lamina-precomputed tests: raw access that bypasses CVBackend."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
from lamina_precomputed import CVBackend, InfoSpec

from lamina import BBox3D, VolumetricIndex
from lamina.testing import TestVolume

_CHUNK_NAME = re.compile(r"(-?\d+)-(-?\d+)_(-?\d+)-(-?\d+)_(-?\d+)-(-?\d+)")


def spec_for(volume: TestVolume, **changes: Any) -> InfoSpec:
    """The info spec of a contract-suite test volume."""
    params: dict[str, Any] = {
        "scales": volume.resolutions,
        "type": "image",
        "data_type": volume.dtype,
        "num_channels": volume.num_channels,
        "chunk_size": volume.chunk_size,
        "bbox": volume.bbox,
    }
    params.update(changes)
    return InfoSpec.from_optional_reference(**params)


def plain_cv(path: str, resolution: Any) -> Any:
    """A plain CloudVolume object at ``resolution`` (reads the info from storage)."""
    from cloudvolume import CloudVolume

    return CloudVolume(
        path,
        mip=[float(v) for v in resolution],
        bounded=False,
        fill_missing=True,
        progress=False,
        non_aligned_writes=True,
        compress=False,
    )


def raw_read(path: str, idx: VolumetricIndex) -> npt.NDArray[Any]:
    """``(C, X, Y, Z)`` read with plain CloudVolume."""
    cv = plain_cv(path, idx.resolution)
    x, y, z = idx.to_slices()
    return np.asarray(cv[x, y, z]).transpose(3, 0, 1, 2).copy()


def raw_write(path: str, idx: VolumetricIndex, data: npt.NDArray[Any]) -> None:
    """Write ``(C, X, Y, Z)`` data with plain CloudVolume."""
    cv = plain_cv(path, idx.resolution)
    x, y, z = idx.to_slices()
    cv[x, y, z] = np.asfortranarray(np.asarray(data).transpose(1, 2, 3, 0))


def stored_chunks(path: str, key: str) -> list[tuple[int, ...]]:
    """The voxel boxes ``(x0, x1, y0, y1, z0, z1)`` of the chunk files of scale ``key``."""
    from cloudfiles import CloudFiles

    boxes = []
    for name in CloudFiles(path).list(prefix=key + "/"):
        match = _CHUNK_NAME.fullmatch(name.split("/")[-1].split(".")[0])
        if match:
            boxes.append(tuple(int(v) for v in match.groups()))
    return boxes


def is_stored(backend: CVBackend, idx: VolumetricIndex) -> bool:
    """Whether a chunk file overlapping ``idx`` exists (listing storage, not the backend)."""
    scale = next(
        s for s in backend.info["scales"] if tuple(map(float, s["resolution"])) == idx.resolution
    )
    start, stop = idx.start, idx.stop
    for box in stored_chunks(backend.name, scale["key"]):
        if all(box[2 * d] < stop[d] and start[d] < box[2 * d + 1] for d in range(3)):
            return True
    return False


def small_volume_params(**changes: Any) -> dict[str, Any]:
    """``build_cv_layer`` info_* arguments for a small two-scale uint8 volume."""
    params: dict[str, Any] = {
        "info_scales": [(4, 4, 40), (8, 8, 40)],
        "info_type": "image",
        "info_data_type": "uint8",
        "info_num_channels": 1,
        "info_chunk_size": (32, 32, 4),
        "info_bbox": BBox3D.from_coords((0, 0, 0), (128, 128, 8), (4, 4, 40)),
    }
    params.update(changes)
    return params
