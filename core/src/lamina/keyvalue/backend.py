"""The key-value backend protocol (``DBBackend``) and the rules every such backend shares.

A key-value backend stores *rows*: a row key (str) → a dict of fields (column name →
value, see :mod:`lamina.keyvalue.values`). Its standard index is a
:class:`~lamina.keyvalue.index.DBIndex`; its data is a list of row dicts aligned with
the index's row order.

Semantics every backend keeps (the contract suite
:class:`lamina.testing.KeyValueBackendTests` checks each one):

* **read** returns one dict per indexed row, in index order. A row that is not stored
  reads as ``{}``. An unprojected index returns every stored field; a projected one
  (``idx.col_keys`` given) only the row's listed columns that are stored.
* **write** has two kinds, told apart by the index:

  - ``idx.col_keys is None`` (an *unprojected*, whole-row index): each given row dict
    **replaces** the stored row of the same position. The stored row becomes exactly
    the fields given (every one of them is stored, none dropped); fields of the old row that
    are not given are gone; a row that did not exist is created. An empty row dict
    ``{}`` is refused (a whole row has at least one field; rows are deleted with
    ``clear(idx)``, i.e. ``del layer[key]``). Such writes need no read, so a backend
    can send them in its store's batch write as they are (DynamoDB's
    ``BatchWriteItem`` of 25 ``PutRequest`` items, which replace items).
  - ``idx.col_keys`` given (a *projected* index): each given row dict **updates** the
    stored row: the fields given are set, every other stored field is kept, a row
    that did not exist is created with just the fields given, and ``{}`` changes
    nothing (and creates no row). A field outside the row's columns
    (``idx.rows_col_keys``) is refused, never dropped. A backend may implement this as
    a read-modify-write or as a native column update (DynamoDB ``UpdateItem`` with
    ``SET``); it is *not* batched like whole-row writes on every backend, so prefer
    whole-row writes for bulk loads. Each row's update should be atomic (a native
    update, or a conditional read-modify-write) so that concurrent updates of other
    columns of the same row are not lost; the in-memory backend is.

  For both kinds, the number of rows given must equal the number indexed and values
  are checked — all before anything is written (:func:`prepare_rows` does these
  checks and refuses ``{}`` whole rows). An index never repeats a row key; the layer
  resolves repeated keys of one user write before the backend sees them (the last
  row given wins for whole rows; per column, the last value for projected writes).
  A row exists only while it has at least one field. :func:`apply_row_write` gives
  the stored row after a write, for backends that compute it themselves.
* **clear(idx)** deletes the indexed rows whole (absent ones are ignored); a projected
  index is refused rather than deleting more than the columns it names.
  **clear()** deletes every row.
* **keys / query** filter with ``column_filter``: a mapping column → accepted values
  (a single value means a one-value list). A row matches a column when its field has
  the same type as and equals one of the values (``1``, ``1.0`` and ``True`` differ);
  ``union=True`` keeps rows matching *any* column, ``union=False`` rows matching
  *every* column. No filter matches every row. ``return_columns`` (empty: all)
  projects the returned rows.
* **get_batch**: ``get_batch(b, n)`` returns batch ``b`` of a partition of the rows
  into ``max(1, ceil(len / n))`` batches (:func:`batch_count`). Which batch a row is in
  depends only on its key and the number of batches — a backend's native partition
  (DynamoDB's parallel-scan segments) or :func:`key_batch`, a hash of the key. So
  the batches partition the rows at one moment; a row keeps its batch when it is
  rewritten (whole or by columns) and moves only when the row count changes the
  number of batches. Sizes follow the key hash: ``n`` on average, not exactly. A
  batch number outside ``[0, number of batches)`` is an ``IndexError``. (The
  reference stamps every row with a hidden random field ``_id_nonunique`` instead:
  one attribute more per stored item, rows that move on every rewrite, and rows
  written by other tools in no batch — lamina stores no hidden field.)
"""

from __future__ import annotations

import abc
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lamina.backend import Backend
from lamina.keyvalue.index import DBIndex, check_column_name
from lamina.keyvalue.values import normalize_value

__all__ = [
    "ColumnFilter",
    "DBBackend",
    "Row",
    "apply_row_write",
    "batch_count",
    "check_clear_index",
    "check_column_filter",
    "check_return_columns",
    "key_batch",
    "prepare_rows",
    "project_row",
    "row_matches",
]

#: A row as a backend returns it: field name → value.
Row = dict[str, Any]
#: ``column_filter`` of ``keys`` and ``query``: column → accepted values.
ColumnFilter = Mapping[str, Any]

_FILTER_SCALARS = (bool, int, float, str, bytes)


