"""The hooks of the key-value contract suite, and the helpers its tests share.

A backend's tests implement ``make_backend`` and the three row-level raw hooks
(``raw_get_row``, ``raw_put_row``, ``raw_row_keys``), which reach the storage without
the backend's methods so that a backend cannot pass by agreeing with itself. The
generic hooks of :class:`~lamina.testing.contracts.BackendContract` are built on them
here, so that the generic contract tests run on every key-value backend too.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from lamina.keyvalue.backend import DBBackend
from lamina.keyvalue.index import DBIndex
from lamina.testing.contracts import BackendContract
from lamina.testing.keyvalue.samples import SAMPLE_VALUES, assert_values_equal, row_index

__all__ = ["KeyValueContractBase"]

_counter = itertools.count()


class KeyValueContractBase(BackendContract):
    """The hooks and helpers of :class:`~lamina.testing.keyvalue.KeyValueBackendTests`
    (no tests of its own)."""

    num_samples = len(SAMPLE_VALUES)

    # -- hooks for the backend's tests ----------------------------------------------------
    def make_backend(self, path: Path) -> DBBackend:
        """A fresh, empty backend (under ``path`` if it stores files)."""
        raise NotImplementedError("subclass the suite and implement make_backend")

    def raw_get_row(self, backend: Any, key: str) -> dict[str, Any] | None:
        """Every stored field of row ``key``, or ``None`` (no backend method)."""
        raise NotImplementedError

    def raw_put_row(self, backend: Any, key: str, row: dict[str, Any]) -> None:
        """Store ``row`` as the whole row ``key`` (no backend method)."""
        raise NotImplementedError

    def raw_row_keys(self, backend: Any) -> set[str]:
        """The keys of every stored row (no backend method)."""
        raise NotImplementedError

    @pytest.fixture
    def make(self, tmp_path: Path) -> Any:
        def make() -> DBBackend:
            return self.make_backend(tmp_path / f"kv{next(_counter)}")

        return make

    @pytest.fixture
    def backend(self, make: Any) -> DBBackend:
        backend: DBBackend = make()
        return backend

    # -- the generic hooks, on the row hooks ------------------------------------------------
    def raw_read(self, backend: Any, idx: DBIndex) -> list[dict[str, Any]]:
        out = []
        for key in idx.row_col_keys:
            row = self.raw_get_row(backend, key) or {}
            columns = idx.projection(key)
            out.append({f: v for f, v in row.items() if columns is None or f in columns})
        return out

    def raw_write(self, backend: Any, idx: DBIndex, data: Any) -> None:
        """Whole-row index: replace each row; projected index: update its columns."""
        for key, fields in zip(idx.row_col_keys, data, strict=True):
            row = None if idx.col_keys is None else self.raw_get_row(backend, key)
            if row is None:
                if not fields:
                    continue  # a row exists only while it has a field
                row = {}
            row.update(fields)
            self.raw_put_row(backend, key, row)

    def is_stored(self, backend: Any, idx: DBIndex) -> bool:
        return any(self.raw_get_row(backend, key) is not None for key in idx.row_col_keys)

    # -- the scheme's samples ---------------------------------------------------------------
    def sample(self, i: int, backend: Any) -> tuple[Any, Any]:
        """Row ``sample-i`` with the same two fields for every ``i`` (so that the generic
        overwrite test checks values, not only the replacing of fields)."""
        return row_index([f"sample-{i}"]), [{"value": SAMPLE_VALUES[i], "n": i}]

    def assert_data_equal(self, actual: Any, expected: Any) -> None:
        assert_values_equal(actual, expected)

    # -- helpers (raw only) -----------------------------------------------------------------
    def put_rows(self, backend: Any, rows: dict[str, dict[str, Any]]) -> None:
        for key, fields in rows.items():
            self.raw_put_row(backend, key, dict(fields))

    def stored_rows(self, backend: Any) -> dict[str, dict[str, Any]]:
        out = {}
        for key in self.raw_row_keys(backend):
            row = self.raw_get_row(backend, key)
            assert row is not None
            out[key] = row
        return out
