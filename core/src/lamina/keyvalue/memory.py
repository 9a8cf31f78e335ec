"""The in-memory key-value backend: the reference implementation of ``DBBackend``.

Rows live in a dict in this process, guarded by a lock. Every method is atomic: a
whole-row write (a replace) is never seen half done, and a projected write (a column
update) from one thread never loses the columns another thread set. Values are copied
in and out. The backend pickles *by value*: a worker process gets a copy of the rows
as they were when it was sent, and what it writes stays in the worker
(``capabilities.shared_across_processes`` is False).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lamina.backend import Capabilities, check_change_keys
from lamina.keyvalue.backend import (
    ColumnFilter,
    DBBackend,
    Row,
    apply_row_write,
    batch_count,
    check_clear_index,
    check_column_filter,
    check_return_columns,
    key_batch,
    prepare_rows,
    project_row,
    row_matches,
)
from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.layer import KeyValueLayer, build_db_layer
from lamina.keyvalue.values import copy_value

__all__ = ["MemoryKeyValueBackend", "build_memory_db_layer"]

_counter = itertools.count()


def _copy_row(row: Mapping[str, Any], columns: Sequence[str] | None) -> Row:
    return {k: copy_value(v) for k, v in project_row(row, columns).items()}


class MemoryKeyValueBackend(DBBackend):
    """Rows in this process's memory; thread-safe; pickles by value.

    Args:
        name: the store's name (default: a fresh ``mem://keyvalue-N``).
    """

    capabilities = Capabilities(shared_across_processes=False)

    def __init__(self, name: str | None = None) -> None:
        self._name = f"mem://keyvalue-{next(_counter)}" if name is None else str(name)
        self._lock = threading.Lock()
        # row key -> stored fields
        self._rows: dict[str, Row] = {}

    def __repr__(self) -> str:
        return f"MemoryKeyValueBackend(name={self._name!r})"

    # -- pickling by value ---------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            rows = {k: {f: copy_value(v) for f, v in r.items()} for k, r in self._rows.items()}
        return {"name": self._name, "rows": rows}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._name = state["name"]
        self._lock = threading.Lock()
        self._rows = state["rows"]

    # -- Backend -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    def with_changes(self, **changes: Any) -> MemoryKeyValueBackend:
        """Supported key: ``name`` (a new, empty store under that name)."""
        check_change_keys(self, changes, {"name"})
        if "name" in changes:
            return MemoryKeyValueBackend(name=str(changes["name"]))
        return self

    def delete(self) -> None:
        self.clear()

    # -- rows ----------------------------------------------------------------------------
    def read(self, idx: DBIndex) -> list[Row]:
        with self._lock:
            out = []
            for key in idx.row_col_keys:
                row = self._rows.get(key)
                out.append({} if row is None else _copy_row(row, idx.projection(key)))
            return out

    def write(self, idx: DBIndex, data: Sequence[Mapping[str, Any]]) -> None:
        """Replace the rows (``idx.col_keys is None``) or update their columns."""
        rows = prepare_rows(idx, data)  # checked and copied before the lock is taken
        replace = idx.col_keys is None
        with self._lock:
            for key, row in zip(idx.row_col_keys, rows, strict=True):
                new = apply_row_write(self._rows.get(key), row, replace)
                if new is not None:
                    self._rows[key] = new

    def clear(self, idx: DBIndex | None = None) -> None:
        if idx is None:
            with self._lock:
                self._rows.clear()
            return
        check_clear_index(idx)
        with self._lock:
            for key in idx.row_col_keys:
                self._rows.pop(key, None)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._rows

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def keys(self, column_filter: ColumnFilter | None = None, union: bool = True) -> list[str]:
        checked = check_column_filter(column_filter)
        with self._lock:
            return [k for k, row in self._rows.items() if row_matches(row, checked, union)]

    def query(
        self,
        column_filter: ColumnFilter | None = None,
        return_columns: Iterable[str] = (),
        union: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Row]:
        """See ``DBBackend.query``; ``timeout`` has nothing to bound in memory."""
        checked = check_column_filter(column_filter)
        columns = check_return_columns(return_columns)
        with self._lock:
            return {
                key: _copy_row(row, columns or None)
                for key, row in self._rows.items()
                if row_matches(row, checked, union)
            }

    def get_batch(
        self,
        batch_number: int,
        avg_rows_per_batch: int,
        return_columns: Iterable[str] = (),
    ) -> dict[str, Row]:
        columns = check_return_columns(return_columns)
        with self._lock:
            count = batch_count(batch_number, avg_rows_per_batch, len(self._rows))
            return {
                key: _copy_row(row, columns or None)
                for key, row in self._rows.items()
                if key_batch(key, count) == batch_number
            }


def build_memory_db_layer(
    name: str | None = None,
    readonly: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> KeyValueLayer:
    """Build a key-value layer over a new, empty in-memory backend.

    The rows live in this process, behind a lock (one layer serves many threads), and
    values are copied in and out. A pickled layer carries a copy of the rows, and what a
    worker process writes stays in the worker. The index forms and the collection
    methods are those of :func:`lamina.build_db_layer`.

    Args:
        name: the store's name (the layer's ``name``); default ``None``: a fresh
            ``mem://keyvalue-N``. Every call makes a new, empty store.
        readonly: refuse writes, ``del``, ``clear()`` and ``delete()`` with a
            :class:`~lamina.errors.ReadonlyLayerError` (an ``IOError``); default
            ``False``.
        index_procs: callables ``DBIndex -> DBIndex`` applied before every read, write,
            ``del`` and ``in``, each mapping every row to exactly one row.
        read_procs: data and joint processors of reads (they see a list of row dicts);
            ``read_procs[0]`` sits closest to the store.
        write_procs: the same for writes; ``write_procs[0]`` sits closest to the user.

    Returns:
        The :class:`~lamina.keyvalue.layer.KeyValueLayer`.
    """
    return build_db_layer(
        MemoryKeyValueBackend(name=name),
        readonly=readonly,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
