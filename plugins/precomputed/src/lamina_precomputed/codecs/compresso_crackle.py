"""The ``compresso`` and ``crackle`` encodings: single-channel segmentation streams.

The streams of the ``compresso`` and ``crackle-codec`` packages, as CloudVolume writes
them, for one channel of unsigned labels. Both streams are checked against their
headers before the C extensions see them, so that a truncated file raises instead of
crashing the process or decoding to wrong values; crackle's labels crc32c is checked as
well, since its decoder does not. What cannot be caught: a bit flip inside compresso's
payload, or inside crackle's crack codes (which its decoder checks only after decoding,
and in crackle-codec 0.55 not effectively), may decode wrongly or crash that extension.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina.errors import DamagedChunkError
from lamina_precomputed.codecs.common import damaged, lib

__all__ = ["decode_compresso", "decode_crackle", "encode_compresso", "encode_crackle"]


def _unsigned_channel(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    channel = np.asfortranarray(arr[:, :, :, 0], dtype=arr.dtype.newbyteorder("="))
    if not channel.flags.writeable:
        channel = channel.copy(order="F")
    return channel


def encode_compresso(arr: npt.NDArray[Any]) -> bytes:
    compresso = lib("compresso")

    return bytes(compresso.compress(_unsigned_channel(arr)))


def encode_crackle(arr: npt.NDArray[Any]) -> bytes:
    crackle = lib("crackle")

    return bytes(crackle.compress(_unsigned_channel(arr), parallel=1))


def _as_volume_dtype(
    arr: npt.NDArray[Any], dtype: np.dtype[Any], encoding: str, key: str
) -> npt.NDArray[Any]:
    if arr.dtype == dtype:
        return arr
    if arr.dtype.kind in "ui" and np.can_cast(arr.dtype, dtype, "safe"):
        return arr.astype(dtype, order="F")
    raise damaged(key, encoding, f"the stream holds {arr.dtype} labels; the volume is {dtype.name}")


def _check_shape(
    found: tuple[int, int, int], shape: tuple[int, int, int], encoding: str, key: str
) -> None:
    if found != shape:
        raise damaged(
            key,
            encoding,
            f"the stream holds a {found[0]}x{found[1]}x{found[2]} array; the chunk is "
            f"{shape[0]}x{shape[1]}x{shape[2]}",
        )


def decode_compresso(
    data: bytes, shape: tuple[int, int, int], dtype: np.dtype[Any], key: str
) -> npt.NDArray[Any]:
    compresso = lib("compresso")

    _check_compresso(data, shape, key)
    try:
        arr = compresso.decompress(data)
    except Exception as exc:
        raise damaged(key, "compresso", f"does not decode ({exc})") from exc
    _check_shape(tuple(arr.shape), shape, "compresso", key)
    arr = _as_volume_dtype(np.asfortranarray(arr), dtype, "compresso", key)
    return arr[:, :, :, np.newaxis]


def _check_compresso(data: bytes, shape: tuple[int, int, int], key: str) -> None:
    """Check a compresso stream's sections against its header (its decoder does not)."""

    def bad(problem: str) -> DamagedChunkError:
        return damaged(key, "compresso", problem)

    header_size = 36
    if len(data) < header_size or data[:4] != b"cpso":
        raise bad("not a compresso stream (no 'cpso' header)")
    version, width = data[4], data[5]
    sx, sy, sz = struct.unpack_from("<3H", data, 6)
    steps = data[12] * data[13] * data[14]
    id_size, value_size, location_size = struct.unpack_from("<QIQ", data, 15)
    connectivity = data[35]
    if version not in (0, 1) or width not in (1, 2, 4, 8) or connectivity not in (4, 6):
        raise bad(
            f"invalid header (version {version}, data width {width}, connectivity {connectivity})"
        )
    _check_shape((sx, sy, sz), shape, "compresso", key)
    if not 1 <= steps <= 64:
        raise bad(f"invalid header (window of {steps} voxels)")
    window = 1 if steps <= 8 else 2 if steps <= 16 else 4 if steps <= 32 else 8
    index_width = 0
    if version == 1:
        worst = 2 * sx * sy
        index_width = 1 if worst < 0xFF else 2 if worst < 0xFFFF else 4
    windows_start = header_size + id_size * width + value_size * window + location_size * width
    windows_bytes = len(data) - windows_start - 2 * sz * index_width
    if windows_bytes < 0 or windows_bytes % window:
        raise bad(f"{len(data)} bytes do not hold the sections its header lists (truncated?)")
    # The boundary windows are run-length coded (odd: a run of empty windows); they
    # must cover the window grid exactly, and index the window values that exist.
    xs, ys, zs = data[12], data[13], data[14]
    num_windows = (-(-sx // xs)) * (-(-sy // ys)) * (-(-sz // zs))
    coded = np.frombuffer(
        data, dtype=f"<u{window}", count=windows_bytes // window, offset=windows_start
    )
    run = (coded & 1).astype(bool)
    value = (coded >> 1).astype(np.uint64)
    if (value[run] > num_windows).any():
        raise bad("a run of boundary windows is longer than the chunk (truncated?)")
    covered = int(value[run].sum()) + int((~run).sum())
    if covered != num_windows:
        raise bad(f"the boundary windows cover {covered} of {num_windows} windows (truncated?)")
    if value_size and (value[~run] >= value_size).any():
        raise bad("a boundary window indexes past the window values")


def decode_crackle(
    data: bytes, shape: tuple[int, int, int], dtype: np.dtype[Any], key: str
) -> npt.NDArray[Any]:
    crackle = lib("crackle")

    _check_crackle(data, shape, key)
    try:
        arr = crackle.decompress(data, parallel=1)
    except Exception as exc:
        raise damaged(key, "crackle", f"does not decode ({exc})") from exc
    _check_shape(tuple(arr.shape), shape, "crackle", key)
    arr = _as_volume_dtype(np.asfortranarray(arr), dtype, "crackle", key)
    return arr[:, :, :, np.newaxis]


def _check_crackle(data: bytes, shape: tuple[int, int, int], key: str) -> None:
    """Check that a crackle stream is exactly as long as its header and index say."""
    crackle = lib("crackle")

    try:
        header = crackle.header(data)  # checks the magic, version and header crc8
    except Exception as exc:
        raise damaged(key, "crackle", f"not a crackle stream ({exc})") from exc
    sx, sy, sz = int(header.sx), int(header.sy), int(header.sz)
    _check_shape((sx, sy, sz), shape, "crackle", key)
    version = int(header.format_version)
    header_bytes = 24 if version == 0 else 29
    index_bytes = 4 * sz + (4 if version > 0 else 0)
    if len(data) < header_bytes + index_bytes:
        raise damaged(key, "crackle", f"{len(data)} bytes cannot hold its index (truncated?)")
    crack_bytes = int(
        np.frombuffer(data, dtype="<u4", count=sz, offset=header_bytes).sum(dtype=np.uint64)
    )
    order = int(header.markov_model_order)
    markov_bytes = 0 if order == 0 else (4 ** min(order, 15) * 5 + 4) // 8
    crc_bytes = 4 + 4 * sz if version > 0 else 0
    expected = (
        header_bytes
        + index_bytes
        + int(header.num_label_bytes)
        + markov_bytes
        + crack_bytes
        + crc_bytes
    )
    if len(data) != expected:
        raise damaged(
            key,
            "crackle",
            f"{len(data)} bytes; its header and index describe {expected} (truncated?)",
        )
    if version > 0:
        # The decoder checks the index's crc but not the labels' (stored after the
        # crack codes, before the per-slice crcs of the crack codes).
        start = header_bytes + index_bytes
        labels = data[start : start + int(header.num_label_bytes)]
        stored = int.from_bytes(data[len(data) - crc_bytes : len(data) - crc_bytes + 4], "little")
        if int(crackle.lib.crc32c(labels)) != stored:
            raise damaged(key, "crackle", "the labels section fails its crc32c check")
