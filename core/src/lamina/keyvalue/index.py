"""``DBIndex``: the standard index of every key-value backend.

An index names rows (by string key) and, per row, columns. It is frozen and hashable
(the reference's was a frozen attrs class over a plain dict, so not hashable). Row
order is part of the index: a read returns one row per row key, in this order, so two
indices with the same rows in another order are different indices.

``col_keys`` says whether the index is *projected*:

* ``col_keys=None`` (the ``"key"`` and ``["k0", "k1"]`` user forms): the index
  addresses whole rows. A read returns every stored field of each row; a write may
  carry any field. The per-row columns (``("value",)`` for those forms) only say where
  a plain value goes.
* ``col_keys=(...)`` (the ``(rows, cols)`` user forms): the index addresses only the
  listed columns of each row (``rows_col_keys[i]`` for row ``i``). A read returns only
  those of them that are stored; a write carrying any other field is refused.

:meth:`DBIndex.projection` gives backends that rule in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs

__all__ = ["DBIndex", "RowColumns"]


def check_column_name(name: Any, what: str = "column") -> str:
    """Return ``name`` if it is a usable column name, else raise a clear error."""
    if not isinstance(name, str):
        raise TypeError(f"a {what} name must be a str; got {type(name).__name__}: {name!r}")
    if not name:
        raise ValueError(f"a {what} name must not be empty")
    return name


def check_row_key(key: Any) -> str:
    """Return ``key`` if it is a usable row key (a non-empty str), else raise."""
    if not isinstance(key, str):
        raise TypeError(f"a row key must be a str; got {type(key).__name__}: {key!r}")
    if not key:
        raise ValueError("a row key must not be empty")
    return key


def _columns(cols: Any, what: str) -> tuple[str, ...]:
    if isinstance(cols, str) or not isinstance(cols, tuple | list):
        raise TypeError(
            f"{what} must be a tuple (or list) of column names; got {type(cols).__name__}: {cols!r}"
        )
    return tuple(check_column_name(c) for c in cols)


class RowColumns(Mapping[str, tuple[str, ...]]):
    """An immutable, hashable, ordered mapping row key → column names.

    Equality with another ``RowColumns`` includes the row order (it is part of the
    index); equality with a plain mapping compares contents only.
    """

    __slots__ = ("_hash", "_items", "_map")

    def __init__(self, row_col_keys: Mapping[str, Any]) -> None:
        if not isinstance(row_col_keys, Mapping):
            raise TypeError(
                "row_col_keys must be a mapping row key -> tuple of column names; "
                f"got {type(row_col_keys).__name__}: {row_col_keys!r}"
            )
        # Rows usually share one columns tuple: check each distinct object once. (The ids
        # are stable: every tuple stays referenced by ``row_col_keys`` during the loop.)
        checked: dict[int, tuple[str, ...]] = {}
        items_list = []
        for key, cols in row_col_keys.items():
            columns = checked.get(id(cols))
            if columns is None:
                columns = checked[id(cols)] = _columns(cols, f"the columns of row {key!r}")
            items_list.append((check_row_key(key), columns))
        items = tuple(items_list)
        self._items = items
        self._map = dict(items)
        self._hash = hash(items)

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return self._map[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowColumns):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._map == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._map)

    def __reduce__(self) -> tuple[Any, ...]:
        return (RowColumns, (self._map,))


def _to_row_columns(value: Mapping[str, Any]) -> RowColumns:
    return value if isinstance(value, RowColumns) else RowColumns(value)


def _to_col_keys(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return _columns(value, "col_keys")


@attrs.frozen(slots=True)
class DBIndex:
    """Rows (by key) and, per row, columns; see the module docstring for ``col_keys``.

    Args:
        row_col_keys: mapping row key → tuple of column names (lists are accepted and
            stored as tuples). Row keys and column names are non-empty strings.
        col_keys: the columns of a projected index, or ``None`` for whole rows.
    """

    row_col_keys: RowColumns = attrs.field(converter=_to_row_columns)
    col_keys: tuple[str, ...] | None = attrs.field(default=None, converter=_to_col_keys)

    @property
    def row_keys(self) -> list[str]:
        """The row keys, in index order."""
        return list(self.row_col_keys)

    @property
    def rows_col_keys(self) -> list[tuple[str, ...]]:
        """The columns of each row, in index order."""
        return list(self.row_col_keys.values())

    @property
    def len(self) -> int:
        """The number of rows."""
        return len(self.row_col_keys)

    @property
    def projected(self) -> bool:
        """Whether the index addresses only its listed columns (``col_keys`` is given)."""
        return self.col_keys is not None

    def get_size(self) -> int:
        """The number of (row, column) cells the index names (a measure of its work)."""
        return sum(len(cols) for cols in self.row_col_keys.values())

    def projection(self, row_key: str) -> tuple[str, ...] | None:
        """The columns a read of ``row_key`` returns: ``None`` means every stored field."""
        if self.col_keys is None:
            return None
        return self.row_col_keys[row_key]
