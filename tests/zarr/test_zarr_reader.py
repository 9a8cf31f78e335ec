"""lamina's own reader of local Zarr chunks (``engine="lamina"``) against zarr-python on
the same files: uncompressed chunks read in part (only the bytes from a read's first
voxel in a chunk to its last), in C and Fortran order, sharded and not; reads shared with
the helper thread, also in a process forked after the parent used it; damaged
uncompressed chunks said, never read as data."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from lamina_zarr import build_zarr_layer, chunks

from lamina import Vec3D
from lamina.errors import DamagedChunkError
from lamina.testing import StandInHelper

RES = Vec3D(4.0, 4.0, 40.0)
SHAPE = (12, 40, 56)  # z, y, x


def _values(dtype: str) -> np.ndarray[Any, Any]:
    return np.random.default_rng(5).integers(0, 30000, SHAPE).astype(dtype)


def _array(path: Path, fmt: int, order: str, dtype: str, sharded: bool) -> np.ndarray[Any, Any]:
    """A plain uncompressed array written by zarr-python; its values."""
    values = _values(dtype)
    kwargs: dict[str, Any] = {"compressors": None}
    if sharded:
        kwargs["shards"] = (8, 16, 32)
    if fmt == 2:
        kwargs["order"] = order
    array = zarr.create_array(
        path, shape=SHAPE, chunks=(4, 8, 16), dtype=dtype, zarr_format=fmt, **kwargs
    )  # type: ignore[call-overload]
    array[...] = values
    return values


def _boxes() -> list[tuple[slice, slice, slice]]:
    """Boxes (x, y, z) of every kind: inside one chunk, across a few, odd edges, whole."""
    rng = np.random.default_rng(9)
    boxes = [(slice(0, 56), slice(0, 40), slice(0, 12)), (slice(3, 4), slice(5, 6), slice(7, 8))]
    for _ in range(30):
        lo = [int(rng.integers(0, n)) for n in (56, 40, 12)]
        hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, (56, 40, 12), strict=True)]
        boxes.append((slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2])))
    return boxes


@pytest.mark.parametrize(
    ("fmt", "order", "sharded"),
    [(2, "C", False), (2, "F", False), (3, "C", False), (3, "C", True)],
)
@pytest.mark.parametrize("dtype", ["uint8", ">u2", "<i4"])
def test_uncompressed_chunks_read_in_part_equal_zarr_python(
    tmp_path: Path, fmt: int, order: str, sharded: bool, dtype: str
) -> None:
    values = _array(tmp_path / "a.zarr", fmt, order, dtype, sharded)
    layer = build_zarr_layer(str(tmp_path / "a.zarr"), axes="zyx", resolution=RES, engine="lamina")
    for x, y, z in _boxes():
        got = layer[RES, x, y, z]
        want = values[z, y, x].transpose(2, 1, 0)[np.newaxis]
        np.testing.assert_array_equal(got, want, err_msg=f"{x}, {y}, {z}")
        assert got.dtype == np.dtype(dtype).newbyteorder("=")


@pytest.mark.parametrize("helper", ["thread", "took it", "taken back"])
def test_reads_shared_with_the_helper_thread_are_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: str
) -> None:
    """A read of at least ``SHARED_FROM`` chunks gives its second half to the helper
    thread (or takes it back when the helper is busy); every chunk of it lands, with
    missing chunks as the fill value."""
    monkeypatch.setattr(chunks, "SHARED_FROM", 16)
    stand_in = StandInHelper(runs=helper == "took it")
    if helper != "thread":
        monkeypatch.setattr(chunks, "shared_pool", lambda name, workers: stand_in)
    values = _array(tmp_path / "a.zarr", 3, "C", "uint8", sharded=False)
    os.remove(tmp_path / "a.zarr" / "c" / "1" / "2" / "1")  # z 4:8, y 16:24, x 16:32
    values[4:8, 16:24, 16:32] = 0
    layer = build_zarr_layer(str(tmp_path / "a.zarr"), axes="zyx", resolution=RES, engine="lamina")
    reader = layer.backend._array(RES)._local_reader()
    assert reader.count_chunks((0, 0, 0), (56, 40, 12)) >= chunks.SHARED_FROM
    np.testing.assert_array_equal(layer[RES, 0:56, 0:40, 0:12][0], values.transpose(2, 1, 0))
    assert stand_in.submitted == (0 if helper == "thread" else 1)


def _read_in_child(path: str, queue: Any) -> None:
    layer = build_zarr_layer(path, axes="zyx", resolution=RES, engine="lamina")
    queue.put(int(layer[RES, 0:56, 0:40, 0:12].sum()))


def test_a_forked_child_reads_with_its_own_helper_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper thread does not survive a fork; the child starts its own."""
    monkeypatch.setattr(chunks, "SHARED_FROM", 16)
    values = _array(tmp_path / "a.zarr", 3, "C", "uint8", sharded=False)
    layer = build_zarr_layer(str(tmp_path / "a.zarr"), axes="zyx", resolution=RES, engine="lamina")
    assert int(layer[RES, 0:56, 0:40, 0:12].sum()) == int(values.sum())  # the parent's helper
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_in_child, args=(str(tmp_path / "a.zarr"), queue))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
    assert queue.get(timeout=5) == int(values.sum())


