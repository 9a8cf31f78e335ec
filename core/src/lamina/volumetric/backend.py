"""The volumetric backend protocol, shared by precomputed, HDF5, layer-set, range-map
and in-memory volumes.

A volumetric backend reads and writes ``(C, X, Y, Z)`` numpy arrays for a
:class:`~lamina.volumetric.index.VolumetricIndex` at any of its resolutions, and
describes each resolution's voxel offset, chunk size and dataset size (a composite
backend, such as a layer set, may read and write ``{name: array}`` dicts instead: it
overrides :meth:`VolumetricBackend.prepare_data`). This module
adds what every such backend shares: bounds, the chunk-alignment check with the
reference system's detailed error (offset, chunk size, bounds and the nearest aligned
boxes), chunk-aligned indices, the check and lossless conversion of write data, and a
typed ``with_changes``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, ClassVar, Literal, Self, TypedDict, Unpack

import numpy as np
import numpy.typing as npt

from lamina.backend import Backend, ChangeKeyError, check_change_keys
from lamina.errors import UnsupportedOperationError
from lamina.volumetric.data import check_volume_data, convert_dtype
from lamina.volumetric.geometry import RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = ["VolumetricBackend", "VolumetricChanges", "warm_up_layers"]


class VolumetricChanges(TypedDict, total=False):
    """Every option a volumetric backend's ``with_changes`` may take (the reference's keys).

    A backend lists in ``supported_changes`` the ones it honours; any other key,
    including a misspelt one, raises ``KeyError`` (never ignored: a typo must not pass).
    """

    name: str
    voxel_offset_res: tuple[RawVec3D, RawVec3D]
    chunk_size_res: tuple[RawVec3D, RawVec3D]
    dataset_size_res: tuple[RawVec3D, RawVec3D]
    enforce_chunk_aligned_writes: bool
    overwrite_partial_chunks: bool
    allow_cache: bool
    use_compression: bool
    cache_bytes_limit: int


CHANGE_KEYS: frozenset[str] = frozenset(VolumetricChanges.__annotations__)


class VolumetricBackend(Backend[VolumetricIndex, npt.NDArray[Any]]):
    """A backend indexed by :class:`VolumetricIndex`, storing ``(C, X, Y, Z)`` arrays.

    Subclasses implement the abstract members and call :meth:`check_write` at the top of
    ``write`` so that shape, channel count, dtype and chunk alignment are checked before
    anything is written.
    """

    #: The ``with_changes`` keys this backend honours (a subset of ``VolumetricChanges``).
    supported_changes: ClassVar[frozenset[str]] = frozenset({"name"})
    #: The memory layout of the ``(C, X, Y, Z)`` arrays ``read`` returns: ``"C"``, or
    #: ``"F"`` for transposed views of Fortran-ordered ``(X, Y, Z, C)`` arrays (x fastest,
    #: as precomputed chunks are stored). Whoever assembles reads into one array (a range
    #: map) allocates it in this layout, so that pasting copies memory in order.
    memory_order: ClassVar[Literal["C", "F"]] = "C"

    # -- what the volume is ----------------------------------------------------------------
    @property
    @abc.abstractmethod
    def dtype(self) -> np.dtype[Any]:
        """The dtype data is stored in."""

    @property
    @abc.abstractmethod
    def num_channels(self) -> int:
        """The number of channels (``C`` of ``(C, X, Y, Z)``)."""

    @property
    @abc.abstractmethod
    def resolutions(self) -> tuple[Vec3D[float], ...]:
        """Every resolution (nm per voxel, x, y, z) the backend stores, finest first."""

    @abc.abstractmethod
    def get_voxel_offset(self, resolution: RawVec3D) -> Vec3D[int]:
        """The first voxel of the dataset at ``resolution``."""

    @abc.abstractmethod
    def get_chunk_size(self, resolution: RawVec3D) -> Vec3D[int]:
        """The storage chunk size at ``resolution``, in voxels."""

    @abc.abstractmethod
    def get_dataset_size(self, resolution: RawVec3D) -> Vec3D[int]:
        """The dataset size at ``resolution``, in voxels."""

    @property
    def volume_type(self) -> Literal["image", "segmentation"] | None:
        """What the voxels are, where the format records it (precomputed ``type``, HDF5
        ``info_type``); ``None`` when unknown. Flows and viewers choose the resampling mode
        and the display from it (``img`` for images, ``segmentation`` for labels)."""
        return None

    # -- options (the reference's backend properties); backends override what they support --
    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        return True

    @property
    def overwrite_partial_chunks(self) -> bool:
        return False

    @property
    def allow_cache(self) -> bool:
        return False

    @property
    def use_compression(self) -> bool:
        return False

    @property
    def is_local(self) -> bool:
        return True

    def clear_cache(self) -> None:
        """Drop cached data and handles (no-op for backends without a cache)."""

    def read_into(self, idx: VolumetricIndex, out: npt.NDArray[Any]) -> None:
        """Read ``idx`` into ``out``, a ``(C, X, Y, Z)`` array (or view) of its shape and
        this backend's channel count, writing every voxel of it. The default copies
        :meth:`read`'s result; a backend that can decode straight into ``out`` overrides
        it, saving the copy (a range map reads its sources into parts of one array)."""
        self.check_read_target(idx, out)
        out[...] = self.read(idx)

    def check_read_target(self, idx: VolumetricIndex, out: npt.NDArray[Any]) -> None:
        """Refuse an ``out`` of :meth:`read_into` whose shape is not ``(C, X, Y, Z)`` of
        ``idx`` with this backend's channel count."""
        expected = (self.num_channels, *idx.shape)
        if tuple(out.shape) != expected:
            raise ValueError(
                f"read_into's out must have shape {expected} (C, X, Y, Z) for "
                f"{idx.pformat()}; got {tuple(out.shape)}"
            )

    # -- changes -------------------------------------------------------------------------
    @abc.abstractmethod
    def with_changes(self, **changes: Unpack[VolumetricChanges]) -> Self:  # type: ignore[override]
        """A copy with options changed; keys outside ``supported_changes`` raise ``KeyError``."""

    def check_changes(self, changes: dict[str, Any]) -> None:
        """Raise ``KeyError`` for keys this backend does not honour.

        ``supported_changes`` may hold keys beyond ``VolumetricChanges`` (a plugin's own
        options); a known volumetric key the backend does not honour is named as such.
        """
        refused = set(changes) - self.supported_changes
        if refused & CHANGE_KEYS:
            not_here = sorted(refused & CHANGE_KEYS)
            raise ChangeKeyError(
                f"{type(self).__name__} does not support with_changes({', '.join(not_here)}=...); "
                f"supported keys: {sorted(self.supported_changes)}"
            )
        check_change_keys(self, changes, self.supported_changes)

    def add_resolutions(
        self, resolutions: Iterable[RawVec3D], chunk_size: RawVec3D | None = None
    ) -> Self:
        """This volume with ``resolutions`` added as new, empty scales, stored so that
        every process that opens the volume sees them (a pyramid's levels:
        ``lamina.flows.downsample``).

        Each new scale covers the finest scale's bounds (in nm; voxel offset floored,
        size ceiled) with ``chunk_size`` (default: the finest scale's); resolutions the
        volume has already are kept as they are. Backends that cannot add scales raise
        :class:`~lamina.errors.UnsupportedOperationError` (the default).
        """
        raise UnsupportedOperationError(
            f"{type(self).__name__} ({self.name}) cannot add resolutions to its volume; "
            "write the pyramid into a volume whose format can (precomputed, HDF5, in-memory)"
        )

    # -- geometry shared by every backend --------------------------------------------------------
    def get_bounds(self, resolution: RawVec3D) -> VolumetricIndex:
        """The dataset's extent at ``resolution``."""
        offset = self.get_voxel_offset(resolution)
        return VolumetricIndex.from_coords(
            offset, offset + self.get_dataset_size(resolution), resolution
        )

    def get_chunk_aligned_index(
        self, idx: VolumetricIndex, mode: Literal["expand", "shrink"]
    ) -> VolumetricIndex:
        """``idx`` snapped to the (read) chunk grid at its resolution, outward or inward."""
        if mode not in ("expand", "shrink"):
            raise ValueError(f"mode must be 'expand' or 'shrink'; got {mode!r}")
        return idx.snapped(
            self.get_voxel_offset(idx.resolution), self.get_chunk_size(idx.resolution), mode
        )

    def is_chunk_aligned(self, idx: VolumetricIndex) -> bool:
        """Whether every face of ``idx`` is on the chunk grid or on the dataset's end face.

        The reference rule: ``idx`` is aligned iff it equals its outward snap to the
        grid, or that snap cropped to the dataset bounds (partial edge chunks).
        """
        return self._is_aligned(idx, self.get_chunk_aligned_index(idx, "expand"))

    def assert_idx_is_chunk_aligned(self, idx: VolumetricIndex) -> None:
        """Raise a ``ValueError`` describing the chunk grid and the nearest aligned boxes."""
        if not self.is_chunk_aligned(idx):
            raise self._misaligned(
                idx,
                f"chunk size {self.get_chunk_size(idx.resolution).pformat()}",
                self.get_chunk_aligned_index(idx, "expand"),
                self.get_chunk_aligned_index(idx, "shrink"),
            )

    # -- the write grid: the unit a write must cover to be safe -----------------------------------
    def get_write_grid_size(self, resolution: RawVec3D) -> Vec3D[int]:
        """The size of one cell of the write grid at ``resolution`` (voxels), a whole number
        of chunks on the grid that starts at the voxel offset.

        A write that covers whole cells changes nothing outside itself, and two writes to
        different cells never race. Default: the chunk size. A sharded scale answers its
        shard's box (a shard file holds many chunks and is written whole).
        """
        return self.get_chunk_size(resolution)

    def describe_write_grid(self, resolution: RawVec3D) -> str:
        """The write grid in words, for errors (default: the chunk size)."""
        return f"chunk size {self.get_chunk_size(resolution).pformat()}"

    def get_write_aligned_index(
        self, idx: VolumetricIndex, mode: Literal["expand", "shrink"]
    ) -> VolumetricIndex:
        """``idx`` snapped to the write grid at its resolution, outward or inward."""
        if mode not in ("expand", "shrink"):
            raise ValueError(f"mode must be 'expand' or 'shrink'; got {mode!r}")
        return idx.snapped(
            self.get_voxel_offset(idx.resolution), self.get_write_grid_size(idx.resolution), mode
        )

    def is_write_aligned(self, idx: VolumetricIndex) -> bool:
        """Whether every face of ``idx`` is on the write grid or on the dataset's end face:
        the check every write makes while chunk-aligned writes are enforced."""
        return self._is_aligned(idx, self.get_write_aligned_index(idx, "expand"))

    def assert_idx_is_write_aligned(self, idx: VolumetricIndex) -> None:
        """Raise a ``ValueError`` describing the write grid and the nearest aligned boxes."""
        if not self.is_write_aligned(idx):
            raise self._misaligned(
                idx,
                self.describe_write_grid(idx.resolution),
                self.get_write_aligned_index(idx, "expand"),
                self.get_write_aligned_index(idx, "shrink"),
            )

    def _is_aligned(self, idx: VolumetricIndex, expanded: VolumetricIndex) -> bool:
        if expanded.bbox == idx.bbox:
            return True
        cropped = expanded.intersection(self.get_bounds(idx.resolution))
        return bool(cropped.bbox == idx.bbox)

    def _misaligned(
        self, idx: VolumetricIndex, grid: str, expanded: VolumetricIndex, shrunk: VolumetricIndex
    ) -> ValueError:
        res = idx.resolution
        bounds = self.get_bounds(res)
        return ValueError(
            f"the write to {idx.pformat()} at resolution {res.pformat()} is not aligned to "
            f"the chunk grid of {self.name!r}: voxel offset "
            f"{self.get_voxel_offset(res).pformat()}, {grid}, dataset bounds "
            f"{bounds.pformat()}. Nearest aligned boxes: expanded {expanded.pformat()} "
            f"(cropped to the bounds: {expanded.intersection(bounds).pformat()}), shrunk "
            f"{shrunk.pformat()} (cropped: {shrunk.intersection(bounds).pformat()}). Write "
            "an aligned region (backend.get_write_aligned_index(idx, 'expand')), or opt into "
            "non-aligned writes (a read-modify-write of what the write covers in part) with "
            "backend.with_changes(enforce_chunk_aligned_writes=False)."
        )

    def is_within_bounds(self, idx: VolumetricIndex) -> bool:
        """Whether ``idx`` lies inside the dataset bounds at its resolution."""
        bounds = self.get_bounds(idx.resolution)
        return bool(idx.start >= bounds.start and idx.stop <= bounds.stop)

    def assert_idx_within_bounds(self, idx: VolumetricIndex, remedy: str) -> None:
        """Refuse a write reaching outside the dataset bounds (never a silent crop).

        ``remedy`` is the backend's own advice, e.g. how to enlarge its bounds.
        """
        if self.is_within_bounds(idx):
            return
        raise ValueError(
            f"the write to {idx.pformat()} at {idx.resolution.pformat()} nm reaches "
            f"outside the dataset bounds of {self.name} "
            f"({self.get_bounds(idx.resolution).pformat()}); nothing was written. {remedy}"
        )

    def warm_up(self) -> None:
        """Load what reads and writes will need (modules, never handles or data).

        The flows call it in the parent before worker processes are forked, so that each
        worker inherits what the parent loaded instead of loading it again (importing
        CloudVolume takes about a second; workers kept by ``flows.reuse_workers()`` from
        an earlier run import it on their first chunk). Default: nothing. A backend over other
        layers forwards it to theirs.
        """

    def prepare_data(self, idx: VolumetricIndex, data: Any) -> Any:
        """The user's write data at ``idx`` in the form this backend writes, checked before
        any write processor runs (the layer calls it first).

        Default: one ``(C, X, Y, Z)`` numpy array (scalars, lists and torch tensors
        accepted; shape and channel count checked, see ``check_volume_data``). A
        composite backend whose data is not one array (a layer set's ``{name: array}``)
        overrides this, and ``read``/``write`` take that form instead.
        """
        return check_volume_data(data, idx.shape, self.num_channels)

    def check_write(self, idx: VolumetricIndex, data: Any) -> npt.NDArray[Any]:
        """``data`` checked and converted for a write at ``idx``, before anything is written.

        Checks shape and channel count against ``idx`` and the volume, converts the dtype
        only where no value changes, and checks alignment to the write grid when it is
        enforced.
        """
        array = check_volume_data(data, idx.shape, self.num_channels)
        array = convert_dtype(array, self.dtype)
        if self.enforce_chunk_aligned_writes:
            self.assert_idx_is_write_aligned(idx)
        return array

    def pformat(self) -> str:
        """A few lines describing the volume: name, dtype, channels and every scale."""
        lines = [f"{self.name}: {self.dtype}, {self.num_channels} channel(s)"]
        for res in self.resolutions:
            lines.append(
                f"  {res.pformat()} nm: offset {self.get_voxel_offset(res).pformat()}, "
                f"size {self.get_dataset_size(res).pformat()}, "
                f"chunk {self.get_chunk_size(res).pformat()}"
            )
        return "\n".join(lines)


def warm_up_layers(layers: Iterable[Any]) -> None:
    """Call ``backend.warm_up()`` of every layer whose backend has one (see
    :meth:`VolumetricBackend.warm_up`); the flows' engine and composite backends use it."""
    for layer in layers:
        warm = getattr(getattr(layer, "backend", None), "warm_up", None)
        if callable(warm):
            warm()
