"""A lamina layer as a Neuroglancer *precomputed* data source, served chunk by chunk.

Neuroglancer asks a precomputed source for its ``info`` (scales, data type, chunk
shape) and then for chunks by URL, ``KEY/x0-x1_y0-y1_z0-z1`` in voxels at that scale.
:class:`LayerSource` answers both for one lamina volumetric layer without importing
neuroglancer: every scale the backend lists (``backend.resolutions``) is one
precomputed scale; its chunk grid is the backend's storage chunk grid (origin at the
voxel offset), a served chunk being a block of whole storage chunks of at least 1 MiB
(see :func:`served_chunk_size`), so every chunk neuroglancer asks for is one
``layer[VolumetricIndex(...)]`` read of whole storage chunks; chunks go out in the
``raw`` encoding (little-endian, x fastest, then y, z, channel), uncompressed, so a
chunk costs one read and one copy at most.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from lamina.volumetric.creation import res_to_key
from lamina.volumetric.geometry import Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = [
    "MAX_CHUNK_BYTES",
    "MIN_CHUNK_BYTES",
    "LayerSource",
    "Scale",
    "ServedChunk",
    "served_chunk_size",
    "served_dtype",
    "volume_type_of",
]

#: Served chunks are grown to at least this many bytes, by whole storage chunks: fewer,
#: larger requests, each one read of several storage chunks, spread the fixed costs of a
#: request and of a read (bench/README.md, "Precomputed") over more voxels. A contiguous HDF5
#: dataset, which reports (1, 1, 1), gets blocks of this size too.
MIN_CHUNK_BYTES = 1 << 20
#: Chunks above this many bytes are split (halving an axis that divides evenly), so one
#: request stays a few MB and the first picture does not wait on huge reads.
MAX_CHUNK_BYTES = 16 << 20
_Z_WEIGHT = 4

# numpy dtype -> the dtype served; neuroglancer's precomputed format knows uint8/16/32/64,
# int8/16/32 and float32.
_SERVED = {
    "bool": "uint8",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "float16": "float32",
    "float32": "float32",
    "float64": "float32",
}

_CHUNK_NAME = re.compile(r"^(-?\d+)-(-?\d+)_(-?\d+)-(-?\d+)_(-?\d+)-(-?\d+)$")


def volume_type_of(backend: Any, dtype: np.dtype[Any]) -> Literal["image", "segmentation"]:
    """``backend.volume_type`` when the format records it; otherwise segmentation for an
    unsigned integer dtype of 32 or 64 bits, image for anything else."""
    declared = getattr(backend, "volume_type", None)
    if declared in ("image", "segmentation"):
        return declared  # type: ignore[no-any-return]
    if dtype.kind == "u" and dtype.itemsize in (4, 8):
        return "segmentation"
    return "image"


def served_dtype(dtype: np.dtype[Any], volume_type: str) -> np.dtype[Any]:
    """The dtype neuroglancer is given for data stored as ``dtype`` (little-endian)."""
    name = _SERVED.get(dtype.name)
    if name is None and dtype.name == "int64":
        name = "uint64" if volume_type == "segmentation" else "float32"
    if name is None:
        raise TypeError(
            f"neuroglancer cannot show data of dtype {dtype}; it shows uint8/16/32/64, "
            "int8/16/32 and float32 (bool, float16/64 and int64 are converted)"
        )
    return np.dtype(name).newbyteorder("<")


def served_chunk_size(
    storage: tuple[int, int, int],
    size: tuple[int, int, int],
    resolution: tuple[float, ...],
    voxel_bytes: int = 1,
) -> tuple[int, int, int]:
    """The chunk shape served for a scale stored in ``storage`` chunks (``voxel_bytes``:
    bytes per voxel, all channels).

    The storage chunk, clamped to the scale's size, doubled along its shortest axis in nm
    (z counted 4x longer: chunks stay thin in z, as xy cross-sections are drawn) until it
    holds :data:`MIN_CHUNK_BYTES`, or halved along its longest axis in nm (while it
    divides evenly) until it holds no more than :data:`MAX_CHUNK_BYTES`. So a served chunk
    is always a whole number of storage chunks (an axis grown past the scale's size spans
    it whole) or a whole fraction of one: it never straddles storage chunks.
    """
    chunk = [max(1, min(int(c), int(s))) for c, s in zip(storage, size, strict=True)]

    def nbytes() -> int:
        return chunk[0] * chunk[1] * chunk[2] * voxel_bytes

    while nbytes() < MIN_CHUNK_BYTES:
        growable = [d for d in range(3) if chunk[d] < size[d]]
        if not growable:
            break
        d = min(growable, key=lambda a: chunk[a] * resolution[a] * (_Z_WEIGHT if a == 2 else 1))
        chunk[d] = min(chunk[d] * 2, int(size[d]))
    while nbytes() > MAX_CHUNK_BYTES:
        halvable = [d for d in range(3) if chunk[d] % 2 == 0]
        if not halvable:
            break
        d = max(halvable, key=lambda a: chunk[a] * resolution[a])
        chunk[d] //= 2
    return (chunk[0], chunk[1], chunk[2])


@attrs.frozen
class Scale:
    """One precomputed scale: a resolution of the layer's backend."""

    key: str
    resolution: Vec3D[float]
    voxel_offset: tuple[int, int, int]
    size: tuple[int, int, int]
    chunk_size: tuple[int, int, int]
    storage_chunk_size: tuple[int, int, int]

    def info(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "resolution": [float(r) for r in self.resolution],
            "voxel_offset": list(self.voxel_offset),
            "size": list(self.size),
            "chunk_sizes": [list(self.chunk_size)],
            "encoding": "raw",
        }


