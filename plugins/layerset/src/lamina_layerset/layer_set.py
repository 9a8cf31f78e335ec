"""Generic layer sets: any layers (volumetric, key-value…) read and written as one.

``build_layer_set({"img": img_layer, "meta": meta_layer})[idx]`` reads every member
at ``idx`` (concurrently) and returns ``{"img": ..., "meta": ...}``; ``layer_set[idx] =
{"img": data}`` writes only the members named, as in the reference system.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Self

import attrs

from lamina.backend import Backend, Capabilities
from lamina.layer import Layer
from lamina_layerset._members import MemberPool, MemberSet, check_layers, check_max_workers

__all__ = ["LayerSet", "LayerSetBackend", "build_layer_set"]


def _generic_members(value: Any) -> dict[str, Layer[Any, Any]]:
    return check_layers(value, Layer, "lamina Layer")


@attrs.frozen
class LayerSetBackend(MemberSet, Backend[Any, dict[str, Any]]):
    """The backend of a :class:`LayerSet`: ``layers`` maps member names to layers.

    ``read(idx)`` returns ``{name: member.read_with_procs(idx)}`` for every member, read
    concurrently with the same ``idx`` (members' index and read processors apply;
    their user-index conversion does not). ``write(idx, data)`` takes a dict naming
    some members and writes only those (``member.write_with_procs``); a non-dict, an
    empty dict, an unknown key or a readonly member is refused before anything is
    written. ``max_workers`` bounds the threads (default min(#members, 8); 1 = one
    member after another).
    """

    kind: ClassVar[str] = "LayerSet"

    _layers: dict[str, Layer[Any, Any]] = attrs.field(converter=_generic_members, alias="layers")
    _max_workers: int | None = attrs.field(
        default=None, converter=check_max_workers, alias="max_workers"
    )
    _pool: MemberPool = attrs.field(init=False, factory=MemberPool, eq=False, repr=False)

    @property
    def layers(self) -> Mapping[str, Layer[Any, Any]]:
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

    @property
    def name(self) -> str:
        """``LayerSet[a, b]``: the member names."""
        return self.label

    def read(self, idx: Any) -> dict[str, Any]:
        return self.read_members(idx)

    def prepare_data(self, idx: Any, data: Any) -> dict[str, Any]:
        """The write data checked (a dict naming only members, not empty) and each
        volumetric member's value in that member's form; the set layer calls this before
        any write processor runs."""
        return self.prepare_members(idx, data)

    def write(self, idx: Any, data: Any) -> None:
        """Write ``data`` (``{member: value}``): only the members named."""
        self.write_members(idx, data)

    def with_changes(self, **changes: Any) -> Self:
        """``with_changes(**changes)`` forwarded to every member's backend; ``name=X``
        gives member ``k`` the name ``X/k``."""
        return attrs.evolve(self, layers=self.changed_members(changes))

    def delete(self) -> None:
        """Delete every member's data."""
        self.delete_members()

    def pformat(self) -> str:
        """The set's name, then one block per member."""
        return self.member_lines()


@attrs.frozen(kw_only=True)
class LayerSet(Layer[Any, dict[str, Any]]):
    """A layer whose data is ``{member name: member data}`` (the reference's ``LayerSet``).

    ``layer_set[idx]`` reads every member; ``layer_set[idx] = {"a": ...}`` writes the
    members named. Set-level processors see and return the whole dict.
    """

    backend: LayerSetBackend

    @property
    def layers(self) -> Mapping[str, Layer[Any, Any]]:
        """The members, by name."""
        return self.backend.layers

    def write_with_procs(self, idx: Any, data: Any) -> None:
        """Write ``{member: data}`` at ``idx``; the dict is checked before any processor."""
        self._check_writable()
        super().write_with_procs(idx, self.backend.prepare_data(idx, data))

    def pformat(self) -> str:
        return self.backend.pformat()


def build_layer_set(
    layers: Mapping[str, Layer[Any, Any]],
    readonly: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
    *,
    max_workers: int | None = None,
) -> LayerSet:
    """Build a generic layer set over ``layers`` (``{name: layer}``, any lamina layers).

    Args:
        layers: the members by name.
        readonly: refuse writes and delete through the set.
        index_procs: index processors applied to the index before the members see it.
        read_procs: processors of the read ``{name: data}`` dict (e.g. ``ROIMaskProcessor``).
        write_procs: processors of the written dict, before the members see it.
        max_workers: threads reading and writing the members at once (default
            min(#members, 8); 1 reads them one after another).
    """
    return LayerSet(
        backend=LayerSetBackend(layers=layers, max_workers=max_workers),
        readonly=readonly,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
