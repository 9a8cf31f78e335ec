"""The IO backend protocol: how data is read and written for one standard index.

A backend knows nothing about what users put between ``[ ]`` (that is the index
scheme's job) nor about processors (the layer's job). It declares what it can do in
``capabilities``; the layer and the contract suites in :mod:`lamina.testing` consult
that declaration instead of failing late, and the suites test that it is true.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, Generic, Self, TypeVar

import attrs

__all__ = ["Backend", "Capabilities", "ChangeKeyError", "check_change_keys"]

IndexT = TypeVar("IndexT")
DataT = TypeVar("DataT")


@attrs.frozen(kw_only=True)
class Capabilities:
    """What a backend can do. Every flag is consulted by the core or the contract suites.

    Attributes:
        writable: ``write`` stores data. When False the layer refuses writes before any
            processor runs.
        deletable: ``delete`` removes the stored data.
        picklable: the backend pickles by its spec (path and options) and reopens its
            handles lazily in the process that unpickles it.
        shared_across_processes: what one process writes, another process sees (true of
            files and services, false of in-memory stores, which travel by value).
        thread_safe: one backend may be read and written from many threads at once.
        non_aligned_writes: writes need not follow the storage chunk grid (volumetric).
    """

    writable: bool = True
    deletable: bool = True
    picklable: bool = True
    shared_across_processes: bool = True
    thread_safe: bool = True
    non_aligned_writes: bool = True


class Backend(abc.ABC, Generic[IndexT, DataT]):
    """Reads and writes data for a standard index.

    Subclasses implement ``name``, ``read``, ``write``, ``with_changes`` and ``delete``
    and set ``capabilities``. ``with_changes`` returns a new backend; a key it does not
    know is an error (``check_change_keys`` gives the standard message), never ignored.
    """

    capabilities: Capabilities = Capabilities()

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """A human-readable identity of the stored data (usually its path)."""

    @abc.abstractmethod
    def read(self, idx: IndexT) -> DataT:
        """Return the data stored at ``idx``."""

    @abc.abstractmethod
    def write(self, idx: IndexT, data: DataT) -> None:
        """Store ``data`` at ``idx``."""

    @abc.abstractmethod
    def with_changes(self, **changes: Any) -> Self:
        """Return a copy with the given options changed; unknown keys raise ``KeyError``."""

    @abc.abstractmethod
    def delete(self) -> None:
        """Remove all data this backend stores."""


def check_change_keys(backend: object, changes: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise a ``KeyError`` naming every key of ``changes`` that is not in ``allowed``.

    The reference system raises ``KeyError`` for unknown ``with_changes`` keys; lamina
    keeps the type and says which keys exist.
    """
    allowed_set = set(allowed)
    unknown = sorted(set(changes) - allowed_set)
    if unknown:
        raise ChangeKeyError(
            f"{type(backend).__name__}.with_changes() got unknown key(s) {unknown}; "
            f"supported keys: {sorted(allowed_set)}"
        )


class ChangeKeyError(KeyError):
    """A ``with_changes`` key the backend does not know or honour (a ``KeyError``)."""

    def __str__(self) -> str:
        return str(self.args[0])
