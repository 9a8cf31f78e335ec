"""The ``compressed_segmentation`` encoding: Neuroglancer's block-wise lookup tables.

One channel after another behind a header of ``C`` little-endian uint32 channel
offsets; each channel is blocks of indices into a lookup table of labels. The
``compressed_segmentation`` package encodes and decodes single channels: the
multi-channel header is written and read here, and 32-bit blocks (which that package
decodes wrongly) are decoded here. Every offset the package's decoder would follow is
checked first, so that a truncated or corrupted file raises instead of crashing the
process or decoding to garbage; the values themselves have no checksum.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from lamina.errors import DamagedChunkError
from lamina_precomputed.codecs.common import damaged, lib

__all__ = ["check_block_size", "decode_cseg", "encode_cseg"]


def check_block_size(block_size: Sequence[int]) -> tuple[int, int, int]:
    """A scale's ``compressed_segmentation_block_size`` as 3 positive ints."""
    values = tuple(int(v) for v in block_size)
    if len(values) != 3 or min(values) < 1:
        raise ValueError(
            f"compressed_segmentation block size must be 3 positive integers, got {block_size!r}"
        )
    return values[0], values[1], values[2]


def encode_cseg(arr: npt.NDArray[Any], block_size: tuple[int, int, int]) -> bytes:
    cseg = lib("compressed_segmentation")

    native = arr.dtype.newbyteorder("=")
    channels: list[bytes] = []
    for c in range(arr.shape[3]):
        # compressed_segmentation 2.3.3 reads an uninitialised channel stride for 4-D
        # input (a crash for 2+ channels), so each channel is compressed on its own and
        # the multi-channel header is written here.
        channel = np.asfortranarray(arr[:, :, :, c], dtype=native)
        if not channel.flags.writeable:
            channel = channel.copy(order="F")
        try:
            data = cseg.compress(channel, block_size=block_size, order="F")
        except OverflowError as exc:
            raise ValueError(
                f"compressed_segmentation cannot encode this chunk with block size "
                f"{list(block_size)}: {exc}"
            ) from exc
        channels.append(bytes(data))
    if len(channels) == 1:
        return channels[0]
    # Each single-channel stream is [1] + channel data; channel offsets (in uint32
    # words, from the start of the file) are relative to nothing else, so the channel
    # data can be concatenated behind a new header.
    offsets: list[int] = []
    position = len(channels)
    for data in channels:
        offsets.append(position)
        position += len(data) // 4 - 1
    header = struct.pack(f"<{len(channels)}I", *offsets)
    return b"".join([header, *(memoryview(data)[4:] for data in channels)])


_CSEG_VALID_BITS: Final[npt.NDArray[np.bool_]] = np.isin(np.arange(256), [0, 1, 2, 4, 8, 16, 32])


def decode_cseg(
    data: bytes,
    shape: tuple[int, int, int],
    num_channels: int,
    dtype: np.dtype[Any],
    block_size: tuple[int, int, int],
    key: str,
) -> npt.NDArray[Any]:
    cseg = lib("compressed_segmentation")

    if len(data) % 4:
        raise damaged(
            key,
            "compressed_segmentation",
            f"{len(data)} bytes is not a whole number of 32-bit words (truncated?)",
        )
    words = np.frombuffer(data, dtype="<u4")
    wide_blocks = _check_cseg(words, shape, num_channels, dtype, block_size, key)
    try:
        out: npt.NDArray[Any] = cseg.decompress(
            data, (*shape, num_channels), dtype, block_size, order="F"
        )
    except Exception as exc:
        raise damaged(key, "compressed_segmentation", f"does not decode ({exc})") from exc
    if out.shape != (*shape, num_channels) or out.dtype != dtype:
        raise damaged(key, "compressed_segmentation", f"decodes to {out.shape} {out.dtype}")
    out = np.asfortranarray(out)
    if wide_blocks:
        _decode_cseg_wide_blocks(words, out, wide_blocks, block_size)
    return out


