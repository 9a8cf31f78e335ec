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
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import struct
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.typing import DTypeLike

from lamina.errors import DamagedChunkError, LaminaError

__all__ = [
    "ACCEPTED_ENCODINGS",
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
_BIG_ENDIAN_HOST: Final[bool] = sys.byteorder == "big"


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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
        f"and {_plural(num_channels, 'channel')}"
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


# --------------------------------------------------------------------------- helpers


def _lib(name: str) -> Any:
    """An optional codec package, imported on first use (they are slow to import)."""
    module = sys.modules.get(name)
    return module if module is not None else importlib.import_module(name)


def _block_size(block_size: Sequence[int]) -> tuple[int, int, int]:
    values = tuple(int(v) for v in block_size)
    if len(values) != 3 or min(values) < 1:
        raise ValueError(
            f"compressed_segmentation block size must be 3 positive integers, got {block_size!r}"
        )
    return values[0], values[1], values[2]


def _to_image(xyzc: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``(x, y, z, C)`` -> the C-contiguous ``(y*z, x, C)`` image of jpeg and png."""
    x, y, z, c = xyzc.shape
    return np.ascontiguousarray(xyzc.transpose(2, 1, 0, 3)).reshape(z * y, x, c)


def _from_image(
    image: npt.NDArray[Any], shape: tuple[int, int, int], num_channels: int
) -> npt.NDArray[Any]:
    """The ``(y*z, x, C)`` image of jpeg and png -> an F-ordered ``(x, y, z, C)`` array."""
    x, y, z = shape
    xyzc = image.reshape(z, y, x, num_channels).transpose(2, 1, 0, 3)
    return np.asfortranarray(xyzc)  # a copy only when C > 1


def _damaged(key: str, encoding: str, problem: str) -> DamagedChunkError:
    name = f"chunk {key!r}" if key else "chunk"
    return DamagedChunkError(f"precomputed {name} ({encoding}): {problem}")


def _shape_text(shape: tuple[int, int, int], num_channels: int) -> str:
    return f"{shape[0]}x{shape[1]}x{shape[2]} with {_plural(num_channels, 'channel')}"


# --------------------------------------------------------------------------- encoding


def encode_chunk(
    xyzc: npt.NDArray[Any],
    encoding: str,
    *,
    block_size: Sequence[int] = _DEFAULT_BLOCK_SIZE,
    jpeg_quality: int = 85,
    png_level: int = 6,
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
        # tobytes("F") gathers any layout in one pass: no copy besides the bytes object.
        if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and _BIG_ENDIAN_HOST):
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        return arr.tobytes(order="F")
    if encoding == "jpeg":
        return _encode_jpeg(arr, jpeg_quality)
    if encoding == "png":
        return _encode_png(arr, png_level)
    if encoding == "compressed_segmentation":
        return _encode_cseg(arr, _block_size(block_size))
    if encoding == "compresso":
        return _encode_compresso(arr)
    return _encode_crackle(arr)


def _encode_jpeg(arr: npt.NDArray[Any], quality: int) -> bytes:
    simplejpeg = _lib("simplejpeg")

    if not 1 <= quality <= 100:
        raise ValueError(f"jpeg quality must be in 1..100, got {quality}")
    x, y, z, c = arr.shape
    if x > 65535 or y * z > 65535:
        raise ValueError(
            f"a jpeg chunk of {x}x{y}x{z} is a {x}x{y * z} image; jpeg images are at most "
            "65535 pixels wide and high"
        )
    image = _to_image(arr)
    if c == 1:
        data = simplejpeg.encode_jpeg(
            image, quality=quality, colorspace="GRAY", colorsubsampling="Gray"
        )
    else:
        data = simplejpeg.encode_jpeg(
            image, quality=quality, colorspace="RGB", colorsubsampling="444"
        )
    return bytes(data)


_PNG_SIGNATURE: Final[bytes] = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPES: Final[dict[int, int]] = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> color type
_PNG_CHANNELS: Final[dict[int, int]] = {v: k for k, v in _PNG_COLOR_TYPES.items()}


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png_filter(rows: npt.NDArray[np.uint8], bpp: int) -> npt.NDArray[np.uint8]:
    """PNG-filter the scanlines ``rows`` (``(height, bytes)``): each row gets the filter
    (none, sub, up, average, paeth) with the smallest sum of absolute signed bytes, the
    heuristic of libpng, behind its filter type byte."""
    raw = rows.astype(np.int16)
    left = np.zeros_like(raw)
    left[:, bpp:] = raw[:, :-bpp]
    up = np.zeros_like(raw)
    up[1:] = raw[:-1]
    up_left = np.zeros_like(raw)
    up_left[1:, bpp:] = raw[:-1, :-bpp]
    pa = np.abs(up - up_left)
    pb = np.abs(left - up_left)
    pc = np.abs(left + up - 2 * up_left)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    candidates = np.stack([raw, raw - left, raw - up, raw - (left + up) // 2, raw - paeth]).astype(
        np.uint8
    )  # wraps modulo 256, as the filters are defined
    cost = np.minimum(candidates, 256 - candidates.astype(np.int16)).sum(axis=2)
    choice = np.argmin(cost, axis=0)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = choice
    out[:, 1:] = candidates[choice, np.arange(rows.shape[0])]
    return out


def _encode_png(arr: npt.NDArray[Any], level: int) -> bytes:
    # Written here rather than with pyspng: pyspng's encoder refuses 16-bit gray and RGB.
    if not 0 <= level <= 9:
        raise ValueError(f"png compression level must be in 0..9, got {level}")
    x, y, z, c = arr.shape
    if x > 0x7FFFFFFF or y * z > 0x7FFFFFFF:
        raise ValueError(f"a png chunk of {x}x{y}x{z} is too large a png image")
    depth = 8 * arr.dtype.itemsize
    image = _to_image(arr.astype(">u2" if depth == 16 else np.uint8, copy=False))
    rows = image.view(np.uint8).reshape(y * z, x * c * arr.dtype.itemsize)
    scanlines = _png_filter(rows, c * arr.dtype.itemsize)
    header = struct.pack(">IIBBBBB", x, y * z, depth, _PNG_COLOR_TYPES[c], 0, 0, 0)
    return b"".join(
        [
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), level)),
            _png_chunk(b"IEND", b""),
        ]
    )


def _encode_cseg(arr: npt.NDArray[Any], block_size: tuple[int, int, int]) -> bytes:
    cseg = _lib("compressed_segmentation")

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


def _unsigned_channel(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    channel = np.asfortranarray(arr[:, :, :, 0], dtype=arr.dtype.newbyteorder("="))
    if not channel.flags.writeable:
        channel = channel.copy(order="F")
    return channel


def _encode_compresso(arr: npt.NDArray[Any]) -> bytes:
    compresso = _lib("compresso")

    return bytes(compresso.compress(_unsigned_channel(arr)))


def _encode_crackle(arr: npt.NDArray[Any]) -> bytes:
    crackle = _lib("crackle")

    return bytes(crackle.compress(_unsigned_channel(arr), parallel=1))


# --------------------------------------------------------------------------- decoding


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
            return _decode_raw(data, shape, num_channels, dtypes, key)
    check_encoding(encoding, dtype, num_channels, where=key)
    want = np.dtype(dtype)
    if len(data) == 0:
        raise _damaged(key, encoding, "the stored data is empty")
    x, y, z = (int(v) for v in shape)
    shape = (x, y, z)
    if x < 1 or y < 1 or z < 1:
        raise ValueError(f"decode_chunk got an empty chunk shape {shape} for {key!r}")
    raw_bytes = data if isinstance(data, bytes) else bytes(data)
    native = want.newbyteorder("=")
    if encoding == "jpeg":
        return _decode_jpeg(raw_bytes, shape, num_channels, key)
    if encoding == "png":
        return _decode_png(raw_bytes, shape, num_channels, native, key)
    if encoding == "compressed_segmentation":
        return _decode_cseg(raw_bytes, shape, num_channels, native, _block_size(block_size), key)
    if encoding == "compresso":
        return _decode_compresso(raw_bytes, shape, native, key)
    return _decode_crackle(raw_bytes, shape, native, key)


def _decode_raw(
    data: bytes | memoryview,
    shape: tuple[int, int, int],
    num_channels: int,
    dtypes: tuple[np.dtype[Any], np.dtype[Any]],
    key: str,
) -> npt.NDArray[Any]:
    stored, native = dtypes
    x, y, z = shape
    expected = x * y * z * num_channels * stored.itemsize
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size != expected or expected == 0:
        what = "the stored data is empty" if size == 0 else f"{size} bytes"
        raise _damaged(
            key,
            "raw",
            f"{what}; a {_shape_text(shape, num_channels)} chunk of {native.name} "
            f"is {expected} bytes",
        )
    arr = np.frombuffer(data, dtype=stored).reshape((x, y, z, num_channels), order="F")
    if stored != native:  # big-endian hosts only
        arr = arr.astype(native, order="F")
    return arr


def _decode_jpeg(
    data: bytes, shape: tuple[int, int, int], num_channels: int, key: str
) -> npt.NDArray[Any]:
    simplejpeg = _lib("simplejpeg")

    x, y, z = shape
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except Exception as exc:
        raise _damaged(key, "jpeg", f"not a jpeg image ({exc})") from exc
    components = {"Gray": 1, "YCbCr": 3, "RGB": 3}.get(str(colorspace), 0)
    if (width, height) != (x, y * z) or components != num_channels:
        found = f"{components} components" if components else f"colorspace {colorspace}"
        raise _damaged(
            key,
            "jpeg",
            f"the image is {width}x{height} with {found}; a "
            f"{_shape_text(shape, num_channels)} chunk is a {x}x{y * z} image with "
            f"{_plural(num_channels, 'component')}",
        )
    try:
        image = simplejpeg.decode_jpeg(
            data, colorspace="GRAY" if num_channels == 1 else "RGB", strict=True
        )
    except Exception as exc:
        raise _damaged(key, "jpeg", f"the image does not decode ({exc})") from exc
    if image.shape != (y * z, x, num_channels) or image.dtype != np.uint8:
        raise _damaged(key, "jpeg", f"the image decodes to {image.shape} {image.dtype}")
    return _from_image(image, shape, num_channels)


def _decode_png(
    data: bytes,
    shape: tuple[int, int, int],
    num_channels: int,
    dtype: np.dtype[Any],
    key: str,
) -> npt.NDArray[Any]:
    pyspng = _lib("pyspng")

    x, y, z = shape
    bits = 8 * dtype.itemsize
    if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise _damaged(key, "png", "not a png image (no png signature and header)")
    width, height, depth, color_type = struct.unpack_from(">IIBB", data, 16)
    channels = _PNG_CHANNELS.get(color_type, 0)
    if (width, height, depth, channels) != (x, y * z, bits, num_channels):
        found = _plural(channels, "channel") if channels else f"color type {color_type}"
        raise _damaged(
            key,
            "png",
            f"the image is {width}x{height} with {found} of {depth} bits; a "
            f"{_shape_text(shape, num_channels)} chunk of {dtype.name} is a "
            f"{x}x{y * z} image with {_plural(num_channels, 'channel')} of {bits} bits",
        )
    if data[8:12] != b"\x00\x00\x00\x0d" or zlib.crc32(data[12:29]) != int.from_bytes(
        data[29:33], "big"
    ):
        raise _damaged(key, "png", "the png header is corrupt (length or crc)")
    gray16 = depth == 16 and num_channels == 1
    if gray16:
        # pyspng has no 16-bit gray output (it returns a mis-shaped buffer). A 16-bit
        # gray scanline is byte for byte an 8-bit gray+alpha one (2 bytes per pixel,
        # the same filters), so decode it as that and join the byte pairs.
        ihdr = bytearray(data[12:29])
        ihdr[12:14] = b"\x08\x04"
        data = b"".join(
            [data[:12], ihdr, zlib.crc32(ihdr).to_bytes(4, "big"), memoryview(data)[33:]]
        )
    try:
        image = pyspng.load(data)
    except Exception as exc:
        raise _damaged(key, "png", f"the image does not decode ({exc})") from exc
    if gray16:
        if image.shape != (y * z, x, 2) or image.dtype != np.uint8:
            raise _damaged(key, "png", f"the image decodes to {image.shape} {image.dtype}")
        image = np.ascontiguousarray(image).view(">u2").astype(dtype)
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if depth == 16 and num_channels == 3 and image.shape[2:] == (4,):
        image = image[:, :, :3]  # pyspng returns 16-bit RGB as RGBA (opaque alpha)
    if image.shape != (y * z, x, num_channels) or image.dtype != dtype:
        raise _damaged(key, "png", f"the image decodes to {image.shape} {image.dtype}")
    return _from_image(image, shape, num_channels)


# compressed_segmentation ---------------------------------------------------------------

_CSEG_VALID_BITS: Final[npt.NDArray[np.bool_]] = np.isin(np.arange(256), [0, 1, 2, 4, 8, 16, 32])


def _decode_cseg(
    data: bytes,
    shape: tuple[int, int, int],
    num_channels: int,
    dtype: np.dtype[Any],
    block_size: tuple[int, int, int],
    key: str,
) -> npt.NDArray[Any]:
    cseg = _lib("compressed_segmentation")

    if len(data) % 4:
        raise _damaged(
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
        raise _damaged(key, "compressed_segmentation", f"does not decode ({exc})") from exc
    if out.shape != (*shape, num_channels) or out.dtype != dtype:
        raise _damaged(key, "compressed_segmentation", f"decodes to {out.shape} {out.dtype}")
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
        return _damaged(key, "compressed_segmentation", problem)

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


# compresso and crackle -----------------------------------------------------------------


def _as_volume_dtype(
    arr: npt.NDArray[Any], dtype: np.dtype[Any], encoding: str, key: str
) -> npt.NDArray[Any]:
    if arr.dtype == dtype:
        return arr
    if arr.dtype.kind in "ui" and np.can_cast(arr.dtype, dtype, "safe"):
        return arr.astype(dtype, order="F")
    raise _damaged(
        key, encoding, f"the stream holds {arr.dtype} labels; the volume is {dtype.name}"
    )


def _check_shape(
    found: tuple[int, int, int], shape: tuple[int, int, int], encoding: str, key: str
) -> None:
    if found != shape:
        raise _damaged(
            key,
            encoding,
            f"the stream holds a {found[0]}x{found[1]}x{found[2]} array; the chunk is "
            f"{shape[0]}x{shape[1]}x{shape[2]}",
        )


def _decode_compresso(
    data: bytes, shape: tuple[int, int, int], dtype: np.dtype[Any], key: str
) -> npt.NDArray[Any]:
    compresso = _lib("compresso")

    _check_compresso(data, shape, key)
    try:
        arr = compresso.decompress(data)
    except Exception as exc:
        raise _damaged(key, "compresso", f"does not decode ({exc})") from exc
    _check_shape(tuple(arr.shape), shape, "compresso", key)
    arr = _as_volume_dtype(np.asfortranarray(arr), dtype, "compresso", key)
    return arr[:, :, :, np.newaxis]


def _check_compresso(data: bytes, shape: tuple[int, int, int], key: str) -> None:
    """Check a compresso stream's sections against its header (its decoder does not)."""

    def bad(problem: str) -> DamagedChunkError:
        return _damaged(key, "compresso", problem)

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


def _decode_crackle(
    data: bytes, shape: tuple[int, int, int], dtype: np.dtype[Any], key: str
) -> npt.NDArray[Any]:
    crackle = _lib("crackle")

    _check_crackle(data, shape, key)
    try:
        arr = crackle.decompress(data, parallel=1)
    except Exception as exc:
        raise _damaged(key, "crackle", f"does not decode ({exc})") from exc
    _check_shape(tuple(arr.shape), shape, "crackle", key)
    arr = _as_volume_dtype(np.asfortranarray(arr), dtype, "crackle", key)
    return arr[:, :, :, np.newaxis]


def _check_crackle(data: bytes, shape: tuple[int, int, int], key: str) -> None:
    """Check that a crackle stream is exactly as long as its header and index say."""
    crackle = _lib("crackle")

    try:
        header = crackle.header(data)  # checks the magic, version and header crc8
    except Exception as exc:
        raise _damaged(key, "crackle", f"not a crackle stream ({exc})") from exc
    sx, sy, sz = int(header.sx), int(header.sy), int(header.sz)
    _check_shape((sx, sy, sz), shape, "crackle", key)
    version = int(header.format_version)
    header_bytes = 24 if version == 0 else 29
    index_bytes = 4 * sz + (4 if version > 0 else 0)
    if len(data) < header_bytes + index_bytes:
        raise _damaged(key, "crackle", f"{len(data)} bytes cannot hold its index (truncated?)")
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
        raise _damaged(
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
            raise _damaged(key, "crackle", "the labels section fails its crc32c check")
