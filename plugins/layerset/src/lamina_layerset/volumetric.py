"""Volumetric layer sets: volumetric layers indexed as one, data as ``{name: array}``.

``build_volumetric_layer_set({"img": img, "seg": seg}, default_desired_resolution=...)``
is a :class:`lamina.VolumetricLayer` over a :class:`VolumetricSetBackend`: the user's
index is converted once, at set level (every form of the volumetric scheme), and each
member reads the same :class:`~lamina.VolumetricIndex` through its own processors and
resampling. Reads return ``{name: (C, X, Y, Z) array}``; writes take a dict naming some
members, each value in that member's own form (an array, a tensor, a scalar fill).

Geometry is asked of the members and must agree only when it is asked: a set mixing
uint8 images and uint64 labels is the normal case, and its ``dtype`` raises a
:class:`~lamina_layerset.errors.MembersDisagreeError` listing each member's dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar, Unpack

import attrs
import numpy as np

from lamina.backend import Capabilities
from lamina.volumetric.backend import VolumetricBackend, VolumetricChanges
from lamina.volumetric.geometry import RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer
from lamina_layerset._members import (
    MemberPool,
    MemberSet,
    check_layers,
    check_max_workers,
    reraise,
)

__all__ = ["VolumetricSetBackend", "build_volumetric_layer_set"]

T = TypeVar("T")


def _volumetric_members(value: Any) -> dict[str, VolumetricLayer]:
    return check_layers(value, VolumetricLayer, "lamina VolumetricLayer")


def _res(resolution: RawVec3D) -> Vec3D[float]:
    return resolution if type(resolution) is Vec3D else Vec3D.from_seq(resolution).float()


@attrs.frozen
class VolumetricSetBackend(MemberSet, VolumetricBackend):
    """A volumetric backend whose members are volumetric layers (the reference's
    ``VolumetricSetBackend``).

    ``read(idx)`` returns ``{name: (C, X, Y, Z) array}`` (every member, read
    concurrently through its own processors); ``write(idx, data)`` takes
    ``{name: data}`` for some members and writes only those. Both are annotated
    ``Any``: the data form of this backend is the dict, and :meth:`prepare_data` (which
    the layer calls first on every write) puts the user's dict into it.

    Properties of the volume (``dtype``, ``num_channels``, ``resolutions``, voxel
    offsets, chunk and dataset sizes, bounds, chunk-aligned indices, ``is_local`` and
    the write options) are the members' common value, and a
    :class:`~lamina_layerset.errors.MembersDisagreeError` listing every member's value
    when they differ. The alignment checks (chunk and write grid) and the bounds check ask every
    member; ``clear_cache`` clears every member.
    """

    kind: ClassVar[str] = "VolumetricSet"

    _layers: dict[str, VolumetricLayer] = attrs.field(converter=_volumetric_members, alias="layers")
    _max_workers: int | None = attrs.field(
        default=None, converter=check_max_workers, alias="max_workers"
    )
    _pool: MemberPool = attrs.field(init=False, factory=MemberPool, eq=False, repr=False)

    @property
    def layers(self) -> Mapping[str, VolumetricLayer]:
        """The members, by name (read-only)."""
        return MappingProxyType(self._layers)

    @property
    def max_workers(self) -> int | None:
        return self._max_workers

    def _member_pool(self) -> MemberPool:
        return self._pool

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return self.member_capabilities()

    # -- identity -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """``VolumetricSet[img: <img's name>, seg: <seg's name>]``."""
        names = ", ".join(f"{k}: {m.name}" for k, m in self._layers.items())
        return f"{self.kind}[{names}]"

    def pformat(self) -> str:
        """The set's member names, then each member's description."""
        return self.member_lines()

    # -- what the volume is: the members' common answer ------------------------------------------
    def _common(self, what: str, question: Callable[[VolumetricBackend], T]) -> T:
        return self.agreed(what, question)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._common("dtype", lambda b: b.dtype)

    @property
    def num_channels(self) -> int:
        return self._common("num_channels", lambda b: b.num_channels)

    @property
    def resolutions(self) -> tuple[Vec3D[float], ...]:
        return self._common("resolutions", lambda b: tuple(b.resolutions))

    @property
    def volume_type(self) -> Literal["image", "segmentation"] | None:
        return self._common("volume_type", lambda b: b.volume_type)

    def get_voxel_offset(self, resolution: RawVec3D) -> Vec3D[int]:
        res = _res(resolution)
        return self._common(
            f"voxel offset at {res.pformat()} nm", lambda b: b.get_voxel_offset(res)
        )

    def get_chunk_size(self, resolution: RawVec3D) -> Vec3D[int]:
        res = _res(resolution)
        return self._common(f"chunk size at {res.pformat()} nm", lambda b: b.get_chunk_size(res))

    def get_dataset_size(self, resolution: RawVec3D) -> Vec3D[int]:
        res = _res(resolution)
        return self._common(
            f"dataset size at {res.pformat()} nm", lambda b: b.get_dataset_size(res)
        )

    def get_bounds(self, resolution: RawVec3D) -> VolumetricIndex:
        res = _res(resolution)
        return self._common(f"bounds at {res.pformat()} nm", lambda b: b.get_bounds(res))

    def get_chunk_aligned_index(
        self, idx: VolumetricIndex, mode: Literal["expand", "shrink"]
    ) -> VolumetricIndex:
        if mode not in ("expand", "shrink"):
            raise ValueError(f"mode must be 'expand' or 'shrink'; got {mode!r}")
        return self._common(
            f"chunk-aligned index ({mode}) of {idx.pformat()}",
            lambda b: b.get_chunk_aligned_index(idx, mode),
        )

    def get_write_grid_size(self, resolution: RawVec3D) -> Vec3D[int]:
        res = _res(resolution)
        return self._common(
            f"write grid at {res.pformat()} nm", lambda b: b.get_write_grid_size(res)
        )

    def describe_write_grid(self, resolution: RawVec3D) -> str:
        res = _res(resolution)
        return self._common(
            f"write grid at {res.pformat()} nm", lambda b: b.describe_write_grid(res)
        )

    def get_write_aligned_index(
        self, idx: VolumetricIndex, mode: Literal["expand", "shrink"]
    ) -> VolumetricIndex:
        if mode not in ("expand", "shrink"):
            raise ValueError(f"mode must be 'expand' or 'shrink'; got {mode!r}")
        return self._common(
            f"write-aligned index ({mode}) of {idx.pformat()}",
            lambda b: b.get_write_aligned_index(idx, mode),
        )

    @property
    def is_local(self) -> bool:
        return self._common("is_local", lambda b: b.is_local)

    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        return self._common(
            "enforce_chunk_aligned_writes", lambda b: b.enforce_chunk_aligned_writes
        )

    @property
    def overwrite_partial_chunks(self) -> bool:
        return self._common("overwrite_partial_chunks", lambda b: b.overwrite_partial_chunks)

    @property
    def allow_cache(self) -> bool:
        return self._common("allow_cache", lambda b: b.allow_cache)

    @property
    def use_compression(self) -> bool:
        return self._common("use_compression", lambda b: b.use_compression)

    # -- checks every member makes ---------------------------------------------------------------
    def is_chunk_aligned(self, idx: VolumetricIndex) -> bool:
        """Whether ``idx`` is on every member's chunk grid."""
        return all(
            bool(self.ask(k, "chunk alignment", lambda b: b.is_chunk_aligned(idx)))
            for k in self._layers
        )

    def assert_idx_is_chunk_aligned(self, idx: VolumetricIndex) -> None:
        """A ``ValueError`` naming every member whose chunk grid ``idx`` is not on, with
        that member's own description of its grid and the nearest aligned boxes."""
        self._assert_every("chunk alignment", lambda b: b.assert_idx_is_chunk_aligned(idx))

    def is_write_aligned(self, idx: VolumetricIndex) -> bool:
        """Whether ``idx`` is on every member's write grid."""
        return all(
            bool(self.ask(k, "write alignment", lambda b: b.is_write_aligned(idx)))
            for k in self._layers
        )

    def assert_idx_is_write_aligned(self, idx: VolumetricIndex) -> None:
        """A ``ValueError`` naming every member whose write grid ``idx`` is not on."""
        self._assert_every("write alignment", lambda b: b.assert_idx_is_write_aligned(idx))

    def is_within_bounds(self, idx: VolumetricIndex) -> bool:
        """Whether ``idx`` is inside every member's bounds."""
        return all(
            bool(self.ask(k, "bounds", lambda b: b.is_within_bounds(idx))) for k in self._layers
        )

    def assert_idx_within_bounds(self, idx: VolumetricIndex, remedy: str) -> None:
        """A ``ValueError`` naming every member whose bounds ``idx`` reaches outside."""
        self._assert_every("bounds", lambda b: b.assert_idx_within_bounds(idx, remedy))

    def _assert_every(self, what: str, check: Any) -> None:
        failures: dict[str, Exception] = {}
        for key, member in self._layers.items():
            try:
                check(member.backend)
            except Exception as exc:
                failures[key] = exc
        if not failures:
            return
        details = "; ".join(f"{self.member_label(k)}: {exc}" for k, exc in failures.items())
        reraise(
            next(iter(failures.values())),
            f"{self.label}: the {what} check failed for member(s) {list(failures)}: {details}",
        )

    def clear_cache(self) -> None:
        """Clear every member's cache."""
        for key in self._layers:
            self.ask(key, "cache", lambda b: b.clear_cache())

    # -- IO --------------------------------------------------------------------------------------
    def read(self, idx: VolumetricIndex) -> Any:
        """``{name: (C, X, Y, Z) array}`` of every member at ``idx``."""
        return self.read_members(idx)

    def prepare_data(self, idx: VolumetricIndex, data: Any) -> Any:
        """The user's ``{name: data}`` in the set's form, before any write processor.

        A non-dict or an empty dict is a ``ValueError``, a key that is not a member an
        :class:`~lamina_layerset.errors.UnknownMemberError` (a ``KeyError``); both name
        the keys given and the members. Each value becomes its member's own form
        (``member.backend.prepare_data``): scalars fill the region in that member's
        dtype and channels, shapes and channel counts are checked.
        """
        return self.prepare_members(idx, data)

    def check_write(self, idx: VolumetricIndex, data: Any) -> Any:
        """``data`` checked for a write at ``idx`` before any member is written (see
        :meth:`prepare_data`; readonly members are refused, and members writing straight
        to their backend run its ``check_write``: lossless dtype, chunk alignment)."""
        return self.checked_write(idx, data)

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        """Write ``{name: data}``: only the members named, concurrently, each through its
        own processors. Nothing is written when any check fails; a member failing while
        writing is named with the members that were and were not written."""
        self.write_members(idx, data)

    # -- changes and lifetime --------------------------------------------------------------------
    @property
    def supported_changes(self) -> frozenset[str]:  # type: ignore[override]
        """The ``with_changes`` keys every member honours (an instance property here:
        it depends on the members)."""
        honoured = [
            frozenset(self.ask(key, "with_changes keys", lambda b: b.supported_changes))
            for key in self._layers
        ]
        return frozenset.intersection(*honoured)

    def check_changes(self, changes: dict[str, Any]) -> None:
        """Raise ``KeyError`` naming the member(s) that do not honour a key."""
        for key in self._layers:
            self.ask(key, "with_changes keys", lambda b: b.check_changes(changes))

    def with_changes(self, **changes: Unpack[VolumetricChanges]) -> VolumetricSetBackend:  # type: ignore[override]
        """A new set whose every member's backend has ``with_changes(**changes)``;
        ``name=X`` gives member ``k`` the name ``X/k``, as in the reference. Every member
        checks the keys before any member changes."""
        return attrs.evolve(self, layers=self.changed_members(dict(changes)))

    def delete(self) -> None:
        """Delete every member's data."""
        self.delete_members()


