"""lamina's own reader of local Zarr chunks: the chunk files read and decoded in the
calling thread (numcodecs for the compressors), each pasted into the result as soon as
it is decoded; reads of :data:`SHARED_FROM` chunks or more share their chunks with a
helper thread.

TensorStore hands every read to its own threads and waits for them: about 100 µs per
call whatever its size, which is most of a small read's time. Reading local chunk files
in the caller's thread, as lamina-precomputed does, takes that away (bench/bench_zarr.py).
It reads Zarr v2 (any compressor lamina accepts, C or Fortran order, any byte order) and
Zarr v3 (``bytes``, ``crc32c`` and a compressor; ``sharding_indexed`` with its index at
either end) arrays on local disk; anything else (a ``transpose`` codec, object storage,
N5) is read by TensorStore. Writes always go through TensorStore.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from lamina.concurrency import share_with_helper, shared_pool
from lamina.errors import DamagedChunkError
from lamina.scratch import read_span, thread_buffer
from lamina_zarr.axes import AxisOrder
from lamina_zarr.nodes import ArrayMeta
from lamina_zarr.paths import REMOTE

__all__ = ["LocalChunkReader", "local_reader"]

_EMPTY: Final = 2**64 - 1  # a shard index entry of a chunk that is not stored


def _buffer(name: str, size: int) -> memoryview:
    """This thread's reusable buffer for a chunk's file (``raw``) or its decoded bytes
    (``decoded``): a read neither allocates nor faults in fresh memory per chunk."""
    return thread_buffer(f"zarr-{name}", size)


#: Reads of this many chunks or more are shared with a helper thread (file reads, numpy's
#: copies and most of zstd's decoding run without the GIL): reads of 128 and 256 chunks
#: took 0.65-0.7x the time with it, reads of 4 to 48 gained nothing or lost (the handoff).
SHARED_FROM: Final = 128


def _codec(name: str) -> Any | None:
    """numcodecs' codec of a compressor (v2 ``id`` or v3 ``name``), ``None`` if unknown."""
    import numcodecs

    codecs: dict[str, Any] = {
        "zstd": numcodecs.Zstd,
        "blosc": numcodecs.Blosc,
        "gzip": numcodecs.GZip,
        "zlib": numcodecs.Zlib,
        "bz2": numcodecs.BZ2,
        "crc32c": numcodecs.CRC32C,
    }
    return codecs[name]() if name in codecs else None


@functools.cache
def _crc32c() -> Any:
    """numcodecs' CRC32C, made on first use (importing numcodecs takes about 70 ms)."""
    return _codec("crc32c")


#: An open shard file: its descriptor, its index (offset, nbytes per chunk) and its size.
_OpenShard = tuple[int, npt.NDArray[Any], int]


