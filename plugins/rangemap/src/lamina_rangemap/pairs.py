"""The shape both kinds of range map share: ``ranges`` is a non-empty sequence of
``(range, layer)`` pairs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from lamina_rangemap.errors import RangeMapError

__all__ = ["range_pairs"]


def range_pairs(value: Any, range_kind: str) -> Iterator[tuple[str, Any, Any]]:
    """``(where, range, layer)`` for each entry of ``value`` (``where`` is
    ``"ranges[i]"``, for messages), after checking that ``value`` is a non-empty sequence
    of pairs; ``range_kind`` names the range in errors (``"BBox3D"``, ``"key range"``)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise RangeMapError(
            f"ranges must be a sequence of ({range_kind}, layer) pairs; got {type(value).__name__}"
        )
    if not value:
        raise RangeMapError(
            f"ranges is empty: a range map needs at least one ({range_kind}, layer)"
        )
    for i, entry in enumerate(value):
        where = f"ranges[{i}]"
        if isinstance(entry, str | bytes) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise RangeMapError(f"{where} must be a ({range_kind}, layer) pair; got {entry!r}")
        yield where, entry[0], entry[1]