@functools.lru_cache(maxsize=64)
def _block_extents(
    shape: tuple[int, int, int], block_size: tuple[int, int, int]
) -> tuple[tuple[int, int, int], npt.NDArray[np.int64]]:
    """The block grid of a chunk and each block's ``(x, y, z)`` extent inside the chunk.

    Blocks are numbered as the format stores them: x fastest, then y, then z.
    """
    grid = tuple(-(-s // b) for s, b in zip(shape, block_size, strict=True))
    gx, gy, gz = grid
    ext = [
        np.minimum(b, s - np.arange(g, dtype=np.int64) * b)
        for s, b, g in zip(shape, block_size, grid, strict=True)
    ]
    ex, ey, ez = np.meshgrid(ext[0], ext[1], ext[2], indexing="ij")  # (gx, gy, gz)
    extents = np.stack([ex, ey, ez], axis=-1).transpose(2, 1, 0, 3).reshape(-1, 3)
    extents.setflags(write=False)  # cached: shared between calls
    return (gx, gy, gz), extents


def _cseg_indices(
    words: npt.NDArray[np.uint32],
    values: npt.NDArray[np.int64],
    bits: npt.NDArray[np.int64],
    extents: npt.NDArray[np.int64],
    block_size: tuple[int, int, int],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The lookup table indices of some blocks, as the decoder reads them.

    Returns ``(indices, inside)``, both of shape ``(blocks, bs0 * bs1 * bs2)`` with the
    voxel at ``(x, y, z)`` of a block in column ``bs0 * (z * bs1 + y) + x``; ``inside``
    marks the voxels inside the chunk (the decoder reads no others), and the indices of
    the others are 0. The encoded values of those voxels must be inside ``words``.
    """
    bs0, bs1, _ = block_size
    position = np.arange(bs0 * bs1 * block_size[2], dtype=np.int64)
    px, py, pz = position % bs0, (position // bs0) % bs1, position // (bs0 * bs1)
    inside = (
        (px[np.newaxis, :] < extents[:, 0:1])
        & (py[np.newaxis, :] < extents[:, 1:2])
        & (pz[np.newaxis, :] < extents[:, 2:3])
    )
    bitpos = position[np.newaxis, :] * bits[:, np.newaxis]
    word = np.minimum(values[:, np.newaxis] + bitpos // 32, words.size - 1)
    mask = (np.int64(1) << bits[:, np.newaxis]) - 1
    indices = (words[word].astype(np.int64) >> (bitpos % 32)) & mask
    indices[~inside] = 0
    return indices, inside


def _check_cseg(
    words: npt.NDArray[np.uint32],
    shape: tuple[int, int, int],
    num_channels: int,
    dtype: np.dtype[Any],
    block_size: tuple[int, int, int],
    key: str,
) -> list[tuple[int, int]]:
    """Check every offset the C decoder will follow; return the 32-bit blocks.

    The ``compressed_segmentation`` extension reads wherever the headers point, so a
    truncated or corrupted file would crash it or decode to garbage. Returned: the
    ``(channel, block number)`` of each block encoded with 32 bits, which that extension
    decodes wrongly (its mask ``(1 << 32) - 1`` overflows to 0).
    """
    n = int(words.size)
    entry = dtype.itemsize // 4  # uint32 words per lookup table entry

    def bad(problem: str) -> DamagedChunkError:
        return damaged(key, "compressed_segmentation", problem)

    if n < num_channels:
        raise bad(f"{4 * n} bytes cannot hold the header of {num_channels} channels")
    (gx, gy, gz), extents = _block_extents(shape, block_size)
    num_blocks = gx * gy * gz
    # The decoder reads encoded value bs0 * (z * bs1 + y) + x of the voxel (x, y, z) of a
    # block that is inside the chunk: the values used end after the block's last voxel.
    used = block_size[0] * ((extents[:, 2] - 1) * block_size[1] + extents[:, 1] - 1)
    used += extents[:, 0]
    wide: list[tuple[int, int]] = []
    for channel, start in enumerate(words[:num_channels].astype(np.int64).tolist()):
        if start < num_channels or start + 2 * num_blocks > n:
            raise bad(
                f"channel {channel} starts at word {start}; the {num_blocks} block headers "
                f"after it do not fit in {n} words (truncated?)"
            )
        headers = words[start : start + 2 * num_blocks].reshape(num_blocks, 2).astype(np.int64)
        bits = headers[:, 0] >> 24
        table = start + (headers[:, 0] & 0xFFFFFF)
        values = start + headers[:, 1]
        if not _CSEG_VALID_BITS[bits].all():
            raise bad(f"channel {channel} has a block header with an invalid bit width")
        if ((values + (used * bits + 31) // 32 > n) & (bits > 0)).any():
            raise bad(
                f"channel {channel}: encoded values run past the end of the data "
                f"({n} words; truncated?)"
            )
        if (table + entry > n).any():
            raise bad(
                f"channel {channel}: a lookup table starts past the end of the data "
                f"({n} words; truncated?)"
            )
        # A block indexes at most 2**bits table entries; only where that many do not fit
        # before the end of the data must the indices the block uses be looked at.
        unsure = np.flatnonzero(table + (np.int64(1) << bits) * entry > n)
        batch = max(1, (1 << 20) // max(1, int(np.prod(block_size))))
        for first in range(0, unsure.size, batch):
            chosen = unsure[first : first + batch]
            indices, _ = _cseg_indices(
                words, values[chosen], bits[chosen], extents[chosen], block_size
            )
            if (table[chosen] + (indices.max(axis=1) + 1) * entry > n).any():
                raise bad(
                    f"channel {channel}: a block indexes past the end of the data "
                    f"({n} words; truncated?)"
                )
        wide.extend((channel, b) for b in np.flatnonzero(bits == 32).tolist())
    return wide


def _decode_cseg_wide_blocks(
    words: npt.NDArray[np.uint32],
    out: npt.NDArray[Any],
    wide: list[tuple[int, int]],
    block_size: tuple[int, int, int],
) -> None:
    """Decode the 32-bit blocks into ``out`` (the C extension gets these wrong)."""
    shape = (out.shape[0], out.shape[1], out.shape[2])
    (gx, gy, _), extents = _block_extents(shape, block_size)
    entry = out.dtype.itemsize // 4
    bs0, bs1, bs2 = block_size
    for channel, block in wide:
        start = int(words[channel])
        header = words[start + 2 * block : start + 2 * block + 2].astype(np.int64)
        table = start + int(header[0] & 0xFFFFFF)
        values = np.array([start + int(header[1])], dtype=np.int64)
        ext = extents[block : block + 1]
        indices, _ = _cseg_indices(words, values, np.array([32], dtype=np.int64), ext, block_size)
        lookup = words[table : table + (int(indices.max()) + 1) * entry]
        labels = lookup.view("<u8") if entry == 2 else lookup
        ex, ey, ez = (int(v) for v in ext[0])
        voxels = labels[indices[0].reshape(bs2, bs1, bs0)[:ez, :ey, :ex]]
        x0, y0 = (block % gx) * bs0, ((block // gx) % gy) * bs1
        z0 = (block // (gx * gy)) * bs2
        out[x0 : x0 + ex, y0 : y0 + ey, z0 : z0 + ez, channel] = voxels.transpose(2, 1, 0)
