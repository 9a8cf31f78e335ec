"""``VolumetricIndexChunker``: split an index into chunk indices (the reference's chunker).

Processing flows use it to cut a region into tasks that follow a chunk grid. Chunk
geometry is counted in voxels at ``resolution`` (default: the index's own); the grid
starts at the index's start shifted by ``offset`` voxels (or at
``stride_start_offset + offset``). Chunks come x fastest, then y, then z (see
:class:`~lamina.volumetric.geometry.BBoxStrider` for the modes ``expand``,
``shrink`` and ``exact`` and for superchunks). Unlike the reference, which reset it, chunks
keep the index's ``allow_slice_rounding``.

``split_into_nonoverlapping_chunkers(pad)`` gives the 8 checkerboard chunkers whose
padded chunks never overlap within one chunker, so 8 passes can write padded chunks
without two concurrent tasks touching the same voxels.
"""

from __future__ import annotations

import itertools
from typing import Literal

import attrs

from lamina.volumetric.converters import to_optional_vec3, to_vec3
from lamina.volumetric.geometry import BBoxStrider, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = ["VolumetricIndexChunker"]

ChunkMode = Literal["expand", "shrink", "exact"]


@attrs.frozen
class VolumetricIndexChunker:
    """Callable ``idx -> [chunk indices]`` over a chunk grid."""

    chunk_size: Vec3D[int] = attrs.field(converter=to_vec3)
    max_superchunk_size: Vec3D[int] | None = attrs.field(
        default=None,
        converter=to_optional_vec3,
    )
    stride: Vec3D[int] | None = attrs.field(
        default=None,
        converter=to_optional_vec3,
    )
    resolution: Vec3D[float] | None = attrs.field(
        default=None,
        converter=to_optional_vec3,
    )
    offset: Vec3D[int] = attrs.field(default=(0, 0, 0), converter=to_vec3)
    #: Set by ``split_into_nonoverlapping_chunkers``: keep only the chunks whose grid
    #: position has this parity, each padded by ``pad`` voxels.
    parity: Vec3D[int] | None = attrs.field(
        default=None,
        converter=to_optional_vec3,
    )
    pad: Vec3D[int] = attrs.field(default=(0, 0, 0), converter=to_vec3)

    def _strider(
        self, idx: VolumetricIndex, stride_start_offset: RawVec3D | None, mode: ChunkMode
    ) -> BBoxStrider:
        res = self.resolution if self.resolution is not None else idx.resolution
        bbox = idx.bbox.translated_start(self.offset, res)
        if stride_start_offset is None:
            anchor = Vec3D(*(bbox.start[d] / res[d] for d in range(3)))
        else:
            anchor = Vec3D.from_seq(stride_start_offset, "stride_start_offset") + self.offset
        return BBoxStrider(
            bbox=bbox,
            resolution=res,
            chunk_size=self.chunk_size,
            stride=self.stride if self.stride is not None else self.chunk_size,
            max_superchunk_size=self.max_superchunk_size,
            stride_start_offset=anchor,
            mode=mode,
        )

    def __call__(
        self,
        idx: VolumetricIndex,
        stride_start_offset: RawVec3D | None = None,
        mode: ChunkMode = "expand",
        chunk_id_increment: int = 0,
    ) -> list[VolumetricIndex]:
        """The chunk indices at ``idx``'s resolution; chunk ``i`` gets id
        ``idx.chunk_id + i * chunk_id_increment``."""
        strider = self._strider(idx, stride_start_offset, mode)
        bboxes = strider.get_all_chunk_bboxes()
        if self.parity is not None:
            res = self.resolution if self.resolution is not None else idx.resolution
            nx, ny, _ = strider.shape
            kept = []
            for n, bbox in enumerate(bboxes):
                position = (n % nx, (n // nx) % ny, n // (nx * ny))
                if all(position[d] % 2 == self.parity[d] for d in range(3)):
                    kept.append(bbox.padded(self.pad, res))
            bboxes = kept
        return [
            VolumetricIndex(
                idx.resolution,
                bbox,
                idx.chunk_id + i * chunk_id_increment,
                idx.allow_slice_rounding,
            )
            for i, bbox in enumerate(bboxes)
        ]

    def get_shape(
        self,
        idx: VolumetricIndex,
        stride_start_offset: RawVec3D | None = None,
        mode: ChunkMode = "expand",
    ) -> Vec3D[int]:
        """The number of chunks along x, y and z."""
        return self._strider(idx, stride_start_offset, mode).shape

    def split_into_nonoverlapping_chunkers(
        self, pad: RawVec3D = (0, 0, 0)
    ) -> list[VolumetricIndexChunker]:
        """The 8 checkerboard chunkers (parities x, y, z in {0, 1}, x fastest) of this grid.

        Each yields every other chunk along each axis, padded by ``pad`` voxels on each
        side; together they yield every chunk once, and within one chunker padded chunks
        never overlap (hence ``pad`` at most half the chunk size).
        """
        pad_vec = Vec3D.from_seq(pad, "pad")
        if self.stride is not None and self.stride != self.chunk_size:
            raise NotImplementedError(
                "split_into_nonoverlapping_chunkers needs stride == chunk_size; got stride "
                f"{self.stride.pformat()} and chunk_size {self.chunk_size.pformat()}"
            )
        if self.offset != Vec3D(0, 0, 0):
            raise NotImplementedError(
                f"split_into_nonoverlapping_chunkers needs offset (0, 0, 0); got {self.offset}"
            )
        if self.parity is not None:
            raise ValueError("this chunker is already one of a checkerboard split")
        if self.max_superchunk_size is not None:
            raise NotImplementedError("split_into_nonoverlapping_chunkers with superchunks")
        if not (pad_vec >= 0 and pad_vec * 2 <= self.chunk_size):
            raise ValueError(
                f"pad must be between 0 and half the chunk size {self.chunk_size.pformat()}; "
                f"got {pad_vec.pformat()}"
            )
        return [
            attrs.evolve(self, parity=Vec3D(x, y, z), pad=pad_vec)
            for z, y, x in itertools.product((0, 1), repeat=3)
        ]
