"""Reading and writing boxes of one precomputed scale, chunk file by chunk file.

:class:`ScaleIO` cuts a box at the chunk grid, fetches each chunk's file (or its entry in
a shard), decodes it with lamina's codecs and pastes it into the output; a write encodes
each chunk and stores it in one form. Only an absent chunk reads as the background
value: a present chunk that does not decompress or decode is a
:class:`~lamina_precomputed.codecs.DamagedChunkError` naming its file. Partial chunks
(non-aligned writes, opted into) are read, merged and written back; in a sharded scale a
write that does not cover whole shards reads the shards it touches and writes them back
whole (see :mod:`lamina_precomputed.sharding`).

Two optional caches sit in front of the storage: decoded chunks in memory
(:class:`ChunkCache`, ``cache_bytes_limit``) and chunk files on local disk (a second
:class:`~lamina_precomputed.storage.FileStore`, ``allow_cache``). Writes keep both
current.
"""

from __future__ import annotations

import functools
import itertools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lamina.concurrency import run_all, share_with_helper, shared_pool
from lamina.errors import LaminaError
from lamina.volumetric.geometry import Vec3D
from lamina_precomputed.codecs import decode_chunk, encode_chunk
from lamina_precomputed.engine import note_compressed_chunks
from lamina_precomputed.sharding import ShardedScale
from lamina_precomputed.storage import FileStore, Span, compression_name

__all__ = ["ChunkCache", "IOOptions", "MissingChunkError", "ScaleGrid", "ScaleIO"]

Int3 = tuple[int, int, int]
Box = tuple[Int3, Int3]

#: Local reads of this many chunks or more give half of them to a helper thread (file
#: reads and numpy's pastes run without the GIL); smaller reads gain nothing from the
#: handoff on 2 cores, as lamina-zarr's reader measured.
SHARED_FROM = 128


class MissingChunkError(LaminaError, FileNotFoundError):
    """A chunk is absent and ``fill_missing=False`` asks for an error instead of zeros."""


@attrs.frozen
class IOOptions:
    """What a read or write does beyond the data (the ``cv_kwargs`` lamina honours)."""

    fill_missing: bool = True
    background: Any = 0
    compress: Any = False
    compress_level: int | None = None
    delete_black_uploads: bool = False
    cache_control: str | None = None


#: The memory caches of every backend of each volume in this process: a write through any
#: backend of a path forgets what all of them hold of the chunks it replaces.
_CACHES: dict[str, weakref.WeakSet[ChunkCache]] = {}
_CACHES_LOCK = threading.Lock()


def forget_everywhere(cloudpath: str, names: Sequence[str]) -> None:
    """Drop ``names`` from the memory cache of every backend of ``cloudpath``."""
    with _CACHES_LOCK:
        caches = list(_CACHES.get(cloudpath, ()))
    for cache in caches:
        cache.forget(names)


