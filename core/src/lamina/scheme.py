"""The index-scheme protocol: what a user may put between ``[ ]``.

A scheme turns a *user index* (slices, a box, a key, a list of keys, …) into the
backend's *standard index*, converts the data a user writes into what the backend
takes, and shapes what a read returns (a key-value read of one key returns a value,
of many keys a list). Schemes are shared by every backend with the same kind of
index: the volumetric scheme serves precomputed, HDF5, layer-set and range-mapped
volumes alike.

The core ships :class:`IdentityScheme` (the user index *is* the standard index);
the volumetric and key-value schemes live in :mod:`lamina.volumetric` and
:mod:`lamina.keyvalue`.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

import attrs

__all__ = ["IdentityScheme", "IndexScheme"]

IndexT = TypeVar("IndexT")


class IndexScheme(Protocol[IndexT]):
    """Converts user indices and data for one kind of standard index."""

    def to_index(self, user_idx: Any) -> IndexT:
        """Return the standard index for ``user_idx``; raise a clear error if it is malformed."""
        ...

    def prepare_write(self, user_idx: Any, idx: IndexT, data: Any, backend: Any) -> Any:
        """Return ``data`` as the backend takes it, checked against ``idx`` (and what
        ``backend`` declares, e.g. its channel count) before anything is written."""
        ...

    def shape_read(self, user_idx: Any, idx: IndexT, data: Any) -> Any:
        """Return what ``layer[user_idx]`` gives back, from the data read at ``idx``."""
        ...


@attrs.frozen
class IdentityScheme(Generic[IndexT]):
    """The user index is the standard index and data passes unchanged."""

    def to_index(self, user_idx: Any) -> IndexT:
        return user_idx  # type: ignore[no-any-return]

    def prepare_write(self, user_idx: Any, idx: IndexT, data: Any, backend: Any) -> Any:
        return data

    def shape_read(self, user_idx: Any, idx: IndexT, data: Any) -> Any:
        return data
