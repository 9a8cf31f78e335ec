"""Reading and writing at a resolution other than the stored one.

A volumetric layer built with ``data_resolution`` keeps its data at that resolution
and lets users index it at any other: reads fetch the same region (in nm) at the data
resolution and resample it to the desired one, writes resample the other way. This
module holds the one implementation, used innermost by :class:`VolumetricLayer` and by
the :class:`DataResolutionInterpolator` processor for explicit use in processor lists.

Nothing is resampled when the two resolutions are equal (the reference did, which cost
time, binarised masks and sent ids through float). A fill (a scalar write, a zero-stride
array) is re-broadcast at the new shape instead of being resampled as a tiny volume
(which in the reference failed at any other resolution).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lamina.processors import JointIndexDataProcessor, Mode
from lamina.volumetric.converters import to_float_vec3
from lamina.volumetric.data import as_fill, fill_value
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.modes import InterpolationMode

__all__ = [
    "DataResolutionInterpolator",
    "InterpolationMode",
    "resample_read",
    "resample_write",
]


def _fit(data: npt.NDArray[Any], source: VolumetricIndex, target: VolumetricIndex) -> Any:
    """Crop or zero-pad resampled ``data`` (read at ``source``) to ``target``'s voxels.

    Only differs from ``data`` when slice rounding widened ``source`` to whole voxels at
    the data resolution; the offset is measured from the voxels actually read.
    """
    res = target.resolution
    offset = [
        round((source.start[d] * source.resolution[d] - target.start[d] * res[d]) / res[d])
        for d in range(3)
    ]
    if not any(offset) and tuple(data.shape[1:]) == tuple(target.shape):
        return data
    out = np.zeros((data.shape[0], *target.shape), dtype=data.dtype)
    src, dst = [], []
    for d in range(3):
        lo = max(0, offset[d])
        hi = min(target.shape[d], offset[d] + data.shape[d + 1])
        src.append(slice(lo - offset[d], hi - offset[d]))
        dst.append(slice(lo, hi))
    out[(slice(None), *dst)] = data[(slice(None), *src)]
    return out


def data_index_for_read(idx: VolumetricIndex, data_resolution: Vec3D[float]) -> VolumetricIndex:
    """The region to read at ``data_resolution`` for ``idx``: the voxels ``idx`` covers
    (after its own rounding), widened to whole voxels at the data resolution if the index
    allows rounding."""
    if idx.allow_slice_rounding:
        covered = BBox3D.from_coords(idx.start, idx.stop, idx.resolution)
        return VolumetricIndex(data_resolution, covered, idx.chunk_id, True)
    return idx.with_resolution(data_resolution)


def resample_read(
    data: npt.NDArray[Any],
    data_idx: VolumetricIndex,
    idx: VolumetricIndex,
    mode: InterpolationMode,
    mask_value_thr: float = 0.0,
) -> Any:
    """Data read at ``data_idx`` resampled to ``idx`` (same region, another resolution)."""
    if data_idx.resolution == idx.resolution:
        return data
    from lamina.volumetric.resample import resample

    factor = data_idx.resolution / idx.resolution
    out = resample(
        data,
        factor,
        mode,
        mask_value_thr=mask_value_thr,
        allow_shape_rounding=idx.allow_slice_rounding,
    )
    return _fit(out, data_idx, idx)


def resample_write(
    data: npt.NDArray[Any],
    idx: VolumetricIndex,
    data_idx: VolumetricIndex,
    mode: InterpolationMode,
    mask_value_thr: float = 0.0,
) -> Any:
    """Data given for ``idx`` resampled to ``data_idx``; fills are re-broadcast."""
    if data_idx.resolution == idx.resolution:
        return data
    from lamina.volumetric.resample import resample

    factor = idx.resolution / data_idx.resolution
    value = fill_value(data)
    if value is not None:
        # Resample one block of the constant (so field scaling and mask thresholds apply
        # exactly as to an array) and broadcast the result over the region.
        block = [max(1, round(1 / f)) if f < 1 else 1 for f in factor]
        probe = resample(
            np.full((data.shape[0], *block), value, dtype=data.dtype),
            factor,
            mode,
            mask_value_thr=mask_value_thr,
        )
        return as_fill(probe[:, :1, :1, :1], (data.shape[0], *data_idx.shape))

    out = resample(data, factor, mode, mask_value_thr=mask_value_thr)
    if tuple(out.shape[1:]) != tuple(data_idx.shape):
        raise ValueError(
            f"resampling {tuple(data.shape)} from {idx.resolution.pformat()} to "
            f"{data_idx.resolution.pformat()} gives {tuple(out.shape)}, which does not fill "
            f"the {tuple(data_idx.shape)} voxels of the region at the data resolution"
        )
    return out


def data_index_for_write(idx: VolumetricIndex, data_resolution: Vec3D[float]) -> VolumetricIndex:
    """``idx`` at ``data_resolution``; a write must cover whole voxels there (no rounding)."""
    try:
        return VolumetricIndex(data_resolution, idx.bbox, idx.chunk_id, False)
    except ValueError as exc:
        raise ValueError(
            f"cannot write {idx.pformat()} at {idx.resolution.pformat()} nm through "
            f"data_resolution {data_resolution.pformat()} nm: the region is not a whole "
            f"number of voxels at the data resolution ({exc}). Writes are never rounded, "
            "because rounding would write voxels outside the region given."
        ) from None


@attrs.frozen
class DataResolutionInterpolator(JointIndexDataProcessor[Any, VolumetricIndex]):
    """Joint processor: do IO at ``data_resolution`` and resample to/from the index's.

    ``build_volumetric_layer(data_resolution=...)`` does this innermost by itself; use
    this processor to place the resampling elsewhere in a processor list.
    """

    data_resolution: Vec3D[float] = attrs.field(converter=to_float_vec3)
    interpolation_mode: InterpolationMode
    mask_value_thr: float = 0.0
    prob: float = 1.0

    def process_index(self, idx: VolumetricIndex, mode: Mode) -> tuple[VolumetricIndex, Any]:
        if mode == "write":
            return data_index_for_write(idx, self.data_resolution), idx
        return data_index_for_read(idx, self.data_resolution), idx

    def process_data(self, data: Any, mode: Mode, state: Any) -> Any:
        idx: VolumetricIndex = state
        if mode == "write":
            data_idx = data_index_for_write(idx, self.data_resolution)
            return resample_write(data, idx, data_idx, self.interpolation_mode, self.mask_value_thr)
        data_idx = data_index_for_read(idx, self.data_resolution)
        return resample_read(data, data_idx, idx, self.interpolation_mode, self.mask_value_thr)


def as_resolution(value: RawVec3D | None, what: str) -> Vec3D[float] | None:
    """An optional resolution argument as a float ``Vec3D`` (``None`` stays ``None``)."""
    return None if value is None else Vec3D.from_seq(value, what).float()
