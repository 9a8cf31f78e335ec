"""An array's axes as stored (``"czyx"``, ``"tczyx"``, N5's ``"xyz"``) and how lamina's
``(X, Y, Z, C)`` maps onto them; physical units converted to nanometres.

OME-Zarr stores ``(c, z, y, x)`` (optionally ``t`` first) in C order: x varies fastest,
as in lamina's Fortran-ordered ``(X, Y, Z, C)``, so lamina's view of a stored array is a
transposition (no copy). A channel axis is optional (C = 1 without one); a time axis is
read at one index (``time_index=``); anything else is refused with what to give.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import attrs

from lamina.errors import LaminaError

__all__ = ["UNIT_NM", "AxesError", "AxisOrder", "unit_to_nm"]


class AxesError(LaminaError, ValueError):
    """An array's axes or units lamina cannot read as a volume; the message says what to
    give instead (``axes=``, ``resolution=``, ``time_index=``)."""


#: Nanometres per unit, for the space units OME-NGFF allows (UDUNITS-2 names).
UNIT_NM: Final[dict[str, float]] = {
    "yoctometer": 1e-15,
    "zeptometer": 1e-12,
    "attometer": 1e-9,
    "femtometer": 1e-6,
    "picometer": 1e-3,
    "angstrom": 0.1,
    "nanometer": 1.0,
    "micrometer": 1e3,
    "millimeter": 1e6,
    "centimeter": 1e7,
    "decimeter": 1e8,
    "meter": 1e9,
    "hectometer": 1e11,
    "kilometer": 1e12,
    "megameter": 1e15,
    "gigameter": 1e18,
    "terameter": 1e21,
    "petameter": 1e24,
    "exameter": 1e27,
    "zettameter": 1e30,
    "yottameter": 1e33,
    "inch": 2.54e7,
    "foot": 3.048e8,
    "yard": 9.144e8,
    "mile": 1.609344e12,
    "parsec": 3.085677581e25,
}
#: Short names some tools write (N5's ``pixelResolution.unit``, BigDataViewer).
_ALIASES: Final = {
    "nm": "nanometer",
    "um": "micrometer",
    "µm": "micrometer",
    "μm": "micrometer",
    "micron": "micrometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "pm": "picometer",
    "a": "angstrom",
    "å": "angstrom",
    "nanometre": "nanometer",
    "micrometre": "micrometer",
    "millimetre": "millimeter",
}


def unit_to_nm(unit: str | None, where: str) -> float:
    """Nanometres per ``unit`` (``None``: nanometres, the unit lamina assumes when a file
    gives none); an unknown unit is an :class:`AxesError` naming ``where``."""
    if unit is None or unit == "":
        return 1.0
    name = str(unit).strip().lower()
    name = _ALIASES.get(name, name)
    if name not in UNIT_NM:
        raise AxesError(
            f"{where}: unit {unit!r} is not a length unit lamina knows; expected one of "
            f"{', '.join(sorted(UNIT_NM))}"
        )
    return UNIT_NM[name]


def _letters(names: Sequence[str]) -> str:
    return "".join(names)


@attrs.frozen
class AxisOrder:
    """The stored axes, one letter each in storage order (``"czyx"``): ``x``, ``y``,
    ``z`` once each, ``c`` (channels) and ``t`` (time) at most once."""

    letters: str

    @classmethod
    def parse(cls, axes: str | Sequence[Any], ndim: int, where: str) -> AxisOrder:
        """``axes`` as a string (``"czyx"``) or names (``["c", "z", "y", "x"]``) checked
        against an array of ``ndim`` dimensions."""
        names = [str(a).lower() for a in axes] if not isinstance(axes, str) else list(axes.lower())
        if any(len(n) != 1 for n in names):
            raise AxesError(
                f"{where}: axes must be one letter each of x, y, z, c and t; got {axes!r}"
            )
        text = _letters(names)
        spatial = sorted(a for a in text if a in "xyz")
        others = [a for a in text if a not in "xyz"]
        if spatial != ["x", "y", "z"] or any(a not in "ct" for a in others):
            if len(spatial) == 2 and spatial != ["x", "y", "z"]:
                raise AxesError(
                    f"{where}: a 2-D image (axes {text!r}) is not a volume: lamina reads "
                    "arrays with x, y and z axes"
                )
            raise AxesError(
                f"{where}: axes must name x, y and z once each, and c (channels) and t "
                f"(time) at most once, e.g. 'czyx' or 'tczyx'; got {text!r}"
            )
        if len(set(others)) != len(others):
            raise AxesError(f"{where}: axes {text!r} name an axis twice")
        if len(text) != ndim:
            raise AxesError(
                f"{where}: axes {text!r} name {len(text)} axes but the array has {ndim} "
                "dimensions: give one letter per dimension, in the array's order"
            )
        return cls(text)

    @property
    def has_channels(self) -> bool:
        return "c" in self.letters

    @property
    def has_time(self) -> bool:
        return "t" in self.letters

    def channels(self, shape: Sequence[int]) -> int:
        """The channel count of an array of ``shape`` (storage order): 1 without a ``c``."""
        return int(shape[self.index("c")]) if self.has_channels else 1

    def index(self, letter: str) -> int:
        """The storage position of axis ``letter``."""
        return self.letters.index(letter)

    def spatial(self, values: Sequence[Any]) -> tuple[Any, Any, Any]:
        """Of per-axis ``values`` in storage order, those of x, y, z (lamina's order)."""
        return (
            values[self.index("x")],
            values[self.index("y")],
            values[self.index("z")],
        )

    def stored(self, xyz: Sequence[Any], c: Any, t: Any) -> list[Any]:
        """Per-axis values in storage order from lamina's ``x, y, z``, the channel's ``c``
        and the time axis's ``t``."""
        by_letter = {"x": xyz[0], "y": xyz[1], "z": xyz[2], "c": c, "t": t}
        return [by_letter[a] for a in self.letters]

    def to_xyzc(self) -> list[int]:
        """The permutation from storage order without ``t`` (and with ``c`` appended last
        when absent) to ``(x, y, z, c)``."""
        kept = [a for a in self.letters if a != "t"]
        if "c" not in kept:
            kept.append("c")
        return [kept.index(a) for a in "xyzc"]
