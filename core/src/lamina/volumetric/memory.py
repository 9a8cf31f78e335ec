"""The chunked in-memory volumetric backend: the reference implementation of the protocol.

Each resolution has its own voxel offset, chunk size and dataset size. Voxels live in
blocks of the chunk size the volume was created with (missing blocks read as zeros),
so changing the declared geometry with ``with_changes`` never moves stored voxels.
Like every in-memory store in lamina it travels *by value* when pickled
(``capabilities.shared_across_processes`` is False).

Writes are checked before anything is stored: shape, channels, lossless dtype,
chunk alignment (unless ``enforce_chunk_aligned_writes=False``) and the dataset
bounds — a write reaching outside the bounds is refused, never cropped.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, Unpack

import attrs
import numpy as np
import numpy.typing as npt

from lamina.backend import Capabilities
from lamina.errors import UnknownResolutionError
from lamina.volumetric.backend import VolumetricBackend, VolumetricChanges
from lamina.volumetric.data import fill_value
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer
from lamina.volumetric.scales import ScaleGeometry, bbox_of, scales_from_bbox, sorted_resolutions

__all__ = ["MemoryVolumetricBackend", "build_memory_volumetric_layer"]

_counter = itertools.count()

BlockKey = tuple[int, int, int]


class _BlockStore:
    """Blocks of voxels per resolution, on a block grid fixed at creation."""

    def __init__(self, block_sizes: Mapping[Vec3D[float], Vec3D[int]]) -> None:
        self.block_sizes = dict(block_sizes)
        self.blocks: dict[Vec3D[float], dict[BlockKey, npt.NDArray[Any]]] = {
            res: {} for res in block_sizes
        }
        self.lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"block_sizes": self.block_sizes, "blocks": self.blocks}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.Lock()

    def overlapping(
        self, res: Vec3D[float], start: Vec3D[int], stop: Vec3D[int]
    ) -> Iterator[tuple[BlockKey, tuple[slice, ...], tuple[slice, ...]]]:
        """(block key, slices in the block, slices in the region) for every block touched."""
        size = self.block_sizes[res]
        ranges = [range(start[d] // size[d], -(-stop[d] // size[d])) for d in range(3)]
        for key in itertools.product(*ranges):
            in_block, in_region = [slice(None)], [slice(None)]
            for d in range(3):
                lo = max(start[d], key[d] * size[d])
                hi = min(stop[d], (key[d] + 1) * size[d])
                in_block.append(slice(lo - key[d] * size[d], hi - key[d] * size[d]))
                in_region.append(slice(lo - start[d], hi - start[d]))
            yield (key[0], key[1], key[2]), tuple(in_block), tuple(in_region)


def _default_name() -> str:
    return f"mem://volume-{next(_counter)}"


def _as_scales(scales: Mapping[Any, Any]) -> dict[Vec3D[float], ScaleGeometry]:
    result: dict[Vec3D[float], ScaleGeometry] = {}
    for res, geo in scales.items():
        geometry = geo if isinstance(geo, ScaleGeometry) else ScaleGeometry(**geo)
        result[Vec3D.from_seq(res, "resolution").float()] = geometry
    if not result:
        raise ValueError("scales must describe at least one resolution")
    return dict(sorted(result.items(), key=lambda kv: (kv[0][0] * kv[0][1] * kv[0][2], kv[0])))


@attrs.frozen
class MemoryVolumetricBackend(VolumetricBackend):
    """An in-memory volume: ``scales`` maps each resolution to its :class:`ScaleGeometry`."""

    capabilities = Capabilities(shared_across_processes=False, non_aligned_writes=True)
    supported_changes = frozenset(
        {
            "name",
            "voxel_offset_res",
            "chunk_size_res",
            "dataset_size_res",
            "enforce_chunk_aligned_writes",
        }
    )

    _dtype: np.dtype[Any] = attrs.field(converter=np.dtype, alias="dtype")
    _num_channels: int = attrs.field(alias="num_channels")
    scales: dict[Vec3D[float], ScaleGeometry] = attrs.field(converter=_as_scales)
    _name: str = attrs.field(factory=_default_name, alias="name")
    _enforce_chunk_aligned_writes: bool = attrs.field(
        default=True, alias="enforce_chunk_aligned_writes"
    )
    _volume_type: Literal["image", "segmentation"] | None = attrs.field(
        default=None, alias="volume_type"
    )
    _store: _BlockStore = attrs.field(
        default=attrs.Factory(lambda self: self._new_store(), takes_self=True),
        eq=False,
        repr=False,
        alias="store",
    )

    def __attrs_post_init__(self) -> None:
        if self._num_channels < 1:
            raise ValueError(f"num_channels must be >= 1; got {self._num_channels}")

    def _new_store(self) -> _BlockStore:
        return _BlockStore({res: geo.chunk_size for res, geo in self.scales.items()})

    @classmethod
    def from_bbox(
        cls,
        bbox: BBox3D,
        resolutions: Iterable[RawVec3D],
        chunk_size: RawVec3D,
        dtype: Any = "uint8",
        num_channels: int = 1,
        name: str | None = None,
        volume_type: Literal["image", "segmentation"] | None = None,
    ) -> MemoryVolumetricBackend:
        """A volume covering ``bbox`` (nm) at each resolution, with one chunk size."""
        scales = scales_from_bbox(bbox, resolutions, chunk_size)
        kwargs: dict[str, Any] = {} if name is None else {"name": name}
        return cls(
            dtype=dtype,
            num_channels=num_channels,
            scales=scales,
            volume_type=volume_type,
            **kwargs,
        )

    # -- description ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._dtype

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def resolutions(self) -> tuple[Vec3D[float], ...]:
        return tuple(self.scales)

    @property
    def enforce_chunk_aligned_writes(self) -> bool:
        return self._enforce_chunk_aligned_writes

    @property
    def volume_type(self) -> Literal["image", "segmentation"] | None:
        return self._volume_type

    def _scale(self, resolution: RawVec3D) -> ScaleGeometry:
        res = resolution if type(resolution) is Vec3D else Vec3D.from_seq(resolution).float()
        geo = self.scales.get(res)
        if geo is None:
            known = ", ".join(r.pformat() for r in self.scales)
            raise UnknownResolutionError(
                f"{self._name} has no scale at resolution {res.pformat()} nm; "
                f"its resolutions are: {known}"
            )
        return geo

    def get_voxel_offset(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._scale(resolution).voxel_offset

    def get_chunk_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._scale(resolution).chunk_size

    def get_dataset_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._scale(resolution).dataset_size

    # -- IO ----------------------------------------------------------------------------------------
    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        res = idx.resolution
        self._scale(res)
        out = np.zeros((self._num_channels, *idx.shape), dtype=self._dtype)
        if out.size == 0:
            return out
        blocks = self._store.blocks[res]
        start, stop = idx.start, idx.stop
        size = self._store.block_sizes[res]
        key = (start[0] // size[0], start[1] // size[1], start[2] // size[2])
        if (
            (stop[0] - 1) // size[0] == key[0]
            and (stop[1] - 1) // size[1] == key[1]
            and (stop[2] - 1) // size[2] == key[2]
        ):  # inside one block: the common small read
            block = blocks.get(key)
            if block is not None:
                lo = (start[0] - key[0] * size[0], start[1] - key[1] * size[1])
                z0 = start[2] - key[2] * size[2]
                out[...] = block[
                    :,
                    lo[0] : lo[0] + out.shape[1],
                    lo[1] : lo[1] + out.shape[2],
                    z0 : z0 + out.shape[3],
                ]
            return out
        for key, in_block, in_region in self._store.overlapping(res, start, stop):
            block = blocks.get(key)
            if block is not None:
                out[in_region] = block[in_block]
        return out

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        array = self.check_write(idx, data)
        self.assert_idx_within_bounds(
            idx,
            "Write inside the bounds, or enlarge them with "
            "backend.with_changes(dataset_size_res=...) / voxel_offset_res=...",
        )
        value = fill_value(array)
        res = idx.resolution
        size = self._store.block_sizes[res]
        blocks = self._store.blocks[res]
        for key, in_block, in_region in self._store.overlapping(res, idx.start, idx.stop):
            block = blocks.get(key)
            if block is None:
                with self._store.lock:
                    block = blocks.setdefault(
                        key, np.zeros((self._num_channels, *size), dtype=self._dtype)
                    )
            block[in_block] = value if value is not None else array[in_region]

    # -- changes --------------------------------------------------------------------------------
    def with_changes(self, **changes: Unpack[VolumetricChanges]) -> MemoryVolumetricBackend:  # type: ignore[override]
        """Supported: ``name`` (a new, empty volume), ``voxel_offset_res``,
        ``chunk_size_res``, ``dataset_size_res`` (as in the reference: they change the
        volume's box or chunk size, so every scale) and ``enforce_chunk_aligned_writes``."""
        self.check_changes(dict(changes))
        bbox = bbox_of(self.scales)
        chunk = None
        if "voxel_offset_res" in changes:
            offset, res = changes["voxel_offset_res"]
            start = Vec3D.from_seq(offset) * Vec3D.from_seq(res)
            bbox = BBox3D.from_coords(start, bbox.end)
        if "dataset_size_res" in changes:
            size, res = changes["dataset_size_res"]
            end = bbox.start + Vec3D.from_seq(size) * Vec3D.from_seq(res)
            bbox = BBox3D.from_coords(bbox.start, end)
        if "chunk_size_res" in changes:
            chunk = Vec3D.from_seq(changes["chunk_size_res"][0], "chunk_size").int()
        scales = self.scales
        if {"voxel_offset_res", "dataset_size_res"} & set(changes):
            # The new box applies to every scale, as in the reference.
            scales = {
                res: scales_from_bbox(bbox, [res], geo.chunk_size)[res]
                for res, geo in scales.items()
            }
        if chunk is not None:  # only the chunking changes; extents stay as they are
            scales = {res: attrs.evolve(geo, chunk_size=chunk) for res, geo in scales.items()}
        # A new name is a new, empty volume; otherwise the voxels are shared.
        shared = {} if "name" in changes else {"store": self._store}
        return MemoryVolumetricBackend(
            dtype=self._dtype,
            num_channels=self._num_channels,
            scales=scales,
            name=changes.get("name", self._name),
            enforce_chunk_aligned_writes=changes.get(
                "enforce_chunk_aligned_writes", self._enforce_chunk_aligned_writes
            ),
            volume_type=self._volume_type,
            **shared,
        )

    def add_resolutions(
        self, resolutions: Iterable[RawVec3D], chunk_size: RawVec3D | None = None
    ) -> MemoryVolumetricBackend:
        """See ``VolumetricBackend.add_resolutions``. The volume's storage is this
        process's memory, so the scales are added to this backend in place (every layer
        over it sees them) and it is returned."""
        finest = self.scales[self.resolutions[0]]
        chunk = finest.chunk_size if chunk_size is None else chunk_size
        wanted = [r for r in sorted_resolutions(resolutions) if r not in self.scales]
        if not wanted:
            return self
        added = scales_from_bbox(bbox_of(self.scales), wanted, chunk)
        with self._store.lock:
            for res, geo in added.items():
                self._store.block_sizes.setdefault(res, geo.chunk_size)
                self._store.blocks.setdefault(res, {})
            merged = _as_scales({**self.scales, **added})  # finest first
            self.scales.clear()
            self.scales.update(merged)
        return self

    def delete(self) -> None:
        with self._store.lock:
            for blocks in self._store.blocks.values():
                blocks.clear()


def build_memory_volumetric_layer(
    bbox: BBox3D,
    resolutions: Iterable[RawVec3D],
    chunk_size: RawVec3D = (64, 64, 64),
    dtype: Any = "uint8",
    num_channels: int = 1,
    name: str | None = None,
    volume_type: Literal["image", "segmentation"] | None = None,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    data_resolution: RawVec3D | None = None,
    interpolation_mode: Any = None,
    mask_value_thr: float = 0,
    readonly: bool = False,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> VolumetricLayer:
    """A volumetric layer over a new in-memory volume covering ``bbox`` at ``resolutions``.

    The volume (a :class:`MemoryVolumetricBackend`) starts as zeros and lives in this
    process: a pickled layer carries a copy of its voxels, and what a worker process
    writes stays in the worker. Writes are checked before anything is stored: shape,
    channels, a dtype that holds every value, alignment to the chunk grid, and the
    bounds (a write reaching outside ``bbox`` is refused, never cropped). Handy for
    tests, examples and scratch volumes.

    Args:
        bbox: the region the volume covers (a ``BBox3D``, nm); at each resolution it is
            widened to whole voxels (start floored, end ceiled).
        resolutions: the resolutions (nm, x, y, z) stored, one scale each; at least
            one (``ValueError``). Reading or writing at any other resolution is an
            :class:`~lamina.errors.UnknownResolutionError` (a ``ValueError``).
        chunk_size: the chunk size (voxels, x, y, z) at every resolution, positive
            (``ValueError``); default 64 x 64 x 64. A write must have every face on
            the chunk grid (which starts at the volume's start) or on the volume's end,
            else ``ValueError`` (``enforce_chunk_aligned_writes=False`` through
            ``backend.with_changes`` lifts that).
        dtype: the voxels' numpy dtype (anything ``np.dtype`` takes); default
            ``"uint8"``. Written data is converted only where no value changes.
        num_channels: the channel count, >= 1 (``ValueError``); default 1.
        name: the volume's name; default ``None``: a fresh ``mem://volume-N``.
        volume_type: ``"image"``, ``"segmentation"`` or ``None`` (default: unknown).
            Flows pick their resampling mode from it (``segmentation`` for labels,
            ``img`` otherwise), and viewers the display.
        default_desired_resolution: the resolution (nm) of the arrays read and written
            when the index does not give one; default ``None``: every index must give
            one (``ValueError``).
        index_resolution: the resolution (nm) slices count voxels at; default ``None``:
            the index's own resolution.
        data_resolution: read and write the volume at this resolution (nm, one of
            ``resolutions``), resampling to and from the one asked for; default
            ``None``: no resampling. See :func:`lamina.build_volumetric_layer`.
        interpolation_mode: the resampling mode (``"img"``, ``"segmentation"``,
            ``"mask"``, ``"field"`` or a torch mode); required with ``data_resolution``
            (``ValueError``).
        mask_value_thr: the threshold of the ``"mask"`` mode (strict ``>``); default 0.
        readonly: refuse writes and ``delete()`` (``ReadonlyLayerError``, an
            ``IOError``); default ``False``.
        allow_slice_rounding: widen regions off the voxel grid to whole voxels (start
            floored, stop ceiled) instead of raising ``ValueError``; default ``False``.
        index_procs: callables ``VolumetricIndex -> VolumetricIndex`` applied before
            every read and write.
        read_procs: data and joint processors of reads; ``read_procs[0]`` sits closest
            to the volume.
        write_procs: the same for writes; ``write_procs[0]`` sits closest to the user.

    Returns:
        The :class:`~lamina.volumetric.layer.VolumetricLayer`.
    """
    backend = MemoryVolumetricBackend.from_bbox(
        bbox,
        resolutions,
        chunk_size,
        dtype=dtype,
        num_channels=num_channels,
        name=name,
        volume_type=volume_type,
    )
    return build_volumetric_layer(
        backend,
        default_desired_resolution=default_desired_resolution,
        index_resolution=index_resolution,
        data_resolution=data_resolution,
        interpolation_mode=interpolation_mode,
        mask_value_thr=mask_value_thr,
        readonly=readonly,
        allow_slice_rounding=allow_slice_rounding,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
