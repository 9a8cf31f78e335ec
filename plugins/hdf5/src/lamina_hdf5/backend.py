"""``H5Backend``: a volumetric backend over one HDF5 volume (a lamina group or a dataset).

Handles: by default **none stay open between calls.** Every ``read`` and ``write`` opens the file,
does its hyperslab IO and closes it, so between a layer's calls plain
``h5py.File(path, "r")`` — in this process or another — opens the file and sees every
completed write. Opening per call also means nothing is inherited across ``fork``,
pickling carries only the spec, and ``delete()``, ``with_changes`` and interpreter exit
have no handle to leak. With ``keep_open=True`` one read-only handle per process and
file stays open between reads (closed by ``clear_cache()``, ``with_changes``,
``delete()``, any lamina write to the file, and at exit; dropped in a forked child);
plain ``h5py.File(path, "r")`` still works in this process, but another process's writer
waits until it is closed.

Writers are serialised across threads and processes by a lock file ``FILE.lock``
(``filelock``) plus an in-process lock; readers take only the in-process lock and,
when another process holds the file for writing (HDF5 refuses to open it), retry
until it is released, so a reader never sees a partial write.

Reads return ``(C, X, Y, Z)`` as a transposed *view* of the C-order array read from
the file (no copy). Writes hand h5py the inverse transposition; when the caller's array
is itself such a view (the ``(C, X, Y, Z)`` view of a C-order ``(Z, Y, X)`` array) h5py
gets a contiguous array and no copy is made; otherwise h5py makes one contiguous copy.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal, Unpack

import numpy as np
import numpy.typing as npt

from lamina.backend import Capabilities
from lamina.errors import UnknownResolutionError
from lamina.volumetric.backend import VolumetricBackend, VolumetricChanges
from lamina.volumetric.geometry import RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina_hdf5.layout import (
    DEFAULT_GROUP,
    DatasetMeta,
    H5NotFoundError,
    VolumeSpec,
    apply_spec,
    find_volumes,
    group_scales,
    is_lamina_group,
    read_meta,
    split_path,
)

__all__ = ["H5Backend"]

_LOCK_TIMEOUT_S = 120.0
_local_locks: dict[str, threading.RLock] = {}
_local_locks_guard = threading.Lock()


def _local_lock(path: str) -> threading.RLock:
    with _local_locks_guard:
        lock = _local_locks.get(path)
        if lock is None:
            lock = _local_locks[path] = threading.RLock()
        return lock


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("errno = 11" in text or "temporarily unavailable" in text)


def open_file(path: str, mode: str, timeout: float = _LOCK_TIMEOUT_S) -> Any:
    """``h5py.File(path, mode)``, retrying while another process holds the file (HDF5's
    file locking refuses the open); other errors are raised at once."""
    import h5py

    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            return h5py.File(path, mode)
        except OSError as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


# Read handles kept open by ``keep_open=True`` backends: file -> (pid, File, datasets).
_kept: dict[str, tuple[int, Any, dict[str, Any]]] = {}


def _kept_dataset(path: str, dataset: str) -> Any:
    """The dataset through this process's kept read-only handle (opened on first use;
    a handle inherited across fork is dropped, never used). Call under the local lock."""
    entry = _kept.get(path)
    if entry is None or entry[0] != os.getpid():
        entry = _kept[path] = (os.getpid(), open_file(path, "r"), {})
    ds = entry[2].get(dataset)
    if ds is None:
        ds = entry[2][dataset] = entry[1][dataset]
    return ds


def close_kept(path: str | None = None) -> None:
    """Close the kept read handles of ``path`` (every file when ``None``) in this process."""
    for key in [path] if path is not None else list(_kept):
        entry = _kept.pop(key, None) if key is not None else None
        if entry is not None and entry[0] == os.getpid():
            entry[1].close()


atexit.register(close_kept)


@contextmanager
def write_lock(path: str) -> Iterator[None]:
    """Exclusive across threads (in-process lock) and processes (``PATH.lock``); closes
    this process's kept read handles of the file first (HDF5 refuses mixed flags)."""
    from filelock import FileLock

    with _local_lock(path), FileLock(path + ".lock", timeout=_LOCK_TIMEOUT_S):
        close_kept(path)
        yield


