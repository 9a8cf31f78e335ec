"""Encode and decode one chunk of a Neuroglancer precomputed volume.

A chunk of shape ``(x, y, z)`` with ``C`` channels is held here as an ``(x, y, z, C)``
array; :func:`decode_chunk` returns it in Fortran order, so that
``.transpose(3, 0, 1, 2)`` is lamina's ``(C, X, Y, Z)`` without a copy.

The stored forms of the encodings lamina reads and writes:

``raw``
    the bytes of the ``(x, y, z, C)`` array in Fortran order (x fastest), little endian.
``jpeg`` / ``png``
    one 2-D image of width ``x`` and height ``y * z`` (row ``z * y_size + y``, column
    ``x``) with the channels interleaved.
``compressed_segmentation``
    Neuroglancer's block-wise lookup-table format, one channel after another behind a
    header of ``C`` little-endian uint32 channel offsets.
``compresso`` / ``crackle``
    the single-channel streams of the ``compresso`` and ``crackle-codec`` packages, as
    CloudVolume writes them.

The accepted combinations of encoding, data type and channel count are those that
TensorStore's ``neuroglancer_precomputed`` driver reads and writes (raw, jpeg, png,
compressed_segmentation), plus compresso and crackle for single-channel unsigned
segmentation, which round-trip with plain CloudVolume. :func:`check_encoding` refuses
every other combination (CloudVolume's fpzip, kempressed, zfpc and jxl included) with a
message that says what is supported.

Decoding never returns fill values for bad data: data that is empty, does not decode, or
decodes to the wrong size, shape, channel count or data type raises
:class:`DamagedChunkError` naming the chunk's key. The compressed_segmentation,
compresso and crackle streams are checked against their headers before the C
extensions see them, so that a truncated file raises instead of crashing the process or
decoding to wrong values; crackle's labels crc32c is checked as well. What cannot be
caught: corruption inside the payload of a format without a checksum (raw, jpeg's
entropy-coded data, compressed_segmentation's values, compresso) decodes to wrong
values, and a bit flip inside crackle's crack codes, which its decoder checks only after
decoding (and in crackle-codec 0.55 not effectively), may decode wrongly or crash that
extension, as may a bit flip inside compresso's payload.

Packages used: simplejpeg (jpeg), pyspng (png decoding; png encoding is done here,
since pyspng's encoder refuses 16-bit gray and RGB), compressed_segmentation (with the
multi-channel header written and read here, and 32-bit blocks decoded here), compresso
and crackle-codec. CloudVolume's own codec module is not used: its jpeg decoding of
three channels, multi-channel compressed_segmentation encoding and multi-channel png
decoding are wrong.

Each codec family is a module of this package (:mod:`.raw`, :mod:`.images` for jpeg and
png, :mod:`.compressed_segmentation`, :mod:`.compresso_crackle`); this module holds the
shared API: the accepted combinations, :func:`check_encoding`, and :func:`encode_chunk`
and :func:`decode_chunk`, which check a chunk and hand it to its family.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.typing import DTypeLike

from lamina.errors import DamagedChunkError, LaminaError
from lamina_precomputed.codecs.common import damaged, plural
from lamina_precomputed.codecs.compressed_segmentation import (
    check_block_size,
    decode_cseg,
    encode_cseg,
)
from lamina_precomputed.codecs.compresso_crackle import (
    decode_compresso,
    decode_crackle,
    encode_compresso,
    encode_crackle,
)
from lamina_precomputed.codecs.images import decode_jpeg, decode_png, encode_jpeg, encode_png
from lamina_precomputed.codecs.raw import decode_raw, encode_raw

__all__ = [
    "ACCEPTED_ENCODINGS",
    "DEFAULT_JPEG_QUALITY",
    "DEFAULT_PNG_LEVEL",
    "PRECOMPUTED_DTYPES",
    "DamagedChunkError",
    "UnsupportedEncodingError",
    "check_encoding",
    "decode_chunk",
    "encode_chunk",
]

#: The data types of the precomputed format (``info["data_type"]``).
PRECOMPUTED_DTYPES: Final[tuple[str, ...]] = (
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "float32",
)

#: The encodings lamina-precomputed reads and writes, in the order messages list them.
ACCEPTED_ENCODINGS: Final[tuple[str, ...]] = (
    "raw",
    "jpeg",
    "png",
    "compressed_segmentation",
    "compresso",
    "crackle",
)

_CLOUDVOLUME_ONLY: Final[frozenset[str]] = frozenset({"fpzip", "kempressed", "zfpc", "jxl"})

_DEFAULT_BLOCK_SIZE: Final[tuple[int, int, int]] = (8, 8, 8)


class UnsupportedEncodingError(LaminaError, ValueError):
    """An encoding, data type and channel count that lamina does not read and write."""


@dataclass(frozen=True)
class _Support:
    """What one encoding accepts: data types, and channel counts (``None``: any)."""

    dtypes: tuple[str, ...]
    channels: tuple[int, ...] | None

    def describe(self, encoding: str) -> str:
        if len(self.dtypes) == len(PRECOMPUTED_DTYPES):
            types = "every precomputed data type (" + ", ".join(self.dtypes) + ")"
        elif len(self.dtypes) == 1:
            types = "data type " + self.dtypes[0]
        else:
            types = "data types " + ", ".join(self.dtypes[:-1]) + " or " + self.dtypes[-1]
        if self.channels is None:
            counts = "any number of channels"
        elif self.channels == (1,):
            counts = "1 channel"
        else:
            listed = [str(c) for c in self.channels]
            counts = ", ".join(listed[:-1]) + " or " + listed[-1] + " channels"
        return f"{encoding} supports {types} with {counts}"


_SUPPORT: Final[dict[str, _Support]] = {
    "raw": _Support(PRECOMPUTED_DTYPES, None),
    "jpeg": _Support(("uint8",), (1, 3)),
    "png": _Support(("uint8", "uint16"), (1, 2, 3, 4)),
    "compressed_segmentation": _Support(("uint32", "uint64"), None),
    "compresso": _Support(("uint8", "uint16", "uint32", "uint64"), (1,)),
    "crackle": _Support(("uint8", "uint16", "uint32", "uint64"), (1,)),
}


def check_encoding(encoding: str, dtype: DTypeLike, num_channels: int, *, where: str = "") -> None:
    """Refuse a combination of encoding, data type and channel count lamina can't handle.

    Accepted: ``raw`` with every precomputed data type and any number of channels;
    ``jpeg`` with uint8 and 1 or 3 channels; ``png`` with uint8 or uint16 and 1 to 4
    channels; ``compressed_segmentation`` with uint32 or uint64 and any number of
    channels; ``compresso`` and ``crackle`` with unsigned integers and 1 channel.

    Args:
        encoding: the precomputed ``encoding`` of a scale.
        dtype: the volume's data type.
        num_channels: the volume's channel count.
        where: names the volume or scale in the message (e.g. its path and key).

    Raises:
        UnsupportedEncodingError: naming encoding, data type and channel count, and
            what is supported for that encoding.
    """
    support = _SUPPORT.get(encoding)
    dtype_name = _dtype_name(dtype)
    if (
        support is not None
        and dtype_name in support.dtypes
        and num_channels >= 1
        and (support.channels is None or num_channels in support.channels)
    ):
        return
    at = f" at {where}" if where else ""
    what = (
        f"precomputed encoding {encoding!r}{at} with data type {dtype_name} "
        f"and {plural(num_channels, 'channel')}"
    )
    if support is None:
        note = (
            f" ({encoding} is a CloudVolume-only encoding)" if encoding in _CLOUDVOLUME_ONLY else ""
        )
        raise UnsupportedEncodingError(
            f"{what} refused: lamina-precomputed reads and writes "
            f"{', '.join(ACCEPTED_ENCODINGS)}{note}"
        )
    if dtype_name not in PRECOMPUTED_DTYPES:
        raise UnsupportedEncodingError(
            f"{what} refused: {dtype_name} is not a precomputed data type "
            f"({', '.join(PRECOMPUTED_DTYPES)}); {support.describe(encoding)}"
        )
    raise UnsupportedEncodingError(f"{what} refused: {support.describe(encoding)}")


# Per-call dtype handling is a measurable part of decoding a small raw chunk: the
# answers for each dtype-like seen are kept (a handful per process).
_DTYPE_NAMES: dict[Any, str] = {}
_RAW_DTYPES: dict[Any, tuple[np.dtype[Any], np.dtype[Any]] | None] = {}


def _dtype_name(dtype: DTypeLike) -> str:
    """``np.dtype(dtype).name``, or ``repr(dtype)`` when it is not a data type."""
    try:
        return _DTYPE_NAMES[dtype]
    except (KeyError, TypeError):
        pass
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return repr(dtype)
    with contextlib.suppress(TypeError):  # an unhashable dtype-like is not kept
        _DTYPE_NAMES[dtype] = name
    return name


def _raw_dtypes(dtype: DTypeLike) -> tuple[np.dtype[Any], np.dtype[Any]] | None:
    """``(stored little-endian dtype, native dtype)`` of a precomputed dtype, else None."""
    try:
        return _RAW_DTYPES[dtype]
    except (KeyError, TypeError):
        pass
    try:
        native = np.dtype(dtype).newbyteorder("=")
    except TypeError:
        return None
    found = (native.newbyteorder("<"), native) if native.name in PRECOMPUTED_DTYPES else None
    with contextlib.suppress(TypeError):
        _RAW_DTYPES[dtype] = found
    return found


#: The jpeg quality and png zlib level of a scale whose info names none (CloudVolume's).
DEFAULT_JPEG_QUALITY = 85
DEFAULT_PNG_LEVEL = 6


def encode_chunk(
    xyzc: npt.NDArray[Any],
    encoding: str,
    *,
    block_size: Sequence[int] = _DEFAULT_BLOCK_SIZE,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    png_level: int = DEFAULT_PNG_LEVEL,
) -> bytes:
    """The stored bytes of one chunk.

    Args:
        xyzc: the chunk as an ``(x, y, z, C)`` array, in any memory order; its data type
            is the volume's (converted to little endian where the encoding needs it).
        encoding: one of :data:`ACCEPTED_ENCODINGS`.
        block_size: the scale's ``compressed_segmentation_block_size``.
        jpeg_quality: 1..100 (jpeg only).
        png_level: zlib level 0..9 (png only).

    Raises:
        UnsupportedEncodingError: the encoding, data type and channel count are not a
            combination lamina writes (see :func:`check_encoding`).
        ValueError: ``xyzc`` is not 4-dimensional or has no voxels, or a parameter is
            out of range, or the chunk is too large for the encoding.
    """
    arr = np.asarray(xyzc)
    if arr.ndim != 4:
        raise ValueError(f"encode_chunk takes an (x, y, z, C) array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"encode_chunk got an empty chunk of shape {arr.shape}")
    check_encoding(encoding, arr.dtype, arr.shape[3])
    if encoding == "raw":
        return encode_raw(arr)
    if encoding == "jpeg":
        return encode_jpeg(arr, jpeg_quality)
    if encoding == "png":
        return encode_png(arr, png_level)
    if encoding == "compressed_segmentation":
        return encode_cseg(arr, check_block_size(block_size))
    if encoding == "compresso":
        return encode_compresso(arr)
    return encode_crackle(arr)


def decode_chunk(
    data: bytes | memoryview,
    encoding: str,
    shape: tuple[int, int, int],
    num_channels: int,
    dtype: DTypeLike,
    *,
    block_size: Sequence[int] = _DEFAULT_BLOCK_SIZE,
    key: str = "",
) -> npt.NDArray[Any]:
    """One chunk from its stored bytes, as an ``(x, y, z, C)`` array in Fortran order.

    Raw data is returned as a view of ``data`` (read-only when ``data`` is ``bytes``);
    every other encoding returns a new array. The data type is the native-endian form of
    ``dtype``.

    Args:
        data: the chunk file's bytes (after any transfer compression is undone).
        encoding: the scale's ``encoding``.
        shape: the chunk's ``(x, y, z)`` extent (clipped at the volume's upper bound).
        num_channels: the volume's channel count.
        dtype: the volume's data type.
        block_size: the scale's ``compressed_segmentation_block_size``.
        key: names the chunk (its path) in error messages.

    Raises:
        UnsupportedEncodingError: the combination is not one lamina reads.
        DamagedChunkError: ``data`` is empty, does not decode, or decodes to the wrong
            number of bytes, shape, channel count or data type.
    """
    if encoding == "raw" and num_channels >= 1:
        dtypes = _raw_dtypes(dtype)
        if dtypes is not None:
            return decode_raw(data, shape, num_channels, dtypes, key)
    check_encoding(encoding, dtype, num_channels, where=key)
    want = np.dtype(dtype)
    if len(data) == 0:
        raise damaged(key, encoding, "the stored data is empty")
    x, y, z = (int(v) for v in shape)
    shape = (x, y, z)
    if x < 1 or y < 1 or z < 1:
        raise ValueError(f"decode_chunk got an empty chunk shape {shape} for {key!r}")
    raw_bytes = data if isinstance(data, bytes) else bytes(data)
    native = want.newbyteorder("=")
    if encoding == "jpeg":
        return decode_jpeg(raw_bytes, shape, num_channels, key)
    if encoding == "png":
        return decode_png(raw_bytes, shape, num_channels, native, key)
    if encoding == "compressed_segmentation":
        return decode_cseg(
            raw_bytes, shape, num_channels, native, check_block_size(block_size), key
        )
    if encoding == "compresso":
        return decode_compresso(raw_bytes, shape, native, key)
    return decode_crackle(raw_bytes, shape, native, key)
