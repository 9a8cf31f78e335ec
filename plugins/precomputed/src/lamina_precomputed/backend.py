"""``CVBackend``: a Neuroglancer precomputed volume, read and written chunk file by chunk file.

* The index resolution picks the scale; a resolution the info does not list raises
  :class:`lamina.errors.UnknownResolutionError` naming the path and the resolutions.
* Files go through :mod:`lamina_precomputed.storage` (local files directly; ``mem://``,
  ``s3://``, ``gs://`` through cloud-files, CloudVolume's storage layer), each chunk in
  exactly one form; chunks are encoded and decoded by :mod:`lamina_precomputed.codecs`
  and sharded scales by :mod:`lamina_precomputed.sharding` (see
  :mod:`lamina_precomputed.scale_io`). Only an absent chunk reads as the background
  value; a damaged one raises an error naming its file.
* Reads return ``(C, X, Y, Z)``: a transposed *view* of a Fortran-ordered
  ``(X, Y, Z, C)`` array, no copy. Out-of-bounds regions and missing chunks read as
  the background value (``bounded=False, fill_missing=True``). Remote chunks are
  fetched on lamina's read threads (:data:`READ_THREADS`, shared by every backend of
  the process).
* Writes are checked before anything is stored (shape, channels, lossless dtype,
  alignment to the write grid — the chunk grid, or the shard grid of a sharded scale —
  unless ``enforce_chunk_aligned_writes=False``, dataset bounds). A write reaching
  outside the bounds is refused unless ``cv_kwargs={"autocrop": True}`` (then cropped);
  all-zero chunks are stored unless ``cv_kwargs={"delete_black_uploads": True}``.
  Writes above 16 MiB are cut at write-grid lines into slabs written by two threads.
* ``cv_kwargs`` are checked and defaulted by :mod:`lamina_precomputed.options`; a
  scale lamina cannot handle is refused by :mod:`lamina_precomputed.scales`.
* The backend pickles by spec (path, options, info); nothing is opened until used.
  ``mem://`` volumes live in one process, so they travel by value: the pickle carries
  their objects.
"""

from __future__ import annotations

import copy
import functools
import itertools
import os
import shutil
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal, Unpack

import numpy as np
import numpy.typing as npt

from lamina.backend import Capabilities
from lamina.concurrency import run_all, shared_pool
from lamina.errors import UnknownResolutionError
from lamina.volumetric.backend import CHANGE_KEYS, VolumetricBackend, VolumetricChanges
from lamina.volumetric.data import fill_value
from lamina.volumetric.geometry import RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina_precomputed.description import describe_volume
from lamina_precomputed.engine import (
    EngineName,
    check_engine,
    choose_engine,
    choose_scale_engine,
    tensorstore_obstacles,
)
from lamina_precomputed.info import (
    InfoSpec,
    added_scales,
    change_geometry,
    normalize_path,
    read_info,
    scale_resolution,
    update_info,
)
from lamina_precomputed.options import (
    DEFAULT_CV_KWARGS,
    cache_control,
    changed_options,
    check_cv_kwargs,
    compression_for,
    disk_cache_root,
)
from lamina_precomputed.scale_io import ChunkCache, IOOptions, ScaleIO, _cuts
from lamina_precomputed.scales import StoredScale, check_scale, check_scales, check_shards_stay
from lamina_precomputed.storage import FileStore, mem_restore, mem_snapshot
from lamina_precomputed.tensorstore_io import TensorStoreScaleIO

__all__ = ["DEFAULT_CV_KWARGS", "READ_THREADS", "CVBackend"]

#: Threads fetching the chunks of remote reads (the pool ``"cv-read"`` of
#: :mod:`lamina.concurrency`, shared by every backend in a process): enough that a layer
#: set's or range map's concurrent reads (4 members of 8 chunks) go out in one wave
#: rather than two.
READ_THREADS = 64
#: Writes above this many bytes are cut into slabs written by two threads.
_SPLIT_BYTES = 16 << 20
#: About this much data per slab.
_SLAB_BYTES = 16 << 20


