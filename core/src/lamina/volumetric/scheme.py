"""The volumetric index scheme: every user index form of the reference system.

Accepted between ``[ ]`` (``res`` is a resolution in nm, x, y, z, or ``None``):

==============================  ==========================  ===============================
form                            slices counted at           desired (output) resolution
==============================  ==========================  ===============================
``VolumetricIndex``             —                           its own
``BBox3D``                      —                           ``default_desired_resolution``
``(res, BBox3D)``               —                           ``res`` or the default
``(s, s, s)``                   ``index_resolution``        the default
``(res, s, s, s)``              ``index_resolution``,       ``res`` or the default
``(res, (s, s, s))``            else ``res``                ``res`` or the default
==============================  ==========================  ===============================

Slices are literal voxel coordinates (negative means negative, no wrap-around) and
need both ends, no step, and start <= stop (checked here, with an error naming the
dimension, rather than failing deep in arithmetic as in the reference). A region that is not a
whole number of voxels at the desired resolution is an error unless
``allow_slice_rounding`` is set, and then it is widened to whole voxels (start
floored, stop ceiled — not rounded to nearest, as the reference's docs said). A user's
``VolumetricIndex`` is never changed (the reference overwrote its rounding flag in place):
the layer's rounding flag goes into a copy.
"""

from __future__ import annotations

from typing import Any

import attrs

from lamina.volumetric.converters import to_optional_float_vec3
from lamina.volumetric.data import check_volume_data
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D, _make_bbox, _tuple_new
from lamina.volumetric.index import VolumetricIndex, _index_with_extent

__all__ = ["VolumetricScheme"]

_FORMS = (
    "a VolumetricIndex, a BBox3D, (resolution|None, BBox3D), (slice, slice, slice), "
    "(resolution|None, slice, slice, slice) or (resolution|None, (slice, slice, slice))"
)


def _is_res(value: Any) -> bool:
    if value is None or type(value) is Vec3D:
        return True
    return (
        not isinstance(value, slice | BBox3D | str)
        and hasattr(value, "__len__")
        and len(value) == 3
        and not any(isinstance(v, slice) for v in value)
    )


