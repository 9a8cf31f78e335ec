"""lamina's own reader of local Zarr chunks: the chunk files read and decoded in the
calling thread (numcodecs for the compressors), each pasted into the result as soon as
it is decoded.

TensorStore hands every read to its own threads and waits for them: about 100 µs per
call whatever its size, which is most of a small read's time. Reading local chunk files
in the caller's thread, as lamina-precomputed does, takes that away (bench/bench_zarr.py).
It reads Zarr v2 (any compressor lamina accepts, C or Fortran order, any byte order) and
Zarr v3 (``bytes``, ``crc32c`` and a compressor; ``sharding_indexed`` with its index at
either end) arrays on local disk; anything else (a ``transpose`` codec, object storage,
N5) is read by TensorStore. Writes always go through TensorStore.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from lamina.errors import DamagedChunkError
from lamina_zarr.axes import AxisOrder
from lamina_zarr.nodes import ArrayMeta
from lamina_zarr.paths import REMOTE

__all__ = ["LocalChunkReader", "local_reader"]

_EMPTY: Final = 2**64 - 1  # a shard index entry of a chunk that is not stored
#: Each thread's reusable buffers: a chunk's file and its decoded bytes (kept warm, so
#: that a read neither allocates nor faults in fresh memory per chunk).
_scratch = threading.local()


def _buffer(name: str, size: int) -> memoryview:
    buffer: bytearray | None = getattr(_scratch, name, None)
    if buffer is None or len(buffer) < size:
        buffer = bytearray(size)
        setattr(_scratch, name, buffer)
    return memoryview(buffer)[:size]


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


_CRC32C: Final[Any] = _codec("crc32c")


class LocalChunkReader:
    """Reads boxes of one local array (storage order ``axes``) chunk file by chunk file."""

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

    @property
    def compressed(self) -> bool:
        """Whether the chunks are compressed (decoding them is much of a read)."""
        codecs = self.shard[1] if self.shard is not None else self.decoders
        return any(c.codec_id != "crc32c" for c in codecs)

    def count_chunks(self, lo: Sequence[int], hi: Sequence[int]) -> int:
        """How many chunks (inner chunks when sharded) the box ``lo:hi`` (x, y, z) touches."""
        unit = self.axes.spatial(self.shard[0] if self.shard is not None else self.chunks)
        count = 1
        for a, b, u in zip(lo, hi, unit, strict=True):
            count *= max(0, (b - 1) // u - a // u + 1)
        return count

    def read_into(
        self, out: npt.NDArray[Any], lo: Sequence[int], hi: Sequence[int], time_index: int | None
    ) -> None:
        """Paste the array's ``lo:hi`` (x, y, z) into ``out`` (``(X, Y, Z, C)``)."""
        t = time_index or 0
        channels = self.axes.channels(self.shape)
        box_lo = self.axes.stored(lo, 0, t)
        box_hi = self.axes.stored(hi, channels, t + 1)
        unit = self.shard[0] if self.shard is not None else self.chunks
        ranges = [
            range(a // u, (b - 1) // u + 1) for a, b, u in zip(box_lo, box_hi, unit, strict=True)
        ]
        perm = self.axes.to_xyzc()
        shards: dict[str, tuple[int, npt.NDArray[Any]] | None] = {}  # opened for this read
        try:
            self._paste_all(out, ranges, unit, box_lo, box_hi, perm, shards)
        finally:
            for opened in shards.values():
                if opened is not None:
                    os.close(opened[0])

    def _paste_all(
        self,
        out: npt.NDArray[Any],
        ranges: Sequence[range],
        unit: Sequence[int],
        box_lo: Sequence[int],
        box_hi: Sequence[int],
        perm: list[int],
        shards: dict[str, tuple[int, npt.NDArray[Any]] | None],
    ) -> None:
        for cell in np.ndindex(*(len(r) for r in ranges)):
            index = [r[i] for r, i in zip(ranges, cell, strict=True)]
            start = [i * u for i, u in zip(index, unit, strict=True)]
            spans = [
                (max(a, s), min(b, s + u))
                for a, b, s, u in zip(box_lo, box_hi, start, unit, strict=True)
            ]
            local = [slice(p - a, q - a) for (p, q), a in zip(spans, box_lo, strict=True)]
            by = dict(zip(self.axes.letters, local, strict=True))
            target = (by["x"], by["y"], by["z"], by.get("c", slice(0, 1)))
            chunk = self._chunk(index, shards)
            if chunk is None:
                out[target] = self.fill
                continue
            part = chunk[tuple(slice(p - s, q - s) for (p, q), s in zip(spans, start, strict=True))]
            if self.axes.has_time:
                part = part[(slice(None),) * self.axes.index("t") + (0,)]
            if not self.axes.has_channels:
                part = part[..., np.newaxis]
            out[target] = part.transpose(perm)

    # -- one stored chunk ----------------------------------------------------------------------
    def _chunk(
        self, index: Sequence[int], shards: dict[str, tuple[int, npt.NDArray[Any]] | None]
    ) -> npt.NDArray[Any] | None:
        """The decoded chunk at grid ``index`` (of inner chunks when sharded), in storage
        order; ``None`` when it is not stored. ``shards``: the shard files this read has
        opened, with their indexes (each opened and its index read once per read)."""
        if self.shard is None:
            path = os.path.join(self.root, self.key(index))
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                return None
            try:
                size = os.fstat(fd).st_size
                raw = _buffer("raw", size)
                got = 0
                while got < size:
                    n = os.readv(fd, [raw[got:]])
                    if n == 0:
                        raise DamagedChunkError(f"the chunk {path} ended while it was read")
                    got += n
            finally:
                os.close(fd)
            return self._decode(raw, self.decoders, self.chunks, path)
        inner, decoders, _, _ = self.shard
        per_shard = [s // i for s, i in zip(self.chunks, inner, strict=True)]
        outer = [i // n for i, n in zip(index, per_shard, strict=True)]
        within = tuple(i % n for i, n in zip(index, per_shard, strict=True))
        path = os.path.join(self.root, self.key(outer))
        if path not in shards:
            shards[path] = self._open_shard(path, per_shard)
        opened = shards[path]
        if opened is None:
            return None
        fd, entries = opened
        offset, nbytes = (int(v) for v in entries[within])
        if offset == _EMPTY and nbytes == _EMPTY:
            return None
        try:
            stored = os.pread(fd, nbytes, offset)
        except (ValueError, OSError) as exc:
            raise DamagedChunkError(f"the shard {path} is damaged: {exc}") from exc
        if len(stored) != nbytes:
            raise DamagedChunkError(f"the shard {path} ends inside a chunk its index lists")
        return self._decode(stored, decoders, inner, path)

    def _open_shard(
        self, path: str, per_shard: Sequence[int]
    ) -> tuple[int, npt.NDArray[Any]] | None:
        """The open shard file at ``path`` and its index (``(offset, nbytes)`` per inner
        chunk), ``None`` when the shard is not stored."""
        assert self.shard is not None
        _, _, at_end, checked = self.shard
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            size = 16 * int(np.prod(per_shard)) + (4 if checked else 0)
            end = os.fstat(fd).st_size
            raw_index = os.pread(fd, size, end - size if at_end else 0)
            if checked:
                raw_index = bytes(_CRC32C.decode(raw_index))
            return fd, np.frombuffer(raw_index, "<u8").reshape([*per_shard, 2])
        except (ValueError, RuntimeError, OSError) as exc:
            os.close(fd)
            raise DamagedChunkError(f"the shard {path} is damaged: {exc}") from exc

    def _decode(
        self, raw: Any, codecs: Sequence[Any], shape: Sequence[int], path: str
    ) -> npt.NDArray[Any]:
        """The chunk of ``shape`` from its stored bytes; the last decoder writes into this
        thread's scratch buffer (the result is a view of it, pasted before the next)."""
        expected = int(np.prod(shape)) * self.dtype.itemsize
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
            return array.reshape(shape, order=self.order)  # type: ignore[call-overload, no-any-return]
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
