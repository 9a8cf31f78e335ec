"""The key-value range map passes the key-value contract suite over in-memory sources.

Four ranges cover every key: A holds keys before "k05", B keys from "k05" on, C the
prefix "sample-" (over B) and D the range ["r", "s") (over B). Each source table also
holds rows it does not own (outside its range, or owned by a later range); the range
map must never list, read, count, batch or delete them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lamina_rangemap import RangeMapDBBackend

from lamina import DBIndex, MemoryKeyValueBackend, build_db_layer
from lamina.testing import KeyValueBackendTests

# (start, end) or a prefix, written out here independently of lamina_rangemap.KeyRange.
RANGES: tuple[Any, ...] = ((None, "k05"), ("k05", None), "sample-", ("r", "s"))
FOREIGN: dict[int, dict[str, dict[str, Any]]] = {
    0: {"zz-foreign-a": {"value": "A outside its range"}},
    1: {"a-foreign-b": {"value": "B outside"}, "r-shadowed": {"value": "owned by D"}},
    2: {"not-sample": {"value": "C outside"}},
    3: {"sample-foreign-d": {"value": "owned by C"}, "t-foreign": {"value": "D outside"}},
}


def owner(key: str) -> int:
    """The last range holding ``key`` (every key is in A or B)."""
    found = -1
    for i, spec in enumerate(RANGES):
        if isinstance(spec, str):
            if key.startswith(spec):
                found = i
        elif (spec[0] is None or spec[0] <= key) and (spec[1] is None or key < spec[1]):
            found = i
    assert found >= 0
    return found


def _one(key: str) -> DBIndex:
    return DBIndex({key: ("value",)})


class TestOverMemorySources(KeyValueBackendTests):
    def make_backend(self, path: Path) -> RangeMapDBBackend:
        sources = [MemoryKeyValueBackend() for _ in RANGES]
        for i, rows in FOREIGN.items():
            for key, row in rows.items():
                assert owner(key) != i
                sources[i].write(_one(key), [row])
        return RangeMapDBBackend(
            ranges=[(spec, build_db_layer(src)) for spec, src in zip(RANGES, sources, strict=True)]
        )

    def _source(self, backend: Any, key: str) -> Any:
        return backend.ranges[owner(key)][1].backend

    def raw_get_row(self, backend: Any, key: str) -> dict[str, Any] | None:
        row: dict[str, Any] = self._source(backend, key).read(_one(key))[0]
        return row or None

    def raw_put_row(self, backend: Any, key: str, row: dict[str, Any]) -> None:
        self._source(backend, key).write(_one(key), [row])

    def raw_row_keys(self, backend: Any) -> set[str]:
        return {
            key
            for i, (_, layer) in enumerate(backend.ranges)
            for key in layer.backend.keys()  # noqa: SIM118 (a DBBackend, not a dict)
            if owner(key) == i
        }

    # -- beyond the suite: the rows a source does not own stay untouched and unseen ---------
    @pytest.fixture
    def foreign_kept(self, backend: Any) -> Any:
        yield backend
        for i, rows in FOREIGN.items():
            source = backend.ranges[i][1].backend
            for key, row in rows.items():
                assert source.read(_one(key)) == [row], (i, key)

    def test_foreign_rows_are_invisible_and_kept(self, foreign_kept: Any) -> None:
        backend = foreign_kept
        assert len(backend) == 0
        assert backend.keys() == []
        assert backend.query() == {}
        assert backend.get_batch(0, 10) == {}
        keys = [k for rows in FOREIGN.values() for k in rows]
        assert all(k not in backend for k in keys)
        assert backend.read(DBIndex(dict.fromkeys(keys, ("value",)))) == [{}] * len(keys)
        backend.write(DBIndex({"mine": ("value",)}), [{"value": 1}])
        backend.clear()
        assert len(backend) == 0

    def test_rows_go_to_their_owner(self, foreign_kept: Any) -> None:
        backend = foreign_kept
        keys = ["a", "k04", "k05", "m", "sample-1", "r", "r9", "s", "z"]
        backend.write(DBIndex(dict.fromkeys(keys, ("value",))), [{"value": k} for k in keys])
        for key in keys:
            for i, (_, layer) in enumerate(backend.ranges):
                stored = layer.backend.read(_one(key))[0]
                assert stored == ({"value": key} if i == owner(key) else {}), (key, i)
        assert sorted(backend.keys()) == sorted(keys)
        del build_db_layer(backend)[keys]
        assert self.raw_row_keys(backend) == set()