def prepare_rows(idx: DBIndex, rows: Any) -> list[Row]:
    """Check the rows of a write against ``idx`` and return normalised copies.

    Raises ``ValueError`` (before anything is written) when ``rows`` is not a list of
    dicts, when the number of rows differs from the number indexed, when a field name is
    not a non-empty str, when a whole-row (unprojected) index is
    given an empty row ``{}``, when a projected index is given a field outside the
    row's columns, or when a value cannot be stored.
    """
    if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Sequence):
        raise ValueError(
            "key-value backends write a list of row dicts (one per indexed row); "
            f"got {type(rows).__name__}"
        )
    if len(rows) != idx.len:
        raise ValueError(
            f"{len(rows)} row(s) given for {idx.len} indexed row(s); give exactly one row "
            "dict per indexed row"
        )
    out: list[Row] = []
    for key, row in zip(idx.row_col_keys, rows, strict=True):
        if not isinstance(row, Mapping):
            raise ValueError(
                f"row {key!r}: a row must be a dict of fields; got {type(row).__name__}"
            )
        allowed = idx.projection(key)
        if allowed is None and not row:
            raise ValueError(
                f"row {key!r}: an empty row cannot be written: a whole-row write replaces "
                "the row with exactly the fields given. To delete a row use "
                "del layer[key] (backend.clear(idx)); to leave its fields as they are, "
                "do not write it"
            )
        clean: Row = {}
        for field, value in row.items():
            try:
                check_column_name(field, "field")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"row {key!r}: {exc}") from None
            if allowed is not None and field not in allowed:
                extra = sorted(str(f) for f in row if f not in allowed)
                raise ValueError(
                    f"row {key!r}: field(s) {extra} are outside the columns of the index "
                    f"{list(allowed)}; index those columns too (or index the row without "
                    "columns to write any field)"
                )
            clean[field] = normalize_value(value, f"row {key!r}, field {field!r}")
        out.append(clean)
    return out


def apply_row_write(stored: Mapping[str, Any] | None, row: Row, replace: bool) -> Row | None:
    """The stored row after writing ``row``, or ``None`` if nothing is to be stored (a
    projected ``{}`` on an absent row).

    ``row`` comes from :func:`prepare_rows`; ``replace`` is ``idx.col_keys is None``.
    A replace is ``row`` itself; an update is the stored row with ``row``'s fields set.
    Neither ``stored`` nor ``row`` is changed; values are not copied.
    """
    if replace:
        if not row:  # prepare_rows refuses it; never replace a row by nothing
            raise ValueError("an empty row cannot be written whole; delete the row instead")
        return dict(row)
    if stored is None:
        return dict(row) if row else None
    return {**stored, **row}


def check_clear_index(idx: DBIndex) -> None:
    """Refuse clearing a projected index: ``clear`` deletes whole rows, not columns."""
    if idx.projected:
        raise ValueError(
            f"clear deletes whole rows, but the index names only the columns "
            f"{list(idx.col_keys or ())}; index the rows without columns to delete them "
            "(deleting single columns is not supported)"
        )


def check_column_filter(column_filter: ColumnFilter | None) -> dict[str, tuple[Any, ...]]:
    """Return ``column_filter`` as column → tuple of accepted values, checked.

    Accepted values are scalars (None, bool, int, float, str, bytes; numpy scalars are
    converted); a single value stands for a one-value list.
    """
    if column_filter is None:
        return {}
    if not isinstance(column_filter, Mapping):
        raise ValueError(
            "column_filter must be a mapping column -> accepted values; "
            f"got {type(column_filter).__name__}"
        )
    out: dict[str, tuple[Any, ...]] = {}
    for column, values in column_filter.items():
        try:
            check_column_name(column)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column_filter: {exc}") from None
        many = isinstance(values, list | tuple | set | frozenset)
        items = tuple(values) if many else (values,)
        checked = []
        for value in items:
            value = normalize_value(value, f"column_filter[{column!r}]")
            if value is not None and type(value) not in _FILTER_SCALARS:
                raise ValueError(
                    f"column_filter[{column!r}]: filter values are None, bool, int, float, "
                    f"str or bytes; got {type(value).__name__}"
                )
            checked.append(value)
        out[column] = tuple(checked)
    return out


def _value_matches(stored: Any, wanted: Any) -> bool:
    return type(stored) is type(wanted) and bool(stored == wanted)


def row_matches(
    row: Mapping[str, Any], column_filter: dict[str, tuple[Any, ...]], union: bool
) -> bool:
    """Whether a stored row passes a filter checked by :func:`check_column_filter`."""
    if not column_filter:
        return True
    hits = (
        column in row and any(_value_matches(row[column], w) for w in wanted)
        for column, wanted in column_filter.items()
    )
    return any(hits) if union else all(hits)


