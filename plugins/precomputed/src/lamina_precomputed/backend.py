"""``CVBackend``: a Neuroglancer precomputed volume read and written through CloudVolume.

* The index resolution picks the scale; a resolution the info does not list raises
  :class:`lamina.errors.UnknownResolutionError` naming the path and the resolutions.
* Reads return ``(C, X, Y, Z)``: a transposed *view* of a Fortran-ordered ``(X, Y, Z, C)``
  array, no copy (W34). Out-of-bounds regions and missing chunks read as zeros
  (``bounded=False, fill_missing=True``).
* A read of a remote (``s3://``, ``gs://``, ``http(s)://``) unsharded scale touching
  several chunks is cut at the chunk grid, and CloudVolume downloads each chunk on
  lamina's read threads (:data:`READ_THREADS`, shared by every backend of the process,
  started once) into one output array. Given a multi-chunk box, CloudVolume itself
  starts up to 20 threads per call, which poll its queue every 10 ms and are joined by
  polling: with 4 such reads at once on S3 that was about 1 ms of CPU per request more
  (half the context switches, a third of the system time) and, one read alone, some
  25 ms of latency per read. Local volumes, sharded scales, the in-memory
  (``lru_bytes``) and disk caches, progress bars and green threads keep CloudVolume's
  own single call.
* Writes are checked before anything is stored (shape, channels, lossless dtype, chunk
  alignment unless ``enforce_chunk_aligned_writes=False``, dataset bounds). CloudVolume
  gets an ``(X, Y, Z, C)`` Fortran-ordered array, the layout it writes fastest: free
  for x-fastest input, one conversion for C-ordered input. A write reaching outside
  the dataset bounds is refused unless ``cv_kwargs={"autocrop": True}`` (then cropped);
  all-zero chunks are stored unless ``cv_kwargs={"delete_black_uploads": True}`` (W27).
* CloudVolume handles are kept per (thread, scale), built from the info this backend
  holds (no info read per handle, per construction or per ``with_changes``: W35), and
  never mutated (W32). Caches are off and bounded unless asked for (W33).
* The backend pickles by spec (path, options, info); handles are reopened lazily in the
  process that unpickles it. ``mem://`` volumes live in one process, so they travel by
  value: the pickle carries their objects.
"""

from __future__ import annotations

import contextvars
import copy
import itertools
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Unpack

import numpy as np
import numpy.typing as npt

from lamina.backend import Capabilities
from lamina.errors import UnknownResolutionError
from lamina.volumetric.backend import CHANGE_KEYS, VolumetricBackend, VolumetricChanges
from lamina.volumetric.data import fill_value
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.scales import scale_geometry, sorted_resolutions
from lamina_precomputed.info import (
    InfoSpec,
    change_geometry,
    normalize_path,
    read_info,
    res_to_key,
    scale_resolution,
    update_info,
)

__all__ = ["DEFAULT_CV_KWARGS", "READ_THREADS", "CVBackend"]

#: Threads downloading the chunks of remote reads, shared by every backend in a process
#: (CloudVolume starts 20 per download call): enough that a layer set's or range map's
#: concurrent reads (4 members of 8 chunks) go out in one wave rather than two.
READ_THREADS = 64

#: lamina's defaults for CloudVolume's constructor; ``cv_kwargs`` override them.
DEFAULT_CV_KWARGS: Mapping[str, Any] = {
    "bounded": False,
    "fill_missing": True,
    "progress": False,
    "cache": False,
    "lru_bytes": 0,
    "compress": False,
    "delete_black_uploads": False,
    "non_aligned_writes": False,
    "overwrite_partial_chunks": False,
    "autocrop": False,
}
# Handled by lamina itself, never handed to CloudVolume.
_LAMINA_ONLY = frozenset({"autocrop"})
_REFUSED = {
    "mip": "the resolution comes from the index, not from cv_kwargs['mip']",
    "info": "the info comes from the path or from the info_* parameters",
    "provenance": "lamina does not read or write provenance files",
}