class LocalChunkReader:
    """Reads boxes of one local array (storage order ``axes``) chunk file by chunk file.

    Uncompressed chunks (no codec but ``bytes``) are read in part: only the byte span
    from the first voxel a read needs to the last (a cutout's few planes of a chunk),
    straight into this thread's scratch buffer at the span's own place in the chunk."""

    def __init__(
        self,
        root: str,
        axes: AxisOrder,
        shape: Sequence[int],
        chunks: Sequence[int],
        dtype: np.dtype[Any],
        order: str,
        key: Callable[[Sequence[int]], str],
        decoders: Sequence[Any],
        fill: Any,
        shard: tuple[Sequence[int], Sequence[Any], bool, bool] | None = None,
    ) -> None:
        self.root = root
        self.axes = axes
        self.shape = tuple(shape)
        self.chunks = tuple(chunks)  # the stored unit: a shard's shape when sharded
        self.dtype = dtype
        self.order = order
        self.key = key
        self.decoders = tuple(decoders)
        self.fill = fill
        self.shard = shard  # (inner chunk shape, inner decoders, index at end, index crc32c)
        # the geometry every read uses, worked out once
        self._unit = tuple(shard[0]) if shard is not None else self.chunks
        self._codecs = tuple(shard[1]) if shard is not None else self.decoders
        self._chunk_bytes = int(np.prod(self._unit)) * dtype.itemsize
        self._in_part = not self._codecs  # uncompressed: a chunk's byte spans are its voxels'
        #: whether the chunks are compressed (decoding them is much of a read)
        self.compressed = any(c.codec_id != "crc32c" for c in self._codecs)
        self._spatial_unit = axes.spatial(self._unit)
        strides = np.cumprod([1, *self._unit[::-1]])[:-1][::-1]  # C order, in voxels
        if order == "F":
            strides = np.cumprod([1, *self._unit])[:-1]
        self._strides = tuple(int(v) * dtype.itemsize for v in strides)
        self._prefix = root.rstrip("/") + "/"
        letters = axes.letters
        # where each stored axis goes in the (X, Y, Z, C) result
        self._out_axes = tuple("xyzc".index(a) if a != "t" else -1 for a in letters)
        self._time_axis = letters.index("t") if axes.has_time else None
        self._perm = axes.to_xyzc()
        if shard is not None:
            self._per_shard = tuple(s // i for s, i in zip(self.chunks, shard[0], strict=True))

    def count_chunks(self, lo: Sequence[int], hi: Sequence[int]) -> int:
        """How many chunks (inner chunks when sharded) the box ``lo:hi`` (x, y, z) touches."""
        count = 1
        for a, b, u in zip(lo, hi, self._spatial_unit, strict=True):
            count *= max(0, (b - 1) // u - a // u + 1)
        return count

    def read_into(
        self, out: npt.NDArray[Any], lo: Sequence[int], hi: Sequence[int], time_index: int | None
    ) -> None:
        """Paste the array's ``lo:hi`` (x, y, z) into ``out`` (``(X, Y, Z, C)``)."""
        t = time_index or 0
        box_lo = self.axes.stored(lo, 0, t)
        box_hi = self.axes.stored(hi, self.axes.channels(self.shape), t + 1)
        # per stored axis: (chunk index, span within the chunk, span within the box)
        pieces = []
        for a, b, u in zip(box_lo, box_hi, self._unit, strict=True):
            axis = []
            for i in range(a // u, (b - 1) // u + 1):
                s = i * u
                p, q = max(a, s), min(b, s + u)
                axis.append((i, p - s, q - s, slice(p - a, q - a)))
            pieces.append(axis)
        cells = list(itertools.product(*pieces))
        if len(cells) < SHARED_FROM:
            self._paste_all(out, cells)
            return
        half = len(cells) // 2
        share_with_helper(  # nothing writes into ``out`` once this returns or raises
            shared_pool("zarr-reader", 1),
            functools.partial(self._paste_all, out, cells[:half]),
            functools.partial(self._paste_all, out, cells[half:]),
        )

    def _paste_all(
        self, out: npt.NDArray[Any], cells: Sequence[Sequence[tuple[int, int, int, slice]]]
    ) -> None:
        shards: dict[str, _OpenShard | None] = {}  # opened for these cells
        try:
            for cell in cells:
                self._paste(out, cell, shards)
        finally:
            for opened in shards.values():
                if opened is not None:
                    os.close(opened[0])

    def _paste(
        self,
        out: npt.NDArray[Any],
        cell: Sequence[tuple[int, int, int, slice]],
        shards: dict[str, _OpenShard | None],
    ) -> None:
        """Paste one chunk's part of the read (``cell``: per stored axis, the chunk's
        index, the span within it and the span within the box) into ``out``."""
        target: list[slice] = [slice(0, 1)] * 4
        for axis, piece in zip(self._out_axes, cell, strict=True):
            if axis >= 0:
                target[axis] = piece[3]
        chunk = self._chunk([c[0] for c in cell], cell, shards)
        if chunk is None:
            out[tuple(target)] = self.fill
            return
        part = chunk[tuple(slice(c[1], c[2]) for c in cell)]
        if self._time_axis is not None:
            part = part[(slice(None),) * self._time_axis + (0,)]
        if not self.axes.has_channels:
            part = part[..., np.newaxis]
        out[tuple(target)] = part.transpose(self._perm)

    # -- one stored chunk ----------------------------------------------------------------------
    def _span(self, cell: Sequence[tuple[int, int, int, slice]]) -> tuple[int, int]:
        """The bytes of a chunk from the first voxel of ``cell``'s spans to the last."""
        first = sum(c[1] * s for c, s in zip(cell, self._strides, strict=True))
        last = sum((c[2] - 1) * s for c, s in zip(cell, self._strides, strict=True))
        return first, last + self.dtype.itemsize

    def _chunk(
        self,
        index: Sequence[int],
        cell: Sequence[tuple[int, int, int, slice]],
        shards: dict[str, _OpenShard | None],
    ) -> npt.NDArray[Any] | None:
        """The chunk at grid ``index`` (of inner chunks when sharded), in storage order,
        decoded at least where ``cell`` reads it; ``None`` when it is not stored.
        ``shards``: the shard files this read has opened, with their indexes (each opened
        and its index read once per read, or per half of a shared read)."""
        if self.shard is None:
            path = self._prefix + self.key(index)
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                return None
            try:
                size = os.fstat(fd).st_size
                if self._in_part:
                    if size != self._chunk_bytes:
                        raise DamagedChunkError(
                            f"the chunk {path} holds {size} bytes, not {self._chunk_bytes}"
                        )
                    return self._read_part(fd, 0, cell, path)
                raw = _buffer("raw", size)
                if read_span(fd, raw, 0, size) != size:
                    raise DamagedChunkError(f"the chunk {path} ended while it was read")
            finally:
                os.close(fd)
            return self._decode(raw, path)
        outer = [i // n for i, n in zip(index, self._per_shard, strict=True)]
        within = tuple(i % n for i, n in zip(index, self._per_shard, strict=True))
        path = self._prefix + self.key(outer)
        if path not in shards:
            shards[path] = self._open_shard(path)
        opened = shards[path]
        if opened is None:
            return None
        fd, entries, size = opened
        offset, nbytes = (int(v) for v in entries[within])
        if offset == _EMPTY and nbytes == _EMPTY:
            return None
        if offset + nbytes > size:
            raise DamagedChunkError(
                f"the shard {path} lists a chunk at bytes {offset}:{offset + nbytes} of its {size}"
            )
        if self._in_part:
            if nbytes != self._chunk_bytes:
                raise DamagedChunkError(
                    f"the shard {path} lists a chunk of {nbytes} bytes, not {self._chunk_bytes}"
                )
            return self._read_part(fd, offset, cell, path)
        try:
            stored = os.pread(fd, nbytes, offset)
        except (ValueError, OSError) as exc:
            raise DamagedChunkError(f"the shard {path} is damaged: {exc}") from exc
        if len(stored) != nbytes:
            raise DamagedChunkError(f"the shard {path} ends inside a chunk its index lists")
        return self._decode(stored, path)

    def _read_part(
        self, fd: int, offset: int, cell: Sequence[tuple[int, int, int, slice]], path: str
    ) -> npt.NDArray[Any]:
        """An uncompressed chunk stored at ``offset`` of ``fd``, read where ``cell`` needs
        it, into this thread's scratch buffer (the rest of the buffer is stale)."""
        first, last = self._span(cell)
        buffer = _buffer("decoded", self._chunk_bytes)
        try:
            got = read_span(fd, buffer, first, last, offset)
        except OSError as exc:
            raise DamagedChunkError(f"{path} is damaged: {exc}") from exc
        if got != last - first:
            raise DamagedChunkError(f"{path} ends inside a chunk")
        return np.frombuffer(buffer, self.dtype).reshape(self._unit, order=self.order)  # type: ignore[call-overload, no-any-return]

    def _open_shard(self, path: str) -> _OpenShard | None:
        """The open shard file at ``path`` and its index (``(offset, nbytes)`` per inner
        chunk), ``None`` when the shard is not stored."""
        assert self.shard is not None
        _, _, at_end, checked = self.shard
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            size = 16 * int(np.prod(self._per_shard)) + (4 if checked else 0)
            end = os.fstat(fd).st_size
            raw_index = os.pread(fd, size, end - size if at_end else 0)
            if checked:
                raw_index = bytes(_crc32c().decode(raw_index))
            return fd, np.frombuffer(raw_index, "<u8").reshape([*self._per_shard, 2]), end
        except (ValueError, RuntimeError, OSError) as exc:
            os.close(fd)
            raise DamagedChunkError(f"the shard {path} is damaged: {exc}") from exc

    def _decode(self, raw: Any, path: str) -> npt.NDArray[Any]:
        """The chunk from its stored bytes; the last decoder writes into this thread's
        scratch buffer (the result is a view of it, pasted before the next)."""
        expected = self._chunk_bytes
        codecs = self._codecs
        try:
            data = raw
            for i, codec in enumerate(reversed(codecs)):
                if i == len(codecs) - 1 and codec.codec_id != "crc32c":
                    data = codec.decode(data, out=_buffer("decoded", expected))
                else:
                    data = codec.decode(data)
            array = np.frombuffer(data, self.dtype)
            if array.size * self.dtype.itemsize != expected:
                raise ValueError(f"{array.size * self.dtype.itemsize} bytes, not {expected}")
            return array.reshape(self._unit, order=self.order)  # type: ignore[call-overload, no-any-return]
        except (ValueError, RuntimeError, TypeError) as exc:
            raise DamagedChunkError(f"the chunk {path} does not decode: {exc}") from exc


def local_reader(root: str, fmt: Any, axes: AxisOrder, meta: ArrayMeta) -> LocalChunkReader | str:
    """A reader of the array at ``root`` (``meta``: its metadata as read), or why this
    reader does not read it (then TensorStore does)."""
    if root.startswith(REMOTE) or fmt not in (2, 3):
        return "it reads local Zarr v2 and v3 arrays, not object storage or N5"
    if meta.transposed:
        return "it reads arrays without a transpose codec"
    if not isinstance(meta.fill_value, (int, float, bool)) or meta.dtype.kind not in "biuf":
        return "it reads bool, int, uint and float arrays whose fill value is a number"
    codecs = [_codec(name) for name in meta.codecs]
    if any(codec is None for codec in codecs):
        return f"it reads the compressors zstd, blosc, gzip, zlib and bz2, not {meta.codecs}"
    order: Any = meta.byte_order
    dtype = meta.dtype.newbyteorder(order) if meta.dtype.itemsize > 1 else meta.dtype
    prefix, separator = meta.chunk_key

    def key(index: Sequence[int]) -> str:
        return prefix + separator.join(str(i) for i in index)

    shard = None
    unit = meta.chunks
    if meta.shard_index is not None:
        at_end, checked = meta.shard_index
        shard = (meta.chunks, codecs, at_end, checked)
        unit, codecs = meta.write_chunks, []
    return LocalChunkReader(
        root, axes, meta.shape, unit, dtype, meta.order, key, codecs, meta.fill_value, shard
    )
