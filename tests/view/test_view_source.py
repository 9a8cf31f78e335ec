"""What a view serves, without a browser: precomputed info and raw chunks over HTTP."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_view import source as source_module
from lamina_view.source import (
    MAX_CHUNK_BYTES,
    MIN_CHUNK_BYTES,
    LayerSource,
    served_chunk_size,
    served_dtype,
    volume_type_of,
)
from view_support import RES, SHAPE, bbox, memory_layer, pattern, precomputed_layer

import lamina
from lamina import BBox3D, VolumetricIndex


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _raw(data: np.ndarray) -> bytes:
    """A (C, X, Y, Z) array as neuroglancer's raw chunk: x fastest, then y, z, channel."""
    return b"".join(
        np.ascontiguousarray(data[c].transpose(2, 1, 0)).tobytes() for c in range(len(data))
    )


# -- chunk shape and dtype -------------------------------------------------------------------
@pytest.fixture
def storage_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve storage chunks as they are (no growing to MIN_CHUNK_BYTES)."""
    monkeypatch.setattr(source_module, "MIN_CHUNK_BYTES", 1)


@pytest.mark.parametrize(
    ("storage", "size", "voxel_bytes", "expected"),
    [
        ((128, 128, 16), (1024, 1024, 128), 1, (256, 256, 16)),  # 2 x 2 x 1 storage chunks
        ((64, 64, 16), (1024, 1024, 64), 1, (256, 256, 16)),
        ((64, 64, 64), (256, 256, 32), 1, (256, 128, 32)),  # clamped to the size, then grown
        ((256, 256, 32), (1024, 1024, 128), 1, (256, 256, 32)),  # 2 MiB: as it is
        ((128, 128, 16), (1024, 1024, 128), 8, (128, 128, 16)),  # uint64: 2 MiB, as it is
        ((1024, 1024, 64), (4096, 4096, 64), 8, (256, 256, 32)),  # 512 MiB: split
    ],
)
def test_served_chunks_are_whole_storage_chunks(
    storage: Any, size: Any, voxel_bytes: int, expected: Any
) -> None:
    assert served_chunk_size(storage, size, (8, 8, 40), voxel_bytes) == expected


@pytest.mark.parametrize(
    ("storage", "size"),
    [
        ((1, 1, 1), (1000, 1000, 100)),  # a contiguous HDF5 dataset
        ((8, 8, 1), (500, 500, 50)),
        ((64, 64, 64), (2000, 2000, 2000)),
        ((1024, 1024, 64), (4096, 4096, 64)),
        ((4096, 4096, 1), (4096, 4096, 10)),
    ],
)
def test_tiny_and_huge_chunks_stay_aligned(storage: Any, size: Any) -> None:
    chunk = served_chunk_size(storage, size, (4, 4, 40))
    nbytes = chunk[0] * chunk[1] * chunk[2]
    assert MIN_CHUNK_BYTES <= nbytes <= MAX_CHUNK_BYTES
    for c, s, n in zip(chunk, storage, size, strict=True):
        assert c % s == 0 or s % c == 0 or c == n, "whole storage chunks or a fraction of one"


def test_a_small_volume_is_served_whole() -> None:
    assert served_chunk_size((64, 64, 16), (100, 50, 20), (8, 8, 40)) == (100, 50, 20)


def test_volume_type_and_served_dtype() -> None:
    mem = lamina.build_memory_volumetric_layer(bbox(), [RES], dtype="uint8").backend
    assert volume_type_of(mem, np.dtype("uint8")) == "image"
    assert volume_type_of(mem, np.dtype("uint32")) == "segmentation"
    assert volume_type_of(mem, np.dtype("uint64")) == "segmentation"
    assert volume_type_of(mem, np.dtype("int32")) == "image"
    assert volume_type_of(mem, np.dtype("uint16")) == "image"
    declared = lamina.build_memory_volumetric_layer(
        bbox(), [RES], dtype="uint8", volume_type="segmentation"
    ).backend
    assert volume_type_of(declared, np.dtype("uint8")) == "segmentation"
    image64 = lamina.build_memory_volumetric_layer(
        bbox(), [RES], dtype="uint64", volume_type="image"
    ).backend
    assert volume_type_of(image64, np.dtype("uint64")) == "image"
    assert served_dtype(np.dtype("bool"), "image") == np.uint8
    assert served_dtype(np.dtype("float64"), "image") == np.float32
    assert served_dtype(np.dtype("int64"), "segmentation") == np.uint64
    assert served_dtype(np.dtype(">u2"), "image").byteorder in "<="
    with pytest.raises(TypeError, match="complex128"):
        served_dtype(np.dtype("complex128"), "image")


# -- info and chunks -------------------------------------------------------------------------
def test_every_scale_is_offered(storage_chunks: None) -> None:
    layer = lamina.build_memory_volumetric_layer(
        BBox3D.from_coords((256, 0, 40), (4352, 2048, 1640), (1, 1, 1)),
        [(8, 8, 40), (16, 16, 40), (32, 32, 40)],
        chunk_size=(32, 32, 4),
        dtype="uint16",
    )
    info = LayerSource(layer).info()
    assert info["type"] == "image"
    assert info["data_type"] == "uint16"
    assert info["num_channels"] == 1
    assert [s["key"] for s in info["scales"]] == ["8_8_40", "16_16_40", "32_32_40"]
    for scale, res in zip(info["scales"], layer.backend.resolutions, strict=True):
        assert scale["resolution"] == list(res)
        assert scale["voxel_offset"] == list(layer.backend.get_voxel_offset(res))
        assert scale["size"] == list(layer.backend.get_dataset_size(res))
        assert scale["chunk_sizes"] == [[32, 32, 4]]
        assert scale["encoding"] == "raw"


def test_chunks_are_layer_reads_in_raw_order(storage_chunks: None) -> None:
    # Two channels, a voxel offset, and a size that is not a whole number of chunks.
    layer = lamina.build_memory_volumetric_layer(
        BBox3D.from_coords((3, 5, 2), (103, 75, 12), RES),
        [RES],
        chunk_size=(32, 32, 4),
        dtype="uint16",
        num_channels=2,
        index_resolution=RES,
        default_desired_resolution=RES,
    )
    rng = np.random.default_rng(0)
    data = rng.integers(0, 60000, (2, 100, 70, 10), dtype=np.uint16)
    layer[3:103, 5:75, 2:12] = data
    source = LayerSource(layer)
    assert source.finest.chunk_size == (32, 32, 4)
    edge = source.chunk("8_8_40", "99-103_69-75_10-12")  # the last chunk: partial
    assert edge == _raw(data[:, 96:100, 64:70, 8:10])
    first = source.chunk("8_8_40", "3-35_5-37_2-6")
    assert first == _raw(data[:, 0:32, 0:32, 0:4])
    assert [(c.start, c.stop) for c in source.served] == [
        ((99, 69, 10), (103, 75, 12)),
        ((3, 5, 2), (35, 37, 6)),
    ]
    for bad in ("4-36_5-37_2-6", "3-36_5-37_2-6", "3-35_5-37_2-6_1", "99-104_69-75_10-12", "x"):
        with pytest.raises(ValueError, match="chunk"):
            source.parse("8_8_40", bad)
    with pytest.raises(KeyError):
        source.parse("16_16_40", "3-35_5-37_2-6")


def test_reads_go_through_the_layers_processors(storage_chunks: None) -> None:
    layer = memory_layer(pattern()).with_procs(read_procs=[lambda d: 255 - d])
    source = LayerSource(layer)
    idx = VolumetricIndex.from_coords((0, 0, 0), (64, 64, 16), RES)
    assert source.chunk("8_8_40", "0-64_0-64_0-16") == _raw(layer[idx])
    assert source.chunk("8_8_40", "0-64_0-64_0-16") != _raw(pattern()[:, :64, :64, :16])


def test_a_backend_without_resolutions_is_shown_at_the_default_resolution() -> None:
    constant = lamina.build_constant_volumetric_layer(3, default_desired_resolution=(4, 4, 40))
    source = LayerSource(constant)
    assert [s.key for s in source.scales.values()] == ["4_4_40"]
    with pytest.raises(ValueError, match="default_desired_resolution"):
        LayerSource(lamina.build_constant_volumetric_layer(3))


def test_a_layer_set_is_shown_as_its_members() -> None:
    layerset = pytest.importorskip("lamina_layerset")  # not in the view env: run in `all`
    img = memory_layer(pattern())
    seg = lamina.build_memory_volumetric_layer(bbox(), [RES], dtype="uint64", index_resolution=RES)
    both = layerset.build_volumetric_layer_set({"img": img, "seg": seg})
    from lamina_view.viewer import _sources

    shown = dict(_sources("set", both))
    assert list(shown) == ["set/img", "set/seg"]
    assert shown["set/seg"].volume_type == "segmentation"


# -- over HTTP, on neuroglancer's server -----------------------------------------------------
def test_the_view_serves_info_and_chunks(tmp_path: Path) -> None:
    data = pattern()
    layer = precomputed_layer(tmp_path / "vol", data)
    with lamina.view({"a": layer, "b": memory_layer(data)}) as view, lamina.view(layer) as other:
        assert view.url.startswith("http://127.0.0.1:")
        state = view.viewer.state
        base = state.layers["a"].source[0].url.removeprefix("precomputed://")
        assert state.layers["a"].type == "image"
        info = json.loads(_get(f"{base}/info"))
        assert [s["key"] for s in info["scales"]] == ["8_8_40", "16_16_40"]
        # 64 x 64 x 16 storage chunks, served 4 x 4 x 1 at a time (1 MiB); at 16 nm the
        # whole 128 x 128 x 32 scale is one chunk.
        assert info["scales"][0]["chunk_sizes"] == [[256, 256, 16]]
        assert info["scales"][1]["chunk_sizes"] == [[128, 128, 32]]
        chunk = _get(f"{base}/8_8_40/0-256_0-256_16-32")
        assert chunk == _raw(data[:, :, :, 16:32])
        coarse = _get(f"{base}/16_16_40/0-128_0-128_0-32")
        assert coarse == _raw(data[:, ::2, ::2, :])
        assert _status(f"{base}/8_8_40/0-64_0-64_0-16") == 404  # not a served chunk
        assert _status(f"{base}/4_4_40/0-64_0-64_0-16") == 404  # no such scale
        assert _status(view.url) == 200
        other_base = other.viewer.state.layers["vol"].source[0].url.removeprefix("precomputed://")
        view.close()
        assert _status(f"{base}/info") == 404
        assert _status(view.url) == 404
        # The other view in the process keeps working.
        assert _get(f"{other_base}/8_8_40/0-256_0-256_0-16") == _raw(data[:, :, :, :16])
        assert _status(other.url) == 200


def test_a_read_error_is_a_500_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    def broken(data: Any) -> Any:
        raise OSError("the disk is gone")

    layer = memory_layer(pattern()).with_procs(read_procs=[broken])
    with lamina.view(layer) as view:
        base = view.viewer.state.layers[0].source[0].url.removeprefix("precomputed://")
        with caplog.at_level(logging.WARNING, logger="lamina_view"):
            assert _status(f"{base}/8_8_40/0-256_0-256_0-16") == 500
        assert "the disk is gone" in caplog.text


def test_view_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="volumetric layers"):
        lamina.view(lamina.build_memory_layer())
    with pytest.raises(ValueError, match="at least one layer"):
        lamina.view({})
    with lamina.view(memory_layer(pattern())) as view:
        with pytest.raises(TypeError, match="width, height"):
            view.screenshot(800)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="positive"):
            view.screenshot((0, 10))
    with pytest.raises(lamina.LaminaError, match="closed"):
        view.screenshot((10, 10))
    assert SHAPE == (256, 256, 32)


def _raw_http(port: int, request: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while True:
            part = sock.recv(65536)
            if not part:
                return received
            received += part


def test_the_chunk_server_speaks_plain_http() -> None:
    with lamina.view(memory_layer(pattern())) as view:
        port = int(view.data_url.split(":")[2].split("/")[0])
        token = view.data_url.rsplit("/", 1)[1]
        info = f"/{token}/0/info"
        answer = _raw_http(port, f"GET {info} HTTP/1.0\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Access-Control-Allow-Origin: *\r\n" in answer
        assert b"Connection: close" in answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["data_type"] == "uint8"
        # Two requests on one HTTP/1.1 connection, the second asking to close it.
        two = _raw_http(
            port,
            f"GET {info} HTTP/1.1\r\nHost: x\r\n\r\n"
            f"HEAD /{token}/0/8_8_40/0-256_0-256_0-16 HTTP/1.1\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
        assert two.count(b"HTTP/1.1 200 OK") == 2
        assert two.endswith(
            b"Content-Length: 1048576\r\nAccess-Control-Allow-Origin: *\r\n"
            b"Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"
            b"Access-Control-Allow-Headers: *\r\nCache-Control: no-store\r\n"
            b"Connection: close\r\n\r\n"
        )
        preflight = _raw_http(
            port, f"OPTIONS {info} HTTP/1.1\r\nConnection: close\r\n\r\n".encode()
        )
        assert preflight.startswith(b"HTTP/1.1 204 No Content")
        post = _raw_http(port, f"POST {info} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        assert post.startswith(b"HTTP/1.1 405")
        assert _raw_http(port, b"nonsense\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert _raw_http(port, b"GET /nope HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 404")