@attrs.frozen
class VolumetricScheme:
    """Turns user indices into ``VolumetricIndex`` objects and checks write data."""

    index_resolution: Vec3D[float] | None = attrs.field(
        default=None, converter=to_optional_float_vec3
    )
    default_desired_resolution: Vec3D[float] | None = attrs.field(
        default=None, converter=to_optional_float_vec3
    )
    allow_slice_rounding: bool = False
    #: Set when slices may take the fast path of ``to_index`` (see ``_plain_slices_index``):
    #: the index resolution, equal to the desired one, in whole nm per voxel.
    _fast_res: Vec3D[float] | None = attrs.field(init=False, default=None, eq=False, repr=False)
    #: Voxel coordinates below this bound have exact nm bounds (products below 2**53).
    _fast_limit: int = attrs.field(init=False, default=0, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        res = self.index_resolution
        if (
            res is not None
            and res == self.default_desired_resolution
            and all(float(r).is_integer() for r in res)
        ):
            object.__setattr__(self, "_fast_res", self.default_desired_resolution)
            object.__setattr__(self, "_fast_limit", 2**53 // int(max(res)))

    def _desired(self, res: RawVec3D | None, user_idx: Any) -> Vec3D[float]:
        if res is not None:
            return Vec3D.from_seq(res, "the index's resolution").float()
        if self.default_desired_resolution is None:
            raise ValueError(
                f"index {user_idx!r} gives no resolution and the layer has no "
                "default_desired_resolution: put one in the index, e.g. "
                "layer[Vec3D(8, 8, 40), 0:64, 0:64, 0:8], or build the layer with "
                "default_desired_resolution="
            )
        return self.default_desired_resolution

    def _slices_bbox(self, slices: Any, res: RawVec3D | None, user_idx: Any) -> BBox3D:
        slice_res = self.index_resolution if self.index_resolution is not None else res
        if slice_res is None:
            raise ValueError(
                f"cannot tell the resolution of the slices in {user_idx!r}: the layer has no "
                "index_resolution and the index gives none; index as "
                "layer[Vec3D(8, 8, 40), x0:x1, y0:y1, z0:z1] or build the layer with "
                "index_resolution="
            )
        return BBox3D.from_slices(slices, slice_res)

    def to_index(self, user_idx: Any) -> VolumetricIndex:
        """The ``VolumetricIndex`` for any accepted form; ``ValueError`` otherwise."""
        if self._fast_res is not None and type(user_idx) is tuple and len(user_idx) == 3:
            fast = self._plain_slices_index(user_idx)
            if fast is not None:
                return fast
        if isinstance(user_idx, VolumetricIndex):
            if user_idx.allow_slice_rounding == self.allow_slice_rounding:
                return user_idx
            return user_idx.with_allow_slice_rounding(self.allow_slice_rounding)
        if isinstance(user_idx, BBox3D):
            return self._index(self._desired(None, user_idx), user_idx)
        if not isinstance(user_idx, tuple):
            raise ValueError(
                f"a volumetric layer is indexed with {_FORMS}; got {type(user_idx).__name__} "
                f"{user_idx!r}"
            )
        n = len(user_idx)
        if n == 3 and all(isinstance(s, slice) for s in user_idx):
            bbox = self._slices_bbox(user_idx, None, user_idx)
            return self._index(self._desired(None, user_idx), bbox)
        if n == 4 and _is_res(user_idx[0]):
            res = user_idx[0]
            bbox = self._slices_bbox(user_idx[1:], res, user_idx)
            return self._index(self._desired(res, user_idx), bbox)
        if n == 2 and _is_res(user_idx[0]):
            res, rest = user_idx
            if isinstance(rest, BBox3D):
                return self._index(self._desired(res, user_idx), rest)
            if isinstance(rest, tuple) and len(rest) == 3:
                bbox = self._slices_bbox(rest, res, user_idx)
                return self._index(self._desired(res, user_idx), bbox)
        raise ValueError(f"a volumetric layer is indexed with {_FORMS}; got {user_idx!r}")

    def _plain_slices_index(self, slices: tuple[Any, ...]) -> VolumetricIndex | None:
        """``layer[x0:x1, y0:y1, z0:z1]`` with int bounds, no step and start <= stop, at an
        index resolution that is the desired one and whole nm per voxel: the very index the
        general path builds (nm bounds ``v * res`` are exact integers, so the voxel extent
        is the slices themselves), without its checks and divisions. ``None`` for anything
        else, which then takes the general path (and its errors)."""
        sx, sy, sz = slices
        if type(sx) is not slice or type(sy) is not slice or type(sz) is not slice:
            return None
        x0, x1, y0, y1, z0, z1 = sx.start, sx.stop, sy.start, sy.stop, sz.start, sz.stop
        if (
            type(x0) is not int
            or type(x1) is not int
            or type(y0) is not int
            or type(y1) is not int
            or type(z0) is not int
            or type(z1) is not int
            or sx.step is not None
            or sy.step is not None
            or sz.step is not None
            or not (x0 <= x1 and y0 <= y1 and z0 <= z1)
        ):
            return None
        limit = self._fast_limit
        if not (-limit < x0 and x1 < limit and -limit < y0 and y1 < limit):
            return None
        if not (-limit < z0 and z1 < limit):
            return None
        res = self._fast_res
        assert res is not None
        rx, ry, rz = res
        bbox = _make_bbox(((x0 * rx, x1 * rx), (y0 * ry, y1 * ry), (z0 * rz, z1 * rz)), "nm", res)
        return _index_with_extent(
            res,
            bbox,
            _tuple_new(Vec3D, (x0, y0, z0)),
            _tuple_new(Vec3D, (x1, y1, z1)),
            self.allow_slice_rounding,
        )

    def _index(self, resolution: Vec3D[float], bbox: BBox3D) -> VolumetricIndex:
        return VolumetricIndex(
            resolution=resolution, bbox=bbox, allow_slice_rounding=self.allow_slice_rounding
        )

    def prepare_write(self, user_idx: Any, idx: VolumetricIndex, data: Any, backend: Any) -> Any:
        """Write data in the backend's form (``backend.prepare_data``: a ``(C, X, Y, Z)``
        numpy array, scalars as fills, for a plain volume), checked against the index's
        shape and the volume's channel count before any processor."""
        prepare = getattr(backend, "prepare_data", None)
        if prepare is not None:
            return prepare(idx, data)
        return check_volume_data(data, idx.shape, getattr(backend, "num_channels", None))

    def shape_read(self, user_idx: Any, idx: VolumetricIndex, data: Any) -> Any:
        return data
