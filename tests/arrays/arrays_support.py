"""Volumes for the arrays tests (precomputed, HDF5, in memory), all 1 channel uint8 at
(8, 8, 40) nm with a voxel offset, and a recorder of a backend's reads or writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import lamina
from lamina import BBox3D, Vec3D

R = Vec3D(8, 8, 40)
OFFSET = (16, 32, 8)
SHAPE = (192, 160, 24)
CHUNK = (32, 32, 8)
BOX = BBox3D.from_coords(OFFSET, tuple(o + s for o, s in zip(OFFSET, SHAPE, strict=True)), R)


def data() -> npt.NDArray[Any]:
    return np.random.default_rng(11).integers(0, 255, (1, *SHAPE), dtype=np.uint8)


def _fill(layer: Any) -> Any:
    x0, y0, z0 = OFFSET
    layer[x0 : x0 + SHAPE[0], y0 : y0 + SHAPE[1], z0 : z0 + SHAPE[2]] = data()
    return layer


def memory_layer(**options: Any) -> Any:
    return _fill(
        lamina.build_memory_volumetric_layer(
            BOX, [R], CHUNK, default_desired_resolution=R, index_resolution=R, **options
        )
    )


#: the volume's geometry, as a new precomputed or HDF5 volume is created
NEW_VOLUME = {
    "default_desired_resolution": R,
    "index_resolution": R,
    "info_type": "image",
    "info_data_type": "uint8",
    "info_num_channels": 1,
    "info_chunk_size": CHUNK,
    "info_scales": [R],
    "info_bbox": BOX,
}


def precomputed_layer(path: Path) -> Any:
    return _fill(lamina.build_cv_layer(str(path), info_encoding="raw", **NEW_VOLUME))


def hdf5_layer(path: Path) -> Any:
    return _fill(lamina.build_h5_layer(str(path), **NEW_VOLUME))


def zarr_layer(path: Path, **options: Any) -> Any:
    """A new OME-Zarr image (Zarr v3, lamina-zarr) holding the test data."""
    return _fill(lamina.build_zarr_layer(str(path), **NEW_VOLUME, **options))


class Recorder:
    """Records the boxes a backend class's ``method`` is called with (monkeypatched)."""

    def __init__(self, monkeypatch: Any, cls: type, method: str = "read") -> None:
        self.boxes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        original = getattr(cls, method)

        def recording(backend: Any, idx: Any, *args: Any, **kwargs: Any) -> Any:
            self.boxes.append((tuple(idx.start), tuple(idx.stop)))
            return original(backend, idx, *args, **kwargs)

        monkeypatch.setattr(cls, method, recording)

    def assert_disjoint_and_on_grid(
        self, grid_offset: tuple[int, ...], cell: tuple[int, ...]
    ) -> None:
        """No voxel is in two boxes, and each box's faces are on the grid or the region's."""
        for i, (a_lo, a_hi) in enumerate(self.boxes):
            for b_lo, b_hi in self.boxes[i + 1 :]:
                overlap = all(max(a_lo[d], b_lo[d]) < min(a_hi[d], b_hi[d]) for d in range(3))
                assert not overlap, f"{(a_lo, a_hi)} and {(b_lo, b_hi)} overlap"
        starts = {d: {lo[d] for lo, _ in self.boxes} for d in range(3)}
        for d in range(3):
            first = min(starts[d])
            for s in starts[d] - {first}:
                assert (s - grid_offset[d]) % cell[d] == 0, f"a block starts off the grid at {s}"
