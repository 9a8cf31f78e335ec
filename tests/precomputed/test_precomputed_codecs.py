"""lamina_precomputed.codecs: one precomputed chunk, encoded and decoded.

Interop is checked at the chunk level against the reference implementations:
TensorStore's ``neuroglancer_precomputed`` driver for raw, jpeg, png and
compressed_segmentation, and plain CloudVolume for compresso and crackle, both ways
(they write, lamina decodes the files; lamina encodes the files, they read).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_precomputed.codecs import (
    DamagedChunkError,
    UnsupportedEncodingError,
    check_encoding,
    decode_chunk,
    encode_chunk,
)

from lamina.errors import LaminaError

SIZE = (30, 16, 8)  # two chunks in x (the second a 14-wide edge chunk), two in z
CHUNK = (16, 16, 4)
ALL_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32")
UNSIGNED = ("uint8", "uint16", "uint32", "uint64")

# The accepted matrix, written out: (encoding, data type, channel count), channels 1..4.
MATRIX: set[tuple[str, str, int]] = (
    {("raw", dt, c) for dt in ALL_DTYPES for c in range(1, 5)}
    | {("jpeg", "uint8", c) for c in (1, 3)}
    | {("png", dt, c) for dt in ("uint8", "uint16") for c in range(1, 5)}
    | {("compressed_segmentation", dt, c) for dt in ("uint32", "uint64") for c in range(1, 5)}
    | {(enc, dt, 1) for enc in ("compresso", "crackle") for dt in UNSIGNED}
)
TS_CASES = sorted(case for case in MATRIX if case[0] not in ("compresso", "crackle"))
CV_CASES = sorted(case for case in MATRIX if case[0] in ("compresso", "crackle"))
CSEG_BLOCK = (5, 8, 3)  # partial blocks in every chunk


def chunk_boxes() -> Iterator[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]]:
    """The ``(lo, hi)`` ranges of every chunk of a SIZE volume with CHUNK chunks."""
    ranges = [
        [(lo, min(lo + c, s)) for lo in range(0, s, c)] for s, c in zip(SIZE, CHUNK, strict=True)
    ]
    for xr in ranges[0]:
        for yr in ranges[1]:
            for zr in ranges[2]:
                yield xr, yr, zr


def chunk_name(box: tuple[tuple[int, int], ...]) -> str:
    return "_".join(f"{lo}-{hi}" for lo, hi in box)


def chunk_slices(box: tuple[tuple[int, int], ...]) -> tuple[slice, ...]:
    return tuple(slice(lo, hi) for lo, hi in box)


def chunk_shape(box: tuple[tuple[int, int], ...]) -> tuple[int, int, int]:
    x, y, z = (hi - lo for lo, hi in box)
    return x, y, z


def sample(encoding: str, dtype: str, channels: int, seed: int = 0) -> np.ndarray[Any, Any]:
    """Test data of shape SIZE + (channels,) suited to the encoding."""
    rng = np.random.default_rng(seed)
    shape = (*SIZE, channels)
    dt = np.dtype(dtype)
    if encoding == "jpeg":  # smooth, so that the loss is small
        x, y, z, c = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
        smooth = 120 + 50 * np.sin(x / 6 + c) * np.cos(y / 5) + 4 * z
        return smooth.astype(dt)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    info = np.iinfo(dt)
    values = rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    if encoding in ("compressed_segmentation", "compresso", "crackle"):
        labels = rng.integers(info.min, info.max, size=40, dtype=dt, endpoint=True)
        labels[0] = 0
        values = labels[rng.integers(0, 40, size=shape)]
    return values


# --------------------------------------------------------------------------- TensorStore


def ts_spec(path: Path, encoding: str, dtype: str, channels: int, create: bool) -> Any:
    spec: dict[str, Any] = {
        "driver": "neuroglancer_precomputed",
        "kvstore": {"driver": "file", "path": str(path)},
    }
    if create:
        scale: dict[str, Any] = {
            "resolution": [1, 1, 1],
            "encoding": encoding,
            "chunk_size": list(CHUNK),
            "size": list(SIZE),
            "voxel_offset": [0, 0, 0],
        }
        if encoding == "compressed_segmentation":
            scale["compressed_segmentation_block_size"] = list(CSEG_BLOCK)
        spec["multiscale_metadata"] = {
            "type": "segmentation" if encoding == "compressed_segmentation" else "image",
            "data_type": dtype,
            "num_channels": channels,
        }
        spec["scale_metadata"] = scale
        spec["create"] = True
    return spec


def ts_open(path: Path, *args: Any, create: bool = False) -> Any:
    import tensorstore as ts

    # a fresh context each time: no cache shared with an earlier handle
    return ts.open(ts_spec(path, *args, create=create), context=ts.Context()).result()


def scale_dir(path: Path) -> Path:
    info = json.loads((path / "info").read_text())
    return path / info["scales"][0]["key"]


@pytest.mark.parametrize(("encoding", "dtype", "channels"), TS_CASES)
def test_decodes_what_tensorstore_wrote(
    tmp_path: Path, encoding: str, dtype: str, channels: int
) -> None:
    data = sample(encoding, dtype, channels)
    store = ts_open(tmp_path, encoding, dtype, channels, create=True)
    store.write(data).result()
    if encoding == "jpeg":  # lossy: compare with TensorStore's own decode of the files
        data = ts_open(tmp_path, encoding, dtype, channels).read().result()
    directory = scale_dir(tmp_path)
    for box in chunk_boxes():
        path = directory / chunk_name(box)
        out = decode_chunk(
            path.read_bytes(),
            encoding,
            chunk_shape(box),
            channels,
            dtype,
            block_size=CSEG_BLOCK,
            key=str(path),
        )
        assert out.flags.f_contiguous
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(out, data[chunk_slices(box)])


@pytest.mark.parametrize(("encoding", "dtype", "channels"), TS_CASES)
def test_tensorstore_reads_what_lamina_encoded(
    tmp_path: Path, encoding: str, dtype: str, channels: int
) -> None:
    data = sample(encoding, dtype, channels, seed=1)
    ts_open(tmp_path, encoding, dtype, channels, create=True)  # writes the info file
    directory = scale_dir(tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    ours = np.zeros_like(data)
    for i, box in enumerate(chunk_boxes()):
        chunk = data[chunk_slices(box)]
        if i % 2:  # any memory order is accepted
            chunk = np.ascontiguousarray(chunk)
        encoded = encode_chunk(chunk, encoding, block_size=CSEG_BLOCK, jpeg_quality=95)
        (directory / chunk_name(box)).write_bytes(encoded)
        ours[chunk_slices(box)] = decode_chunk(
            encoded, encoding, chunk_shape(box), channels, dtype, block_size=CSEG_BLOCK
        )
    read = ts_open(tmp_path, encoding, dtype, channels).read().result()
    if encoding == "jpeg":
        np.testing.assert_array_equal(read, ours)
        error = np.abs(read.astype(np.int16) - data.astype(np.int16))
        assert error.mean() < 1.5
        assert error.max() <= 8
    else:
        np.testing.assert_array_equal(read, data)
        np.testing.assert_array_equal(ours, data)


def test_compressed_segmentation_32_bit_blocks(tmp_path: Path) -> None:
    """Blocks encoded with 32 bits (the C extension decodes them wrongly) match TensorStore."""
    import tensorstore as ts

    for dtype in ("uint32", "uint64"):
        entry = np.dtype(dtype).itemsize // 4
        rng = np.random.default_rng(3)
        indices = rng.permutation(64).astype(np.uint32)  # one 4x4x4 block, 64 indices
        table = rng.integers(1, 2**31, size=64, dtype=np.uint64).astype(dtype)
        table_words = np.frombuffer(table.astype(f"<{table.dtype.str[1:]}").tobytes(), "<u4")
        # one channel: [offset 1] [header: table offset | 32 << 24, values offset] ...
        header = np.array([(2 + 64) | (32 << 24), 2], dtype="<u4")
        stream = np.concatenate([np.array([1], "<u4"), header, indices, table_words])
        assert table_words.size == 64 * entry
        expected = table[indices].reshape((4, 4, 4), order="F")[..., np.newaxis]
        out = decode_chunk(
            stream.tobytes(), "compressed_segmentation", (4, 4, 4), 1, dtype, block_size=(4, 4, 4)
        )
        np.testing.assert_array_equal(out, expected)
        path = tmp_path / dtype
        spec = {
            "driver": "neuroglancer_precomputed",
            "kvstore": {"driver": "file", "path": str(path)},
            "multiscale_metadata": {"type": "segmentation", "data_type": dtype, "num_channels": 1},
            "scale_metadata": {
                "resolution": [1, 1, 1],
                "encoding": "compressed_segmentation",
                "compressed_segmentation_block_size": [4, 4, 4],
                "chunk_size": [4, 4, 4],
                "size": [4, 4, 4],
            },
            "create": True,
        }
        ts.open(spec).result()
        (scale_dir(path) / "0-4_0-4_0-4").parent.mkdir(parents=True, exist_ok=True)
        (scale_dir(path) / "0-4_0-4_0-4").write_bytes(stream.tobytes())
        spec.pop("create")
        spec.pop("multiscale_metadata")
        spec.pop("scale_metadata")
        read = ts.open(spec, context=ts.Context()).result().read().result()
        np.testing.assert_array_equal(read, expected)


# --------------------------------------------------------------------------- CloudVolume


def cv_volume(path: Path, encoding: str, dtype: str, create: bool) -> Any:
    from cloudvolume import CloudVolume

    info = None
    if create:
        info = CloudVolume.create_new_info(
            num_channels=1,
            layer_type="segmentation",
            data_type=dtype,
            encoding=encoding,
            resolution=[1, 1, 1],
            voxel_offset=[0, 0, 0],
            volume_size=list(SIZE),
            chunk_size=list(CHUNK),
        )
    cv = CloudVolume(
        f"file://{path}", info=info, compress=False, progress=False, fill_missing=False
    )
    if create:
        cv.commit_info()
    return cv


@pytest.mark.parametrize(("encoding", "dtype", "channels"), CV_CASES)
def test_decodes_what_cloudvolume_wrote(
    tmp_path: Path, encoding: str, dtype: str, channels: int
) -> None:
    data = sample(encoding, dtype, channels)
    cv = cv_volume(tmp_path, encoding, dtype, create=True)
    cv[:, :, :] = data
    directory = scale_dir(tmp_path)
    for box in chunk_boxes():
        path = directory / chunk_name(box)
        out = decode_chunk(
            path.read_bytes(), encoding, chunk_shape(box), channels, dtype, key=str(path)
        )
        assert out.flags.f_contiguous
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(out, data[chunk_slices(box)])


@pytest.mark.parametrize(("encoding", "dtype", "channels"), CV_CASES)
def test_cloudvolume_reads_what_lamina_encoded(
    tmp_path: Path, encoding: str, dtype: str, channels: int
) -> None:
    data = sample(encoding, dtype, channels, seed=1)
    cv_volume(tmp_path, encoding, dtype, create=True)
    directory = scale_dir(tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    for box in chunk_boxes():
        encoded = encode_chunk(data[chunk_slices(box)], encoding)
        (directory / chunk_name(box)).write_bytes(encoded)
    read = np.asarray(cv_volume(tmp_path, encoding, dtype, create=False)[:, :, :])
    np.testing.assert_array_equal(read, data)


# --------------------------------------------------------------------------- matrix


REFUSED_ENCODINGS = ("fpzip", "kempressed", "zfpc", "jxl", "npz", "gzip", "JPEG", "")
OTHER_DTYPES = ("int64", "float64", "bool", "float16")


@pytest.mark.parametrize(
    "encoding",
    ["raw", "jpeg", "png", "compressed_segmentation", "compresso", "crackle", *REFUSED_ENCODINGS],
)
def test_check_encoding_matrix(encoding: str) -> None:
    for dtype in (*ALL_DTYPES, *OTHER_DTYPES):
        for channels in range(0, 6):
            accepted = (encoding, dtype, channels) in MATRIX or (
                encoding in ("raw", "compressed_segmentation")
                and channels == 5
                and (encoding, dtype, 4) in MATRIX
            )
            if accepted:
                check_encoding(encoding, dtype, channels, where="gs://b/v/4_4_40")
                continue
            with pytest.raises(UnsupportedEncodingError) as caught:
                check_encoding(encoding, np.dtype(dtype), channels, where="gs://b/v/4_4_40")
            message = str(caught.value)
            assert repr(encoding) in message
            assert dtype in message
            assert f"{channels} channel" in message
            assert "gs://b/v/4_4_40" in message
            if encoding in REFUSED_ENCODINGS:
                assert (
                    "refused: lamina-precomputed reads and writes raw, jpeg, png, "
                    "compressed_segmentation, compresso, crackle"
                ) in message
            else:
                assert f"{encoding} supports" in message


def test_refusal_messages_say_what_is_supported() -> None:
    with pytest.raises(UnsupportedEncodingError, match=r"uint8 with 1 or 3 channels"):
        check_encoding("jpeg", "uint8", 2)
    with pytest.raises(UnsupportedEncodingError, match=r"uint8 or uint16 with 1, 2, 3 or 4"):
        check_encoding("png", "int16", 1)
    with pytest.raises(UnsupportedEncodingError, match=r"uint32 or uint64 with any number"):
        check_encoding("compressed_segmentation", "int32", 1)
    with pytest.raises(UnsupportedEncodingError, match=r"uint64 with 1 channel$"):
        check_encoding("crackle", "uint64", 2)
    with pytest.raises(UnsupportedEncodingError, match="CloudVolume-only"):
        check_encoding("fpzip", "float32", 1)
    with pytest.raises(UnsupportedEncodingError, match="not a precomputed data type"):
        check_encoding("raw", "float64", 1)
    error = UnsupportedEncodingError("x")
    assert isinstance(error, LaminaError)
    assert isinstance(error, ValueError)


def test_encode_and_decode_refuse_unsupported_combinations() -> None:
    with pytest.raises(UnsupportedEncodingError):
        encode_chunk(np.zeros((4, 4, 4, 2), np.uint8), "jpeg")
    with pytest.raises(UnsupportedEncodingError):
        encode_chunk(np.zeros((4, 4, 4, 1), np.float32), "fpzip")
    with pytest.raises(UnsupportedEncodingError):
        encode_chunk(np.zeros((4, 4, 4, 2), np.uint32), "compresso")
    with pytest.raises(UnsupportedEncodingError, match="key/0-4_0-4_0-4"):
        decode_chunk(b"x", "png", (4, 4, 4), 1, "int8", key="key/0-4_0-4_0-4")
    with pytest.raises(UnsupportedEncodingError):
        decode_chunk(b"x" * 512, "raw", (4, 4, 4), 1, "float64")
    with pytest.raises(ValueError, match=r"\(x, y, z, C\)"):
        encode_chunk(np.zeros((4, 4, 4), np.uint8), "raw")


# --------------------------------------------------------------------------- fast paths


def test_raw_decode_is_a_view_and_encode_is_fortran_bytes() -> None:
    data = np.asfortranarray(sample("raw", "uint16", 3)[:16, :16, :4])
    encoded = encode_chunk(data, "raw")
    assert encoded == data.tobytes(order="F")
    assert encode_chunk(np.ascontiguousarray(data), "raw") == encoded
    assert encode_chunk(data.astype(">u2"), "raw") == encoded  # stored little endian
    out = decode_chunk(encoded, "raw", (16, 16, 4), 3, "uint16")
    assert out.flags.f_contiguous
    assert np.shares_memory(out, np.frombuffer(encoded, np.uint8))
    np.testing.assert_array_equal(out, data)
    view = decode_chunk(memoryview(encoded), "raw", (16, 16, 4), 3, np.dtype("uint16"))
    np.testing.assert_array_equal(view, data)


def test_png_and_cseg_accept_read_only_and_big_endian_input() -> None:
    data = sample("png", "uint16", 1)[:16, :16, :4]
    data.setflags(write=False)
    encoded = encode_chunk(data.astype(">u2"), "png")
    np.testing.assert_array_equal(decode_chunk(encoded, "png", (16, 16, 4), 1, "uint16"), data)
    seg = sample("compressed_segmentation", "uint64", 2)[:16, :16, :4]
    seg.setflags(write=False)
    encoded = encode_chunk(seg, "compressed_segmentation")
    out = decode_chunk(encoded, "compressed_segmentation", (16, 16, 4), 2, "uint64")
    np.testing.assert_array_equal(out, seg)


# --------------------------------------------------------------------------- damage

KEY = "gs://bucket/volume/4_4_40/0-16_0-16_0-4"
SHAPE = (16, 16, 4)


def damaged(data: bytes, encoding: str, channels: int, dtype: str, **kwargs: Any) -> str:
    """The message of the DamagedChunkError that decoding ``data`` raises."""
    with pytest.raises(DamagedChunkError) as caught:
        decode_chunk(data, encoding, SHAPE, channels, dtype, key=KEY, **kwargs)
    assert KEY in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize(("encoding", "dtype", "channels"), sorted(MATRIX))
def test_empty_data_is_damaged(encoding: str, dtype: str, channels: int) -> None:
    damaged(b"", encoding, channels, dtype)
    damaged(memoryview(b""), encoding, channels, dtype)


def test_raw_of_the_wrong_length_is_damaged() -> None:
    encoded = encode_chunk(sample("raw", "uint32", 2)[:16, :16, :4], "raw")
    assert "8191 bytes" in damaged(encoded[:-1], "raw", 2, "uint32")
    damaged(encoded + b"\0", "raw", 2, "uint32")
    damaged(encoded, "raw", 1, "uint32")  # the wrong channel count
    damaged(encoded, "raw", 2, "uint64")  # the wrong data type
    error = DamagedChunkError("x")
    assert isinstance(error, LaminaError)
    assert isinstance(error, ValueError)


def test_bad_jpeg_is_damaged() -> None:
    gray = encode_chunk(sample("jpeg", "uint8", 1)[:16, :16, :4], "jpeg")
    rgb = encode_chunk(sample("jpeg", "uint8", 3)[:16, :16, :4], "jpeg")
    rng = np.random.default_rng(5)
    damaged(rng.bytes(300), "jpeg", 1, "uint8")
    damaged(gray[:20] + rng.bytes(300), "jpeg", 1, "uint8")
    damaged(gray[: len(gray) // 2], "jpeg", 1, "uint8")
    damaged(rgb[:-40], "jpeg", 3, "uint8")
    assert "1 component" in damaged(gray, "jpeg", 3, "uint8")  # gray image, 3 channels
    damaged(rgb, "jpeg", 1, "uint8")
    wide = encode_chunk(sample("jpeg", "uint8", 1)[:, :16, :4], "jpeg")  # 30 wide
    assert "30x64" in damaged(wide, "jpeg", 1, "uint8")


def test_bad_png_is_damaged() -> None:
    gray = encode_chunk(sample("png", "uint8", 1)[:16, :16, :4], "png")
    rng = np.random.default_rng(6)
    damaged(rng.bytes(300), "png", 1, "uint8")
    damaged(gray[:40] + rng.bytes(300), "png", 1, "uint8")
    damaged(gray[: len(gray) // 2], "png", 1, "uint8")
    damaged(gray, "png", 2, "uint8")  # the wrong channel count
    damaged(gray, "png", 1, "uint16")  # the wrong bit depth
    tall = encode_chunk(sample("png", "uint8", 1)[:16, :16, :], "png")  # 16x128
    assert "16x128" in damaged(tall, "png", 1, "uint8")
    bad_crc = bytearray(gray)
    bad_crc[20] ^= 1  # inside the IHDR
    damaged(bytes(bad_crc), "png", 1, "uint8")
    wide16 = encode_chunk(sample("png", "uint16", 1)[:, :16, :4], "png")
    damaged(wide16, "png", 1, "uint16")


def _png_with(ihdr_fields: bytes, payload: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(body, zlib.crc32(kind))
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", ihdr_fields),
            chunk(b"IDAT", zlib.compress(payload)),
            chunk(b"IEND", b""),
        ]
    )


def test_palette_png_is_damaged() -> None:
    ihdr = struct.pack(">IIBBBBB", 16, 64, 8, 3, 0, 0, 0)  # color type 3: palette
    data = _png_with(ihdr, b"\0" * (64 * 17))
    assert "color type 3" in damaged(data, "png", 1, "uint8")


def test_truncated_compressed_segmentation_is_damaged() -> None:
    seg = sample("compressed_segmentation", "uint64", 2)[:16, :16, :4]
    encoded = encode_chunk(seg, "compressed_segmentation", block_size=CSEG_BLOCK)
    for cut in range(0, len(encoded), 3):  # every length, aligned or not, up to the end
        with pytest.raises(DamagedChunkError, match="gs://bucket"):
            decode_chunk(
                encoded[:cut],
                "compressed_segmentation",
                SHAPE,
                2,
                "uint64",
                block_size=CSEG_BLOCK,
                key=KEY,
            )
    out = decode_chunk(
        encoded, "compressed_segmentation", SHAPE, 2, "uint64", block_size=CSEG_BLOCK
    )
    np.testing.assert_array_equal(out, seg)


def test_corrupt_compressed_segmentation_headers_are_damaged() -> None:
    seg = sample("compressed_segmentation", "uint32", 1)[:16, :16, :4]
    words = np.frombuffer(encode_chunk(seg, "compressed_segmentation"), "<u4").copy()

    def with_word(index: int, value: int) -> bytes:
        changed = words.copy()
        changed[index] = value
        return changed.tobytes()

    damaged(with_word(0, 10**6), "compressed_segmentation", 1, "uint32")  # channel offset
    damaged(with_word(1, (3 << 24) | 5), "compressed_segmentation", 1, "uint32")  # 3 bits
    damaged(with_word(1, (8 << 24) | 0xFFFFFF), "compressed_segmentation", 1, "uint32")
    damaged(with_word(2, 10**6), "compressed_segmentation", 1, "uint32")  # values offset
    # the right data, read as two channels or the wrong block size
    damaged(words.tobytes(), "compressed_segmentation", 2, "uint32")
    damaged(words.tobytes(), "compressed_segmentation", 1, "uint32", block_size=(2, 2, 2))


def test_huge_table_indices_are_damaged() -> None:
    """A 16-bit block whose indices point past the end of the data is refused."""
    seg = np.zeros((4, 4, 4, 1), np.uint32)
    words = np.frombuffer(encode_chunk(seg, "compressed_segmentation", block_size=(4, 4, 4)), "<u4")
    # [1] [table | 0 << 24, values]: rewrite as 16 bits with values of 0xFFFF
    table = int(words[1]) & 0xFFFFFF
    values = np.full(32, 0xFFFFFFFF, "<u4")
    stream = np.concatenate(
        [np.array([1, (2 + 32) | (16 << 24), 2], "<u4"), values, words[1 + table :]]
    )
    with pytest.raises(DamagedChunkError, match="past the end"):
        decode_chunk(
            stream.tobytes(), "compressed_segmentation", (4, 4, 4), 1, "uint32", block_size=(4,) * 3
        )


@pytest.mark.parametrize("encoding", ["compresso", "crackle"])
def test_truncated_compresso_and_crackle_are_damaged(encoding: str) -> None:
    seg = sample(encoding, "uint64", 1)[:16, :16, :4]
    encoded = encode_chunk(seg, encoding)
    for cut in [*range(0, 64), *range(64, len(encoded), 7), len(encoded) - 1]:
        with pytest.raises(DamagedChunkError, match="gs://bucket"):
            decode_chunk(encoded[:cut], encoding, SHAPE, 1, "uint64", key=KEY)
    damaged(encoded + b"\0\0\0\0\0\0\0\0", encoding, 1, "uint64")
    damaged(encoded, encoding, 1, "uint8")  # labels wider than the volume's data type
    with pytest.raises(DamagedChunkError, match="16x16x4"):
        decode_chunk(encoded, encoding, (16, 16, 2), 1, "uint64", key=KEY)
    np.testing.assert_array_equal(decode_chunk(encoded, encoding, SHAPE, 1, "uint64"), seg)


def test_crackle_labels_crc_is_checked() -> None:
    seg = sample("crackle", "uint32", 1)[:16, :16, :4]
    encoded = bytearray(encode_chunk(seg, "crackle"))
    encoded[29 + 4 * 4 + 4 + 3] ^= 0x10  # inside the labels section
    assert "crc32c" in damaged(bytes(encoded), "crackle", 1, "uint32")