def _check_cv_kwargs(cv_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    given = dict(cv_kwargs or {})
    for key, why in _REFUSED.items():
        if key in given:
            raise ValueError(f"cv_kwargs must not contain {key!r}: {why}")
    kwargs = {**DEFAULT_CV_KWARGS, **given}
    if kwargs["lru_bytes"] is None:
        kwargs["lru_bytes"] = 0
    return kwargs


class _Local(threading.local):
    generation: int = -1
    handles: dict[int, Any]

    def __init__(self) -> None:
        self.handles = {}


class CVBackend(VolumetricBackend):
    """A precomputed volume at ``path`` (local path, ``file://``, ``gs://``, ``s3://``,
    ``mem://``, optionally behind ``precomputed://``).

    Args:
        path: where the volume is.
        cv_kwargs: keyword arguments for CloudVolume's constructor, over lamina's
            defaults (:data:`DEFAULT_CV_KWARGS`); ``mip`` is refused.
        info_spec: the info to create or extend (an :class:`InfoSpec` or an info dict);
            ``None`` uses the info found at ``path``.
        info_overwrite: allow changing existing scales and top-level fields.
        info_keep_existing_scales: keep the scales already in the info.
        cache_bytes_limit: size of CloudVolume's in-memory chunk cache per handle
            (``lru_bytes``); 0 by default.
    """

    supported_changes: ClassVar[frozenset[str]] = CHANGE_KEYS

    def __init__(
        self,
        path: str,
        cv_kwargs: Mapping[str, Any] | None = None,
        info_spec: InfoSpec | Mapping[str, Any] | None = None,
        info_overwrite: bool = False,
        info_keep_existing_scales: bool = True,
        cache_bytes_limit: int | None = None,
    ) -> None:
        kwargs = _check_cv_kwargs(cv_kwargs)
        if cache_bytes_limit is not None:
            kwargs["lru_bytes"] = int(cache_bytes_limit)
        cloudpath = normalize_path(path)
        if info_spec is None:
            info = read_info(cloudpath)
        else:
            new = info_spec.make_info() if isinstance(info_spec, InfoSpec) else dict(info_spec)
            info, _ = update_info(
                cloudpath,
                new,
                overwrite=info_overwrite,
                keep_existing_scales=info_keep_existing_scales,
            )
        self._setup(cloudpath, kwargs, info)

    @classmethod
    def _from_parts(cls, path: str, kwargs: dict[str, Any], info: dict[str, Any]) -> CVBackend:
        """A backend from resolved parts: no storage access at all."""
        backend = cls.__new__(cls)
        backend._setup(path, kwargs, info)
        return backend

    def _setup(self, path: str, kwargs: dict[str, Any], info: dict[str, Any]) -> None:
        self._path = path
        self._kwargs = kwargs
        self._info = info
        mips: dict[Vec3D[float], int] = {}
        geometry: dict[Vec3D[float], tuple[Vec3D[int], Vec3D[int], Vec3D[int]]] = {}
        for i, scale in enumerate(info["scales"]):
            res = scale_resolution(scale)
            if res in mips:
                continue
            mips[res] = i
            geometry[res] = (
                Vec3D.from_seq(scale["voxel_offset"], "voxel_offset").int(),
                Vec3D.from_seq(scale["chunk_sizes"][0], "chunk size").int(),
                Vec3D.from_seq(scale["size"], "size").int(),
            )
        self._mips = mips
        self._geometry = geometry
        remote = not path.startswith(("file://", "mem://"))
        own_threads = not (
            kwargs.get("lru_bytes")
            or kwargs.get("cache")
            or kwargs.get("progress")
            or kwargs.get("green_threads")
        )
        # The scales whose multi-chunk reads lamina's read threads split (see the module).
        self._split_mips = frozenset(
            mip
            for mip in mips.values()
            if remote and own_threads and not info["scales"][mip].get("sharding")
        )
        self._background = kwargs.get("background_color", 0)
        self._resolutions = tuple(sorted(mips, key=lambda r: (r[0] * r[1] * r[2], tuple(r))))
        self._dtype: np.dtype[Any] = np.dtype(info["data_type"])
        self._num_channels = int(info["num_channels"])
        self._capabilities = Capabilities(
            shared_across_processes=not path.startswith("mem://"),  # mem:// lives in-process
            non_aligned_writes=True,
        )
        self._local = _Local()
        self._generation = 0
        self._all_handles: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    # -- pickling by spec ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = {"path": self._path, "kwargs": self._kwargs, "info": self._info}
        if self._path.startswith("mem://"):
            state["objects"] = _mem_snapshot(self._path)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "objects" in state:
            _mem_restore(state["path"], state["objects"])
        self._setup(state["path"], state["kwargs"], state["info"])

    def __repr__(self) -> str:
        return f"CVBackend({self._path!r})"

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
        """Bytes of CloudVolume's in-memory chunk cache per handle (``lru_bytes``)."""
        return int(self._kwargs["lru_bytes"])

    def _scale(self, resolution: RawVec3D) -> tuple[Vec3D[int], Vec3D[int], Vec3D[int]]:
        res = resolution if type(resolution) is Vec3D else Vec3D.from_seq(resolution).float()
        geo = self._geometry.get(res)
        if geo is None:
            raise self._unknown(res)
        return geo

    def _unknown(self, res: Any) -> UnknownResolutionError:
        shown = res.pformat() if isinstance(res, Vec3D) else str(res)
        known = ", ".join(r.pformat() for r in self._resolutions)
        return UnknownResolutionError(
            f"{self._path} has no scale at resolution {shown} nm; its resolutions are: {known}"
        )

    def get_voxel_offset(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._scale(resolution)[0]

    def get_chunk_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._scale(resolution)[1]

    def get_dataset_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._scale(resolution)[2]

    def describe(self) -> dict[str, Any]:
        """What ``lamina info`` shows: type, dtype, channels and every scale."""
        scales = []
        for res in self._resolutions:
            scale = self._info["scales"][self._mips[res]]
            offset, chunk, size = self._geometry[res]
            scales.append(
                {
                    "key": scale.get("key"),
                    "resolution": list(res),
                    "voxel_offset": list(offset),
                    "size": list(size),
                    "chunk_size": list(chunk),
                    "bounds_nm": [list(offset * res), list((offset + size) * res)],
                    "encoding": scale.get("encoding"),
                    "sharded": bool(scale.get("sharding")),
                }
            )
        return {
            "path": self._path,
            "format": "neuroglancer precomputed",
            "type": self._info.get("type"),
            "data_type": str(self._dtype),
            "num_channels": self._num_channels,
            "scales": scales,
        }

    def pformat(self) -> str:
        encodings = sorted({str(s.get("encoding")) for s in self._info["scales"]})
        return super().pformat() + f"\n  encoding: {', '.join(encodings)}"

    # -- handles -------------------------------------------------------------------------------
    def _handle(self, mip: int) -> Any:
        local = self._local
        if local.generation != self._generation:
            local.handles = {}
            local.generation = self._generation
        handle = local.handles.get(mip)
        if handle is None:
            handle = local.handles[mip] = self._open(mip)
        return handle

    def _open(self, mip: int) -> Any:
        from cloudvolume import CloudVolume

        kwargs = {k: v for k, v in self._kwargs.items() if k not in _LAMINA_ONLY}
        # CloudVolume's shell-chunk mode only exists for non-aligned writes.
        kwargs["overwrite_partial_chunks"] = bool(
            kwargs["overwrite_partial_chunks"] and kwargs["non_aligned_writes"]
        )
        handle = CloudVolume(
            self._path, mip=mip, info=copy.deepcopy(self._info), provenance={}, **kwargs
        )
        with self._lock:
            self._all_handles.add(handle)
        return handle

    def clear_cache(self) -> None:
        """Empty the in-memory chunk cache of every handle and drop the handles."""
        with self._lock:
            for handle in list(self._all_handles):
                handle.image.lru.clear()
            self._generation += 1

    def clear_disk_cache(self) -> None:
        """Delete CloudVolume's on-disk cache of this volume (when ``allow_cache``)."""
        if self._resolutions:
            self._handle(self._mips[self._resolutions[0]]).cache.flush()

    # -- IO ------------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Import CloudVolume (about a second, once per process): the flows call this
        before forking workers, which then inherit it."""
        import cloudvolume.datasource.precomputed  # noqa: F401

    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        mip = self._mips.get(idx.resolution)
        if mip is None:
            raise self._unknown(idx.resolution)
        shape = idx.shape
        if not (shape[0] and shape[1] and shape[2]):
            return np.zeros((self._num_channels, *shape), dtype=self._dtype)
        from cloudvolume.lib import Bbox

        handle = self._handle(mip)
        if mip in self._split_mips:
            split = self._chunk_boxes(idx)
            if split is not None:
                return self._read_chunks(handle, mip, idx, *split)
        cutout = handle.image.download(Bbox(idx.start, idx.stop), mip)
        # (X, Y, Z, C) Fortran order -> (C, X, Y, Z) view, x fastest; no copy.
        return np.asarray(cutout).transpose(3, 0, 1, 2)

    def _chunk_boxes(self, idx: VolumetricIndex) -> tuple[list[_Box], bool] | None:
        """The stored part of ``idx`` cut at the chunk grid, and whether ``idx`` lies
        inside the bounds; ``None`` when CloudVolume's single call does as well (at
        most one chunk, nothing stored there, or ``bounded`` refusing the box)."""
        offset, chunk, size = self._geometry[idx.resolution]
        start, stop = idx.start, idx.stop
        lo = [max(start[d], offset[d]) for d in range(3)]
        hi = [min(stop[d], offset[d] + size[d]) for d in range(3)]
        if any(hi[d] <= lo[d] for d in range(3)):
            return None  # nothing stored: CloudVolume fills it without a request
        cuts = [_cuts(lo[d], hi[d], offset[d], chunk[d]) for d in range(3)]
        if all(len(c) == 2 for c in cuts):
            return None  # one chunk: CloudVolume downloads it in the calling thread
        inside = all(lo[d] == start[d] and hi[d] == stop[d] for d in range(3))
        if not inside and self._kwargs["bounded"]:
            return None  # CloudVolume raises its out-of-bounds error
        return _grid_boxes(cuts), inside

    def _read_chunks(
        self, handle: Any, mip: int, idx: VolumetricIndex, boxes: list[_Box], inside: bool
    ) -> npt.NDArray[Any]:
        """Download ``boxes`` (one chunk each) with CloudVolume on the read threads and
        the calling thread, into one Fortran-ordered ``(X, Y, Z, C)`` array."""
        from cloudvolume.lib import Bbox

        start = idx.start
        shape = (*idx.shape, self._num_channels)
        if inside:
            out = np.empty(shape, self._dtype, order="F")
        else:  # what CloudVolume fills outside the bounds with
            out = np.full(shape, self._background, self._dtype, order="F")

        def fetch(box: _Box) -> None:
            lo, hi = box
            cutout = handle.image.download(Bbox(lo, hi), mip)
            out[_slices(lo, hi, start)] = np.asarray(cutout)

        pool = _executor("read")
        futures = [pool.submit(contextvars.copy_context().run, fetch, box) for box in boxes[1:]]
        errors: list[BaseException | None] = []
        try:
            fetch(boxes[0])
        except Exception as exc:
            errors.append(exc)
        # Every download finishes before anything is returned or raised: none writes
        # into ``out`` afterwards.
        errors.extend(f.exception() for f in futures)
        _raise_first(errors)
        return out.transpose(3, 0, 1, 2)

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        mip = self._mips.get(idx.resolution)
        if mip is None:
            raise self._unknown(idx.resolution)
        array = self.check_write(idx, data)
        offset, _, size = self._geometry[idx.resolution]
        end = offset + size
        start, stop = idx.start, idx.stop
        if not (start >= offset and stop <= end):
            if not self._kwargs["autocrop"]:
                self.assert_idx_within_bounds(
                    idx,
                    "Write inside the bounds, enlarge them with backend.with_changes("
                    "voxel_offset_res=..., dataset_size_res=...), or opt into cropping "
                    "with cv_kwargs={'autocrop': True}.",
                )
            lo = [max(start[d], offset[d]) for d in range(3)]
            hi = [min(stop[d], end[d]) for d in range(3)]
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
        self._upload(mip, array, start)

    def _upload(self, mip: int, array: npt.NDArray[Any], start: Vec3D[int]) -> None:
        """Hand ``(C, X, Y, Z)`` data to CloudVolume as Fortran-ordered ``(X, Y, Z, C)``.

        Large writes are cut at chunk-grid lines into pieces that two threads convert
        and upload at once, each with its own handle: Fortran-ordered input in z slabs
        (contiguous, handed over as they are), anything else in blocks of a few MiB
        converted just before their upload. No full-size copy is made.
        """
        value = fill_value(array)
        xyzc = array.transpose(1, 2, 3, 0)
        fortran = value is None and xyzc.flags.f_contiguous
        parallel = self._kwargs.get("parallel", 1)
        if xyzc.nbytes <= _SPLIT_BYTES or _workers() < 2 or parallel not in (1, None, False):
            self._upload_part(mip, xyzc, value, tuple(start))
            return
        offset, chunk, _ = self._geometry[self._resolution_of(mip)]
        shape = xyzc.shape[:3]
        voxel_bytes = xyzc.itemsize * xyzc.shape[3]
        if fortran:  # z slabs of a Fortran array are contiguous
            slab = shape[0] * shape[1] * voxel_bytes
            widths = [shape[0], shape[1], max(chunk[2], _SLAB_BYTES // slab // chunk[2] * chunk[2])]
        else:  # blocks: a whole number of chunks, growing in z, then y, then x
            widths = list(chunk)
            for d in (2, 1, 0):
                while (
                    widths[d] < shape[d]
                    and 2 * widths[0] * widths[1] * widths[2] * voxel_bytes <= _BLOCK_BYTES
                ):
                    widths[d] *= 2
        cuts = [
            _cuts(start[d], start[d] + shape[d], offset[d], widths[d])
            if widths[d] < shape[d]
            else [start[d], start[d] + shape[d]]
            for d in range(3)
        ]
        futures = [
            _executor("write").submit(
                self._upload_part, mip, xyzc[_slices(lo, hi, start)], value, lo
            )
            for lo, hi in _grid_boxes(cuts)
        ]
        _raise_first([f.exception() for f in futures])  # every upload finishes first

    def _upload_part(self, mip: int, xyzc: Any, value: Any, offset: tuple[int, ...]) -> None:
        if self._path.startswith("file://"):
            _make_scale_dir(self._path, self._info["scales"][mip]["key"])
        if value is not None:
            xyzc = np.full(xyzc.shape, value, self._dtype, order="F")
        elif not xyzc.flags.f_contiguous:
            xyzc = _to_fortran(xyzc)  # CloudVolume writes ~2.5x faster from F order
        self._handle(mip).image.upload(xyzc, offset, mip)

    def _resolution_of(self, mip: int) -> Vec3D[float]:
        return scale_resolution(self._info["scales"][mip])

    def _chunk(self, mip: int) -> Vec3D[int]:
        return self._geometry[self._resolution_of(mip)][1]

    # -- changes -------------------------------------------------------------------------------
    def with_changes(self, **changes: Unpack[VolumetricChanges]) -> CVBackend:  # type: ignore[override]
        """A copy with options changed; every key of ``VolumetricChanges`` is honoured.

        ``name`` addresses another path (the current info, with any geometry changes,
        is written there, merged with what is there); ``voxel_offset_res``,
        ``chunk_size_res`` and ``dataset_size_res`` change every scale's geometry and
        write the info; the other keys change options only and touch no storage.
        """
        self.check_changes(dict(changes))
        kwargs = dict(self._kwargs)
        if "enforce_chunk_aligned_writes" in changes:
            kwargs["non_aligned_writes"] = not bool(changes["enforce_chunk_aligned_writes"])
        if "overwrite_partial_chunks" in changes:
            kwargs["overwrite_partial_chunks"] = bool(changes["overwrite_partial_chunks"])
        if "allow_cache" in changes:
            wanted = bool(changes["allow_cache"])
            kwargs["cache"] = (kwargs["cache"] or True) if wanted else False
        if "use_compression" in changes:
            kwargs["compress"] = "gzip" if changes["use_compression"] else False
        if "cache_bytes_limit" in changes:
            limit = changes["cache_bytes_limit"]
            kwargs["lru_bytes"] = 0 if limit is None else int(limit)
            if kwargs["lru_bytes"] < 0:
                raise ValueError(f"cache_bytes_limit must be >= 0; got {limit}")
        info = self._info
        geometry = {
            k: changes[k]
            for k in ("voxel_offset_res", "chunk_size_res", "dataset_size_res")
            if k in changes
        }
        if geometry:
            info = change_geometry(info, **geometry)
        path = self._path
        if "name" in changes:
            path = normalize_path(changes["name"])
        if path != self._path or geometry:
            info, _ = update_info(path, info, overwrite=True, keep_existing_scales=True)
        return CVBackend._from_parts(path, kwargs, info)

    def add_resolutions(
        self, resolutions: Iterable[RawVec3D], chunk_size: RawVec3D | None = None
    ) -> CVBackend:
        """This volume with ``resolutions`` added to its info (see
        ``VolumetricBackend.add_resolutions``): each new scale is the finest one's
        encoding and chunk size (or ``chunk_size``, unsharded), covering its bounds.
        Existing scales are never changed; the info is written once."""
        finest = self._info["scales"][self._mips[self._resolutions[0]]]
        res0 = scale_resolution(finest)
        offset = Vec3D.from_seq(finest["voxel_offset"], "voxel_offset")
        bbox = BBox3D.from_coords(offset, offset + Vec3D.from_seq(finest["size"]), res0)
        chunk = finest["chunk_sizes"][0] if chunk_size is None else list(chunk_size)
        added = []
        for res in sorted_resolutions(resolutions):
            if res in self._mips:
                continue
            geo = scale_geometry(bbox, res, chunk)
            scale = {
                k: copy.deepcopy(v)
                for k, v in finest.items()
                if k not in ("key", "sharding", "voxel_offset", "size", "chunk_sizes")
            }
            scale.update(
                key=res_to_key(res),
                resolution=[int(v) if float(v).is_integer() else v for v in res],
                chunk_sizes=[list(geo.chunk_size)],
                voxel_offset=list(geo.voxel_offset),
                size=list(geo.dataset_size),
            )
            added.append(scale)
        if not added:
            return self
        info = copy.deepcopy(self._info)
        info["scales"] = [*info["scales"], *added]
        info, _ = update_info(self._path, info, overwrite=False, keep_existing_scales=True)
        return CVBackend._from_parts(self._path, dict(self._kwargs), info)

    def delete(self) -> None:
        """Delete every object under the path, the info included."""
        from cloudfiles import CloudFiles

        self.clear_cache()
        files = CloudFiles(self._path)
        files.delete(list(files.list()))


# -- the layout CloudVolume writes fastest ------------------------------------------------
_SPLIT_BYTES = 16 << 20  # writes above this are cut into pieces written by two threads
_SLAB_BYTES = 16 << 20  # z slabs of Fortran-ordered input
_BLOCK_BYTES = 4 << 20  # blocks of other input, converted just before their upload
_TILE = (16, 32, 256)
_pool_lock = threading.Lock()
_pool_state: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_Box = tuple[tuple[int, ...], tuple[int, ...]]


def _forget_pools() -> None:
    """In a forked child: the parent's threads do not exist, and the lock may have been
    held by one of them."""
    global _pool_lock
    _pool_lock = threading.Lock()
    _pool_state.clear()


os.register_at_fork(after_in_child=_forget_pools)


def _make_scale_dir(path: str, key: str) -> None:
    """Create a local volume's scale directory before CloudVolume writes there (a few
    microseconds; not remembered, since the volume may be deleted and made again).
    Workers that write a new scale's first chunks at once otherwise race in CloudFiles'
    ``mkdir``, whose loser sleeps 100 ms (it retries on EEXIST)."""
    os.makedirs(os.path.join(path[len("file://") :], key), exist_ok=True)


def _workers() -> int:
    return min(2, os.cpu_count() or 1)


def _executor(kind: str) -> ThreadPoolExecutor:
    """The ``"write"`` threads (two) or the ``"read"`` threads (:data:`READ_THREADS`),
    created on first use and again after a fork."""
    with _pool_lock:
        pid = os.getpid()
        state = _pool_state.get(kind)
        if state is None or state[0] != pid:
            workers = _workers() if kind == "write" else READ_THREADS
            pool = ThreadPoolExecutor(workers, thread_name_prefix=f"lamina-cv-{kind}")
            _pool_state[kind] = state = (pid, pool)
        return state[1]


def _grid_boxes(cuts: list[list[int]]) -> list[_Box]:
    """The boxes ``(start, stop)`` between consecutive cuts, in every dimension at once."""
    return [
        (tuple(a for a, _ in box), tuple(b for _, b in box))
        for box in itertools.product(*(itertools.pairwise(c) for c in cuts))
    ]


def _slices(lo: tuple[int, ...], hi: tuple[int, ...], origin: Any) -> tuple[slice, ...]:
    """The box ``lo:hi`` as slices of an array whose first voxel is at ``origin``."""
    return tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, origin, strict=True))


def _raise_first(errors: list[BaseException | None]) -> None:
    """Raise the first error of tasks that have all finished (``None``: no error); a
    list, so that every task is waited for before anything is raised."""
    for error in errors:
        if error is not None:
            raise error


def _cuts(lo: int, hi: int, grid0: int, width: int) -> list[int]:
    """``lo``, the grid lines ``grid0 + k * width`` strictly inside, and ``hi``."""
    cuts = [lo]
    line = grid0 + ((lo - grid0) // width + 1) * width
    while line < hi:
        cuts.append(line)
        line += width
    cuts.append(hi)
    return cuts


def _to_fortran(xyzc: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A Fortran-ordered copy, copied tile by tile (several times faster than
    ``np.asfortranarray`` for the transposed view of a C-ordered array)."""
    if xyzc.nbytes < 1 << 20:
        return np.asfortranarray(xyzc)
    out = np.empty(xyzc.shape, xyzc.dtype, order="F")
    nx, ny, nz = xyzc.shape[:3]
    tx, ty, tz = _TILE
    for z in range(0, nz, tz):
        for y in range(0, ny, ty):
            for x in range(0, nx, tx):
                out[x : x + tx, y : y + ty, z : z + tz] = xyzc[x : x + tx, y : y + ty, z : z + tz]
    return out


# -- mem:// volumes travel by value ------------------------------------------------------------
def _mem_location(path: str) -> tuple[str, str]:
    rest = path[len("mem://") :]
    bucket, _, prefix = rest.partition("/")
    return bucket, (prefix + "/" if prefix else "")


def _mem_snapshot(path: str) -> dict[str, Any]:
    """Every object stored under a ``mem://`` path (cloud-files' in-process store)."""
    from cloudfiles.connectionpools import MEMORY_DATA

    bucket, prefix = _mem_location(path)
    data = MEMORY_DATA.get(bucket, {})
    return {k: v for k, v in list(data.items()) if k.startswith(prefix)}


def _mem_restore(path: str, objects: dict[str, Any]) -> None:
    """Put a snapshot back, unless this process already holds the volume."""
    from cloudfiles.connectionpools import MEMORY_DATA

    bucket, prefix = _mem_location(path)
    data = MEMORY_DATA.setdefault(bucket, {})
    if any(k.startswith(prefix) for k in data):
        return
    data.update(objects)
