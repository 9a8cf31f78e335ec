"""What the resume tests run in other processes (importable: a driver subprocess puts this
directory on its path): a callable object with state, a file-backed volume and a driver.

:func:`drive` runs ``flows.apply(Scale(...), src, dst)`` over the volumes under a root
directory and prints its process id and the summary line.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lamina import BBox3D, Vec3D, VolumetricIndex, build_memory_volumetric_layer
from lamina.backend import Capabilities
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer
from lamina.volumetric.memory import MemoryVolumetricBackend
from lamina.volumetric.scales import scales_from_bbox

R = Vec3D(4, 4, 40)
BOX = BBox3D.from_coords((0, 0, 0), (128, 96, 8), R)
CHUNK = (32, 32, 4)
TASKS = 4 * 3 * 2  # BOX in CHUNK-sized tasks


class Scale:
    """``a * factor + offset``, a marker file per call (``<pid>-<uuid>`` under ``markers``)
    and a pause: a configured callable object, as a model or processor is."""

    def __init__(self, factor: int, offset: int, markers: str, pause: float = 0.0) -> None:
        self.factor = factor
        self.offset = offset
        self.markers = markers
        self.pause = pause
        self.tags = {"alpha", "beta", "gamma", "delta"}  # a set: pickled in any order

    def __call__(self, a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        (Path(self.markers) / f"{os.getpid()}-{uuid.uuid4().hex}").touch()
        time.sleep(self.pause)
        return (a.astype("int64") * self.factor + self.offset).astype("uint8")


class Weighted:
    """A callable object holding weights, as a model does: ``a * weights``."""

    def __init__(self, weights: npt.NDArray[Any]) -> None:
        self.weights = weights

    def __call__(self, a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return (a * self.weights).astype(a.dtype)


class Unpicklable(Scale):
    """A callable object that cannot be pickled (it holds an open file)."""

    def __init__(self, markers: str) -> None:
        super().__init__(1, 0, markers)
        self.handle = open(os.devnull, "rb")  # noqa: SIM115 - held on purpose


@attrs.frozen
class NpyVolumetricBackend(MemoryVolumetricBackend):
    """An in-memory backend's geometry with its chunks in ``.npy`` files under ``root``:
    a volume another process sees (for tests that kill and resume a driver)."""

    capabilities = Capabilities(shared_across_processes=True, non_aligned_writes=True)
    root: str = ""

    def _file(self, res: Vec3D[float], key: tuple[int, int, int]) -> Path:
        return Path(self.root) / "x".join(f"{v:g}" for v in res) / "_".join(map(str, key))

    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        self._scale(idx.resolution)
        out = np.zeros((self.num_channels, *idx.shape), dtype=self.dtype)
        for key, in_block, in_region in self._store.overlapping(
            idx.resolution, idx.start, idx.stop
        ):
            file = self._file(idx.resolution, key)
            if file.exists():
                out[in_region] = np.load(file, allow_pickle=False)[in_block]
        return out

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        array = self.check_write(idx, data)
        self.assert_idx_within_bounds(idx, "")
        array = np.broadcast_to(array, (self.num_channels, *idx.shape))
        size = self._store.block_sizes[idx.resolution]
        for key, in_block, in_region in self._store.overlapping(
            idx.resolution, idx.start, idx.stop
        ):
            file = self._file(idx.resolution, key)
            file.parent.mkdir(parents=True, exist_ok=True)
            if file.exists():
                block = np.load(file, allow_pickle=False)
            else:
                block = np.zeros((self.num_channels, *size), dtype=self.dtype)
            block[in_block] = array[in_region]
            part = file.with_name(f"{file.name}.{os.getpid()}.part")
            with part.open("wb") as out:
                np.save(out, block)
            os.replace(part, file)


def source_data() -> npt.NDArray[Any]:
    return np.random.default_rng(0).integers(0, 100, (1, 128, 96, 8)).astype("uint8")


def resume_layers(root: Path) -> tuple[VolumetricLayer, VolumetricLayer]:
    """The same source (in memory, same name and data in every process) and the
    file-backed destination under ``root``."""
    src = build_memory_volumetric_layer(
        BOX, [R], CHUNK, name="mem://resume-src", default_desired_resolution=R, index_resolution=R
    )
    src[0:128, 0:96, 0:8] = source_data()
    dst = NpyVolumetricBackend(
        dtype="uint8",
        num_channels=1,
        scales=scales_from_bbox(BOX, [R], CHUNK),
        name=f"npy://{root / 'dst'}",
        root=str(root / "dst"),
    )
    return src, build_volumetric_layer(dst, default_desired_resolution=R, index_resolution=R)


def drive(root: Path, resume: bool) -> None:
    from lamina.flows import apply

    src, dst = resume_layers(root)
    scale = Scale(2, 1, str(root / "markers"), pause=0.1)
    summary = apply(scale, src, dst, chunk_size=CHUNK, resume=resume, progress=False)
    print(os.getpid())
    print(summary.line())
