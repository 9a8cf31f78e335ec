"""The strider: :class:`BBoxStrider` enumerates the chunk boxes that tile a box on a grid.

The chunker and the torch dataset walk a region chunk by chunk; the strider computes
any chunk's box directly from its number (``get_nth_chunk_bbox``), so the list of all
boxes need not be built.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal, TypeAlias

import attrs

from lamina.volumetric.geometry.args import _positive_res
from lamina.volumetric.geometry.bbox import BBox3D, EmptyBBoxError, _make_bbox
from lamina.volumetric.geometry.bounds import _check_bounds
from lamina.volumetric.geometry.scalars import EPS, _r10
from lamina.volumetric.geometry.vec import RawVec3D, Vec3D

__all__ = ["BBoxStrider", "StriderMode"]

StriderMode: TypeAlias = Literal["shrink", "expand", "exact"]


def _positive_vec(value: RawVec3D, what: str) -> Vec3D[Any]:
    v = Vec3D.from_seq(value, what)
    if not (v > 0 and math.isfinite(v[0] + v[1] + v[2])):
        raise ValueError(f"{what} must be finite and > 0 in every dimension, got {v.pformat()}")
    return v


def _chunk_size(value: RawVec3D) -> Vec3D[Any]:
    return _positive_vec(value, "chunk_size")


def _stride(value: RawVec3D) -> Vec3D[Any]:
    return _positive_vec(value, "stride")


def _optional_vec(value: RawVec3D | None) -> Vec3D[Any] | None:
    return None if value is None else Vec3D.from_seq(value, "vector")


@attrs.frozen(slots=True)
class BBoxStrider:
    """Enumerates chunk boxes of ``chunk_size`` voxels every ``stride`` voxels over ``bbox``.

    Chunk starts lie on the grid ``stride_start_offset + k * stride`` (voxels at
    ``resolution``; by default the grid starts at the bbox start). Modes:

    - ``expand``: chunks start at the last grid point <= the bbox start and continue
      until the bbox is covered (the chunks may reach outside it; with
      ``stride > chunk_size`` the gaps stay uncovered and no chunk starts past the end);
    - ``shrink``: only chunks lying entirely inside the bbox;
    - ``exact``: like ``expand`` (needs ``stride == chunk_size``) but each chunk is
      cropped to the bbox, giving full chunks inside and partial chunks at the edges.

    Chunks are ordered x fastest, then y, then z. With ``max_superchunk_size`` (needs
    ``stride == chunk_size``) neighbouring chunks are merged into superchunks of the
    largest whole number of chunks that fits in it; superchunks cover exactly the
    chunks the strider would otherwise produce (the last ones are cropped).
    """

    bbox: BBox3D
    resolution: Vec3D[float] = attrs.field(converter=_positive_res)
    chunk_size: Vec3D[Any] = attrs.field(converter=_chunk_size)
    stride: Vec3D[Any] = attrs.field(converter=_stride)
    max_superchunk_size: Vec3D[Any] | None = attrs.field(default=None, converter=_optional_vec)
    stride_start_offset: Vec3D[Any] | None = attrs.field(default=None, converter=_optional_vec)
    mode: StriderMode = "expand"

    # derived (voxels at ``resolution``)
    _first: tuple[float, float, float] = attrs.field(init=False, eq=False, repr=False)
    _step: tuple[float, float, float] = attrs.field(init=False, eq=False, repr=False)
    _size: tuple[float, float, float] = attrs.field(init=False, eq=False, repr=False)
    _shape: Vec3D[int] = attrs.field(init=False, eq=False, repr=False)
    _crop: tuple[tuple[float, float], ...] | None = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.bbox, BBox3D):
            raise TypeError(f"bbox must be a BBox3D, got {self.bbox!r}")
        if self.bbox.is_empty:
            raise EmptyBBoxError("cannot stride over the empty BBox3D")
        if self.mode not in ("shrink", "expand", "exact"):
            raise ValueError(f"mode must be 'shrink', 'expand' or 'exact', got {self.mode!r}")
        chunk, stride, res = self.chunk_size, self.stride, self.resolution
        if self.mode == "exact" and chunk != stride:
            raise ValueError(
                f"mode 'exact' needs stride == chunk_size, got stride {stride.pformat()} and "
                f"chunk_size {chunk.pformat()}"
            )
        start = [_r10(self.bbox.bounds[d][0] / res[d]) for d in range(3)]
        end = [_r10(self.bbox.bounds[d][1] / res[d]) for d in range(3)]
        origin = start if self.stride_start_offset is None else list(self.stride_start_offset)

        first: list[float] = []
        counts: list[int] = []
        for d in range(3):
            k = (start[d] - origin[d]) / stride[d]
            if self.mode == "shrink":
                f = origin[d] + math.ceil(k - EPS) * stride[d]
                n = max(math.floor((end[d] - f - chunk[d]) / stride[d] + EPS) + 1, 0)
            else:
                f = origin[d] + math.floor(k + EPS) * stride[d]
                # as few chunks as cover the bbox, but none starting at or after its end
                # (which only matters when stride > chunk_size leaves gaps)
                n = math.ceil((end[d] - f - chunk[d]) / stride[d] - EPS) + 1
                n = max(min(n, math.ceil((end[d] - f) / stride[d] - EPS)), 1)
            first.append(f)
            counts.append(n)

        step: list[float] = list(stride)
        size: list[float] = list(chunk)
        crop: list[tuple[float, float]] | None = None
        if self.max_superchunk_size is not None:
            sup = self.max_superchunk_size
            if chunk != stride:
                raise ValueError(
                    f"max_superchunk_size needs stride == chunk_size, got stride "
                    f"{stride.pformat()} and chunk_size {chunk.pformat()}"
                )
            if not sup >= chunk:
                raise ValueError(
                    f"max_superchunk_size must be >= chunk_size in every dimension, got "
                    f"{sup.pformat()} < {chunk.pformat()}"
                )
            m = [math.floor(sup[d] / chunk[d] + EPS) for d in range(3)]
            crop = [(first[d], first[d] + counts[d] * chunk[d]) for d in range(3)]
            step = [m[d] * chunk[d] for d in range(3)]
            size = step
            counts = [math.ceil(counts[d] / m[d]) for d in range(3)]
        if self.mode == "exact":
            crop = [(start[d], end[d]) for d in range(3)]

        object.__setattr__(self, "_first", tuple(first))
        object.__setattr__(self, "_step", tuple(step))
        object.__setattr__(self, "_size", tuple(size))
        object.__setattr__(self, "_shape", Vec3D(counts[0], counts[1], counts[2]))
        object.__setattr__(self, "_crop", None if crop is None else tuple(crop))

    @property
    def shape(self) -> Vec3D[int]:
        """Number of chunks along x, y and z."""
        return self._shape

    @property
    def num_chunks(self) -> int:
        """Total number of chunks."""
        sx, sy, sz = self._shape
        return sx * sy * sz

    def __len__(self) -> int:
        return self.num_chunks

    def get_nth_chunk_bbox(self, n: int) -> BBox3D:
        """The ``n``-th chunk box (x fastest, then y, then z), computed directly."""
        num = self.num_chunks
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"chunk number must be an int, got {n!r}")
        if not 0 <= n < num:
            raise IndexError(f"chunk number {n} out of range: this strider has {num} chunks")
        sx, sy, _ = self._shape
        idx = (n % sx, (n // sx) % sy, n // (sx * sy))
        res = self.resolution
        bounds = []
        for d in range(3):
            lo = self._first[d] + idx[d] * self._step[d]
            hi = lo + self._size[d]
            if self._crop is not None:
                lo, hi = max(lo, self._crop[d][0]), min(hi, self._crop[d][1])
            bounds.append((_r10(lo * res[d]), _r10(hi * res[d])))
        return _make_bbox(_check_bounds((bounds[0], bounds[1], bounds[2])), self.bbox.unit, res)

    def get_all_chunk_bboxes(self) -> list[BBox3D]:
        """Every chunk box, in order."""
        return [self.get_nth_chunk_bbox(i) for i in range(self.num_chunks)]

    def __iter__(self) -> Iterator[BBox3D]:
        return (self.get_nth_chunk_bbox(i) for i in range(self.num_chunks))
