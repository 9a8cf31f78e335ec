"""The errors a range map raises on purpose (each a builtin type callers already catch)."""

from __future__ import annotations

from lamina.errors import LaminaError

__all__ = ["RangeMapError", "UncoveredRegionError", "UnmappedKeyError"]


class RangeMapError(LaminaError, ValueError):
    """Ranges that cannot make a range map (bad form, a mix of kinds, sources that
    disagree on dtype or channels), or geometry the sources do not agree on."""


class UncoveredRegionError(RangeMapError):
    """A volumetric read (without ``fill_value``) or write reaching a region that no
    range covers; the message names the uncovered boxes in nm and in voxels."""


class UnmappedKeyError(LaminaError, KeyError):
    """A key-value write (or delete) of keys that no range maps; nothing was written."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""
