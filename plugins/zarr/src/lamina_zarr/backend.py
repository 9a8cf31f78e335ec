"""``ZarrBackend``: a Zarr / OME-Zarr / N5 volume as a lamina volumetric backend.

Reads return ``(C, X, Y, Z)`` views of Fortran-ordered ``(X, Y, Z, C)`` arrays (the
stored layout of OME's ``(c, z, y, x)``); regions outside the dataset read as zeros.
Writes are checked (shape, channels, lossless dtype, the write grid — chunks, or shards
of a sharded Zarr v3 array — and bounds) before anything is written. The backend
pickles as its path, parsed metadata and options (no storage access in a worker);
each process opens its own TensorStore handles.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Literal, Unpack

import numpy as np
import numpy.typing as npt

from lamina.backend import Capabilities
from lamina.volumetric.backend import VolumetricBackend, VolumetricChanges
from lamina.volumetric.geometry import RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina_zarr.arrays import ScaleArray, check_engine
from lamina_zarr.nodes import normalize_path
from lamina_zarr.paths import REMOTE
from lamina_zarr.volume import ZarrScale, ZarrVolume, format_name, read_volume

__all__ = ["ZarrBackend"]


class ZarrBackend(VolumetricBackend):
    """The volume stored at ``path`` (an OME-Zarr image, a plain Zarr array, an N5
    dataset); see :func:`lamina_zarr.build_zarr_layer` for the arguments.

    Args:
        path: the image's group, or the array (local, ``file://``, ``s3://``, ``gs://``;
            ``zarr://``, ``zarr2://``, ``zarr3://`` and ``n5://`` prefixes accepted).
        axes: a plain array's axis names in its order (``"czyx"``).
        resolution: a plain array's resolution (nm, x y z).
        time_index: the time point read from an array with a time axis.
        engine: ``"auto"``, ``"tensorstore"``, ``"lamina"`` or ``"zarr-python"``
            (:mod:`lamina_zarr.arrays`).
        enforce_chunk_aligned_writes: refuse writes that do not cover whole cells of the
            write grid (default).
        cache_bytes_limit: bytes of TensorStore's chunk cache (0: none).
    """

    supported_changes: ClassVar[frozenset[str]] = frozenset(
        {"enforce_chunk_aligned_writes", "cache_bytes_limit"}
    )
    memory_order: ClassVar[Literal["C", "F"]] = "F"

    def __init__(
        self,
        path: str,
        *,
        axes: str | Sequence[str] | None = None,
        resolution: RawVec3D | None = None,
        time_index: int | None = None,
        engine: str | None = None,
        enforce_chunk_aligned_writes: bool = True,
        cache_bytes_limit: int = 0,
    ) -> None:
        root = normalize_path(path)
        self._options = {"axes": axes, "resolution": resolution, "time_index": time_index}
        volume = read_volume(root, **self._options)  # type: ignore[arg-type]
        self._setup(
            volume,
            check_engine(engine),
            bool(enforce_chunk_aligned_writes),
            _check_cache(cache_bytes_limit),
        )

    def _setup(self, volume: ZarrVolume, engine: str, aligned: bool, cache: int) -> None:
        self._volume = volume
        self._engine = engine
        self._aligned = aligned
        self._cache = cache
        self._arrays: dict[Vec3D[float], ScaleArray] = {}
        self._lock = threading.Lock()

    # -- pickling: the parsed volume and options, never handles -------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "volume": self._volume,
            "options": self._options,
            "engine": self._engine,
            "aligned": self._aligned,
            "cache": self._cache,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._options = state["options"]
        self._setup(state["volume"], state["engine"], state["aligned"], state["cache"])

    def __repr__(self) -> str:
        return f"ZarrBackend({self._volume.root!r})"

    # -- description ---------------------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return Capabilities(non_aligned_writes=True)

    @property
    def name(self) -> str:
        return self._volume.root

    @property
    def path(self) -> str:
        return self._volume.root

    @property
    def volume(self) -> ZarrVolume:
        """The stored volume's metadata as read."""
        return self._volume

    @property
    def engine(self) -> str:
        """The engine this process reads with (``"lamina"``, ``"tensorstore"`` or
        ``"zarr-python"``)."""
        return self._array(self._volume.scales[0].resolution).engine

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._volume.dtype

    @property
    def num_channels(self) -> int:
        return self._volume.num_channels

    @property
    def resolutions(self) -> tuple[Vec3D[float], ...]:
        return tuple(s.resolution for s in self._volume.scales)

    @property
    def volume_type(self) -> Literal["image", "segmentation"] | None:
        return self._volume.volume_type  # type: ignore[return-value]

    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        return self._aligned

    @property
    def is_local(self) -> bool:
        return not self._volume.root.startswith(REMOTE)

    def _scale(self, resolution: RawVec3D) -> ZarrScale:
        return self._volume.scale(resolution)

    def get_voxel_offset(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._scale(resolution).voxel_offset

    def get_chunk_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._scale(resolution).chunk_size

    def get_dataset_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._scale(resolution).size

    def get_write_grid_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._scale(resolution).write_grid

    def describe_write_grid(self, resolution: RawVec3D) -> str:
        scale = self._scale(resolution)
        if scale.write_grid != scale.chunk_size:
            return f"shard size {scale.write_grid.pformat()}"
        return f"chunk size {scale.chunk_size.pformat()}"

    def describe(self) -> dict[str, Any]:
        """What ``lamina info`` shows."""
        volume = self._volume
        fmt = format_name(volume.format)
        if volume.ome_version is not None:
            fmt = f"OME-Zarr {volume.ome_version} ({fmt}, lamina-zarr)"
        else:
            fmt = f"{fmt} array (lamina-zarr)"
        return {
            "path": volume.root,
            "format": fmt,
            "type": volume.volume_type,
            "data_type": str(volume.dtype),
            "num_channels": volume.num_channels,
            "axes": volume.axes.letters,
            "engine": self.engine,
            "scales": [s.describe() for s in volume.scales],
        }

    # -- IO ------------------------------------------------------------------------------------
    def _array(self, resolution: RawVec3D) -> ScaleArray:
        scale = self._scale(resolution)
        found = self._arrays.get(scale.resolution)
        if found is None:
            with self._lock:
                found = self._arrays.get(scale.resolution)
                if found is None:
                    found = ScaleArray(
                        self._volume.root,
                        self._volume.format,
                        scale,
                        self._volume.axes,
                        time_index=self._options["time_index"],  # type: ignore[arg-type]
                        engine=self._engine,
                        cache_bytes=self._cache,
                    )
                    self._arrays[scale.resolution] = found
        return found

    def _local(self, idx: VolumetricIndex) -> tuple[list[int], list[int], bool]:
        """``idx`` in the array's voxels, clipped to it, and whether nothing was clipped."""
        scale = self._scale(idx.resolution)
        lo = [a - o for a, o in zip(idx.start, scale.voxel_offset, strict=True)]
        hi = [b - o for b, o in zip(idx.stop, scale.voxel_offset, strict=True)]
        a = [max(v, 0) for v in lo]
        b = [min(v, n) for v, n in zip(hi, scale.size, strict=True)]
        return a, b, a == lo and b == hi

    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        a, b, inside = self._local(idx)
        if inside and all(y > x for x, y in zip(a, b, strict=True)):
            return self._array(idx.resolution).read(a, b).transpose(3, 0, 1, 2)
        out = np.zeros((*idx.shape, self.num_channels), self.dtype, order="F")
        self._read_part(idx, out, a, b)
        return out.transpose(3, 0, 1, 2)

    def read_into(self, idx: VolumetricIndex, out: npt.NDArray[Any]) -> None:
        self.check_read_target(idx, out)
        a, b, inside = self._local(idx)
        xyzc = out.transpose(1, 2, 3, 0)
        if not inside:
            xyzc[...] = 0
        self._read_part(idx, xyzc, a, b)

    def _read_part(
        self, idx: VolumetricIndex, xyzc: npt.NDArray[Any], a: list[int], b: list[int]
    ) -> None:
        """Read the array's ``a:b`` into its place in ``xyzc`` (the box ``idx``)."""
        if any(y <= x for x, y in zip(a, b, strict=True)):
            return
        offset = self._scale(idx.resolution).voxel_offset
        at = [x + o - s for x, o, s in zip(a, offset, idx.start, strict=True)]
        part = xyzc[tuple(slice(p, p + (y - x)) for p, x, y in zip(at, a, b, strict=True))]
        self._array(idx.resolution).read_into(part, a, b)

    def write(self, idx: VolumetricIndex, data: npt.NDArray[Any]) -> None:
        array = np.broadcast_to(self.check_write(idx, data), (self.num_channels, *idx.shape))
        self.assert_idx_within_bounds(
            idx, "Write inside them, or create the volume with a larger info_bbox."
        )
        a, b, _ = self._local(idx)
        if any(y <= x for x, y in zip(a, b, strict=True)):
            return
        self._array(idx.resolution).write(
            array.transpose(1, 2, 3, 0), a, self.is_write_aligned(idx)
        )

    # -- changes ---------------------------------------------------------------------------------
    def with_changes(self, **changes: Unpack[VolumetricChanges]) -> ZarrBackend:  # type: ignore[override]
        self.check_changes(dict(changes))
        backend = ZarrBackend.__new__(ZarrBackend)
        backend._options = self._options
        backend._setup(
            self._volume,
            self._engine,
            bool(changes.get("enforce_chunk_aligned_writes", self._aligned)),
            _check_cache(changes.get("cache_bytes_limit", self._cache)),
        )
        return backend

    def add_resolutions(
        self, resolutions: Iterable[RawVec3D], chunk_size: RawVec3D | None = None
    ) -> ZarrBackend:
        from lamina_zarr.creation import add_scales

        wanted = [Vec3D.from_seq(r, "resolution").float() for r in resolutions]
        add_scales(self._volume, wanted, chunk_size)
        backend = ZarrBackend.__new__(ZarrBackend)
        backend._options = self._options
        volume = read_volume(self._volume.root, **self._options)  # type: ignore[arg-type]
        backend._setup(volume, self._engine, self._aligned, self._cache)
        return backend

    def delete(self) -> None:
        from lamina_zarr.nodes import MetaStore

        MetaStore(self._volume.root).delete_tree("")

    def clear_cache(self) -> None:
        with self._lock:
            self._arrays = {}


def _check_cache(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"cache_bytes_limit must be an int >= 0; got {value!r}")
    return value