def check_return_columns(return_columns: Iterable[str]) -> tuple[str, ...]:
    """Return ``return_columns`` as a tuple of checked column names (empty: all fields)."""
    if isinstance(return_columns, str):
        return (check_column_name(return_columns),)
    return tuple(check_column_name(c) for c in return_columns)


def project_row(row: Mapping[str, Any], columns: Sequence[str] | None) -> Row:
    """The fields of a stored row; only ``columns`` unless it is ``None``. Values are not
    copied. (``return_columns=()`` means every field: pass ``columns or None``.)"""
    if columns is not None:
        return {c: row[c] for c in columns if c in row}
    return dict(row)


def batch_count(batch_number: int, avg_rows_per_batch: int, total: int) -> int:
    """The number of batches, ``max(1, ceil(total / avg_rows_per_batch))``, when ``total``
    rows are stored, after checking that ``batch_number`` is one of them.

    Raises ``IndexError`` for a batch number outside ``[0, number of batches)`` and
    ``ValueError`` for a batch number or size that is not an int, or a size below 1.
    """
    if isinstance(batch_number, bool) or not isinstance(batch_number, int):
        raise ValueError(f"batch_number must be an int; got {type(batch_number).__name__}")
    if isinstance(avg_rows_per_batch, bool) or not isinstance(avg_rows_per_batch, int):
        raise ValueError(
            f"avg_rows_per_batch must be an int; got {type(avg_rows_per_batch).__name__}"
        )
    if avg_rows_per_batch < 1:
        raise ValueError(f"avg_rows_per_batch must be at least 1; got {avg_rows_per_batch}")
    num_batches = max(1, math.ceil(total / avg_rows_per_batch))
    if not 0 <= batch_number < num_batches:
        raise IndexError(
            f"batch {batch_number} does not exist: {total} row(s) in batches of "
            f"{avg_rows_per_batch} on average make {num_batches} batch(es), "
            f"numbered 0 to {num_batches - 1}"
        )
    return num_batches


def key_batch(key: str, num_batches: int) -> int:
    """The batch of row ``key`` among ``num_batches``: a 64-bit BLAKE2 hash of the key,
    modulo the count — the same in every process, platform and run (unlike ``hash``)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % num_batches


class DBBackend(Backend[DBIndex, list[Row]]):
    """A key-value store of rows; see the module docstring for the shared semantics.

    ``write(idx, rows)``: when ``idx.col_keys is None`` each row **replaces** the stored
    row (batchable: no read needed); otherwise each row **updates** the named columns
    of the stored row, keeping its other fields (see the module docstring).

    Implementations call :func:`prepare_rows` at the start of ``write``,
    :func:`check_clear_index` in ``clear``, :func:`check_column_filter` and
    :func:`check_return_columns` in ``keys``/``query``/``get_batch``, and
    :func:`batch_count` in ``get_batch``, so that every backend refuses and
    selects exactly alike.
    """

    @abc.abstractmethod
    def read(self, idx: DBIndex) -> list[Row]:
        """One dict per indexed row, in index order; a missing row reads as ``{}``."""

    @abc.abstractmethod
    def write(self, idx: DBIndex, data: Sequence[Mapping[str, Any]]) -> None:
        """Store each row dict of ``data`` at the row of the same position.

        ``idx.col_keys is None``: the row dict *replaces* the stored row (fields not
        given are gone; ``{}`` is refused). Otherwise it *updates* the stored row: its
        fields are set, the other stored fields are kept. Everything is checked
        (:func:`prepare_rows`) before anything is written.
        """

    @abc.abstractmethod
    def clear(self, idx: DBIndex | None = None) -> None:
        """Delete the indexed rows (all rows when ``idx`` is ``None``)."""

    @abc.abstractmethod
    def __contains__(self, key: object) -> bool:
        """Whether the row ``key`` (a str) is stored."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of stored rows."""

    def __bool__(self) -> bool:
        # An empty store is still a backend: ``if backend:`` must not mean "has rows".
        return True

    @abc.abstractmethod
    def keys(self, column_filter: ColumnFilter | None = None, union: bool = True) -> list[str]:
        """The keys of the rows matching ``column_filter`` (every row without one)."""

    @abc.abstractmethod
    def query(
        self,
        column_filter: ColumnFilter | None = None,
        return_columns: Iterable[str] = (),
        union: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Row]:
        """The rows matching ``column_filter``, by key, with ``return_columns`` (empty:
        every field). ``timeout`` bounds the call for backends behind a service."""

    @abc.abstractmethod
    def get_batch(
        self,
        batch_number: int,
        avg_rows_per_batch: int,
        return_columns: Iterable[str] = (),
    ) -> dict[str, Row]:
        """Batch ``batch_number`` of the rows (see :func:`batch_count`), by key."""
