"""``H5Backend``: a volumetric backend over one HDF5 volume (a lamina group or a dataset).

**Handles between calls** (the default, ``keep_open=True``): each process keeps one
read-only handle per file open between reads. This handle holds no HDF5 lock and is
independent of any ``h5py.File`` the user opens in this process (see
:mod:`lamina_hdf5.handles`). So between a layer's calls, plain ``h5py.File(path, "r")``
or ``"r+"``, in this process or another, opens the file. Another process's writer is
never refused because of this handle. Each read takes a shared ``flock`` on the file,
the lock HDF5 itself uses, and holds it only for that read. A writer with the file
open (lamina, or plain h5py with its default locking) therefore makes the read wait,
and a read never sees a partial write. The read then checks ``fstat`` of the file
and reopens its handle if the file changed, so it sees every completed write. The
handle is never used after ``fork``. It is closed by ``clear_cache()``,
``with_changes``, ``delete()``, any lamina write to the file from this process, and at
interpreter exit. The layer pickles by its spec. With ``keep_open=False``, every read
opens the file with plain h5py and closes it again, a cost that dominates small
reads (bench/README.md, "HDF5").

**Writes** are serialised across threads (an in-process lock) and across processes (the
lock file ``FILE.lock``, through ``filelock``). For as long as a write has the file open,
it holds an exclusive ``flock`` on it. lamina cannot protect readers from a writer that
turns HDF5's locking off (``locking=False``, ``HDF5_USE_FILE_LOCKING=FALSE``): HDF5
without SWMR has no way to.

Reads return ``(C, X, Y, Z)`` as a transposed *view* of the C-order array read from
the file, so no copy is made; the one copy is made for a region that reaches outside the
dataset, where the part inside is copied into a zero-filled array. Where HDF5 writes
every voxel itself, the array is read uninitialised, without h5py's zero fill (see
:class:`lamina_hdf5.handles.DatasetReader`). Writes hand h5py the
inverse transposition. When the caller's array is itself such a view (the
``(C, X, Y, Z)`` view of a C-order ``(Z, Y, X)`` array), h5py gets a contiguous array and
no copy is made. Otherwise h5py makes one contiguous copy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any, ClassVar, Literal, Unpack

import attrs
import numpy as np
import numpy.typing as npt

from lamina.backend import Capabilities
from lamina.errors import DamagedChunkError, UnknownResolutionError
from lamina.volumetric.backend import VolumetricBackend, VolumetricChanges
from lamina.volumetric.geometry import RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina_hdf5 import handles
from lamina_hdf5.handles import begin_read, end_read, exclusive, open_file, reading
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

__all__ = ["H5Backend", "open_file"]


class _Plan:
    """What a read at one resolution needs, precomputed: the dataset, its extent, how the
    (x, y, z, c) selections go into the file's axis order and how the result becomes
    ``(C, X, Y, Z)``."""

    __slots__ = ("channels", "meta", "offset", "order", "path", "size", "to_cxyz")

    def __init__(self, meta: DatasetMeta) -> None:
        self.meta = meta
        self.path = meta.path
        self.offset = tuple(int(v) for v in meta.voxel_offset)
        self.size = tuple(int(v) for v in meta.size)
        self.channels = int(meta.num_channels)
        #: picks the file's axes from (x, y, z, c) slices
        self.order = itemgetter(*("xyzc".index(a) for a in meta.axes))
        #: the file-order array as a ``(C, X, Y, Z)`` view
        self.to_cxyz: Callable[[npt.NDArray[Any]], npt.NDArray[Any]] = _view_maker(meta.axes)


def _zyx_to_cxyz(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return array.T[None]  # None is np.newaxis


def _view_maker(axes: str) -> Callable[[npt.NDArray[Any]], npt.NDArray[Any]]:
    if axes == "zyx":  # lamina's own layout: the fastest form
        return _zyx_to_cxyz
    if "c" in axes:
        perm = [axes.index(a) for a in "cxyz"]
        return lambda a: a.transpose(perm)
    spatial = [0, *(axes.index(a) + 1 for a in "xyz")]
    return lambda a: a[np.newaxis].transpose(spatial)


_ALL = slice(None)


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
        keep_open: keep one read-only handle per process and file open between reads
            (default). It holds no lock between calls and is checked against the file
            before each read, so other processes' writes are seen and never refused (see
            the module docstring). ``False``: every read opens and closes the file.
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
        keep_open: bool = True,
    ) -> None:
        file_path, inner = split_path(path)
        self._keep_open = bool(keep_open)
        #: reads through the cached handle (needs flock; else every read opens the file)
        self._cached = self._keep_open and handles.FLOCK_AVAILABLE
        if dataset is not None:
            inner = str(dataset).strip("/") or None
        self._set_file(file_path)
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
    def _set_file(self, file_path: str) -> None:
        self._file = file_path
        #: the absolute path, symlinks resolved: the key of this process's handles and locks
        self._abs = os.path.realpath(file_path)
        self._st = handles.state(self._abs)

    def _create(self, spec: VolumeSpec, inner: str | None, overwrite: bool, keep: bool) -> str:
        os.makedirs(os.path.dirname(self._file) or ".", exist_ok=True)
        with exclusive(self._abs) as open_rw, open_rw("a") as f:
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
        with reading(self._abs, self._cached) as f:
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
            self._is_group = is_lamina_group(obj)
            if self._is_group:
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
        self._plans: dict[Vec3D[float], _Plan] = {m.resolution: _Plan(m) for m in metas}
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
        self._set_file(state["file"])
        self._enforce = state["enforce"]
        self._keep_open = state.get("keep_open", True)
        self._cached = self._keep_open and handles.FLOCK_AVAILABLE
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
        intersection is read. A stored chunk whose filter (gzip, …) fails to decode is a
        :class:`~lamina.errors.DamagedChunkError`, never zeros."""
        try:
            return self._read(idx)
        except OSError as exc:
            if not _is_decode_failure(exc):
                raise
            raise DamagedChunkError(
                f"{self._abs}: a stored chunk of {self.dataset!r} in {idx.pformat()} at "
                f"{idx.resolution.pformat()} nm does not decode: {exc}"
            ) from exc

    def _read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        plan = self._plans.get(idx.resolution)
        if plan is None:
            plan = self._plans[self.meta(idx.resolution).resolution]
        ox, oy, oz = plan.offset
        sx, sy, sz = plan.size
        x0, y0, z0 = idx.start
        x1, y1, z1 = idx.stop
        x0 -= ox
        x1 -= ox
        y0 -= oy
        y1 -= oy
        z0 -= oz
        z1 -= oz
        if x0 >= 0 and y0 >= 0 and z0 >= 0 and x1 <= sx and y1 <= sy and z1 <= sz:
            # the common case, inside the dataset: one hyperslab, returned as a view
            order = plan.order
            if not self._cached:
                sel = order((slice(x0, x1), slice(y0, y1), slice(z0, z1), _ALL))
                return plan.to_cxyz(self._read_part(plan.path, sel))
            start = order((x0, y0, z0, 0))
            count = order((x1 - x0, y1 - y0, z1 - z0, plan.channels))
            st = self._st
            if st.pid != handles.pid:  # forked: never the parent's handles
                st = self._st = handles.state(self._abs)
            with st.lock:  # the hot path of _read_part, inlined
                reader = begin_read(st, plan.path)
                try:
                    part = reader.read(start, count)
                finally:
                    end_read(st)
            return plan.to_cxyz(part)
        return self._read_partial(plan, idx)

    def _read_part(self, dataset: str, sel: Any) -> npt.NDArray[Any]:
        """``dataset[sel]`` of the file: through the cached handle (checked fresh under the
        shared lock), or with ``keep_open=False`` through a handle opened for this call."""
        st = self._st
        if st.pid != handles.pid:  # forked: never the parent's handles
            st = self._st = handles.state(self._abs)
        with st.lock:
            if not self._cached:
                with open_file(self._abs, "r") as f:
                    return f[dataset][sel]  # type: ignore[no-any-return]
            reader = begin_read(st, dataset)
            try:
                return reader.dataset[sel]  # type: ignore[no-any-return]
            finally:
                end_read(st)

    def _read_partial(self, plan: _Plan, idx: VolumetricIndex) -> npt.NDArray[Any]:
        """A region reaching outside the dataset: the part inside (if any) is read and copied
        into a zero-filled array, the only copy a read makes."""
        meta = plan.meta
        start = idx.start - meta.voxel_offset
        stop = idx.stop - meta.voxel_offset
        shape = idx.shape
        lo = Vec3D(*(max(0, v) for v in start))
        hi = Vec3D(*(min(s, v) for s, v in zip(meta.size, stop, strict=True)))
        by = {"c": meta.num_channels, "x": shape[0], "y": shape[1], "z": shape[2]}
        out = np.zeros(tuple(by[a] for a in meta.axes), dtype=self._dtype)
        if all(a < b for a, b in zip(lo, hi, strict=True)):
            part = self._read_part(plan.path, self._selection(meta, lo, hi))
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
        with exclusive(self._abs) as open_rw, open_rw("r+") as f:
            handles.open_with_small_cache(f, meta.path)[sel] = target

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

    def add_resolutions(
        self, resolutions: Iterable[RawVec3D], chunk_size: RawVec3D | None = None
    ) -> H5Backend:
        """This volume with ``resolutions`` added as new, empty datasets of its group
        (see ``VolumetricBackend.add_resolutions``): same dtype, channels, compression
        and (unless ``chunk_size``) chunk shape as the finest scale, covering its bounds.
        Only lamina volumes (groups) can grow; a plain dataset is refused."""
        from lamina.errors import UnsupportedOperationError
        from lamina.volumetric.scales import sorted_resolutions

        if not self._is_group:
            raise UnsupportedOperationError(
                f"{self.name} is a single dataset, not a lamina volume (a group with one "
                "dataset per scale): it cannot hold other resolutions. Copy it into a "
                "lamina volume first (lamina copy FILE.h5:/DATASET OUT.h5:/VOLUME)"
            )
        wanted = [r for r in sorted_resolutions(resolutions) if r not in self._metas]
        if not wanted:
            return self
        spec = self.volume_spec()
        chunk = spec.chunk_size if chunk_size is None else Vec3D.from_seq(chunk_size).int()
        spec = attrs.evolve(spec, scales=(*self._resolutions, *wanted), chunk_size=chunk)
        clone = H5Backend(
            self._file,
            self._inner,
            spec=spec,
            overwrite=False,
            keep_existing_scales=True,
            enforce_chunk_aligned_writes=self._enforce,
            keep_open=self._keep_open,
        )
        self.clear_cache()
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
        """Close this process's cached read handle of the file (the next read reopens it)."""
        st = handles.state(self._abs)
        with st.lock:
            handles.close_state(st)

    def delete(self) -> None:
        """Delete the volume's group (or dataset); the file too when nothing else is left."""
        with exclusive(self._abs) as open_rw:  # closes this process's cached handle
            if not os.path.isfile(self._abs):
                return
            with open_rw("r+") as f:
                if self._inner in f:
                    del f[self._inner]
                empty = len(f.keys()) == 0
            if empty:
                os.remove(self._abs)


def _is_decode_failure(exc: OSError) -> bool:
    """Whether h5py's error is a chunk that does not decode (a filter failing), not a
    missing or locked file."""
    text = str(exc).lower()
    return "filter" in text or "inflate" in text or "decompress" in text
