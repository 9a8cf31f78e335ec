"""Every encoding x dtype x channel count lamina accepts reads and writes correctly,
against TensorStore both ways (within JPEG's own loss); every other combination is
refused when a volume is created or opened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_precomputed import build_cv_layer
from lamina_precomputed.codecs import UnsupportedEncodingError

from lamina import BBox3D, Vec3D
from lamina.testing import random_data

RES = Vec3D(4, 4, 40)
SIZE = (48, 40, 10)  # partial edge chunks in x, y and z
CHUNK = (32, 16, 4)
DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32")

ACCEPTED = [
    *[("raw", dtype, channels) for dtype in DTYPES for channels in (1, 2, 3)],
    ("jpeg", "uint8", 1),
    ("jpeg", "uint8", 3),
    *[("png", dtype, channels) for dtype in ("uint8", "uint16") for channels in (1, 2, 3, 4)],
    *[
        ("compressed_segmentation", dtype, channels)
        for dtype in ("uint32", "uint64")
        for channels in (1, 2, 3)
    ],
]
REFUSED = [
    ("jpeg", "uint16", 1),
    ("jpeg", "uint8", 2),
    ("jpeg", "float32", 3),
    ("png", "uint32", 1),
    ("png", "uint8", 5),
    ("png", "float32", 1),
    ("compressed_segmentation", "uint8", 1),
    ("compressed_segmentation", "float32", 1),
    ("fpzip", "float32", 1),
    ("zfpc", "float32", 1),
    ("kempressed", "float32", 1),
    ("jxl", "uint8", 1),
]


def _image_data(dtype: str, channels: int, seed: int, encoding: str) -> np.ndarray[Any, Any]:
    """``(X, Y, Z, C)`` values; smooth for JPEG, whose loss on noise is large."""
    if encoding == "jpeg":
        x, y, z = np.meshgrid(*(np.arange(n) for n in SIZE), indexing="ij")
        base = x * 2 + y * 2 + z * 4 + 10  # a smooth ramp, 10 .. 222
        return np.stack([base + 10 * c for c in range(channels)], axis=-1).astype(dtype)
    return random_data((*SIZE, channels), dtype, seed=seed)


def _ts_spec(path: Path, encoding: str, dtype: str, channels: int) -> dict[str, Any]:
    scale: dict[str, Any] = {
        "resolution": list(RES),
        "encoding": encoding,
        "chunk_size": list(CHUNK),
        "size": list(SIZE),
    }
    if encoding == "compressed_segmentation":
        scale["compressed_segmentation_block_size"] = [8, 8, 8]
    kind = "segmentation" if encoding == "compressed_segmentation" else "image"
    return {
        "driver": "neuroglancer_precomputed",
        "kvstore": {"driver": "file", "path": str(path)},
        "multiscale_metadata": {"type": kind, "data_type": dtype, "num_channels": channels},
        "scale_metadata": scale,
    }


def _ts_read(path: Path) -> np.ndarray[Any, Any]:
    import tensorstore as ts

    spec = {"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": str(path)}}
    store = ts.open(spec, read=True).result()
    return np.asarray(store.read(order="F").result())


def _id(case: tuple[str, str, int]) -> str:
    return f"{case[0]}-{case[1]}-c{case[2]}"


@pytest.mark.parametrize("case", ACCEPTED, ids=_id)
def test_lamina_reads_what_tensorstore_wrote(tmp_path: Path, case: tuple[str, str, int]) -> None:
    import tensorstore as ts

    encoding, dtype, channels = case
    path = tmp_path / "ts"
    store = ts.open({**_ts_spec(path, encoding, dtype, channels), "create": True}).result()
    store.write(_image_data(dtype, channels, 1, encoding)).result()
    expected = _ts_read(path)  # TensorStore's own decode (JPEG: after its loss)
    layer = build_cv_layer(path, readonly=True)
    got = layer[RES, 0 : SIZE[0], 0 : SIZE[1], 0 : SIZE[2]]
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, expected.transpose(3, 0, 1, 2))
    part = layer[RES, 5:37, 3:20, 2:9]  # across chunk edges
    np.testing.assert_array_equal(part, expected[5:37, 3:20, 2:9].transpose(3, 0, 1, 2))
    one = layer[RES, 40:41, 33:34, 9:10]  # one voxel of an edge chunk
    assert one.shape == (channels, 1, 1, 1)
    np.testing.assert_array_equal(one[:, 0, 0, 0], expected[40, 33, 9])


@pytest.mark.parametrize("case", ACCEPTED, ids=_id)
def test_tensorstore_reads_what_lamina_wrote(tmp_path: Path, case: tuple[str, str, int]) -> None:
    encoding, dtype, channels = case
    path = tmp_path / "lamina"
    layer = build_cv_layer(
        path,
        info_scales=[RES],
        info_type="segmentation" if encoding == "compressed_segmentation" else "image",
        info_data_type=dtype,
        info_num_channels=channels,
        info_chunk_size=CHUNK,
        info_encoding=encoding,
        info_bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
    )
    data = _image_data(dtype, channels, 2, encoding)
    layer[RES, 0 : SIZE[0], 0 : SIZE[1], 0 : SIZE[2]] = data.transpose(3, 0, 1, 2)
    by_tensorstore = _ts_read(path)
    by_lamina = layer[RES, 0 : SIZE[0], 0 : SIZE[1], 0 : SIZE[2]].transpose(1, 2, 3, 0)
    np.testing.assert_array_equal(by_lamina, by_tensorstore)  # one decode, two readers
    if encoding == "jpeg":
        error = np.abs(by_tensorstore.astype(int) - data.astype(int))
        assert error.max() <= 12, error.max()  # the codec's own loss on smooth data
    else:
        np.testing.assert_array_equal(by_tensorstore, data)


@pytest.mark.parametrize("case", REFUSED, ids=_id)
def test_what_lamina_cannot_handle_is_refused_at_creation(
    tmp_path: Path, case: tuple[str, str, int]
) -> None:
    encoding, dtype, channels = case
    with pytest.raises((UnsupportedEncodingError, ValueError)) as info:
        build_cv_layer(
            tmp_path / "v",
            info_scales=[RES],
            info_type="image",
            info_data_type=dtype,
            info_num_channels=channels,
            info_chunk_size=CHUNK,
            info_encoding=encoding,
            info_bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        )
    text = str(info.value)
    assert encoding in text
    assert not (tmp_path / "v").exists()  # refused before anything was written


@pytest.mark.parametrize("case", REFUSED, ids=_id)
def test_what_lamina_cannot_handle_is_refused_at_open(
    tmp_path: Path, case: tuple[str, str, int]
) -> None:
    encoding, dtype, channels = case
    path = tmp_path / "v"
    path.mkdir()
    info = {
        "type": "image",
        "data_type": dtype,
        "num_channels": channels,
        "scales": [
            {
                "key": "4_4_40",
                "encoding": encoding,
                "resolution": list(RES),
                "chunk_sizes": [list(CHUNK)],
                "voxel_offset": [0, 0, 0],
                "size": list(SIZE),
            }
        ],
    }
    (path / "info").write_text(json.dumps(info))
    with pytest.raises(UnsupportedEncodingError) as raised:
        build_cv_layer(path)
    text = str(raised.value)
    assert encoding in text
    assert dtype in text
    assert str(channels) in text
