"""The ``raw`` encoding: the bytes of the ``(x, y, z, C)`` array, nothing else.

The stored form is the array in Fortran order (x fastest), little endian, so a chunk
decodes to a view of its bytes without a copy (on a little-endian host). Having no
header or checksum, a raw chunk can only be checked by its size: corruption inside it
decodes to wrong values.
"""

from __future__ import annotations

import sys
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from lamina_precomputed.codecs.common import damaged, shape_text

__all__ = ["decode_raw", "encode_raw"]

_BIG_ENDIAN_HOST: Final[bool] = sys.byteorder == "big"


def encode_raw(arr: npt.NDArray[Any]) -> bytes:
    """The stored bytes of an ``(x, y, z, C)`` array in any memory order."""
    # tobytes("F") gathers any layout in one pass: no copy besides the bytes object.
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and _BIG_ENDIAN_HOST):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr.tobytes(order="F")


def decode_raw(
    data: bytes | memoryview,
    shape: tuple[int, int, int],
    num_channels: int,
    dtypes: tuple[np.dtype[Any], np.dtype[Any]],
    key: str,
) -> npt.NDArray[Any]:
    """A view of ``data`` as the chunk, given ``(stored, native)`` dtypes; its size must
    be exactly the chunk's."""
    stored, native = dtypes
    x, y, z = shape
    expected = x * y * z * num_channels * stored.itemsize
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size != expected or expected == 0:
        what = "the stored data is empty" if size == 0 else f"{size} bytes"
        raise damaged(
            key,
            "raw",
            f"{what}; a {shape_text(shape, num_channels)} chunk of {native.name} "
            f"is {expected} bytes",
        )
    arr = np.frombuffer(data, dtype=stored).reshape((x, y, z, num_channels), order="F")
    if stored != native:  # big-endian hosts only
        arr = arr.astype(native, order="F")
    return arr
