"""``RangeMapDBBackend``: a key-value store whose keys are split by range among layers.

Each range is a :class:`KeyRange` — half-open ``[start, end)`` in code-point order (the
order of UTF-8 bytes, DynamoDB's too), or every key starting with a prefix — and a
source :class:`~lamina.keyvalue.layer.KeyValueLayer`. The source that *owns* a key is
the last range holding it (as in TensorStore's ``kvstack``: later layers take
precedence). Keys keep their names in the sources (no prefix is stripped).

Reads split the keys by owner and ask each source for its keys only, through its layer
(its processors run); a key no range holds reads as missing. Writes are split the same
way, after every check, and a key no range holds is refused before anything is
written. ``keys``, ``query``, ``len``, ``clear`` and ``get_batch`` merge the sources,
each limited to the keys it owns — a source table may hold other keys too, and they
are neither listed nor deleted.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from lamina.backend import Capabilities, ChangeKeyError, check_change_keys
from lamina.errors import ReadonlyLayerError, UnsupportedOperationError
from lamina.keyvalue.backend import (
    ColumnFilter,
    DBBackend,
    Row,
    batch_count,
    check_clear_index,
    check_column_filter,
    check_return_columns,
    key_batch,
    prepare_rows,
)
from lamina.keyvalue.index import DBIndex
from lamina.keyvalue.layer import KeyValueLayer, build_db_layer
from lamina_rangemap.errors import RangeMapError, UnmappedKeyError
from lamina_rangemap.pairs import range_pairs
from lamina_rangemap.volumetric import run_all

__all__ = ["KeyRange", "KeyValueRange", "RangeMapDBBackend"]


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise RangeMapError(
        f"a key range bound is a str or None; got {type(value).__name__}: {value!r}"
    )


@attrs.frozen
class KeyRange:
    """Keys ``start <= key < end`` (``None``: unbounded on that side), or, with
    ``prefix``, every key that starts with it.

    Build one with :meth:`parse`: ``"user/"`` is a prefix, ``("a", "m")`` a range,
    ``("m", None)`` every key from ``"m"`` on.
    """

    start: str | None = attrs.field(default=None, converter=_opt_str)
    end: str | None = attrs.field(default=None, converter=_opt_str)
    prefix: str | None = attrs.field(default=None, converter=_opt_str)

    def __attrs_post_init__(self) -> None:
        if self.prefix is not None and (self.start is not None or self.end is not None):
            raise RangeMapError("a KeyRange is either a prefix or a [start, end) range, not both")
        if self.start is not None and self.end is not None and not self.start < self.end:
            raise RangeMapError(
                f"the key range [{self.start!r}, {self.end!r}) holds no key: the start must "
                "come before the end (ranges are half-open)"
            )

    @classmethod
    def parse(cls, value: Any, where: str = "range") -> KeyRange:
        """``"prefix"``, ``(start, end)`` / ``[start, end]`` (either may be ``None``) or a
        ``KeyRange``."""
        if isinstance(value, KeyRange):
            return value
        if isinstance(value, str):
            return cls(prefix=value)
        if (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(v is None or isinstance(v, str) for v in value)
        ):
            try:
                return cls(start=value[0], end=value[1])
            except RangeMapError as exc:
                raise RangeMapError(f"{where}: {exc}") from None
        raise RangeMapError(
            f'{where}: a key range is a prefix str ("user/") or a (start, end) pair of str '
            f"or None (half-open); got {type(value).__name__}: {value!r}"
        )

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if self.prefix is not None:
            return key.startswith(self.prefix)
        return (self.start is None or self.start <= key) and (self.end is None or key < self.end)

    @property
    def holds_every_key(self) -> bool:
        """Whether every key is in the range (the prefix ``""`` or ``(None, None)``)."""
        if self.prefix is not None:
            return self.prefix == ""
        return not self.start and self.end is None

    def pformat(self) -> str:
        if self.prefix is not None:
            return f"{self.prefix!r}*"
        start = "-inf" if self.start is None else repr(self.start)
        end = "+inf" if self.end is None else repr(self.end)
        return f"[{start}, {end})"


#: One range: a key range and the layer that serves it.
KeyValueRange = tuple[KeyRange, KeyValueLayer]


def _as_layer(value: Any, where: str) -> KeyValueLayer:
    if isinstance(value, KeyValueLayer):
        return value
    if isinstance(value, DBBackend):
        return build_db_layer(value)
    raise RangeMapError(
        f"{where}: a key range maps to a lamina KeyValueLayer (or a DBBackend); got "
        f"{type(value).__name__}: {value!r}"
    )


def _as_ranges(value: Any) -> tuple[KeyValueRange, ...]:
    """attrs converter: the ranges as a tuple of checked ``(KeyRange, KeyValueLayer)``."""
    return tuple(
        (KeyRange.parse(key_range, where), _as_layer(layer, where))
        for where, key_range, layer in range_pairs(value, "key range")
    )


def _index(keys: Iterable[str], columns: tuple[str, ...] | None = None) -> DBIndex:
    return DBIndex(dict.fromkeys(keys, columns or ("value",)), col_keys=columns)


@attrs.frozen
class RangeMapDBBackend(DBBackend):
    """A key-value store made of other key-value layers: ``ranges`` maps key ranges to
    layers; the last range holding a key owns it. See the module docstring.

    ``with_changes`` takes no key (a range map stores nothing of its own); ``delete`` is
    refused (the sources may hold other keys); ``clear()`` deletes the mapped rows only.
    """

    ranges: tuple[KeyValueRange, ...] = attrs.field(converter=_as_ranges)
    _name: str = attrs.field(init=False, repr=False, eq=False)
    capabilities: Capabilities = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        parts = [f"{kr.pformat()} -> {layer.name}" for kr, layer in self.ranges]
        if len(parts) > 4:
            parts = [*parts[:3], f"... ({len(parts)} ranges)"]
        object.__setattr__(self, "_name", f"rangemap[{'; '.join(parts)}]")
        layers = [layer for _, layer in self.ranges]
        caps = [layer.backend.capabilities for layer in layers]
        object.__setattr__(
            self,
            "capabilities",
            Capabilities(
                writable=any(
                    not layer.readonly and c.writable for layer, c in zip(layers, caps, strict=True)
                ),
                deletable=False,
                picklable=all(c.picklable for c in caps),
                shared_across_processes=all(c.shared_across_processes for c in caps),
                thread_safe=all(c.thread_safe for c in caps),
            ),
        )

    # -- ownership -------------------------------------------------------------------------
    def owner(self, key: str) -> int | None:
        """The position of the range that owns ``key`` (the last one holding it), or ``None``."""
        for i in range(len(self.ranges) - 1, -1, -1):
            if key in self.ranges[i][0]:
                return i
        return None

    def _label(self, i: int) -> str:
        key_range, layer = self.ranges[i]
        return f"source {i} ({layer.name!r}, keys {key_range.pformat()})"

    def _split(self, keys: Iterable[str]) -> tuple[dict[int, list[str]], list[str]]:
        """Keys by owner (in range order) and the keys no range holds."""
        groups: dict[int, list[str]] = {}
        unmapped: list[str] = []
        for key in keys:
            i = self.owner(key)
            if i is None:
                unmapped.append(key)
            else:
                groups.setdefault(i, []).append(key)
        return dict(sorted(groups.items())), unmapped

    def _owned(self, i: int, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if self.owner(k) == i]

    def _check_writable(self, i: int, what: str) -> None:
        layer = self.ranges[i][1]
        if layer.readonly:
            raise ReadonlyLayerError(
                f"the {what} reaches {self._label(i)}, which is readonly; nothing was written"
            )
        if not layer.backend.capabilities.writable:
            raise UnsupportedOperationError(
                f"the {what} reaches {self._label(i)}, whose backend does not support writes; "
                "nothing was written"
            )

    # -- Backend ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    def with_changes(self, **changes: Any) -> RangeMapDBBackend:
        """No key is supported: a range map stores nothing of its own (``KeyError``)."""
        if "name" in changes:
            raise ChangeKeyError(
                "RangeMapDBBackend does not support with_changes(name=...): a range map stores "
                "nothing of its own, so there is no other store for a new name to address; "
                "build a range map over other source layers instead"
            )
        check_change_keys(self, changes, ())
        return self

    def delete(self) -> None:
        """Refused: the sources may hold keys outside their ranges; use ``clear()`` to
        delete the mapped rows, or delete each source layer itself."""
        raise UnsupportedOperationError(
            f"{self.name} does not delete its sources: they may hold keys outside their "
            "ranges. clear() deletes the rows the range map holds; delete each source "
            "layer itself (source.delete()) if that is what you mean."
        )

    # -- rows ------------------------------------------------------------------------------
    def read(self, idx: DBIndex) -> list[Row]:
        """One row per indexed key, read from its owner; a key no range holds is ``{}``."""
        groups, _ = self._split(idx.row_col_keys)
        if len(groups) == 1:
            ((i, keys),) = groups.items()
            if len(keys) == idx.len:  # one source owns every key
                return self._read_source(i, idx)
        out: list[Row] = [{} for _ in range(idx.len)]
        if not groups:
            return out
        positions = {key: n for n, key in enumerate(idx.row_col_keys)}
        items = list(groups.items())
        subs = [
            DBIndex({k: idx.row_col_keys[k] for k in keys}, col_keys=idx.col_keys)
            for _, keys in items
        ]
        concurrent = all(self.ranges[i][1].backend.capabilities.thread_safe for i, _ in items)
        results = run_all(
            [
                functools.partial(self._read_source, i, sub)
                for (i, _), sub in zip(items, subs, strict=True)
            ],
            concurrent,
        )
        for (_, keys), rows in zip(items, results, strict=True):
            for key, row in zip(keys, rows, strict=True):
                out[positions[key]] = row
        return out

    def _read_source(self, i: int, idx: DBIndex) -> list[Row]:
        try:
            rows = self.ranges[i][1].read_with_procs(idx)
        except Exception as exc:
            exc.add_note(f"while reading {idx.len} row(s) from {self._label(i)} of {self.name}")
            raise
        if not isinstance(rows, list) or len(rows) != idx.len:
            raise RangeMapError(
                f"{self._label(i)} returned {type(rows).__name__} of "
                f"{len(rows) if isinstance(rows, list) else '?'} row(s) for {idx.len} "
                "indexed row(s); a source must return one row dict per indexed row"
            )
        return rows

    def write(self, idx: DBIndex, data: Sequence[Mapping[str, Any]]) -> None:
        """Split the rows among their owners. Every row is checked, every key must be in a
        range and every owner writable, before anything is written."""
        rows = prepare_rows(idx, data)
        groups, unmapped = self._split(idx.row_col_keys)
        if unmapped:
            shown = ", ".join(repr(k) for k in unmapped[:10])
            more = f" and {len(unmapped) - 10} more" if len(unmapped) > 10 else ""
            ranges = "; ".join(self._label(i) for i in range(len(self.ranges)))
            raise UnmappedKeyError(
                f"key(s) {shown}{more} are outside every range of {self.name} ({ranges}); "
                "nothing was written. Add a range for them, or write them to a source layer."
            )
        for i in groups:
            self._check_writable(i, f"write of {idx.len} row(s)")
        by_key = dict(zip(idx.row_col_keys, rows, strict=True))
        for i, keys in groups.items():
            sub = (
                idx
                if len(groups) == 1
                else DBIndex({k: idx.row_col_keys[k] for k in keys}, col_keys=idx.col_keys)
            )
            try:
                self.ranges[i][1].write_with_procs(sub, [by_key[k] for k in keys])
            except Exception as exc:
                exc.add_note(f"while writing {len(keys)} row(s) to {self._label(i)} of {self.name}")
                raise

    def clear(self, idx: DBIndex | None = None) -> None:
        """Delete the indexed rows from their owners (keys no range holds are absent
        rows: ignored); without ``idx``, every row the range map holds — rows of a source
        outside its range (or owned by a later range) are kept."""
        if idx is None:
            owned = [(i, self._owned(i, layer.keys())) for i, (_, layer) in enumerate(self.ranges)]
            owned = [(i, keys) for i, keys in owned if keys]
            for i, _ in owned:
                self._check_writable(i, "clear()")
            for i, keys in owned:
                self.ranges[i][1].backend.clear(_index(keys))
            return
        check_clear_index(idx)
        groups, _ = self._split(idx.row_col_keys)
        for i in groups:
            self._check_writable(i, f"delete of {idx.len} row(s)")
        for i, keys in groups.items():
            del self.ranges[i][1][_index(keys)]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        i = self.owner(key)
        return i is not None and key in self.ranges[i][1]

    def __len__(self) -> int:
        total = 0
        last = len(self.ranges) - 1
        for i, (key_range, layer) in enumerate(self.ranges):
            if i == last and key_range.holds_every_key:
                total += len(layer)  # every key of the last range's source is its own
            else:
                total += len(self._owned(i, layer.keys()))
        return total

    def keys(self, column_filter: ColumnFilter | None = None, union: bool = True) -> list[str]:
        """The keys of the matching rows, source by source, each source's own keys only."""
        check_column_filter(column_filter)
        out: list[str] = []
        for i, (_, layer) in enumerate(self.ranges):
            out.extend(self._owned(i, layer.keys(column_filter=column_filter, union=union)))
        return out

    def query(
        self,
        column_filter: ColumnFilter | None = None,
        return_columns: Iterable[str] = (),
        union: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Row]:
        """The matching rows of every source, each source's own keys only. ``timeout``
        bounds the whole call: each source gets what is left of it."""
        check_column_filter(column_filter)
        columns = check_return_columns(return_columns)
        deadline = None if timeout is None else time.monotonic() + timeout
        out: dict[str, Row] = {}
        for i, (_, layer) in enumerate(self.ranges):
            left = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"query of {self.name} ran out of its {timeout} s before {self._label(i)}"
                    )
            rows = layer.query(
                column_filter=column_filter, return_columns=columns, union=union, timeout=left
            )
            out.update((k, row) for k, row in rows.items() if self.owner(k) == i)
        return out

    def get_batch(
        self,
        batch_number: int,
        avg_rows_per_batch: int,
        return_columns: Iterable[str] = (),
    ) -> dict[str, Row]:
        """Batch ``batch_number`` of the rows the range map holds: the core's partition
        (:func:`~lamina.keyvalue.backend.key_batch` over
        :func:`~lamina.keyvalue.backend.batch_count` batches of every mapped row), so a
        row's batch depends only on its key and the number of batches. Each call lists
        every source's keys and reads the batch's rows."""
        columns = check_return_columns(return_columns)
        owned = [(i, self._owned(i, layer.keys())) for i, (_, layer) in enumerate(self.ranges)]
        count = batch_count(batch_number, avg_rows_per_batch, sum(len(k) for _, k in owned))
        out: dict[str, Row] = {}
        for i, keys in owned:
            chosen = [k for k in keys if key_batch(k, count) == batch_number]
            if not chosen:
                continue
            rows = self.ranges[i][1].backend.read(_index(chosen, columns or None))
            for key, row in zip(chosen, rows, strict=True):
                if row or columns:  # an unprojected {} is a row deleted since it was listed
                    out[key] = row
        return out
