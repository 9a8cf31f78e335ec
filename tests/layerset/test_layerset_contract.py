"""The volumetric contract suite, member by member: each member's round trip through the set.

A volumetric set reads and writes ``{name: array}``, so it cannot pass the suite as
one volume. Instead each member is driven *through the set*: ``MemberView(set, key)``
is a ``VolumetricBackend`` whose ``read`` is ``set.read(idx)[key]`` (every member is
read, concurrently), whose ``write`` is ``set.write(idx, {key: data})`` (a partial
write), whose ``with_changes`` and ``delete`` are the set's, and which pickles as the
whole set. Only the data-form properties (dtype, channels) are the member's own: the
set's members differ on them on purpose (uint64 labels beside uint8 images…). The
spatial geometry, the options, ``supported_changes`` and the capabilities are the
set's answers, which the members agree on.

The raw hooks reach the member's storage directly (past the set and past the member's
own backend methods), so a set cannot pass by agreeing with itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
from lamina_layerset import VolumetricSetBackend
from layerset_support import (
    damage_chunk,
    dense_member,
    is_stored,
    memory_member,
    precomputed_member,
    raw_read,
    raw_write,
)

from lamina import VolumetricBackend, VolumetricIndex
from lamina.testing import TestVolume, VolumetricBackendTests


class MemberView(VolumetricBackend):
    """Member ``key`` of a volumetric set, seen through the set."""

    def __init__(self, layer_set: VolumetricSetBackend, key: str) -> None:
        self.layer_set = layer_set
        self.key = key

    @property
    def member(self) -> Any:
        return self.layer_set.layers[self.key].backend

    # what the member's data is like (members differ here by design)
    @property
    def dtype(self) -> Any:
        return self.member.dtype

    @property
    def num_channels(self) -> int:
        return int(self.member.num_channels)

    @property
    def name(self) -> str:  # a path-like name, so that with_changes(name=...) addresses one
        return str(self.member.name)

    # the set's answers
    @property
    def capabilities(self) -> Any:  # type: ignore[override]
        return self.layer_set.capabilities

    @property
    def supported_changes(self) -> Any:  # type: ignore[override]
        return self.layer_set.supported_changes

    @property
    def resolutions(self) -> Any:
        return self.layer_set.resolutions

    def get_voxel_offset(self, resolution: Any) -> Any:
        return self.layer_set.get_voxel_offset(resolution)

    def get_chunk_size(self, resolution: Any) -> Any:
        return self.layer_set.get_chunk_size(resolution)

    def get_dataset_size(self, resolution: Any) -> Any:
        return self.layer_set.get_dataset_size(resolution)

    def get_bounds(self, resolution: Any) -> Any:
        return self.layer_set.get_bounds(resolution)

    def get_chunk_aligned_index(self, idx: Any, mode: Any) -> Any:
        return self.layer_set.get_chunk_aligned_index(idx, mode)

    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        return self.layer_set.enforce_chunk_aligned_writes

    @property
    def is_local(self) -> bool:
        return self.layer_set.is_local

    def clear_cache(self) -> None:
        self.layer_set.clear_cache()

    # IO through the set
    def read(self, idx: VolumetricIndex) -> Any:
        data = self.layer_set.read(idx)
        assert set(data) == set(self.layer_set.layers), data.keys()
        return data[self.key]

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        self.layer_set.write(idx, {self.key: data})

    def with_changes(self, **changes: Any) -> MemberView:  # type: ignore[override]
        return MemberView(self.layer_set.with_changes(**changes), self.key)

    def delete(self) -> None:
        self.layer_set.delete()


class _MemberContract(VolumetricBackendTests):
    """The suite on member ``key`` of a set whose other members are ``others``."""

    key: ClassVar[str] = "img"
    #: the other members: name -> (dtype, num_channels), same spatial geometry
    others: ClassVar[dict[str, tuple[str, int]]] = {"seg": ("uint64", 1)}

    def member(self, volume: TestVolume, path: Path) -> Any:
        raise NotImplementedError

    def make_backend(self, volume: TestVolume, path: Path) -> MemberView:
        members = {self.key: self.member(volume, path / self.key)}
        for name, (dtype, channels) in self.others.items():
            other = attrs.evolve(volume, dtype=dtype, num_channels=channels)
            members[name] = self.member(other, path / name)
        return MemberView(VolumetricSetBackend(layers=members), self.key)

    def raw_read(self, backend: Any, idx: VolumetricIndex) -> Any:
        return raw_read(backend.member, idx)

    def raw_write(self, backend: Any, idx: VolumetricIndex, data: Any) -> None:
        raw_write(backend.member, idx, data)

    def is_stored(self, backend: Any, idx: VolumetricIndex) -> bool:
        return is_stored(backend.member, idx)

    def damage_stored_chunk(self, backend: Any, idx: VolumetricIndex) -> bool:
        return damage_chunk(backend.member, idx)

    def test_other_members_are_untouched(self, backend: MemberView) -> None:
        """A partial write through the set writes only the member it names."""
        idx, data = self.sample(0, backend)
        backend.write(idx, data)
        for name in self.others:
            assert not is_stored(backend.layer_set.layers[name].backend, idx)


class TestMemoryImg(_MemberContract):
    def member(self, volume: TestVolume, path: Path) -> Any:
        return memory_member(volume)


class TestMemorySeg(_MemberContract):
    key = "seg"
    others: ClassVar[dict[str, tuple[str, int]]] = {"img": ("uint8", 3), "aff": ("float32", 3)}

    def member(self, volume: TestVolume, path: Path) -> Any:
        return memory_member(volume)


class TestPrecomputedImg(_MemberContract):
    def member(self, volume: TestVolume, path: Path) -> Any:
        return precomputed_member(volume, path)


class TestPrecomputedSeg(_MemberContract):
    key = "seg"
    others: ClassVar[dict[str, tuple[str, int]]] = {"img": ("uint8", 1)}

    def member(self, volume: TestVolume, path: Path) -> Any:
        return precomputed_member(volume, path)


class TestUserBackendMember(_MemberContract):
    """Members built with ``build_volumetric_layer`` over a user's own
    ``lamina.VolumetricBackend`` subclass."""

    def member(self, volume: TestVolume, path: Path) -> Any:
        return dense_member(volume)


@pytest.mark.parametrize("cls", [TestMemoryImg, TestPrecomputedSeg])
def test_the_view_really_reads_through_the_set(cls: type[_MemberContract], tmp_path: Path) -> None:
    """Guard against a vacuous suite: the view's read is the set's read of that member."""
    view = cls().make_backend(TestVolume(), tmp_path)
    idx = VolumetricBackendTests.index(view, (0, 0, 0), (32, 32, 4))
    view.layer_set.write(idx, {view.key: 5})
    assert (view.read(idx) == 5).all()
    assert (raw_read(view.member, idx) == 5).all()