class ChunkCache:
    """Decoded chunks in memory, least recently used first out, at most ``limit`` bytes;
    shared by the threads of one backend and kept current by the writes of every
    backend of the same volume in this process."""

    def __init__(self, limit: int, cloudpath: str = "") -> None:
        self.limit = int(limit)
        if cloudpath:
            with _CACHES_LOCK:
                _CACHES.setdefault(cloudpath, weakref.WeakSet()).add(self)
        self._items: OrderedDict[str, npt.NDArray[Any]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, name: str) -> npt.NDArray[Any] | None:
        with self._lock:
            found = self._items.get(name)
            if found is not None:
                self._items.move_to_end(name)
            return found

    def put(self, name: str, chunk: npt.NDArray[Any]) -> None:
        if chunk.nbytes > self.limit:
            return
        chunk.flags.writeable = False  # shared by every later read
        with self._lock:
            old = self._items.pop(name, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[name] = chunk
            self._bytes += chunk.nbytes
            while self._bytes > self.limit:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.nbytes

    def forget(self, names: Sequence[str]) -> None:
        with self._lock:
            for name in names:
                old = self._items.pop(name, None)
                if old is not None:
                    self._bytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_TILE = (16, 32, 256)  # x, y, z voxels copied at a time by to_fortran


def to_fortran(xyzc: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A Fortran-ordered copy of an ``(X, Y, Z, C)`` array, copied tile by tile: several
    times faster than ``np.asfortranarray`` for the transposed view of a C-ordered
    ``(C, X, Y, Z)`` array, whose x steps are far apart in memory."""
    if xyzc.nbytes < 1 << 20:
        return np.asfortranarray(xyzc)
    out = np.empty(xyzc.shape, xyzc.dtype, order="F")
    nx, ny, nz = xyzc.shape[:3]
    tx, ty, tz = _TILE
    for z in range(0, nz, tz):
        for y in range(0, ny, ty):
            for x in range(0, nx, tx):
                out[x : x + tx, y : y + ty, z : z + tz] = xyzc[x : x + tx, y : y + ty, z : z + tz]
    return out


def _cuts(lo: int, hi: int, grid0: int, width: int) -> list[int]:
    """``lo``, the grid lines ``grid0 + k * width`` strictly inside, and ``hi``."""
    cuts = [lo]
    line = grid0 + ((lo - grid0) // width + 1) * width
    while line < hi:
        cuts.append(line)
        line += width
    cuts.append(hi)
    return cuts


class ScaleGrid:
    """One scale's chunk grid, from its info entry: what every engine's scale IO shares
    (geometry, chunk file names, the write grid)."""

    def __init__(self, scale: Mapping[str, Any]) -> None:
        self.key = str(scale["key"])
        self.encoding = str(scale["encoding"])
        self.offset = Vec3D(*(int(v) for v in scale["voxel_offset"]))
        self.chunk = Vec3D(*(int(v) for v in scale["chunk_sizes"][0]))
        self.size = Vec3D(*(int(v) for v in scale["size"]))
        self.end = self.offset + self.size
        self.sharded = ShardedScale.from_scale(scale) if scale.get("sharding") else None

    def chunk_boxes(self, lo: Sequence[int], hi: Sequence[int]) -> list[Box]:
        """The chunks (clipped to the dataset) that ``lo:hi`` touches inside the bounds."""
        a = [max(lo[d], self.offset[d]) for d in range(3)]
        b = [min(hi[d], self.end[d]) for d in range(3)]
        if any(b[d] <= a[d] for d in range(3)):
            return []
        ranges = []
        for d in range(3):
            first = self.offset[d] + (a[d] - self.offset[d]) // self.chunk[d] * self.chunk[d]
            starts = range(first, b[d], self.chunk[d])
            ranges.append([(s, min(s + self.chunk[d], self.end[d])) for s in starts])
        return [
            ((x[0], y[0], z[0]), (x[1], y[1], z[1]))
            for z, y, x in itertools.product(ranges[2], ranges[1], ranges[0])
        ]

    def name(self, box: Box) -> str:
        (x0, y0, z0), (x1, y1, z1) = box
        return f"{self.key}/{x0}-{x1}_{y0}-{y1}_{z0}-{z1}"

    def write_grid_size(self) -> Vec3D[int]:
        return self.chunk if self.sharded is None else self.sharded.write_grid_size

    def covers_write_cells(self, lo: Sequence[int], hi: Sequence[int]) -> bool:
        """Whether ``lo:hi`` is whole cells of the write grid (or ends at the dataset's end)."""
        cell = self.write_grid_size()
        for d in range(3):
            if (lo[d] - self.offset[d]) % cell[d]:
                return False
            if (hi[d] - self.offset[d]) % cell[d] and hi[d] != self.end[d]:
                return False
        return True

    def inside(self, lo: Sequence[int], hi: Sequence[int]) -> bool:
        """Whether ``lo:hi`` lies inside the dataset's bounds."""
        return all(self.offset[d] <= lo[d] and hi[d] <= self.end[d] for d in range(3))


class ScaleIO(ScaleGrid):
    """One scale of a volume, read and written by lamina's own chunk IO on cloud-files
    (the ``"cloudvolume"`` engine; see the module)."""

    #: The engine's name, as ``CVBackend.engine`` reports it.
    engine = "cloudvolume"

    def __init__(
        self,
        store: FileStore,
        scale: Mapping[str, Any],
        dtype: np.dtype[Any],
        num_channels: int,
        options: IOOptions,
        memory_cache: ChunkCache | None = None,
        disk_cache: FileStore | None = None,
        pool: Callable[[], ThreadPoolExecutor] | None = None,
    ) -> None:
        super().__init__(scale)
        self.store = store
        self.block_size = tuple(scale.get("compressed_segmentation_block_size") or (8, 8, 8))
        self.dtype = dtype
        self._itemsize = np.dtype(dtype).itemsize
        self.num_channels = num_channels
        self.options = options
        self.memory_cache = memory_cache
        self.disk_cache = disk_cache
        self._pool = pool
        # CloudVolume keeps raw, uncompressed mem:// chunks as Fortran-ordered arrays and
        # reads them back as such: lamina stores them the same way, so both read both.
        self._arrays_in_memory = (
            store.protocol == "mem"
            and self.encoding == "raw"
            and self.sharded is None
            and compression_name(options.compress) is None
        )
        self._quality: dict[str, int] = {}
        if self.encoding == "jpeg" and scale.get("jpeg_quality") is not None:
            self._quality["jpeg_quality"] = int(scale["jpeg_quality"])
        if self.encoding == "png" and scale.get("png_level") is not None:
            self._quality["png_level"] = int(scale["png_level"])

    # -- reading ----------------------------------------------------------------------------
    def read(self, lo: Sequence[int], hi: Sequence[int]) -> npt.NDArray[Any]:
        """The Fortran-ordered ``(X, Y, Z, C)`` array of ``lo:hi``: the background value
        outside the bounds and where no chunk is stored."""
        shape = (*(hi[d] - lo[d] for d in range(3)), self.num_channels)
        background = self.options.background
        if background == 0:
            out = np.zeros(shape, self.dtype, order="F")
        else:
            out = np.full(shape, background, self.dtype, order="F")
        self.read_into(out, lo, lo, hi)
        return out

    def read_whole(self, out: npt.NDArray[Any], lo: Sequence[int], hi: Sequence[int]) -> None:
        """Write every voxel of ``out`` (``(X, Y, Z, C)``, the box ``lo:hi``): the stored
        data, and the background outside the bounds and where no chunk is stored."""
        background = self.options.background
        if not self.inside(lo, hi):
            out[...] = background
            self.read_into(out, lo, lo, hi)
        else:
            self.read_into(out, lo, lo, hi, absent=background)

    def read_into(
        self,
        out: npt.NDArray[Any],
        origin: Sequence[int],
        lo: Sequence[int],
        hi: Sequence[int],
        absent: Any = None,
    ) -> None:
        """Paste the stored chunks of ``lo:hi`` into ``out`` (``(X, Y, Z, C)``, whose first
        voxel is ``origin``); absent chunks leave ``out`` as it is (the caller's fill), or
        with ``absent`` given, are filled with it.

        Each chunk is pasted as soon as it is decoded, so a read holds ``out`` and a few
        chunks, never a second copy of the region. Remote chunks are fetched on the read
        threads (each pastes into its own part of ``out``); a sharded scale reads shard
        file by shard file.
        """
        boxes = self.chunk_boxes(lo, hi)
        if not boxes:
            return

        def paste(box: Box, chunk: npt.NDArray[Any] | None, a: Int3, b: Int3) -> None:
            """Paste ``chunk`` (``None``: absent) where ``a:b``, its part read, goes."""
            if chunk is None and absent is None:
                return
            c0 = box[0]
            region = (
                slice(a[0] - origin[0], b[0] - origin[0]),
                slice(a[1] - origin[1], b[1] - origin[1]),
                slice(a[2] - origin[2], b[2] - origin[2]),
            )
            if chunk is None:
                out[region] = absent
            else:
                x0, y0, z0 = a[0] - c0[0], a[1] - c0[1], a[2] - c0[2]
                x1, y1, z1 = b[0] - c0[0], b[1] - c0[1], b[2] - c0[2]
                out[region] = chunk[x0:x1, y0:y1, z0:z1]

        def part(box: Box) -> tuple[Int3, Int3]:
            """The part ``a:b`` of ``box`` the read covers."""
            (c0, c1) = box
            a = (max(lo[0], c0[0]), max(lo[1], c0[1]), max(lo[2], c0[2]))
            return a, (min(hi[0], c1[0]), min(hi[1], c1[1]), min(hi[2], c1[2]))

        def fetch_and_paste(box: Box) -> None:
            a, b = part(box)
            paste(box, self._fetch_one(box, a, b), a, b)

        if self.sharded is None:
            if self.store.protocol == "file" and len(boxes) >= SHARED_FROM:
                half = len(boxes) // 2
                share_with_helper(  # every paste has ended when this returns or raises
                    shared_pool("precomputed-reader", 1),
                    functools.partial(self._map, fetch_and_paste, boxes[:half]),
                    functools.partial(self._map, fetch_and_paste, boxes[half:]),
                )
                return
            self._map(fetch_and_paste, boxes)
            return
        for group in self._by_shard_file(boxes):
            for box, chunk in zip(group, self.fetch(group), strict=True):
                paste(box, chunk, *part(box))

    def _by_shard_file(self, boxes: Sequence[Box]) -> list[list[Box]]:
        assert self.sharded is not None
        groups: dict[str, list[Box]] = {}
        ids = self.sharded.chunk_ids([box[0] for box in boxes])
        for box, chunk_id in zip(boxes, ids, strict=True):
            groups.setdefault(self.sharded.shard_file(chunk_id)[0], []).append(box)
        return list(groups.values())

    def fetch(self, boxes: Sequence[Box]) -> list[npt.NDArray[Any] | None]:
        """The decoded ``(x, y, z, C)`` chunk of each box, ``None`` where none is stored."""
        names = [self.name(box) for box in boxes]
        found: list[npt.NDArray[Any] | None] = [None] * len(boxes)
        todo: list[int] = []
        cache = self.memory_cache
        for i, name in enumerate(names):
            hit = cache.get(name) if cache is not None else None
            if hit is not None:
                found[i] = hit
            else:
                todo.append(i)
        if not todo:
            return found
        if self.sharded is not None:
            contents = self._contents([boxes[i] for i in todo])
        else:
            contents = [self._content_of(names[i]) for i in todo]
        for i, content in zip(todo, contents, strict=True):
            if content is None:
                self._check_may_be_absent(names[i])
                continue
            chunk = self._decode(content, boxes[i], names[i])
            found[i] = chunk
            if cache is not None:
                cache.put(names[i], chunk)
        return found

    def _decode(self, content: bytes | memoryview, box: Box, name: str) -> npt.NDArray[Any]:
        shape = tuple(box[1][d] - box[0][d] for d in range(3))
        return decode_chunk(
            content,
            self.encoding,
            shape,  # type: ignore[arg-type]
            self.num_channels,
            self.dtype,
            block_size=self.block_size,
            key=f"{self.store.cloudpath}/{name}",
        )

    def _contents(self, boxes: Sequence[Box]) -> list[bytes | None]:
        """The stored content of each chunk of a sharded scale, ``None`` when absent."""
        assert self.sharded is not None
        ids = self.sharded.chunk_ids([box[0] for box in boxes])
        by_id = self.sharded.read(self.store, ids)
        return [by_id[i] for i in ids]

    def _fetch_one(self, box: Box, a: Int3, b: Int3) -> npt.NDArray[Any] | None:
        """:meth:`fetch` of one box, for a read of its part ``a:b``. Without caches, a raw
        chunk of a local file is a view of the thread's scratch buffer
        (``FileStore.get_transient``), valid until this thread fetches the next one:
        :meth:`read_into` pastes it at once. Only the bytes from the read's first voxel
        in the chunk to its last are read (a cutout's few planes of a chunk); the rest
        of the view is stale."""
        if self.memory_cache is not None or self.disk_cache is not None or self.encoding != "raw":
            return self.fetch([box])[0]
        name = self.name(box)
        content = self.store.get_transient(name, self._span(box, a, b))
        if content is None:
            self._check_may_be_absent(name)
            return None
        return self._decode(content, box, name)

    def _span(self, box: Box, a: Int3, b: Int3) -> Span | None:
        """(the raw chunk file's size, first byte, end byte) a read of the part ``a:b``
        of ``box``'s chunk needs: x-fastest voxels, channel after channel; ``None`` when
        the part is the whole chunk."""
        (c0, c1) = box
        if a == c0 and b == c1:
            return None
        x, y, z = c1[0] - c0[0], c1[1] - c0[1], c1[2] - c0[2]
        item = self._itemsize
        first = (a[0] - c0[0]) + x * ((a[1] - c0[1]) + y * (a[2] - c0[2]))
        channels = self.num_channels
        last_x, last_y, last_z = b[0] - c0[0] - 1, b[1] - c0[1] - 1, b[2] - c0[2] - 1
        last = last_x + x * (last_y + y * (last_z + z * (channels - 1)))
        return (x * y * z * channels * item, first * item, (last + 1) * item)

    def _check_may_be_absent(self, name: str) -> None:
        """Raise :class:`MissingChunkError` for an absent chunk unless ``fill_missing``."""
        if not self.options.fill_missing:
            raise MissingChunkError(
                f"the chunk {self.store.cloudpath}/{name} is missing and fill_missing=False"
            )

    def _content_of(self, name: str) -> bytes | None:
        disk = self.disk_cache
        if disk is not None:
            cached = disk.get(name)
            if cached is not None:
                return cached
        content = self.store.get(name)
        if disk is not None and content is not None:
            disk.put_many({name: content})
        return content

    def _map(self, fn: Callable[[Box], Any], boxes: Sequence[Box]) -> list[Any]:
        """``fn`` of each box: on the read threads for remote storage (the calling thread
        takes the first), one after another for local files and ``mem://``."""
        if self._pool is None or len(boxes) < 2 or self.store.protocol in ("file", "mem"):
            return [fn(box) for box in boxes]
        tasks = [functools.partial(fn, box) for box in boxes]
        return run_all(tasks, self._pool(), caller_takes_first=True)  # every fetch ends first

    # -- writing ----------------------------------------------------------------------------
    def write(
        self, xyzc: npt.NDArray[Any], start: Sequence[int], overwrite_partial_chunks: bool
    ) -> None:
        """Store ``xyzc`` (``(X, Y, Z, C)``, inside the bounds) at ``start``.

        Whole chunks are encoded from the data; a partial chunk is merged into the
        stored one (or, with ``overwrite_partial_chunks``, into the background). With
        ``delete_black_uploads`` a chunk that is all background is deleted instead.
        """
        stop = [start[d] + xyzc.shape[d] for d in range(3)]
        if not xyzc.flags.f_contiguous:  # chunks are x-fastest: reorder once, by tiles
            xyzc = to_fortran(xyzc)
        boxes = self.chunk_boxes(start, stop)
        partial = [
            i
            for i, (c0, c1) in enumerate(boxes)
            if any(c0[d] < start[d] or c1[d] > stop[d] for d in range(3))
        ]
        stored: dict[int, npt.NDArray[Any] | None] = {}
        if partial and not overwrite_partial_chunks:
            fetched = self.fetch([boxes[i] for i in partial])
            stored = dict(zip(partial, fetched, strict=True))
        contents: dict[str, Any] = {}  # name -> encoded bytes (an array: see __init__)
        background = self.options.background
        for i, box in enumerate(boxes):
            (c0, c1) = box
            a = [max(start[d], c0[d]) for d in range(3)]
            b = [min(stop[d], c1[d]) for d in range(3)]
            piece = xyzc[tuple(slice(a[d] - start[d], b[d] - start[d]) for d in range(3))]
            if i in stored or (overwrite_partial_chunks and i in partial):
                base = stored.get(i)
                shape = (*(c1[d] - c0[d] for d in range(3)), self.num_channels)
                chunk = (
                    np.full(shape, background, self.dtype, order="F")
                    if base is None
                    else np.array(base, order="F")
                )
                chunk[tuple(slice(a[d] - c0[d], b[d] - c0[d]) for d in range(3))] = piece
                piece = chunk
            if self.options.delete_black_uploads and not np.any(piece != background):
                contents[self.name(box)] = None
            elif self._arrays_in_memory:  # a copy: never the caller's array itself
                contents[self.name(box)] = np.array(piece, order="F", copy=True)
            else:
                contents[self.name(box)] = encode_chunk(
                    piece, self.encoding, block_size=self.block_size, **self._quality
                )
        self._store(boxes, contents, whole=self.covers_write_cells(start, stop))

    def _store(
        self, boxes: Sequence[Box], contents: Mapping[str, bytes | None], whole: bool
    ) -> None:
        names = list(contents)
        if self.memory_cache is not None:
            self.memory_cache.forget(names)
        if self.disk_cache is not None:
            self.disk_cache.delete_many(names)
        if self.sharded is not None:
            ids = self.sharded.chunk_ids([box[0] for box in boxes])
            by_id = {i: contents[self.name(box)] for i, box in zip(ids, boxes, strict=True)}
            self.sharded.write(self.store, by_id, whole_shards=whole)
            return
        opts = self.options
        self.store.put_many(
            {name: body for name, body in contents.items() if body is not None},
            compress=opts.compress,
            compress_level=opts.compress_level,
            cache_control=opts.cache_control,
        )
        if self.store.protocol == "file" and compression_name(opts.compress) is not None:
            note_compressed_chunks(self.store.cloudpath)
        self.store.delete_many([name for name, body in contents.items() if body is None])
