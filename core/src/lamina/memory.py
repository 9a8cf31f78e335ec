"""The in-memory object backend: the reference implementation of the backend protocol.

It maps any hashable standard index to any Python object, lives in this process only
and pickles *by value* (a copy of its contents travels with it, so a worker process
reads what was there when it was sent; what the worker writes stays in the worker —
``capabilities.shared_across_processes`` is False). Read it as the worked example for
writing a backend: a name, ``read``/``write``, a ``with_changes`` that refuses unknown
keys, ``delete``, and honest capabilities.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable
from typing import Any

import attrs

from lamina.backend import Backend, Capabilities, check_change_keys
from lamina.layer import Layer

__all__ = ["MemoryBackend", "build_memory_layer"]

_counter = itertools.count()


def _default_name() -> str:
    return f"mem://objects-{next(_counter)}"


@attrs.frozen
class MemoryBackend(Backend[Hashable, Any]):
    """A dict in this process's memory; the index is the key, the data the value."""

    capabilities = Capabilities(shared_across_processes=False)

    _name: str = attrs.field(factory=_default_name, alias="name")
    _store: dict[Hashable, Any] = attrs.field(factory=dict, eq=False, repr=False, alias="store")

    @property
    def name(self) -> str:
        return self._name

    def read(self, idx: Hashable) -> Any:
        try:
            return self._store[idx]
        except KeyError:
            raise KeyError(f"{idx!r} is not stored in {self._name!r}") from None
        except TypeError as exc:  # unhashable index
            raise TypeError(f"index must be hashable; got {type(idx).__name__}: {exc}") from None

    def write(self, idx: Hashable, data: Any) -> None:
        self._store[idx] = data

    def with_changes(self, **changes: Any) -> MemoryBackend:
        """Supported key: ``name`` (a new, empty store under that name)."""
        check_change_keys(self, changes, {"name"})
        if "name" in changes:
            return MemoryBackend(name=str(changes["name"]))
        return self

    def delete(self) -> None:
        self._store.clear()

    def __contains__(self, idx: Hashable) -> bool:
        return idx in self._store

    def __len__(self) -> int:
        return len(self._store)


def build_memory_layer(
    name: str | None = None,
    readonly: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> Layer[Hashable, Any]:
    """Build a layer over a new in-memory object store (keys in, objects out).

    ``layer[key] = obj`` stores ``obj`` itself (not a copy) under any hashable ``key``;
    ``layer[key]`` returns it. A key never written is a ``KeyError``, an unhashable one a
    ``TypeError``. The store lives in this process only: a pickled layer carries a copy
    of its contents, and what a worker process writes stays in the worker. Handy for
    tests, caches and examples.

    Args:
        name: the store's name (the layer's ``name``); default ``None``: a fresh
            ``mem://objects-N``. Every call makes a new, empty store, even under a name
            used before.
        readonly: refuse writes and ``delete()`` with a
            :class:`~lamina.errors.ReadonlyLayerError` (an ``IOError``), raised before
            any processor runs; default ``False``.
        index_procs: callables ``key -> key`` applied in list order before every read
            and write (e.g. to prefix the keys); a joint processor here is a
            ``TypeError``.
        read_procs: data processors (``obj -> obj``) and joint index-data processors
            of reads, in the order of :func:`lamina.build_layer` (``read_procs[0]``
            closest to the store).
        write_procs: the same for writes (``write_procs[0]`` closest to the user).

    Returns:
        The :class:`~lamina.layer.Layer`.
    """
    backend = MemoryBackend() if name is None else MemoryBackend(name=name)
    return Layer(
        backend=backend,
        readonly=readonly,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
