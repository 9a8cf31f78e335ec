"""``lamina.flows.store`` / ``layer.from_dask`` and ``LayerTarget``: round trips of Dask and
numpy arrays, whatever their chunks, without two writes into one chunk; resume; the
checks made before anything is written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from arrays_support import (
    BOX,
    CHUNK,
    OFFSET,
    SHAPE,
    R,
    Recorder,
    data,
    memory_layer,
    precomputed_layer,
)

import lamina
from lamina.arrays import LayerTarget
from lamina.flows import FlowArgumentError, TasksFailedError, store
from lamina.volumetric.memory import MemoryVolumetricBackend


def _empty(tmp_path: Path | None = None) -> Any:
    layer = memory_layer() if tmp_path is None else precomputed_layer(tmp_path)
    layer[BOX] = np.zeros((1, *SHAPE), dtype=np.uint8)
    return layer


def test_a_dask_array_of_any_chunks_is_stored_on_the_write_grid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dask.array as da

    array = da.from_array(data(), chunks=(1, 50, 70, 5))  # nothing like the 32 x 32 x 8 grid
    dst = _empty()
    writes = Recorder(monkeypatch, MemoryVolumetricBackend, "write")
    summary = dst.from_dask(array, chunk_size=(64, 64, 8), executor="threads", workers=2)
    assert summary.tasks == 3 * 3 * 3
    writes.assert_disjoint_and_on_grid(OFFSET, CHUNK)
    np.testing.assert_array_equal(dst[BOX], data())


def test_a_layers_own_array_is_read_once_per_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``store(layer.to_dask(), dst)`` reads each task's box in one read through the
    layer (no dask graph per task); a processor's array still goes through dask."""
    import dask

    src = memory_layer()
    reads = Recorder(monkeypatch, MemoryVolumetricBackend)
    graphs: list[int] = []
    real = dask.local.get_sync

    def counted(*args: Any, **kwargs: Any) -> Any:
        graphs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dask.local, "get_sync", counted)
    dst = _empty(tmp_path / "dst")
    summary = store(src.to_dask(), dst, chunk_size=(64, 64, 8), progress=False)
    np.testing.assert_array_equal(dst[BOX], data())
    assert len(reads.boxes) == summary.tasks == 3 * 3 * 3
    assert not graphs
    reads.assert_disjoint_and_on_grid(OFFSET, (64, 64, 8))
    inverted = src.with_procs(read_procs=[lambda d: 255 - d])
    store(inverted.to_dask(), dst, chunk_size=(64, 64, 8), progress=False)
    np.testing.assert_array_equal(dst[BOX], 255 - data())
    assert len(graphs) == 3 * 3 * 3


def test_numpy_and_to_dask_round_trips_on_files(tmp_path: Path) -> None:
    src = precomputed_layer(tmp_path / "src")
    dst = _empty(tmp_path / "dst")
    store(src.to_dask() // 2, dst, executor="processes", workers=2, progress=False)
    np.testing.assert_array_equal(dst[BOX], data() // 2)
    small = np.full((1, 64, 32, 8), 7, dtype=np.uint8)
    region = lamina.BBox3D.from_coords((16, 32, 8), (80, 64, 16), R)
    store(small[0], dst, bbox=region, progress=False)  # (X, Y, Z): one channel
    np.testing.assert_array_equal(dst[16:80, 32:64, 8:16], small)


class _Flaky:
    """A block function that fails on blocks holding voxel (0, 0, 0) while ``flag`` exists."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __call__(self, block: Any, block_info: Any = None) -> Any:
        location = block_info[0]["array-location"]
        if os.path.exists(self.flag) and all(lo == 0 for lo, _ in location[1:]):
            raise RuntimeError("flaky block")
        return block


def test_store_resumes(tmp_path: Path) -> None:
    import dask.array as da

    flag = tmp_path / "flag"
    flag.touch()
    array = da.from_array(data(), chunks=(1, 64, 64, 8)).map_blocks(
        _Flaky(str(flag)), dtype=np.uint8
    )
    dst = _empty(tmp_path / "dst")
    with pytest.raises(TasksFailedError, match="flaky block"):
        store(array, dst, chunk_size=(64, 64, 8), retries=0, progress=False)
    flag.unlink()
    summary = store(array, dst, chunk_size=(64, 64, 8), resume=True, progress=False)
    assert summary.tasks == 1
    assert summary.skipped == 3 * 3 * 3 - 1
    np.testing.assert_array_equal(dst[BOX], data())


def test_store_checks_before_writing() -> None:
    dst = _empty()
    with pytest.raises(FlowArgumentError, match="2 channel"):
        store(np.zeros((2, *SHAPE), dtype=np.uint8), dst)
    with pytest.raises(FlowArgumentError, match="float32 values are not uint8"):
        store(np.zeros((1, *SHAPE), dtype=np.float32), dst)
    with pytest.raises(FlowArgumentError, match="must match"):
        store(np.zeros((1, 10, 10, 10), dtype=np.uint8), dst, bbox=BOX)
    with pytest.raises(FlowArgumentError, match="Dask or numpy array"):
        store([1, 2, 3], dst)
    assert not dst[BOX].any()


def test_layer_target_for_dask_store() -> None:
    import dask.array as da

    dst = _empty()
    target = LayerTarget(dst)
    array = da.from_array(data(), chunks=(1, 50, 50, 8))
    with pytest.raises(ValueError, match="not on the write grid"):
        da.store(array, target, lock=False)
    da.store(array.rechunk(target.chunks), target, lock=False)
    np.testing.assert_array_equal(dst[BOX], data())
