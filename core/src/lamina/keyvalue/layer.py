"""``KeyValueLayer`` and ``build_db_layer``: a layer of rows and columns.

The layer reads and writes through :class:`~lamina.keyvalue.scheme.KeyValueScheme`
(user index forms, result shaping, write data) and the processors, in the core's
processor order (index processors, then joint processors; read and write processors
see the backend's data, a list of row dicts aligned with the index). Index processors
of a key-value layer must map each row to exactly one row (e.g. prefix the keys).

Beyond ``[ ]``, the layer offers the reference's collection methods. What is fixed
against the reference, where these bypassed ``readonly`` and the index processors:

* ``del layer[idx]`` and ``clear()`` are refused on a readonly layer (a
  :class:`~lamina.errors.ReadonlyLayerError`) before anything is deleted;
  ``del layer[idx]`` runs the index processors, like reads and writes do.
* ``key in layer`` runs the index processors before asking the backend.
* ``get(idx, default)`` is a read, ``layer[idx]`` (so index *and* read processors
  run), giving ``default`` where that read finds no row or column
  (:class:`~lamina.keyvalue.scheme.MissingKeyError`). One round trip, not two.

``clear()``, ``len``, ``keys``, ``query`` and ``get_batch`` address the whole backend:
index processors map indices, not collections, so they do not apply there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from lamina.keyvalue.backend import ColumnFilter, DBBackend, Row
from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.scheme import KeyValueScheme, MissingKeyError, row_key
from lamina.layer import Layer

__all__ = ["KeyValueLayer", "build_db_layer"]


@attrs.frozen(kw_only=True)
class KeyValueLayer(Layer[DBIndex, list[Row]]):
    """A layer over a :class:`~lamina.keyvalue.backend.DBBackend`, indexed by row keys."""

    backend: DBBackend
    scheme: KeyValueScheme = attrs.field(factory=KeyValueScheme, init=False, repr=False)

    # -- [ ] ------------------------------------------------------------------------------
    def __setitem__(self, user_idx: Any, data: Any) -> None:
        """Write rows: a whole-row index (``"k"``, ``["k0", "k1"]``) *replaces* each row
        with exactly the fields given (``{}`` is refused: use ``del``); a column index
        (``("k", "c")``, ``(keys, cols)``) *updates* only those columns. Of a repeated
        key, the last row (per column, the last value) wins."""
        self._check_writable()
        idx = self.scheme.to_index(user_idx)
        rows = self.scheme.prepare_write(user_idx, idx, data, self.backend)
        if not rows:  # an empty write is a no-op: neither processors nor backend run
            return
        self.write_with_procs(idx, rows)

    def __delitem__(self, user_idx: Any) -> None:
        """Delete the indexed rows, whole (absent rows are ignored)."""
        self._check_writable()
        idx = self.scheme.to_index(user_idx)
        if idx.projected:
            raise ValueError(
                f"del deletes whole rows, but {user_idx!r} names the columns "
                f"{list(idx.col_keys or ())}; use del layer[keys] to delete the rows "
                "(deleting single columns is not supported)"
            )
        for index_proc in self.index_procs:
            idx = index_proc(idx)
        if idx.len:
            self.backend.clear(idx)

    def clear(self) -> None:
        """Delete every row of the backend."""
        self._check_writable()
        self.backend.clear()

    # -- existence and size ---------------------------------------------------------------
    def __contains__(self, key: object) -> bool:
        """Whether row ``key`` (a str, or an int taken as its decimal str) is stored,
        after the index processors."""
        idx = DBIndex({row_key(key): ("value",)})
        for index_proc in self.index_procs:
            idx = index_proc(idx)
        return idx.len > 0 and all(k in self.backend for k in idx.row_col_keys)

    def __len__(self) -> int:
        return len(self.backend)

    def __bool__(self) -> bool:
        # A layer with no rows is still a layer: ``if layer:`` must not mean "has rows".
        return True

    def get(self, idx: Any, default: Any = None) -> Any:
        """``layer[idx]``, or ``default`` where the read finds no row or column."""
        try:
            return self[idx]
        except MissingKeyError:
            return default

    # -- the collection -------------------------------------------------------------------
    def keys(self, column_filter: ColumnFilter | None = None, union: bool = True) -> list[str]:
        """The keys of the rows matching ``column_filter`` (see ``DBBackend``)."""
        return self.backend.keys(column_filter=column_filter, union=union)

    def query(
        self,
        column_filter: ColumnFilter | None = None,
        return_columns: Iterable[str] = (),
        union: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Row]:
        """The rows matching ``column_filter``, by key, with ``return_columns`` (empty: all)."""
        return self.backend.query(
            column_filter=column_filter,
            return_columns=return_columns,
            union=union,
            timeout=timeout,
        )

    def get_batch(
        self,
        batch_number: int,
        avg_rows_per_batch: int,
        return_columns: Iterable[str] = (),
    ) -> dict[str, Row]:
        """Batch ``batch_number`` of a random partition of the rows (see ``DBBackend``)."""
        return self.backend.get_batch(batch_number, avg_rows_per_batch, return_columns)


def build_db_layer(
    backend: DBBackend,
    readonly: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> KeyValueLayer:
    """Build a key-value layer over ``backend``: rows of named columns, indexed by row key.

    ``layer["k"]`` reads the row's ``"value"`` column (the whole row when it has none),
    ``layer["k", "c"]`` one column, ``layer[["k0", "k1"]]`` several rows' values;
    writes take the same forms (every form is listed in :mod:`lamina.keyvalue.scheme`).
    Beyond ``[ ]`` the layer offers ``del layer[idx]``, ``key in layer``, ``len``,
    ``get``, ``keys``, ``query``, ``get_batch`` and ``clear``.

    Args:
        backend: the :class:`~lamina.keyvalue.backend.DBBackend` holding the rows (the
            in-memory one, DynamoDB's, a range map...); any other backend is a
            ``TypeError``.
        readonly: refuse writes, ``del layer[idx]``, ``clear()`` and ``delete()`` with a
            :class:`~lamina.errors.ReadonlyLayerError` (an ``IOError``) before anything
            changes; default ``False``.
        index_procs: callables ``DBIndex -> DBIndex`` applied in list order before every
            read, write, ``del`` and ``in``; each must map every row to exactly one row
            (e.g. prefix the keys). They do not apply to ``clear``, ``len``, ``keys``,
            ``query`` and ``get_batch``, which address the whole backend.
        read_procs: data processors and joint index-data processors of reads; they see
            the backend's data, a list of row dicts aligned with the index's rows.
            ``read_procs[0]`` sits closest to the backend (the order of
            :func:`lamina.build_layer`).
        write_procs: the same for writes, before the backend sees the rows;
            ``write_procs[0]`` sits closest to the user.

    Returns:
        The :class:`~lamina.keyvalue.layer.KeyValueLayer`.
    """
    if not isinstance(backend, DBBackend):
        raise TypeError(
            f"build_db_layer needs a key-value backend (a DBBackend); got {type(backend).__name__}"
        )
    return KeyValueLayer(
        backend=backend,
        readonly=readonly,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
