"""The key-value index scheme: the user index forms, read shaping and write data.

==================================  ===============================  ==============================
user index                          ``DBIndex``                      ``layer[...]`` returns
==================================  ===============================  ==============================
``"k"`` (an int ``5`` means "5")    ``{"k": ("value",)}``            the row's ``"value"`` if it
                                                                     has one, else the whole row
``["k0", "k1"]``                    each row ``("value",)``          ``[value of k0, value of k1]``
``("k", "c")``                      ``{"k": ("c",)}``, col_keys      the value of column ``c``
``("k", ("c0", "c1"))``             ``{"k": ("c0", "c1")}``, cols    ``{col: value}`` of those
                                                                     columns that are stored
``(["k0", "k1"], "c")``             each row ``("c",)``, cols        ``[value, value]``
``(["k0", "k1"], ("c0", "c1"))``    each row the cols, col_keys      ``[{...}, {...}]``
a ``DBIndex``                       itself                           the rows as the backend
                                                                     returns them
==================================  ===============================  ==============================

Decisions where the reference is quirky or silent:

* Row keys are non-empty strings; an int key is taken as its decimal string
  (``layer[5]`` is ``layer["5"]``); bools and other types are refused.
* A key may appear several times in a list: it is read once and returned at each
  place. In a write the last wins, as if the rows were written one after another: for
  a whole-row write the last row given for the key is written; for a projected write
  the rows of the key are merged in list order, so per column the last value wins.
* A value that cannot be returned raises :class:`MissingKeyError` (a ``KeyError``)
  naming the row and, where it matters, the column: a single-key read of a row that is
  not stored, a key-list read of a row that is not stored or has no ``"value"``, a
  column read of a row without that column. The ``(rows, (cols))`` forms return the
  stored subset instead (``{}`` for a missing row), as in the reference.

Writes (what ``layer[idx] = data`` takes):

* single key, no columns: a dict is the row (every field is stored); anything else is
  the row's ``"value"`` — a list too (``layer["k"] = [1, 2]`` stores the list).
* ``(key, "c")``: a dict is the row (its fields must be ``c``); anything else is the
  value of ``c``. ``(key, (cols))``: a row dict whose fields are among ``cols``.
* a key list (with or without one column ``c``) or a ``DBIndex``: a list or tuple with
  one item per key — a dict item is that row, any other item its ``"value"`` (or
  ``c``); a single non-dict value fills every indexed row; a single dict is one row and
  is refused for several keys (it is easily meant as ``{key: value}``). With a
  column tuple the items must be row dicts. The number of items must equal the number
  of keys (``ValueError`` naming both; the reference wrote a prefix or failed halfway).
* an empty key list with an empty list (or any fill value) writes nothing.

What a write does to the stored row depends on the form (see
:mod:`lamina.keyvalue.backend`):

* the whole-row forms (``"k"``, ``["k0", "k1"]``, a ``DBIndex`` without ``col_keys``)
  **replace** the row: ``layer["k"] = {"a": 1}`` leaves the row ``{"a": 1}`` and
  ``layer["k"] = 5`` the row ``{"value": 5}``, whatever fields it had before. Every
  field given is stored (one rule for every backend, where the reference's
  backends disagreed). ``layer["k"] = {}`` (an empty row) is refused with a
  ``ValueError``; to delete a row use ``del layer["k"]``.
* the column forms (``("k", "c")``, ``(keys, ("c0", "c1"))``, a ``DBIndex`` with
  ``col_keys``) **update** only the named columns: the fields given are set, the
  other stored fields are kept. Fields outside the named columns are refused, never
  dropped (the reference's Datastore backend dropped them silently). Column updates may
  be slower than whole-row writes: not every backend can batch them.

Values are checked by the backend (:func:`lamina.keyvalue.backend.prepare_rows`)
before anything is written.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from lamina.errors import LaminaError
from lamina.keyvalue.index import DBIndex, check_column_name
from lamina.keyvalue.values import copy_value

__all__ = ["KeyValueScheme", "MissingKeyError", "row_key"]

_FORMS = (
    'a row key ("k"; an int is taken as its decimal string), a list of row keys '
    '(["k0", "k1"]), (key or list of keys, "column"), (key or list of keys, '
    '("c0", "c1")) or a DBIndex'
)

_VALUE_TYPES = (bool, int, float, str, bytes, np.generic, np.ndarray)


class MissingKeyError(LaminaError, KeyError):
    """A key-value read asked for a row, or a column of a row, that is not stored."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