@attrs.frozen
class ServedChunk:
    """A chunk request that was answered: which scale, which voxel box, how many bytes."""

    scale_key: str
    start: tuple[int, int, int]
    stop: tuple[int, int, int]
    nbytes: int


class LayerSource:
    """A volumetric layer as a precomputed source: :meth:`info` and :meth:`chunk`.

    ``read`` (default ``layer.__getitem__``) reads one :class:`VolumetricIndex`; a layer
    set's member is read through the set with ``read=lambda idx: layer[idx][key]``.
    Every answered chunk is recorded in :attr:`served` (the most recent 10,000).
    """

    def __init__(
        self,
        layer: Any,
        read: Callable[[VolumetricIndex], Any] | None = None,
        backend: Any = None,
    ) -> None:
        backend = layer.backend if backend is None else backend
        self.layer = layer
        self._read = read if read is not None else layer.__getitem__
        stored = np.dtype(backend.dtype)
        self.volume_type = volume_type_of(backend, stored)
        self.stored_dtype = stored
        self.dtype = served_dtype(stored, self.volume_type)
        self.num_channels = int(backend.num_channels)
        resolutions = tuple(backend.resolutions)
        if not resolutions:
            ddr = getattr(layer, "default_desired_resolution", None)
            if ddr is None:
                raise ValueError(
                    f"{backend.name} lists no resolution (backend.resolutions is empty) and "
                    "the layer has no default_desired_resolution to show it at; build the "
                    "layer with default_desired_resolution=(x, y, z)"
                )
            resolutions = (Vec3D.from_seq(ddr).float(),)
        scales: dict[str, Scale] = {}
        for res in resolutions:
            res = Vec3D.from_seq(res).float()
            key = res_to_key(res)
            offset = tuple(int(v) for v in backend.get_voxel_offset(res))
            size = tuple(int(v) for v in backend.get_dataset_size(res))
            storage = tuple(int(v) for v in backend.get_chunk_size(res))
            scales[key] = Scale(
                key=key,
                resolution=res,
                voxel_offset=offset,  # type: ignore[arg-type]
                size=size,  # type: ignore[arg-type]
                chunk_size=served_chunk_size(
                    storage,  # type: ignore[arg-type]
                    size,  # type: ignore[arg-type]
                    tuple(res),
                    self.dtype.itemsize * self.num_channels,
                ),
                storage_chunk_size=storage,  # type: ignore[arg-type]
            )
        self.scales: Mapping[str, Scale] = scales
        self.served: deque[ServedChunk] = deque(maxlen=10_000)
        self._lock = threading.Lock()

    @property
    def finest(self) -> Scale:
        """The first (finest) scale."""
        return next(iter(self.scales.values()))

    def info(self) -> dict[str, Any]:
        """The precomputed ``info`` of this source."""
        return {
            "@type": "neuroglancer_multiscale_volume",
            "type": self.volume_type,
            "data_type": self.dtype.name,
            "num_channels": self.num_channels,
            "scales": [scale.info() for scale in self.scales.values()],
        }

    def parse(self, scale_key: str, chunk_name: str) -> tuple[Scale, VolumetricIndex]:
        """The scale and index of a chunk URL; ``KeyError`` or ``ValueError`` when it is not
        one of this source's chunks (a box off the grid, outside the bounds)."""
        scale = self.scales[scale_key]
        m = _CHUNK_NAME.match(chunk_name)
        if m is None:
            raise ValueError(f"not a chunk name: {chunk_name!r}")
        v = [int(g) for g in m.groups()]
        start, stop = (v[0], v[2], v[4]), (v[1], v[3], v[5])
        for d in range(3):
            lo = scale.voxel_offset[d]
            hi = lo + scale.size[d]
            step = scale.chunk_size[d]
            if not (
                lo <= start[d] < stop[d] <= hi
                and (start[d] - lo) % step == 0
                and stop[d] == min(start[d] + step, hi)
            ):
                raise ValueError(f"{chunk_name} is not a chunk of scale {scale_key}")
        return scale, VolumetricIndex.from_coords(start, stop, scale.resolution)

    def encode(self, data: Any, idx: VolumetricIndex) -> memoryview:
        """``(C, X, Y, Z)`` data as a raw precomputed chunk: x fastest, then y, z, c. A
        view of the read's own memory where it is in that order (a layer read in Fortran
        order is), so a served chunk is not copied once more before it is sent."""
        array: npt.NDArray[Any] = np.asarray(data)
        expected = (self.num_channels, *idx.shape)
        if array.shape != expected:
            raise ValueError(
                f"reading {idx.pformat()} at {idx.resolution.pformat()} nm returned shape "
                f"{array.shape}; expected {expected}"
            )
        if array.dtype != self.dtype:
            array = array.astype(self.dtype)
        flat = array.transpose(1, 2, 3, 0).reshape(-1, order="F")  # a view, or one copy
        return flat.view(np.uint8).data

    def chunk(self, scale_key: str, chunk_name: str) -> memoryview:
        """The raw bytes of one chunk (by its URL parts), read through the layer."""
        scale, idx = self.parse(scale_key, chunk_name)
        return self.read_chunk(scale, idx)

    def read_chunk(self, scale: Scale, idx: VolumetricIndex) -> memoryview:
        """The raw bytes of the chunk at ``idx`` (from :meth:`parse`): one layer read."""
        payload = self.encode(self._read(idx), idx)
        record = ServedChunk(scale.key, tuple(idx.start), tuple(idx.stop), len(payload))  # type: ignore[arg-type]
        with self._lock:
            self.served.append(record)
        return payload
