"""The constant backend: every voxel of every resolution reads as one value.

Useful as a stand-in input (an all-ones mask, a zero field). It cannot be written
(``capabilities.writable`` is False, so a layer refuses writes before any processor
runs) and holds nothing to delete. Fixed from the reference: its name says its value
(the reference's printed a literal ``{self.value}``), it defaults to one channel (not
zero, which read as empty arrays), and ``with_changes`` refuses every key instead of
ignoring it (a misspelt option must not pass silently). Its bounds are very large rather
than empty, so bounds checks never reject a read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

import attrs
import numpy as np
import numpy.typing as npt

from lamina.backend import Capabilities
from lamina.errors import UnsupportedOperationError
from lamina.volumetric.backend import VolumetricBackend, VolumetricChanges
from lamina.volumetric.geometry import RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer

__all__ = ["ConstantVolumetricBackend", "build_constant_volumetric_layer"]

_HALF_EXTENT = 2**40


@attrs.frozen
class ConstantVolumetricBackend(VolumetricBackend):
    """Reads ``value`` everywhere, as ``num_channels`` channels of ``dtype`` (float32)."""

    capabilities = Capabilities(writable=False, deletable=False, non_aligned_writes=False)
    supported_changes = frozenset()

    value: float = 0
    _num_channels: int = attrs.field(default=1, alias="num_channels")
    _dtype: np.dtype[Any] = attrs.field(default="float32", converter=np.dtype, alias="dtype")

    def __attrs_post_init__(self) -> None:
        if self._num_channels < 1:
            raise ValueError(f"num_channels must be >= 1; got {self._num_channels}")

    @property
    def name(self) -> str:
        return f"constant({self.value}, channels={self._num_channels}, {self._dtype})"

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._dtype

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def resolutions(self) -> tuple[Vec3D[float], ...]:
        """Empty: every resolution reads the same."""
        return ()

    def get_voxel_offset(self, resolution: RawVec3D) -> Vec3D[int]:
        return Vec3D(-_HALF_EXTENT, -_HALF_EXTENT, -_HALF_EXTENT)

    def get_chunk_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return Vec3D(1, 1, 1)

    def get_dataset_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return Vec3D(2 * _HALF_EXTENT, 2 * _HALF_EXTENT, 2 * _HALF_EXTENT)

    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        return False

    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        return np.full((self._num_channels, *idx.shape), self.value, dtype=self._dtype)

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        raise UnsupportedOperationError(f"{self.name} cannot be written")

    def with_changes(self, **changes: Unpack[VolumetricChanges]) -> ConstantVolumetricBackend:  # type: ignore[override]
        """No key is supported; ``with_changes()`` returns the backend itself."""
        self.check_changes(dict(changes))
        return self

    def delete(self) -> None:
        raise UnsupportedOperationError(f"{self.name} stores nothing to delete")


def build_constant_volumetric_layer(
    value: float = 0,
    num_channels: int = 1,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    data_resolution: RawVec3D | None = None,
    interpolation_mode: Any = None,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
) -> VolumetricLayer:
    """A readonly layer reading ``value`` everywhere.

    A stand-in input: an all-ones mask, a zero field. Every read returns ``num_channels``
    channels of float32 filled with ``value``, wherever and at whatever resolution it is
    asked; the volume's bounds are very large, so no read is out of bounds. The layer is
    always readonly, which is why there is no ``readonly`` or ``write_procs`` parameter:
    a write raises :class:`~lamina.errors.ReadonlyLayerError` (an ``IOError``). The
    parameters are those of the reference system's ``build_constant_volumetric_layer``.

    Args:
        value: what every voxel reads as; default 0.
        num_channels: the channel count of every read, >= 1 (``ValueError``); default 1.
        default_desired_resolution: the resolution (nm) of the arrays read when the
            index does not give one; default ``None``: every index must give one
            (``ValueError``).
        index_resolution: the resolution (nm) slices count voxels at; default ``None``:
            the index's own resolution.
        data_resolution: read at this resolution (nm) and resample to the one asked
            for; default ``None``: no resampling. The constant reads the same at every
            resolution, so only modes that compute new values change the result
            (``"mask"`` gives 0/1, ``"field"`` scales by the factor).
        interpolation_mode: the resampling mode; required with ``data_resolution``
            (``ValueError``); see :func:`lamina.build_volumetric_layer`.
        allow_slice_rounding: widen regions off the voxel grid to whole voxels (start
            floored, stop ceiled) instead of raising ``ValueError``; default ``False``.
        index_procs: callables ``VolumetricIndex -> VolumetricIndex`` applied before
            every read.
        read_procs: data and joint processors of reads; ``read_procs[0]`` sits closest
            to the constant.

    Returns:
        The :class:`~lamina.volumetric.layer.VolumetricLayer`.
    """
    return build_volumetric_layer(
        ConstantVolumetricBackend(value=value, num_channels=num_channels),
        default_desired_resolution=default_desired_resolution,
        index_resolution=index_resolution,
        data_resolution=data_resolution,
        interpolation_mode=interpolation_mode,
        readonly=True,
        allow_slice_rounding=allow_slice_rounding,
        index_procs=index_procs,
        read_procs=read_procs,
    )