class H5Backend(VolumetricBackend):
    """One HDF5 volume: a lamina group (one dataset per scale) or a single 3-D/4-D dataset.

    Args:
        path: the HDF5 file (``FILE:/GROUP`` is accepted too).
        dataset: the group or dataset inside the file; ``None``: the part of ``path``
            after ``:/``, else the file's only volume, else (when creating) ``"volume"``.
        spec: a volume to create or extend (the ``info_*`` parameters of the builder).
        overwrite, keep_existing_scales: the creation policy (see ``apply_spec``).
        resolution, axes, voxel_offset: for datasets lamina did not write (x, y, z; the
            file's axis order), overriding their attributes.
        enforce_chunk_aligned_writes: refuse writes off the chunk grid.
        keep_open: keep one read-only handle per process open between reads (fast small
            reads). Only for files no other process writes meanwhile: HDF5's file locking
            makes another process's writer wait until this process closes the handle
            (``clear_cache()``, a write through lamina, ``delete()`` or exit).
    """

    supported_changes: ClassVar[frozenset[str]] = frozenset(
        {"name", "enforce_chunk_aligned_writes", "keep_open"}
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        dataset: str | None = None,
        *,
        spec: VolumeSpec | None = None,
        overwrite: bool = False,
        keep_existing_scales: bool = True,
        resolution: RawVec3D | None = None,
        axes: str | None = None,
        voxel_offset: RawVec3D | None = None,
        enforce_chunk_aligned_writes: bool = True,
        keep_open: bool = False,
    ) -> None:
        file_path, inner = split_path(path)
        self._keep_open = bool(keep_open)
        if dataset is not None:
            inner = str(dataset).strip("/") or None
        self._file = file_path
        self._enforce = bool(enforce_chunk_aligned_writes)
        self._open_args = {"resolution": resolution, "axes": axes, "voxel_offset": voxel_offset}
        if spec is not None:
            if any(v is not None for v in self._open_args.values()):
                raise ValueError(
                    "resolution=, axes= and voxel_offset= describe an existing dataset; "
                    "a new volume takes them from info_scales and info_bbox"
                )
            inner = self._create(spec, inner, overwrite, keep_existing_scales)
        self._load(inner)

    # -- opening --------------------------------------------------------------------------------
    def _create(self, spec: VolumeSpec, inner: str | None, overwrite: bool, keep: bool) -> str:
        os.makedirs(os.path.dirname(self._file) or ".", exist_ok=True)
        with write_lock(self._file), open_file(self._file, "a") as f:
            if inner is None:
                vols = [v for v in find_volumes(f) if is_lamina_group(f[v])]
                inner = vols[0] if len(vols) == 1 else DEFAULT_GROUP
            apply_spec(
                f,
                inner,
                spec,
                overwrite=overwrite,
                keep_existing_scales=keep,
                where=f"{self._file}:/{inner}",
            )
        return inner

    def _load(self, inner: str | None) -> None:
        import h5py

        if not os.path.isfile(self._file):
            raise H5NotFoundError(
                f"no HDF5 file at {self._file}. To create a volume, pass info_scales with "
                "the other info_* parameters (or info_reference_path)"
            )
        with _local_lock(self._file), open_file(self._file, "r") as f:
            if inner is None:
                vols = find_volumes(f)
                if len(vols) != 1:
                    listed = ", ".join(vols) if vols else "none"
                    raise ValueError(
                        f"{self._file} holds {len(vols)} volumes ({listed}): pass dataset= "
                        "(or FILE:/GROUP) to choose one"
                    )
                inner = vols[0]
            obj = f.get(inner)
            if obj is None:
                raise H5NotFoundError(
                    f"{self._file} has no group or dataset {inner!r}; it holds: "
                    f"{', '.join(find_volumes(f)) or 'no volume'}. Pass info_scales "
                    "(and the other info_* parameters) to create one"
                )
            if is_lamina_group(obj):
                if any(v is not None for v in self._open_args.values()):
                    raise ValueError(
                        f"{self._file}:/{inner} is a lamina volume whose datasets record "
                        "their resolution, axes and offset: do not pass resolution=, axes= "
                        "or voxel_offset="
                    )
                metas = group_scales(obj)
                vtype = obj.attrs.get("type")
            elif isinstance(obj, h5py.Dataset):
                metas = [read_meta(obj, **self._open_args)]  # type: ignore[arg-type]
                vtype = obj.attrs.get("type")
            else:
                raise ValueError(
                    f"{self._file}:/{inner} is a group that is not a lamina volume; it holds: "
                    f"{', '.join(find_volumes(obj)) or 'no volume'}"
                )
        if not metas:
            raise H5NotFoundError(f"the volume {self._file}:/{inner} has no scale")
        dtypes = {m.dtype for m in metas}
        channels = {m.num_channels for m in metas}
        if len(dtypes) != 1 or len(channels) != 1:
            raise ValueError(
                f"the scales of {self._file}:/{inner} disagree on dtype or channel count "
                f"({sorted(map(str, dtypes))}, {sorted(channels)})"
            )
        self._inner = inner
        self._metas: dict[Vec3D[float], DatasetMeta] = {m.resolution: m for m in metas}
        self._resolutions = tuple(m.resolution for m in metas)
        self._dtype = metas[0].dtype
        self._num_channels = metas[0].num_channels
        self._type: Literal["image", "segmentation"] | None = (
            vtype if vtype in ("image", "segmentation") else None
        )
        self._capabilities = Capabilities(non_aligned_writes=True)

    # -- pickling by spec -------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "file": self._file,
            "inner": self._inner,
            "open_args": self._open_args,
            "enforce": self._enforce,
            "keep_open": self._keep_open,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._file = state["file"]
        self._enforce = state["enforce"]
        self._keep_open = state.get("keep_open", False)
        self._open_args = state["open_args"]
        self._load(state["inner"])

    def __repr__(self) -> str:
        return f"H5Backend({self.name!r})"

    # -- what the volume is ---------------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return self._capabilities

    @property
    def name(self) -> str:
        return f"{self._file}:/{self._inner}"

    @property
    def file_path(self) -> str:
        return self._file

    @property
    def dataset(self) -> str:
        """The group or dataset inside the file."""
        return self._inner

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
        return self._type

    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        return self._enforce

    def meta(self, resolution: RawVec3D) -> DatasetMeta:
        """The dataset of the scale at ``resolution``."""
        res = resolution if type(resolution) is Vec3D else Vec3D.from_seq(resolution).float()
        meta = self._metas.get(res)
        if meta is None:
            shown = res.pformat() if isinstance(res, Vec3D) else str(res)
            known = ", ".join(r.pformat() for r in self._resolutions)
            raise UnknownResolutionError(
                f"{self.name} has no scale at resolution {shown} nm; its resolutions are: {known}"
            )
        return meta

    def get_voxel_offset(self, resolution: RawVec3D) -> Vec3D[int]:
        return self.meta(resolution).voxel_offset

    def get_chunk_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self.meta(resolution).chunk_size

    def get_dataset_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self.meta(resolution).size

    def describe(self) -> dict[str, Any]:
        """What ``lamina info`` shows: type, dtype, channels and every scale's dataset."""
        return {
            "path": self.name,
            "format": "HDF5 (lamina-hdf5)",
            "type": self._type,
            "data_type": str(self._dtype),
            "num_channels": self._num_channels,
            "scales": [self._metas[r].to_json() for r in self._resolutions],
        }

    # -- IO ---------------------------------------------------------------------------------------
    @staticmethod
    def _selection(meta: DatasetMeta, start: Vec3D[int], stop: Vec3D[int]) -> tuple[slice, ...]:
        lo = {"x": start[0], "y": start[1], "z": start[2]}
        hi = {"x": stop[0], "y": stop[1], "z": stop[2]}
        return tuple(slice(None) if a == "c" else slice(lo[a], hi[a]) for a in meta.axes)

    @staticmethod
    def _to_cxyz(meta: DatasetMeta, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The file-order array as a ``(C, X, Y, Z)`` view."""
        axes = meta.axes if "c" in meta.axes else "c" + meta.axes
        if "c" not in meta.axes:
            array = array[np.newaxis]
        return array.transpose([axes.index(a) for a in "cxyz"])

    @staticmethod
    def _from_cxyz(meta: DatasetMeta, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """A ``(C, X, Y, Z)`` array in the file's axis order (a view)."""
        if "c" in meta.axes:
            return array.transpose(["cxyz".index(a) for a in meta.axes])
        first: npt.NDArray[Any] = array[0]
        return first.transpose(["xyz".index(a) for a in meta.axes])

    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        """``(C, X, Y, Z)`` at ``idx``; zeros outside the dataset. Only the hyperslab of the
        intersection is read."""
        meta = self.meta(idx.resolution)
        start = idx.start - meta.voxel_offset
        stop = idx.stop - meta.voxel_offset
        shape = idx.shape
        lo = Vec3D(*(max(0, v) for v in start))
        hi = Vec3D(*(min(s, v) for s, v in zip(meta.size, stop, strict=True)))
        by = {"c": meta.num_channels, "x": shape[0], "y": shape[1], "z": shape[2]}
        file_shape = tuple(by[a] for a in meta.axes)
        if not all(a < b for a, b in zip(lo, hi, strict=True)):
            return self._to_cxyz(meta, np.zeros(file_shape, dtype=self._dtype))
        source = self._selection(meta, lo, hi)
        if self._keep_open:
            with _local_lock(self._file):
                part = _kept_dataset(self._file, meta.path)[source]
        else:
            with _local_lock(self._file), open_file(self._file, "r") as f:
                part = f[meta.path][source]  # one hyperslab; faster than read_direct
        if lo == start and hi == stop:
            out = part
        else:  # the only copy: the part inside the dataset into a zero-filled array
            out = np.zeros(file_shape, dtype=self._dtype)
            out[self._selection(meta, lo - start, hi - start)] = part
        return self._to_cxyz(meta, out)

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        """Store ``data`` (``(C, X, Y, Z)``) at ``idx``, which must lie inside the dataset
        (no silent crop), under the lock file."""
        array = self.check_write(idx, data)
        meta = self.meta(idx.resolution)
        self.assert_idx_within_bounds(
            idx,
            "Write inside the bounds (idx.intersection(bounds)), or enlarge the volume "
            "(build_h5_layer with info_bbox and info_overwrite=True).",
        )
        full = (self._num_channels, *idx.shape)
        if array.shape != full:
            array = np.broadcast_to(array, full)
        target = self._from_cxyz(meta, array)
        sel = self._selection(meta, idx.start - meta.voxel_offset, idx.stop - meta.voxel_offset)
        with write_lock(self._file), open_file(self._file, "r+") as f:
            f[meta.path][sel] = target

    # -- changes and deletion ---------------------------------------------------------------------
    def with_changes(self, **changes: Unpack[VolumetricChanges]) -> H5Backend:  # type: ignore[override]
        """A copy with ``name`` (another ``FILE:/GROUP``: this volume's layout is created
        there, merged with what is there) or ``enforce_chunk_aligned_writes`` changed."""
        self.check_changes(dict(changes))
        self.clear_cache()
        enforce = bool(changes.get("enforce_chunk_aligned_writes", self._enforce))
        keep = bool(changes.get("keep_open", self._keep_open))
        if "name" in changes and changes["name"] != self.name:
            file_path, inner = split_path(changes["name"])
            return H5Backend(
                file_path,
                inner,
                spec=self.volume_spec(),
                overwrite=False,
                keep_existing_scales=True,
                enforce_chunk_aligned_writes=enforce,
                keep_open=keep,
            )
        clone = object.__new__(H5Backend)
        clone.__setstate__({**self.__getstate__(), "enforce": enforce, "keep_open": keep})
        return clone

    def volume_spec(self) -> VolumeSpec:
        """This volume's layout as a spec (for ``with_changes(name=...)``)."""
        from lamina.volumetric.geometry import BBox3D

        finest = self._metas[self._resolutions[0]]
        bbox = BBox3D.from_coords(
            finest.voxel_offset, finest.voxel_offset + finest.size, finest.resolution
        )
        return VolumeSpec(
            scales=self._resolutions,
            type=self._type or "image",
            data_type=str(self._dtype),
            num_channels=self._num_channels,
            chunk_size=finest.chunk_size,
            bbox=bbox,
            compression=finest.compression if finest.compression in ("gzip", "lzf") else None,
            compression_level=finest.compression_level,
        )

    def clear_cache(self) -> None:
        """Close this process's kept read handle of the file (``keep_open=True``); without
        ``keep_open`` no handle stays open between calls."""
        with _local_lock(self._file):
            close_kept(self._file)

    def delete(self) -> None:
        """Delete the volume's group (or dataset); the file too when nothing else is left."""
        self.clear_cache()
        with write_lock(self._file):
            if not os.path.isfile(self._file):
                return
            with open_file(self._file, "r+") as f:
                if self._inner in f:
                    del f[self._inner]
                empty = len(f.keys()) == 0
            if empty:
                os.remove(self._file)