def _is_int(value: Any) -> bool:
    """Whether ``value`` is an int-like key (Python or numpy int), bools excluded."""
    if isinstance(value, bool | np.bool_):
        return False
    return isinstance(value, numbers.Integral)


def row_key(key: Any) -> str:
    """The row key for a user's key: a non-empty str as is, an int as its decimal str."""
    if isinstance(key, str):
        if not key:
            raise ValueError("a row key must not be empty")
        return key
    if _is_int(key):
        return str(int(key))
    raise ValueError(
        f"a row key is a str (or an int, taken as its decimal string); "
        f"got {type(key).__name__}: {key!r}"
    )


@attrs.frozen
class _Form:
    keys: tuple[str, ...]  # in the user's order, repeats kept
    single: bool
    column: str | None  # the one column of a (rows, "c") form
    columns: tuple[str, ...] | None  # the columns of any (rows, cols) form


def _parse(user_idx: Any) -> _Form | None:
    """The parsed user index, or ``None`` for a ``DBIndex``."""
    if isinstance(user_idx, DBIndex):
        return None
    if isinstance(user_idx, str) or _is_int(user_idx):
        return _Form((row_key(user_idx),), single=True, column=None, columns=None)
    if isinstance(user_idx, list):
        return _Form(_keys(user_idx), single=False, column=None, columns=None)
    if isinstance(user_idx, tuple):
        if len(user_idx) != 2:
            raise ValueError(
                f"a tuple key-value index is (rows, columns); got a tuple of {len(user_idx)} "
                f"items: {user_idx!r}. Use a list for several row keys"
            )
        rows, cols = user_idx
        if isinstance(rows, list | tuple):
            keys, single = _keys(rows), False
        else:
            keys, single = (row_key(rows),), True
        if isinstance(cols, str):
            column = check_column_name(cols)
            return _Form(keys, single=single, column=column, columns=(column,))
        if isinstance(cols, list | tuple):
            if not cols:
                raise ValueError(f"the index {user_idx!r} names no columns")
            columns = tuple(dict.fromkeys(check_column_name(c) for c in cols))
            return _Form(keys, single=single, column=None, columns=columns)
        raise ValueError(
            "the columns of a (rows, columns) index are a column name or a tuple of column "
            f"names; got {type(cols).__name__}: {cols!r}"
        )
    raise ValueError(f"a key-value layer is indexed with {_FORMS}; got {user_idx!r}")


def _keys(keys: Sequence[Any]) -> tuple[str, ...]:
    return tuple(row_key(k) for k in keys)


def _is_value(data: Any) -> bool:
    return data is None or isinstance(data, _VALUE_TYPES)