@pytest.mark.parametrize("sharded", [False, True])
def test_a_damaged_uncompressed_chunk_is_said(tmp_path: Path, sharded: bool) -> None:
    """An uncompressed chunk file of the wrong size (a truncated copy) is a
    DamagedChunkError naming it, even when the read needs only its first bytes."""
    _array(tmp_path / "a.zarr", 3, "C", "uint8", sharded)
    path = tmp_path / "a.zarr" / "c" / "0" / "0" / "0"
    path.write_bytes(path.read_bytes()[: 100 if not sharded else 2000])
    layer = build_zarr_layer(str(tmp_path / "a.zarr"), axes="zyx", resolution=RES, engine="lamina")
    with pytest.raises(DamagedChunkError, match=r"a\.zarr"):
        layer[RES, 0:2, 0:2, 0:1]


def _index_entries(shard: Path, count: int) -> tuple[bytes, np.ndarray[Any, Any]]:
    """A shard file's chunks and its index (at the end, crc32c-checked) as entries."""
    raw = shard.read_bytes()
    size = 16 * count + 4
    return raw[:-size], np.frombuffer(raw[-size:-4], "<u8").reshape(count, 2).copy()


@pytest.mark.parametrize("damage", ["size", "offset"])
def test_a_shard_index_that_does_not_fit_its_file_is_said(tmp_path: Path, damage: str) -> None:
    """An index entry (checksum intact) giving an uncompressed chunk the wrong size, or
    bytes beyond the shard's end, is a DamagedChunkError naming the shard."""
    import numcodecs

    _array(tmp_path / "a.zarr", 3, "C", "uint8", sharded=True)
    shard = tmp_path / "a.zarr" / "c" / "0" / "0" / "0"
    chunks_part, entries = _index_entries(shard, 8)
    if damage == "size":
        entries[0, 1] -= 1
    else:
        entries[0, 0] = len(chunks_part)  # past the chunks, into the index and beyond
    shard.write_bytes(chunks_part + bytes(numcodecs.CRC32C().encode(entries.tobytes())))
    layer = build_zarr_layer(str(tmp_path / "a.zarr"), axes="zyx", resolution=RES, engine="lamina")
    with pytest.raises(DamagedChunkError, match=r"the shard .*a\.zarr"):
        layer[RES, 0:2, 0:2, 0:1]


@pytest.mark.parametrize("kind", ["zarr3", "zarr2 F", "n5"])
def test_tensorstore_reads_in_the_chunks_own_memory_order(tmp_path: Path, kind: str) -> None:
    """Through TensorStore a read comes in the stored chunks' own memory order (C for
    Zarr's default, Fortran for N5 and v2 ``order: F``), so nothing is transposed: x
    fastest for a C-ordered ``zyx`` array and for N5's ``xyz``, z fastest for a
    Fortran-ordered ``zyx`` one."""
    import tensorstore as ts

    values = _values("uint8")
    path = str(tmp_path / "a")
    if kind == "n5":
        spec = {
            "driver": "n5",
            "kvstore": {"driver": "file", "path": path},
            "metadata": {
                "dimensions": list(SHAPE[::-1]),
                "blockSize": [16, 8, 4],
                "dataType": "uint8",
                "compression": {"type": "raw"},
            },
        }
        ts.open(spec, create=True).result().write(values.transpose(2, 1, 0)).result()
        layer = build_zarr_layer(path, resolution=RES, engine="tensorstore")
    else:
        _array(Path(path), 3 if kind == "zarr3" else 2, kind[-1], "uint8", sharded=False)
        layer = build_zarr_layer(path, axes="zyx", resolution=RES, engine="tensorstore")
    array = layer.backend._array(RES)
    got = array.read([3, 5, 1], [50, 33, 11])
    assert got.flags.c_contiguous if kind == "zarr2 F" else got.flags.f_contiguous
    np.testing.assert_array_equal(got[..., 0], values[1:11, 5:33, 3:50].transpose(2, 1, 0))
