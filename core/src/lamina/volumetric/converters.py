"""Named, typed attrs converters for 3-vectors (mypy's attrs plugin needs named functions).

Builders that users call convert their arguments with ``Vec3D.from_seq(value, name)``
first, so the error names the argument; these converters are the backstop for values
built directly.
"""

from __future__ import annotations

from typing import Any

from lamina.volumetric.geometry import Vec3D

__all__ = ["to_float_vec3", "to_int_vec3", "to_optional_float_vec3", "to_optional_vec3", "to_vec3"]

_WHAT = "a 3-vector (x, y, z)"


def to_vec3(value: Any) -> Vec3D[Any]:
    """Any 3-sequence of numbers as a ``Vec3D`` (ints stay ints)."""
    return Vec3D.from_seq(value, _WHAT)


def to_float_vec3(value: Any) -> Vec3D[float]:
    """Any 3-sequence of numbers as a float ``Vec3D`` (resolutions)."""
    return Vec3D.from_seq(value, _WHAT).float()


def to_int_vec3(value: Any) -> Vec3D[int]:
    """Any 3-sequence of whole numbers as an int ``Vec3D`` (voxel counts)."""
    vec = Vec3D.from_seq(value, _WHAT)
    if any(float(v) != int(v) for v in vec):
        raise ValueError(f"{_WHAT} of whole numbers is needed; got {vec.pformat()}")
    return vec.int()


def to_optional_vec3(value: Any) -> Vec3D[Any] | None:
    """``None`` or :func:`to_vec3`."""
    return None if value is None else to_vec3(value)


def to_optional_float_vec3(value: Any) -> Vec3D[float] | None:
    """``None`` or :func:`to_float_vec3`."""
    return None if value is None else to_float_vec3(value)