@attrs.frozen
class KeyValueScheme:
    """Turns user indices into ``DBIndex`` objects, user data into rows, rows into results."""

    def to_index(self, user_idx: Any) -> DBIndex:
        form = _parse(user_idx)
        if form is None:
            return user_idx  # type: ignore[no-any-return]
        cols = form.columns or ("value",)
        return DBIndex(dict.fromkeys(form.keys, cols), col_keys=form.columns)

    # -- writes ---------------------------------------------------------------------------
    def prepare_write(
        self, user_idx: Any, idx: DBIndex, data: Any, backend: Any
    ) -> list[dict[str, Any]]:
        """The rows to write, one per row of ``idx``; of a repeated key, the last row
        given (whole-row forms) or the rows merged in order (column forms)."""
        form = _parse(user_idx)
        if form is None:
            return _given_rows(data, idx.len, "value", None)
        value_column = "value" if form.columns is None else form.column
        if form.single:
            if isinstance(data, Mapping):
                given = [dict(data)]
            elif value_column is None:
                raise ValueError(
                    f"an index with the columns {list(form.columns or ())} takes a row dict "
                    f"of those columns; got {type(data).__name__}"
                )
            else:
                given = [{value_column: data}]
        else:
            given = _given_rows(data, len(form.keys), value_column, form.columns)
        if len(form.keys) == idx.len:  # no repeated keys: the rows are already aligned
            return given
        position = {key: i for i, key in enumerate(idx.row_col_keys)}
        resolved: list[dict[str, Any]] = [{} for _ in range(idx.len)]
        for key, row in zip(form.keys, given, strict=True):
            if form.columns is None:  # a whole row replaces: the last row given wins
                resolved[position[key]] = row
            else:  # a column update: per column, the last value wins
                resolved[position[key]].update(row)
        return resolved

    # -- reads ----------------------------------------------------------------------------
    def shape_read(self, user_idx: Any, idx: DBIndex, data: Any) -> Any:
        form = _parse(user_idx)
        if form is None:
            return data
        if len(data) != idx.len:
            raise ValueError(
                f"the read returned {len(data)} row(s) for {idx.len} indexed row(s); index "
                "processors of key-value layers must map each row to exactly one row"
            )
        if form.single:
            rows = [data[0]]
        elif len(form.keys) == idx.len:
            rows = list(data)
        else:
            position = {key: i for i, key in enumerate(idx.row_col_keys)}
            seen: set[int] = set()
            rows = []
            for key in form.keys:
                i = position[key]
                rows.append(copy_value(data[i]) if i in seen else data[i])
                seen.add(i)
        if form.columns is None:
            out = [_value(key, row, form.single) for key, row in zip(form.keys, rows, strict=True)]
        elif form.column is not None:
            column = form.column
            out = [_column(key, row, column) for key, row in zip(form.keys, rows, strict=True)]
        else:
            out = rows
        return out[0] if form.single else out


def _given_rows(
    data: Any, n: int, value_column: str | None, columns: tuple[str, ...] | None
) -> list[dict[str, Any]]:
    """The rows of a write to ``n`` keys (see the module docstring)."""
    if isinstance(data, list | tuple):
        if len(data) != n:
            raise ValueError(
                f"{len(data)} row(s) given for {n} indexed row(s); give one item per key"
            )
        rows: list[dict[str, Any]] = []
        for i, item in enumerate(data):
            if isinstance(item, Mapping):
                rows.append(dict(item))
            elif value_column is None:
                raise ValueError(
                    f"item {i}: an index with the columns {list(columns or ())} takes row "
                    f"dicts; got {type(item).__name__}"
                )
            else:
                rows.append({value_column: item})
        return rows
    if isinstance(data, Mapping):
        if n == 1:
            return [dict(data)]
        raise ValueError(
            f"a dict is one row, but {n} rows are indexed; give a list of {n} row dicts "
            "(a single dict does not fill several rows)"
        )
    if value_column is None:
        raise ValueError(
            f"an index with the columns {list(columns or ())} takes a list of row dicts; "
            f"got {type(data).__name__}"
        )
    if not _is_value(data):
        raise ValueError(
            f"cannot write data of type {type(data).__name__} to a key-value layer; write a "
            "value, a row dict, or a list of values or row dicts"
        )
    return [{value_column: data} for _ in range(n)]  # one value fills every indexed row


def _value(key: str, row: Mapping[str, Any], single: bool) -> Any:
    if "value" in row:
        return row["value"]
    if not row:
        raise MissingKeyError(f"row {key!r} is not stored")
    if single:
        return row
    raise MissingKeyError(
        f"row {key!r} has no 'value' column (its columns: {sorted(row)}); read its columns "
        "with layer[(keys, columns)]"
    )


def _column(key: str, row: Mapping[str, Any], column: str) -> Any:
    if column in row:
        return row[column]
    # A projected read returns only the asked column, so "row missing" and "column
    # missing" look alike here; the message covers both.
    raise MissingKeyError(f"row {key!r} has no stored column {column!r}")
