"""Sharded precomputed scales: where a chunk lives, reading it, and writing whole shards.

A sharded scale stores many chunks in one *shard file*: a chunk's id is the compressed
Morton code of its grid position; the sharding spec (``preshift_bits``, ``hash``,
``minishard_bits``, ``shard_bits``) maps the id to a shard and a minishard. A shard file
is written whole, so a write that covers only some of a shard's chunks must read the
others and write them back (a read-modify-write), or it erases them.

:class:`ShardedScale` answers where chunks live, the scale's *write grid* — the box one
shard covers, when the hash is ``identity`` and every shard is one box; else the whole
dataset, since a ``murmurhash3_x86_128`` shard holds chunks from all over the volume —
and reads and writes chunks. The shard file format is Neuroglancer's
``neuroglancer_uint64_sharded_v1``; CloudVolume's ``ShardingSpecification`` computes the
hash (identity or murmurhash3) of a chunk id; lamina reads and assembles the files.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from lamina.volumetric.geometry import Vec3D
from lamina_precomputed.codecs import DamagedChunkError
from lamina_precomputed.storage import FileStore, RangeReader

__all__ = [
    "ShardedScale",
    "compressed_morton_codes",
    "identity_sharding",
    "morton_box",
    "sharding_for_shard_size",
]


def _bits(n: int) -> int:
    """Bits needed for grid positions ``0 .. n-1``."""
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def compressed_morton_codes(
    grid_points: npt.NDArray[np.integer[Any]], grid_size: Sequence[int]
) -> npt.NDArray[np.uint64]:
    """The compressed Morton codes of ``(N, 3)`` chunk grid positions: the bits of x, y
    and z interleaved (x lowest), each axis dropping out once its bits are used up."""
    points = np.asarray(grid_points, dtype=np.uint64).reshape(-1, 3)
    bits = [_bits(int(n)) for n in grid_size]
    codes = np.zeros(len(points), dtype=np.uint64)
    out = 0
    for i in range(max(bits, default=0)):
        for axis in range(3):
            if i < bits[axis]:
                bit = (points[:, axis] >> np.uint64(i)) & np.uint64(1)
                codes |= bit << np.uint64(out)
                out += 1
    return codes


def morton_box(grid_size: Sequence[int], low_bits: int) -> Vec3D[int]:
    """Chunks per axis of the box the lowest ``low_bits`` bits of the compressed Morton
    code span in a grid of ``grid_size`` chunks: the box one identity-hashed shard covers
    when ``low_bits`` is its ``preshift_bits + minishard_bits``."""
    bits = [_bits(int(n)) for n in grid_size]
    counts = [0, 0, 0]
    taken = 0
    for i in range(max(bits, default=0)):
        for axis in range(3):
            if i < bits[axis] and taken < low_bits:
                counts[axis] += 1
                taken += 1
    return Vec3D(*(1 << c for c in counts))


def identity_sharding(grid_size: Sequence[int], low_bits: int) -> dict[str, Any]:
    """An identity-hashed sharding spec whose shards are the boxes of ``low_bits`` Morton
    bits (:func:`morton_box`), half of them minishards: raw chunk data, gzip indexes (the
    layout TensorStore and Igneous write for image volumes)."""
    total = sum(_bits(int(n)) for n in grid_size)
    low = max(0, min(int(low_bits), total))
    preshift = low // 2
    return {
        "@type": "neuroglancer_uint64_sharded_v1",
        "hash": "identity",
        "preshift_bits": preshift,
        "minishard_bits": low - preshift,
        "shard_bits": total - low,
        "minishard_index_encoding": "gzip",
        "data_encoding": "raw",
    }


def sharding_for_shard_size(
    grid_size: Sequence[int], chunk_size: Sequence[int], shard_size: Sequence[int]
) -> dict[str, Any]:
    """The identity sharding whose shards are boxes of ``shard_size`` voxels in a grid of
    ``grid_size`` chunks of ``chunk_size``; a box Morton order cannot make there is a
    ``ValueError`` listing the boxes it can. A box covering the whole grid is one shard."""
    total = sum(_bits(int(n)) for n in grid_size)
    boxes = [morton_box(grid_size, low) for low in range(total + 1)]
    wanted = [int(v) for v in shard_size]
    grid_box = [int(g) * int(c) for g, c in zip(grid_size, chunk_size, strict=True)]
    if all(w >= g for w, g in zip(wanted, grid_box, strict=True)):
        return identity_sharding(grid_size, total)  # one shard holds everything
    for low, box in enumerate(boxes):
        if [b * int(c) for b, c in zip(box, chunk_size, strict=True)] == wanted:
            return identity_sharding(grid_size, low)
    shown = ", ".join(
        "x".join(str(b * int(c)) for b, c in zip(box, chunk_size, strict=True)) for box in boxes
    )
    raise ValueError(
        f"a shard size of {'x'.join(map(str, wanted))} voxels is not a box Morton order "
        f"makes from chunks of {'x'.join(map(str, chunk_size))} in a grid of "
        f"{'x'.join(map(str, grid_size))} chunks; the shard sizes it can be are: {shown}"
    )


@attrs.frozen
class ShardedScale:
    """One sharded scale of a volume: its key, sharding spec and geometry (voxels)."""

    key: str
    sharding: Mapping[str, Any]
    voxel_offset: Vec3D[int]
    chunk_size: Vec3D[int]
    size: Vec3D[int]

    @classmethod
    def from_scale(cls, scale: Mapping[str, Any]) -> ShardedScale:
        return cls(
            key=str(scale["key"]),
            sharding=dict(scale["sharding"]),
            voxel_offset=Vec3D(*(int(v) for v in scale["voxel_offset"])),
            chunk_size=Vec3D(*(int(v) for v in scale["chunk_sizes"][0])),
            size=Vec3D(*(int(v) for v in scale["size"])),
        )

    # -- the layout ---------------------------------------------------------------------------
    @functools.cached_property
    def spec(self) -> Any:
        """CloudVolume's ``ShardingSpecification`` of this scale."""
        from cloudvolume.datasource.precomputed.sharding import ShardingSpecification

        return ShardingSpecification.from_dict(dict(self.sharding))

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Chunks per axis."""
        return tuple(  # type: ignore[return-value]
            -(-int(s) // int(c)) for s, c in zip(self.size, self.chunk_size, strict=True)
        )

    @functools.cached_property
    def shard_box_chunks(self) -> Vec3D[int] | None:
        """Chunks per axis of the box one shard covers, or ``None`` when shards are not
        boxes (a ``murmurhash3_x86_128`` hash, or ids wider than the spec's bits, whose
        higher bits several boxes would share)."""
        spec = self.sharding
        if spec.get("hash") != "identity":
            return None
        low = int(spec["preshift_bits"]) + int(spec["minishard_bits"])
        if sum(_bits(n) for n in self.grid_size) > low + int(spec["shard_bits"]):
            return None
        return morton_box(self.grid_size, low)

    @property
    def write_grid_size(self) -> Vec3D[int]:
        """The write grid's cell (voxels): the shard box, or the whole dataset in chunks."""
        box = self.shard_box_chunks
        if box is None:
            return Vec3D(*(g * c for g, c in zip(self.grid_size, self.chunk_size, strict=True)))
        return Vec3D(*(b * c for b, c in zip(box, self.chunk_size, strict=True)))

    def describe_write_grid(self) -> str:
        box = self.shard_box_chunks
        chunk = self.chunk_size.pformat()
        if box is None:
            return (
                f"a sharded scale whose shards are not boxes ({self.sharding.get('hash')} "
                f"hash): its write grid is the whole dataset "
                f"{self.write_grid_size.pformat()} (chunks {chunk})"
            )
        return (
            f"a sharded scale: write grid = shard box {self.write_grid_size.pformat()} "
            f"({box.pformat()} chunks of {chunk}); a write must cover whole shards"
        )

    def keeps_chunk_ids(self, other: ShardedScale) -> bool:
        """Whether every chunk keeps its id (so its place in the shards) when the scale's
        geometry becomes ``other``'s: the same offset and chunk size, and as many grid
        bits per axis (ids are Morton codes of grid positions, compressed by the bits)."""
        return (
            self.voxel_offset == other.voxel_offset
            and self.chunk_size == other.chunk_size
            and [_bits(n) for n in self.grid_size] == [_bits(n) for n in other.grid_size]
        )

    def chunk_ids(self, chunk_starts: Sequence[Sequence[int]]) -> list[int]:
        """The ids of the chunks starting at ``chunk_starts`` (voxels)."""
        starts = np.asarray(chunk_starts, dtype=np.int64).reshape(-1, 3)
        grid = (starts - np.asarray(self.voxel_offset)) // np.asarray(self.chunk_size)
        return [int(v) for v in compressed_morton_codes(grid, self.grid_size)]

    def shard_file(self, chunk_id: int) -> tuple[str, int]:
        """The shard file (``key/<n>.shard``) and minishard of a chunk."""
        location = self.spec.compute_shard_location(chunk_id)
        return f"{self.key}/{location.shard_number}.shard", int(location.minishard_number)

    @property
    def _index_length(self) -> int:
        return 16 << int(self.sharding["minishard_bits"])

    # -- reading ------------------------------------------------------------------------------
    def read(self, store: FileStore, chunk_ids: Sequence[int]) -> dict[int, bytes | None]:
        """The stored content of each chunk (after the shard's ``data_encoding``), or
        ``None`` for chunks the shard does not hold."""
        by_file: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for chunk_id in chunk_ids:
            name, minishard = self.shard_file(chunk_id)
            by_file[name][minishard].append(chunk_id)
        found: dict[int, bytes | None] = dict.fromkeys(chunk_ids)
        for name, minishards in by_file.items():
            found.update(self._read_file(store, name, minishards))
        return found

    def _read_file(
        self, store: FileStore, name: str, minishards: Mapping[int, list[int]]
    ) -> dict[int, bytes]:
        reader = store.open_ranges(name)
        if reader is None:
            return {}
        try:
            return self._read_chunks(reader, name, minishards)
        finally:
            reader.close()

    def _read_chunks(
        self, reader: RangeReader, name: str, minishards: Mapping[int, list[int]]
    ) -> dict[int, bytes]:
        """The chunks ``minishards`` asks for, all read from one version of the file (a
        shard rewritten meanwhile would otherwise give offsets into another one)."""
        index_bytes = reader.read(0, self._index_length)
        if index_bytes is None:
            return {}
        if len(index_bytes) != self._index_length:
            raise DamagedChunkError(
                f"the shard {name} is damaged: its index has {len(index_bytes)} bytes, not "
                f"{self._index_length}"
            )
        index = np.frombuffer(index_bytes, dtype="<u8").reshape(-1, 2)
        found: dict[int, bytes] = {}
        for minishard, wanted in minishards.items():
            start, end = (int(v) + self._index_length for v in index[minishard])
            if start == end:
                continue
            table = self._minishard_table(reader.read(start, end), name, end - start)
            for chunk_id in wanted:
                entry = table.get(chunk_id)
                if entry is None:
                    continue
                offset, size = entry
                data = reader.read(offset, offset + size)
                if data is None or len(data) != size:
                    raise DamagedChunkError(
                        f"the shard {name} is damaged: chunk {chunk_id} should have {size} "
                        f"bytes at {offset}"
                    )
                found[chunk_id] = self._decode_data(data, name, chunk_id)
        return found

    def _minishard_table(
        self, raw: bytes | None, name: str, length: int
    ) -> dict[int, tuple[int, int]]:
        if raw is None or len(raw) != length:
            raise DamagedChunkError(f"the shard {name} is damaged: a minishard index is cut short")
        if self.sharding.get("minishard_index_encoding", "raw") != "raw":
            raw = _gunzip(raw, f"a minishard index of {name}")
        if len(raw) % 24:
            raise DamagedChunkError(
                f"the shard {name} is damaged: a minishard index of {len(raw)} bytes"
            )
        columns = np.frombuffer(raw, dtype="<u8").reshape(3, -1).astype(np.int64)
        ids = np.cumsum(columns[0])
        sizes = columns[2]
        offsets = np.cumsum(columns[1])
        offsets[1:] += np.cumsum(sizes[:-1])
        offsets += self._index_length
        return {int(i): (int(o), int(s)) for i, o, s in zip(ids, offsets, sizes, strict=True)}

    def _decode_data(self, data: bytes, name: str, chunk_id: int) -> bytes:
        if self.sharding.get("data_encoding", "raw") == "raw":
            return data
        return _gunzip(data, f"chunk {chunk_id} of the shard {name}")

    # -- writing ------------------------------------------------------------------------------
    def write(
        self, store: FileStore, chunks: Mapping[int, bytes | None], *, whole_shards: bool
    ) -> None:
        """Store ``chunks`` (id → encoded content; ``None`` removes the chunk).

        With ``whole_shards`` the caller guarantees that ``chunks`` holds every chunk of
        each shard it touches, so the shards are written without reading them; otherwise
        each touched shard is read, changed and written back whole (a read-modify-write:
        two such writes to one shard at once would race, so they are opt-in).
        """
        by_file: dict[str, dict[int, bytes | None]] = defaultdict(dict)
        for chunk_id, content in chunks.items():
            by_file[self.shard_file(chunk_id)[0]][chunk_id] = content
        files: dict[str, list[bytes]] = {}
        empty: list[str] = []
        for name, changes in by_file.items():
            labels: dict[int, bytes] = {}
            if not whole_shards:
                labels.update(self._disassemble(store, name))
            for chunk_id, content in changes.items():
                if content is None:
                    labels.pop(chunk_id, None)
                else:
                    labels[chunk_id] = content
            if labels:
                files[name] = self.assemble(labels)
            else:
                empty.append(name)
        store.put_many(files)  # shard files are never compressed whole (ranged reads)
        store.delete_many(empty)

    def assemble(self, labels: Mapping[int, bytes]) -> list[bytes]:
        """The shard file holding ``labels`` (chunk id → content before the spec's
        ``data_encoding``), as its parts in order: the shard index, each minishard's
        chunks, the minishard indices (a shard can be hundreds of MB: local files are
        written part by part, never joined)."""
        by_minishard: dict[int, list[int]] = defaultdict(list)
        for chunk_id in labels:
            by_minishard[int(self.spec.compute_shard_location(chunk_id).minishard_number)].append(
                chunk_id
            )
        gzip_data = self.sharding.get("data_encoding", "raw") != "raw"
        gzip_index = self.sharding.get("minishard_index_encoding", "raw") != "raw"
        index = np.zeros((1 << int(self.sharding["minishard_bits"]), 2), dtype="<u8")
        data_parts: list[bytes] = []
        index_parts: list[bytes] = []
        position = 0  # bytes after the shard index
        tables: list[tuple[int, npt.NDArray[np.uint64]]] = []
        for minishard in sorted(by_minishard):
            ids = sorted(by_minishard[minishard])
            table = np.zeros((3, len(ids)), dtype="<u8")
            previous_id = previous_end = 0
            for i, chunk_id in enumerate(ids):
                body = labels[chunk_id]
                if gzip_data:
                    body = _gzip(body)
                table[0, i] = chunk_id - previous_id
                table[1, i] = position - previous_end
                table[2, i] = len(body)
                data_parts.append(body)
                previous_id, previous_end = chunk_id, position + len(body)
                position += len(body)
            tables.append((minishard, table))
        for minishard, table in tables:
            raw = table.tobytes()
            body = _gzip(raw) if gzip_index else raw
            index[minishard] = (position, position + len(body))
            index_parts.append(body)
            position += len(body)
        return [index.tobytes(), *data_parts, *index_parts]

    def _disassemble(self, store: FileStore, name: str) -> dict[int, bytes]:
        """Every chunk a stored shard holds (id → content after ``data_encoding``)."""
        content = store.get(name)
        if content is None:
            return {}
        if len(content) < self._index_length:
            raise DamagedChunkError(f"the shard {name} is damaged: {len(content)} bytes")
        index = np.frombuffer(content[: self._index_length], dtype="<u8").reshape(-1, 2)
        labels: dict[int, bytes] = {}
        for start, end in index:
            start, end = int(start) + self._index_length, int(end) + self._index_length
            if start == end:
                continue
            table = self._minishard_table(content[start:end], name, end - start)
            for chunk_id, (offset, size) in table.items():
                data = content[offset : offset + size]
                if len(data) != size:
                    raise DamagedChunkError(f"the shard {name} is damaged: chunk {chunk_id}")
                labels[chunk_id] = self._decode_data(data, name, chunk_id)
        return labels


def _gzip(data: bytes) -> bytes:
    import zlib

    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # a gzip stream, zlib's default level
    return packer.compress(data) + packer.flush()


def _gunzip(data: bytes, what: str) -> bytes:
    import zlib

    try:
        out = zlib.decompress(data, wbits=47)  # gzip or zlib, checked (CRC and length)
    except zlib.error as exc:
        raise DamagedChunkError(f"{what} does not decompress: {exc}") from exc
    return out
