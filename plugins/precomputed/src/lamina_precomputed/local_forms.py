"""Which stored forms of a local file exist, from directory listings kept while valid.

A chunk on local disk may be stored as ``key``, ``key.gz``, ``key.br``… (cloud-files'
local compression), and a reader must find every form there is to read the newest one.
Asking the file system for each form costs six ``stat`` calls per chunk: a fifth of an
aligned cutout's time. :class:`FormIndex` lists a directory once and answers from the
listing for as long as the directory's change time (``st_ctime_ns``, which every entry
created, removed or renamed moves, and which no tool can set back) is the one seen
when it was listed: one ``stat`` per lookup instead of six.

A listing is trusted only when the directory had not changed for :data:`SETTLE_NS`
before it was taken: file times advance in coarse ticks, and a change in the same tick
as the listing would leave the change time where it was (git's "racy" index entries).
Until then, and for directories with more than :data:`LISTING_LIMIT` entries, lookups
return ``None`` and the caller asks the file system for each form.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

__all__ = ["LISTING_LIMIT", "SETTLE_NS", "FormIndex"]

#: A directory changed this recently (ns) is not listed: a change in the same clock tick
#: as the listing could go unseen.
SETTLE_NS: Final = 2_000_000_000
#: Directories with more entries than this are not kept (memory); lookups in them stat.
LISTING_LIMIT: Final = 100_000
#: How many directory listings one index keeps (least recently used dropped first).
_DIRECTORIES_KEPT: Final = 16


class _TooLarge:
    """The marker of a directory too large to keep a listing of."""


_TOO_LARGE: Final = _TooLarge()


class FormIndex:
    """The stored forms (suffixes) of local files, answered from kept directory listings."""

    def __init__(self, suffixes: Sequence[str]) -> None:
        self._suffixes = tuple(suffixes)
        self._listings: OrderedDict[str, tuple[int, int, frozenset[str] | _TooLarge]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        # a child forked while another thread held the lock would wait on it for ever
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def present(self, path: str) -> tuple[str, ...] | None:
        """The suffixes ``s`` for which ``path + s`` exists, in the index's order;
        ``None`` when the directory's listing cannot be trusted (changed within
        :data:`SETTLE_NS`, or too large): then stat each form."""
        directory, base = os.path.split(path)
        try:
            seen = os.stat(directory)
        except FileNotFoundError:
            return ()
        key = (seen.st_ino, seen.st_ctime_ns)
        with self._lock:
            kept = self._listings.get(directory)
            if kept is not None:
                self._listings.move_to_end(directory)
        if kept is not None and kept[:2] == key:
            names = kept[2]
        elif isinstance(kept, tuple) and isinstance(kept[2], _TooLarge):
            return None
        else:
            if time.time_ns() - seen.st_ctime_ns < SETTLE_NS:
                return None
            listed = self._list(directory)
            with self._lock:
                self._listings[directory] = (*key, listed)
                while len(self._listings) > _DIRECTORIES_KEPT:
                    self._listings.popitem(last=False)
            if isinstance(listed, _TooLarge) or self._changed(directory, key):
                return None
            names = listed
        if isinstance(names, _TooLarge):
            return None
        return tuple(suffix for suffix in self._suffixes if base + suffix in names)

    @staticmethod
    def _list(directory: str) -> frozenset[str] | _TooLarge:
        names: list[str] = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    names.append(entry.name)
                    if len(names) > LISTING_LIMIT:
                        return _TOO_LARGE
        except FileNotFoundError:
            return frozenset()
        return frozenset(names)

    @staticmethod
    def _changed(directory: str, key: tuple[int, int]) -> bool:
        """Whether ``directory`` changed while it was being listed."""
        try:
            seen = os.stat(directory)
        except FileNotFoundError:
            return True
        return (seen.st_ino, seen.st_ctime_ns) != key