def build_volumetric_layer_set(
    layers: Mapping[str, VolumetricLayer],
    readonly: bool = False,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
    *,
    max_workers: int | None = None,
) -> VolumetricLayer:
    """Build a volumetric layer set over ``layers`` (``{name: VolumetricLayer}``).

    The result is a :class:`lamina.VolumetricLayer` indexed in every form of the
    volumetric scheme, with ``index_resolution``, ``default_desired_resolution`` and
    ``allow_slice_rounding`` applied once, at set level (the members' own ones do not
    apply; their processors and ``data_resolution`` do). Reads return
    ``{name: (C, X, Y, Z) array}``; ``layer[idx] = {"img": data}`` writes only the
    members named. Set-level processors (``ROIMaskProcessor``…) see the whole dict.

    Args:
        layers: the members by name.
        readonly: refuse writes and delete through the set.
        default_desired_resolution: the resolution of what is read when the index does
            not give one.
        index_resolution: the resolution slices are counted at.
        allow_slice_rounding: widen regions that are not whole voxels instead of raising.
        index_procs, read_procs, write_procs: set-level processors.
        max_workers: threads reading and writing the members at once (default
            min(#members, 8); 1 reads them one after another).
    """
    backend = VolumetricSetBackend(layers=layers, max_workers=max_workers)
    return build_volumetric_layer(
        backend,
        default_desired_resolution=default_desired_resolution,
        index_resolution=index_resolution,
        readonly=readonly,
        allow_slice_rounding=allow_slice_rounding,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
