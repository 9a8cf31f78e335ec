"""The interpolation modes a volumetric layer resamples with: the reference system's modes."""

from __future__ import annotations

from typing import Literal

__all__ = ["InterpolationMode"]

InterpolationMode = Literal[
    "nearest",
    "nearest-exact",
    "linear",
    "bilinear",
    "bicubic",
    "trilinear",
    "area",
    "img",
    "field",
    "mask",
    "segmentation",
]
