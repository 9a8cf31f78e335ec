"""The image encodings, ``jpeg`` and ``png``: a chunk stored as one 2-D image.

The image is ``x`` wide and ``y * z`` high (row ``z * y_size + y``, column ``x``), with
the channels interleaved. jpeg goes through simplejpeg; png is decoded by pyspng and
encoded here, since pyspng's encoder refuses 16-bit gray and RGB. Headers are checked
against the chunk's shape, channels and bit depth before the pixels are decoded; the
payload of a jpeg (its entropy-coded data) has no checksum, so corruption there
decodes to wrong values.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from lamina_precomputed.codecs.common import damaged, lib, plural, shape_text

__all__ = ["decode_jpeg", "decode_png", "encode_jpeg", "encode_png"]


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


def encode_jpeg(arr: npt.NDArray[Any], quality: int) -> bytes:
    simplejpeg = lib("simplejpeg")

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


def decode_jpeg(
    data: bytes, shape: tuple[int, int, int], num_channels: int, key: str
) -> npt.NDArray[Any]:
    simplejpeg = lib("simplejpeg")

    x, y, z = shape
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except Exception as exc:
        raise damaged(key, "jpeg", f"not a jpeg image ({exc})") from exc
    components = {"Gray": 1, "YCbCr": 3, "RGB": 3}.get(str(colorspace), 0)
    if (width, height) != (x, y * z) or components != num_channels:
        found = f"{components} components" if components else f"colorspace {colorspace}"
        raise damaged(
            key,
            "jpeg",
            f"the image is {width}x{height} with {found}; a "
            f"{shape_text(shape, num_channels)} chunk is a {x}x{y * z} image with "
            f"{plural(num_channels, 'component')}",
        )
    try:
        image = simplejpeg.decode_jpeg(
            data, colorspace="GRAY" if num_channels == 1 else "RGB", strict=True
        )
    except Exception as exc:
        raise damaged(key, "jpeg", f"the image does not decode ({exc})") from exc
    if image.shape != (y * z, x, num_channels) or image.dtype != np.uint8:
        raise damaged(key, "jpeg", f"the image decodes to {image.shape} {image.dtype}")
    return _from_image(image, shape, num_channels)


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


def encode_png(arr: npt.NDArray[Any], level: int) -> bytes:
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


def decode_png(
    data: bytes,
    shape: tuple[int, int, int],
    num_channels: int,
    dtype: np.dtype[Any],
    key: str,
) -> npt.NDArray[Any]:
    pyspng = lib("pyspng")

    x, y, z = shape
    bits = 8 * dtype.itemsize
    if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise damaged(key, "png", "not a png image (no png signature and header)")
    width, height, depth, color_type = struct.unpack_from(">IIBB", data, 16)
    channels = _PNG_CHANNELS.get(color_type, 0)
    if (width, height, depth, channels) != (x, y * z, bits, num_channels):
        found = plural(channels, "channel") if channels else f"color type {color_type}"
        raise damaged(
            key,
            "png",
            f"the image is {width}x{height} with {found} of {depth} bits; a "
            f"{shape_text(shape, num_channels)} chunk of {dtype.name} is a "
            f"{x}x{y * z} image with {plural(num_channels, 'channel')} of {bits} bits",
        )
    if data[8:12] != b"\x00\x00\x00\x0d" or zlib.crc32(data[12:29]) != int.from_bytes(
        data[29:33], "big"
    ):
        raise damaged(key, "png", "the png header is corrupt (length or crc)")
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
        raise damaged(key, "png", f"the image does not decode ({exc})") from exc
    if gray16:
        if image.shape != (y * z, x, 2) or image.dtype != np.uint8:
            raise damaged(key, "png", f"the image decodes to {image.shape} {image.dtype}")
        image = np.ascontiguousarray(image).view(">u2").astype(dtype)
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if depth == 16 and num_channels == 3 and image.shape[2:] == (4,):
        image = image[:, :, :3]  # pyspng returns 16-bit RGB as RGBA (opaque alpha)
    if image.shape != (y * z, x, num_channels) or image.dtype != dtype:
        raise damaged(key, "png", f"the image decodes to {image.shape} {image.dtype}")
    return _from_image(image, shape, num_channels)