class CVBackend(VolumetricBackend):
    """A precomputed volume at ``path`` (local path, ``file://``, ``gs://``, ``s3://``,
    ``mem://``, optionally behind ``precomputed://``).

    Args:
        path: where the volume is.
        cv_kwargs: CloudVolume's options, over lamina's defaults
            (:data:`DEFAULT_CV_KWARGS`): ``bounded``, ``fill_missing``, ``cache`` (the disk
            cache: ``True`` or its directory), ``lru_bytes``, ``compress``,
            ``compress_level``, ``delete_black_uploads``, ``non_aligned_writes``,
            ``overwrite_partial_chunks``, ``autocrop``, ``background_color``,
            ``cdn_cache``, ``secrets``, ``use_https``; a few more are accepted without
            effect; ``mip``, ``info`` and unknown keys are refused.
        info_spec: the info to create or extend (an :class:`InfoSpec` or an info dict);
            ``None`` uses the info found at ``path``.
        info_overwrite: allow changing existing scales and top-level fields.
        info_keep_existing_scales: keep the scales already in the info.
        cache_bytes_limit: bytes of decoded chunks kept in memory (``lru_bytes``); 0 by
            default.
        engine: ``"auto"``, ``"tensorstore"`` or ``"cloudvolume"`` (see
            :mod:`lamina_precomputed.engine`); default ``None``:
            ``$LAMINA_PRECOMPUTED_ENGINE``, else ``"auto"``.
    """

    supported_changes: ClassVar[frozenset[str]] = CHANGE_KEYS
    #: reads are transposed views of Fortran-ordered (X, Y, Z, C) arrays, as chunks are stored
    memory_order: ClassVar[Literal["C", "F"]] = "F"

    def __init__(
        self,
        path: str,
        cv_kwargs: Mapping[str, Any] | None = None,
        info_spec: InfoSpec | Mapping[str, Any] | None = None,
        info_overwrite: bool = False,
        info_keep_existing_scales: bool = True,
        cache_bytes_limit: int | None = None,
        engine: str | None = None,
    ) -> None:
        engine = check_engine(engine)
        kwargs = check_cv_kwargs(cv_kwargs)
        if cache_bytes_limit is not None:
            if int(cache_bytes_limit) < 0:
                raise ValueError(f"cache_bytes_limit must be >= 0; got {cache_bytes_limit}")
            kwargs["lru_bytes"] = int(cache_bytes_limit)
        cloudpath = normalize_path(path)
        # an engine that cannot be honoured is refused before any info is written
        choose_engine(engine, cloudpath, tensorstore_obstacles(cloudpath, kwargs))
        if info_spec is None:
            info = read_info(cloudpath)
            check_scales(cloudpath, info, every=False)
        else:
            new = info_spec.make_info() if isinstance(info_spec, InfoSpec) else dict(info_spec)
            check_scales(cloudpath, new, every=True)  # refused before anything is written
            info, _ = update_info(
                cloudpath,
                new,
                overwrite=info_overwrite,
                keep_existing_scales=info_keep_existing_scales,
            )
        self._setup(cloudpath, kwargs, info, engine)

    @classmethod
    def _from_parts(
        cls, path: str, kwargs: dict[str, Any], info: dict[str, Any], engine: str
    ) -> CVBackend:
        """A backend from resolved parts: no storage access at all."""
        backend = cls.__new__(cls)
        backend._setup(path, kwargs, info, engine)
        return backend

    def _setup(self, path: str, kwargs: dict[str, Any], info: dict[str, Any], engine: str) -> None:
        self._path = path
        self._requested_engine = engine
        self._volume_engine = choose_engine(engine, path, tensorstore_obstacles(path, kwargs))
        self._kwargs = kwargs
        self._info = info
        scales: dict[Vec3D[float], dict[str, Any]] = {}
        for scale in info["scales"]:
            scales.setdefault(scale_resolution(scale), scale)
        self._scales = scales
        self._resolutions = tuple(sorted(scales, key=lambda r: (r[0] * r[1] * r[2], tuple(r))))
        self._dtype: np.dtype[Any] = np.dtype(info["data_type"])
        self._num_channels = int(info["num_channels"])
        self._capabilities = Capabilities(
            shared_across_processes=not path.startswith("mem://"),  # mem:// lives in-process
            non_aligned_writes=True,
        )
        self._lock = threading.Lock()
        self._ios: dict[Vec3D[float], ScaleIO | TensorStoreScaleIO] = {}
        self._geometries: dict[Vec3D[float], StoredScale] = {}
        self._memory_cache: ChunkCache | None = None
        self._store_obj: FileStore | None = None

    # -- pickling by spec ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "path": self._path,
            "kwargs": self._kwargs,
            "info": self._info,
            "engine": self._requested_engine,
        }
        if self._path.startswith("mem://"):
            state["objects"] = mem_snapshot(self._path)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "objects" in state:
            mem_restore(state["path"], state["objects"])
        self._setup(state["path"], state["kwargs"], state["info"], state.get("engine", "auto"))

    def __repr__(self) -> str:
        return f"CVBackend({self._path!r}, engine={self._volume_engine!r})"

    # -- description ---------------------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return self._capabilities

    @property
    def name(self) -> str:
        return self._path

    @property
    def path(self) -> str:
        """The volume's cloud path (local paths as ``file://`` URLs)."""
        return self._path

    @property
    def engine(self) -> EngineName:
        """The engine reading and writing this volume: ``"tensorstore"`` or
        ``"cloudvolume"`` (see :mod:`lamina_precomputed.engine`). A scale TensorStore
        cannot serve exactly uses the CloudVolume engine even when this says
        ``"tensorstore"`` (:meth:`engine_of`)."""
        return self._volume_engine

    @property
    def requested_engine(self) -> str:
        """The ``engine`` asked for: ``"auto"``, ``"tensorstore"``, ``"cloudvolume"``, or
        ``$LAMINA_PRECOMPUTED_ENGINE=tensorstore``'s preference
        (:data:`~lamina_precomputed.engine.PREFER_TENSORSTORE`)."""
        return self._requested_engine

    def engine_of(self, resolution: RawVec3D) -> EngineName:
        """The engine of the scale at ``resolution``."""
        return self._io(resolution).engine  # type: ignore[return-value]

    @property
    def info(self) -> dict[str, Any]:
        """A copy of the info this backend uses."""
        return copy.deepcopy(self._info)

    @property
    def cv_kwargs(self) -> dict[str, Any]:
        """The CloudVolume options in force (lamina's defaults plus ``cv_kwargs``)."""
        return dict(self._kwargs)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._dtype

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def resolutions(self) -> tuple[Vec3D[float], ...]:
        return self._resolutions

    @property
    def volume_type(self) -> Literal["image", "segmentation"] | None:
        """The info's ``type``: the flows downsample ``segmentation`` volumes by the most
        frequent label, never by block means (which would invent labels)."""
        kind = self._info.get("type")
        if kind == "image" or kind == "segmentation":
            return kind  # type: ignore[no-any-return]
        return None

    @property
    def is_local(self) -> bool:
        return self._path.startswith(("file://", "mem://"))

    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        return not self._kwargs["non_aligned_writes"]

    @property
    def overwrite_partial_chunks(self) -> bool:
        return bool(self._kwargs["overwrite_partial_chunks"])

    @property
    def allow_cache(self) -> bool:
        return bool(self._kwargs["cache"])

    @property
    def use_compression(self) -> bool:
        compress = self._kwargs["compress"]
        return compress is None or bool(compress)  # None is CloudVolume's default: gzip

    @property
    def cache_bytes_limit(self) -> int:
        """Bytes of decoded chunks kept in memory (``lru_bytes``)."""
        return int(self._kwargs["lru_bytes"])

    def _scale(self, resolution: RawVec3D) -> dict[str, Any]:
        res = resolution if type(resolution) is Vec3D else Vec3D.from_seq(resolution).float()
        scale = self._scales.get(res)
        if scale is None:
            raise self._unknown(res)
        return scale

    def _unknown(self, res: Any) -> UnknownResolutionError:
        shown = res.pformat() if isinstance(res, Vec3D) else str(res)
        known = ", ".join(r.pformat() for r in self._resolutions)
        return UnknownResolutionError(
            f"{self._path} has no scale at resolution {shown} nm; its resolutions are: {known}"
        )

    def _geometry(self, resolution: RawVec3D) -> StoredScale:
        res = resolution if type(resolution) is Vec3D else Vec3D.from_seq(resolution).float()
        geometry = self._geometries.get(res)
        if geometry is None:
            geometry = self._geometries[res] = StoredScale.of(self._scale(res))
        return geometry

    def get_voxel_offset(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._geometry(resolution).offset

    def get_chunk_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._geometry(resolution).chunk

    def get_dataset_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._geometry(resolution).size

    def get_write_grid_size(self, resolution: RawVec3D) -> Vec3D[int]:
        """The chunk size, or for a sharded scale the box one shard covers (the whole
        dataset when shards are not boxes): see :mod:`lamina_precomputed.sharding`."""
        geometry = self._geometry(resolution)
        return geometry.chunk if geometry.sharded is None else geometry.sharded.write_grid_size

    def describe_write_grid(self, resolution: RawVec3D) -> str:
        sharded = self._geometry(resolution).sharded
        if sharded is None:
            return super().describe_write_grid(resolution)
        return sharded.describe_write_grid()

    def describe(self) -> dict[str, Any]:
        """What ``lamina info`` shows: type, dtype, channels, engine and every scale
        (see :func:`lamina_precomputed.description.describe_volume`)."""
        return describe_volume(self, self._info)

    def pformat(self) -> str:
        encodings = sorted({str(s.get("encoding")) for s in self._info["scales"]})
        lines = [
            super().pformat(),
            f"  encoding: {', '.join(encodings)}",
            f"  engine: {self._volume_engine}",
        ]
        for res in self._resolutions:
            sharded = self._geometry(res).sharded
            if sharded is not None:
                lines.append(f"  {res.pformat()} nm: {sharded.describe_write_grid()}")
        return "\n".join(lines)

    # -- the scales' IO --------------------------------------------------------------------
    def _io(self, resolution: RawVec3D) -> ScaleIO | TensorStoreScaleIO:
        res = resolution if type(resolution) is Vec3D else Vec3D.from_seq(resolution).float()
        io = self._ios.get(res)
        if io is None:
            scale = self._scale(res)
            with self._lock:
                io = self._ios.get(res)
                if io is None:
                    io = self._ios[res] = self._make_io(scale)
        return io

    def _store(self) -> FileStore:
        if self._store_obj is None:
            self._store_obj = FileStore(
                self._path,
                secrets=self._kwargs.get("secrets"),
                use_https=bool(self._kwargs.get("use_https", False)),
            )
        return self._store_obj

    def _make_io(self, scale: dict[str, Any]) -> ScaleIO | TensorStoreScaleIO:
        check_scale(self._path, self._info, scale)
        engine = choose_scale_engine(
            self._requested_engine, self._volume_engine, self._path, self._info, scale, self._kwargs
        )
        if engine == "tensorstore":
            return TensorStoreScaleIO(
                self._path,
                self._info,
                scale,
                cache_bytes=int(self._kwargs["lru_bytes"]),
                delete_black_uploads=bool(self._kwargs["delete_black_uploads"]),
                fallback=functools.partial(self._cloudvolume_io, scale),
            )
        return self._cloudvolume_io(scale)

    def _cloudvolume_io(self, scale: dict[str, Any]) -> ScaleIO:
        kwargs = self._kwargs
        if kwargs["lru_bytes"] and self._memory_cache is None:
            self._memory_cache = ChunkCache(kwargs["lru_bytes"], self._path)
        return ScaleIO(
            self._store(),
            scale,
            self._dtype,
            self._num_channels,
            IOOptions(
                fill_missing=bool(kwargs["fill_missing"]),
                background=kwargs.get("background_color", 0),
                compress=compression_for(kwargs["compress"], str(scale["encoding"])),
                compress_level=kwargs.get("compress_level"),
                delete_black_uploads=bool(kwargs["delete_black_uploads"]),
                cache_control=cache_control(kwargs.get("cdn_cache")),
            ),
            memory_cache=self._memory_cache,
            disk_cache=self._disk_cache(),
            pool=_read_pool,
        )

    def _disk_cache(self) -> FileStore | None:
        if not self._kwargs["cache"] or self.is_local:
            return None
        return FileStore("file://" + self._disk_cache_dir())

    def _disk_cache_dir(self) -> str:
        protocol, _, rest = self._path.partition("://")
        return os.path.join(disk_cache_root(self._kwargs["cache"]), protocol, rest)

    def clear_cache(self) -> None:
        """Empty the in-memory chunk cache."""
        if self._memory_cache is not None:
            self._memory_cache.clear()

    def clear_disk_cache(self) -> None:
        """Delete the disk cache of this volume (when ``allow_cache``)."""
        if self._kwargs["cache"] and not self.is_local:
            shutil.rmtree(self._disk_cache_dir(), ignore_errors=True)

    def warm_up(self) -> None:
        """Import cloud-files (about a second) and the chunk IO: the flows call this
        before forking workers, which then inherit them."""
        import cloudfiles  # noqa: F401

        import lamina_precomputed.scale_io  # noqa: F401

    # -- IO ------------------------------------------------------------------------------------
    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        io = self._ios.get(idx.resolution) or self._io(idx.resolution)
        shape = idx.shape
        if not (shape[0] and shape[1] and shape[2]):
            return np.zeros((self._num_channels, *shape), dtype=self._dtype)
        self._check_bounded_read(idx)
        return io.read(tuple(idx.start), tuple(idx.stop)).transpose(3, 0, 1, 2)

    def _check_bounded_read(self, idx: VolumetricIndex) -> None:
        if self._kwargs["bounded"] and not self.is_within_bounds(idx):
            raise ValueError(
                f"the read of {idx.pformat()} at {idx.resolution.pformat()} nm reaches outside "
                f"the bounds of {self._path} ({self.get_bounds(idx.resolution).pformat()}) "
                "and cv_kwargs={'bounded': True}"
            )

    def read_into(self, idx: VolumetricIndex, out: npt.NDArray[Any]) -> None:
        """:meth:`read`, decoded straight into ``out`` (``(C, X, Y, Z)``; fastest as a
        transposed view of a Fortran-ordered array, :attr:`memory_order`)."""
        self.check_read_target(idx, out)
        if not all(idx.shape):
            return
        self._check_bounded_read(idx)
        io = self._ios.get(idx.resolution) or self._io(idx.resolution)
        io.read_whole(out.transpose(1, 2, 3, 0), tuple(idx.start), tuple(idx.stop))

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        io = self._io(idx.resolution)
        array = self.check_write(idx, data)
        start, stop = idx.start, idx.stop
        if not (start >= io.offset and stop <= io.end):
            if not self._kwargs["autocrop"]:
                self.assert_idx_within_bounds(
                    idx,
                    "Write inside the bounds, enlarge them with backend.with_changes("
                    "voxel_offset_res=..., dataset_size_res=...), or opt into cropping "
                    "with cv_kwargs={'autocrop': True}.",
                )
            lo = [max(start[d], io.offset[d]) for d in range(3)]
            hi = [min(stop[d], io.end[d]) for d in range(3)]
            if any(hi[d] <= lo[d] for d in range(3)):
                return  # entirely outside: cropping leaves nothing
            array = array[
                :,
                lo[0] - start[0] : hi[0] - start[0],
                lo[1] - start[1] : hi[1] - start[1],
                lo[2] - start[2] : hi[2] - start[2],
            ]
            start = Vec3D(*lo)
        if array.size == 0:
            return
        value = fill_value(array)
        if value is not None:  # a scalar written as a broadcast view
            array = np.broadcast_to(np.asarray(value, self._dtype), array.shape)
        self._write_slabs(io, array.transpose(1, 2, 3, 0), tuple(start))

    def _write_slabs(
        self, io: ScaleIO | TensorStoreScaleIO, xyzc: npt.NDArray[Any], start: tuple[int, ...]
    ) -> None:
        """Write ``xyzc`` at ``start``; above :data:`_SPLIT_BYTES` and from the main
        thread, as slabs cut at write-grid lines that two threads encode and store at
        once (no two touch one chunk or shard). Other threads (a threads executor's
        workers, already running side by side) write in their own thread."""
        partial = self.overwrite_partial_chunks
        if (
            io.engine == "tensorstore"  # it encodes and stores on its own threads
            or xyzc.nbytes <= _SPLIT_BYTES
            or _workers() < 2
            or threading.current_thread() is not threading.main_thread()
        ):  # a worker thread (the flows' threads executor) writes on its own
            io.write(xyzc, start, partial)
            return
        cell = io.write_grid_size()
        shape = xyzc.shape[:3]
        axis = max(range(3), key=lambda d: -(-shape[d] // cell[d]))  # the most cells
        per_voxel = xyzc.nbytes // shape[axis]
        width = max(1, _SLAB_BYTES // max(1, per_voxel * cell[axis])) * cell[axis]
        cuts = _cuts(start[axis], start[axis] + shape[axis], int(io.offset[axis]), width)
        tasks = []
        for lo, hi in itertools.pairwise(cuts):
            index = [slice(None)] * 4
            index[axis] = slice(lo - start[axis], hi - start[axis])
            origin = list(start)
            origin[axis] = lo
            tasks.append(functools.partial(io.write, xyzc[tuple(index)], tuple(origin), partial))
        run_all(tasks, shared_pool("cv-write", _workers()))  # every slab ends before an error

    # -- changes -------------------------------------------------------------------------------
    def with_changes(self, **changes: Unpack[VolumetricChanges]) -> CVBackend:  # type: ignore[override]
        """A copy with options changed; every key of ``VolumetricChanges`` is honoured.

        ``name`` addresses another path (the current info, with any geometry changes,
        is written there, merged with what is there); ``voxel_offset_res``,
        ``chunk_size_res`` and ``dataset_size_res`` change every scale's geometry and
        write the info; the other keys change options only and touch no storage.
        """
        self.check_changes(dict(changes))
        kwargs = changed_options(self._kwargs, changes)
        info = self._info
        geometry = {
            k: changes[k]
            for k in ("voxel_offset_res", "chunk_size_res", "dataset_size_res")
            if k in changes
        }
        if geometry:
            info = change_geometry(info, **geometry)
            check_shards_stay(self._path, self._info, info)
        path = self._path
        if "name" in changes:
            path = normalize_path(changes["name"])
        if path != self._path or geometry:
            info, _ = update_info(path, info, overwrite=True, keep_existing_scales=True)
        return CVBackend._from_parts(path, kwargs, info, self._requested_engine)

    def add_resolutions(
        self, resolutions: Iterable[RawVec3D], chunk_size: RawVec3D | None = None
    ) -> CVBackend:
        """This volume with ``resolutions`` added to its info (see
        ``VolumetricBackend.add_resolutions``): each new scale is the finest one's
        encoding and chunk size (or ``chunk_size``), unsharded, covering its bounds.
        Existing scales are never changed; the info is written once."""
        added = added_scales(self._info, resolutions, chunk_size)
        if not added:
            return self
        info = copy.deepcopy(self._info)
        info["scales"] = [*info["scales"], *added]
        info, _ = update_info(self._path, info, overwrite=False, keep_existing_scales=True)
        return CVBackend._from_parts(self._path, dict(self._kwargs), info, self._requested_engine)

    def delete(self) -> None:
        """Delete every object under the path, the info included."""
        from cloudfiles import CloudFiles

        self.clear_cache()
        files = CloudFiles(self._path)
        files.delete(list(files.list()))


# -- threads shared by every backend of a process -------------------------------------------
def _read_pool() -> ThreadPoolExecutor:
    """The threads of remote reads: :data:`READ_THREADS` of them."""
    return shared_pool("cv-read", READ_THREADS)


def _workers() -> int:
    """The threads of a large write: two, or one on a single CPU."""
    return min(2, os.cpu_count() or 1)
