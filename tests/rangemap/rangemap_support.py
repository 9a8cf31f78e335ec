"""Helpers of the lamina-rangemap tests.

The raw hooks of the contract suites reach the sources' storage without the range map:
which source owns a voxel (or a key) is computed here independently — per voxel, from
the voxel centres, instead of the backend's box differences — and the data is read and
written through the *source* backends, below the range map under test.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina import BBox3D, Capabilities, VolumetricBackend, VolumetricIndex
from lamina.processors import JointIndexDataProcessor
from lamina.volumetric.geometry import Vec3D

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/lamina-test-aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/lamina-test-aws-credentials",
}
AWS_UNSET_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB")


# -- volumetric ownership, voxel by voxel ---------------------------------------------------
def owner_map(boxes: list[BBox3D], idx: VolumetricIndex) -> npt.NDArray[np.int64]:
    """For each voxel of ``idx``: the position of the last box holding its centre, or -1."""
    res = idx.resolution
    centres = [
        (np.arange(idx.start[d], idx.stop[d]) + 0.5) * res[d] for d in range(3)
    ]  # nm, per axis
    owner = np.full(tuple(idx.shape), -1, dtype=np.int64)
    for i, box in enumerate(boxes):
        (x0, x1), (y0, y1), (z0, z1) = box.bounds
        inside = (
            ((centres[0] >= x0) & (centres[0] < x1))[:, None, None]
            & ((centres[1] >= y0) & (centres[1] < y1))[None, :, None]
            & ((centres[2] >= z0) & (centres[2] < z1))[None, None, :]
        )
        owner[inside] = i
    return owner


def _boxes(rm: Any) -> list[BBox3D]:
    return [box for box, _ in rm.ranges]


def raw_read(rm: Any, idx: VolumetricIndex, fill: Any = 0) -> npt.NDArray[Any]:
    """What the sources store at ``idx``, voxel by voxel from each voxel's owner."""
    owner = owner_map(_boxes(rm), idx)
    out = np.full((rm.num_channels, *idx.shape), fill, dtype=rm.dtype)
    for i, (_, layer) in enumerate(rm.ranges):
        mask = owner == i
        if mask.any():
            out[:, mask] = layer.backend.read(idx)[:, mask]
    return out


def _mask_index(mask: npt.NDArray[np.bool_], idx: VolumetricIndex) -> tuple[VolumetricIndex, Any]:
    where = np.nonzero(mask)
    lo = [int(w.min()) for w in where]
    hi = [int(w.max()) + 1 for w in where]
    sub = VolumetricIndex.from_coords(
        Vec3D(*lo) + idx.start, Vec3D(*hi) + idx.start, idx.resolution
    )
    return sub, tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))


def raw_write(rm: Any, idx: VolumetricIndex, data: npt.NDArray[Any]) -> None:
    """Store ``data`` in the owner of each voxel, through the source backends."""
    owner = owner_map(_boxes(rm), idx)
    data = np.broadcast_to(np.asarray(data), (rm.num_channels, *idx.shape))
    for i, (_, layer) in enumerate(rm.ranges):
        mask = owner == i
        if not mask.any():
            continue
        sub, local = _mask_index(mask, idx)
        backend = layer.backend.with_changes(enforce_chunk_aligned_writes=False)
        current = backend.read(sub)
        sub_mask = mask[local]
        current[:, sub_mask] = data[(slice(None), *local)][:, sub_mask]
        backend.write(sub, current)


def is_stored(rm: Any, idx: VolumetricIndex) -> bool:
    """Whether any voxel of ``idx`` holds a non-zero value in its owner source."""
    owner = owner_map(_boxes(rm), idx)
    for i, (_, layer) in enumerate(rm.ranges):
        mask = owner == i
        if mask.any() and layer.backend.read(idx)[:, mask].any():
            return True
    return False


def damage_chunk(rm: Any, idx: VolumetricIndex) -> bool:
    """Damage, in the source owning ``idx``'s first voxel, the chunk holding it (a
    precomputed source); in-memory sources keep arrays: nothing to damage."""
    first = VolumetricIndex.from_coords(idx.start, idx.start + Vec3D(1, 1, 1), idx.resolution)
    backend = rm.ranges[int(owner_map(_boxes(rm), first)[0, 0, 0])][1].backend
    if type(backend).__name__ != "CVBackend":
        return False
    from lamina_precomputed.testing import damage_chunk as damage_precomputed

    return damage_precomputed(backend, idx)


# -- a user's own volumetric backend that records what it is asked ---------------------------
class RecordingBackend(VolumetricBackend):
    """A user's own ``VolumetricBackend`` subclass: delegates to ``inner`` and records
    every index it reads and writes (the log travels with pickles)."""

    def __init__(self, inner: VolumetricBackend) -> None:
        self.inner = inner
        self.reads: list[VolumetricIndex] = []
        self.writes: list[VolumetricIndex] = []
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"inner": self.inner, "reads": self.reads, "writes": self.writes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return self.inner.capabilities

    @property
    def name(self) -> str:
        return f"recording:{self.inner.name}"

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.inner.dtype

    @property
    def num_channels(self) -> int:
        return self.inner.num_channels

    @property
    def resolutions(self) -> tuple[Vec3D[float], ...]:
        return self.inner.resolutions

    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        return self.inner.enforce_chunk_aligned_writes

    def get_voxel_offset(self, resolution: Any) -> Vec3D[int]:
        return self.inner.get_voxel_offset(resolution)

    def get_chunk_size(self, resolution: Any) -> Vec3D[int]:
        return self.inner.get_chunk_size(resolution)

    def get_dataset_size(self, resolution: Any) -> Vec3D[int]:
        return self.inner.get_dataset_size(resolution)

    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        with self._lock:
            self.reads.append(idx)
        return self.inner.read(idx)

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        with self._lock:
            self.writes.append(idx)
        self.inner.write(idx, data)

    def with_changes(self, **changes: Any) -> RecordingBackend:  # type: ignore[override]
        return RecordingBackend(self.inner.with_changes(**changes))

    def delete(self) -> None:
        self.inner.delete()


class RecordIndex(JointIndexDataProcessor[Any, Any]):
    """A joint processor that records every index its layer is asked for."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def process_index(self, idx: Any, mode: Any) -> tuple[Any, Any]:
        self.seen.append((mode, idx))
        return idx, None

    def process_data(self, data: Any, mode: Any, state: Any) -> Any:
        return data


# -- moto's server in a process of its own -----------------------------------------------------
def _serve(conn: Any) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    conn.send(server.get_host_and_port())
    conn.recv()
    server.stop()


class MotoServer:
    """moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port) in a spawned process."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        if not self._conn.poll(60):
            self._process.kill()
            raise RuntimeError("moto's server did not start within 60 s")
        host, port = self._conn.recv()
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
