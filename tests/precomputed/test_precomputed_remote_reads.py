"""Remote reads over several chunks: each chunk file fetched once, on lamina's read
threads (``READ_THREADS``), into one output array; the caches; bounds; errors; a forked
child."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from typing import Any

import numpy as np
import pytest
from lamina_precomputed import build_cv_layer
from precomputed_support import small_volume_params

from lamina import BBox3D, Vec3D

# how the CloudVolume engine fetches remote chunks (TensorStore's reads are its own)
pytestmark = pytest.mark.cloudvolume_engine

FINE = Vec3D(4, 4, 40)
# 128 x 128 x 8 voxels from (16, 32, 2), chunks of 32 x 32 x 4: a 4 x 4 x 2 grid.
OFFSET = (16, 32, 2)


def _params(**changes: Any) -> dict[str, Any]:
    stop = (OFFSET[0] + 128, OFFSET[1] + 128, OFFSET[2] + 8)
    return small_volume_params(
        info_scales=[FINE], info_bbox=BBox3D.from_coords(OFFSET, stop, FINE), **changes
    )


@pytest.fixture(scope="module")
def stored(s3_root: str) -> tuple[str, np.ndarray[Any, Any]]:
    """An s3:// volume written once, and its data as (C, X, Y, Z)."""
    path = f"{s3_root}/reads-{uuid.uuid4().hex[:8]}"
    layer = build_cv_layer(path, **_params())
    data = np.random.default_rng(0).integers(1, 255, (1, 128, 128, 8), dtype=np.uint8)
    layer[FINE, 16:144, 32:160, 2:10] = data
    return path, data


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every chunk file fetched from remote storage: (thread name, file name)."""
    from lamina_precomputed.storage import FileStore

    calls: list[tuple[str, str]] = []
    original = FileStore._get_remote

    def spy(self: Any, name: str) -> Any:
        if "/" in name:  # a chunk, not the info
            calls.append((threading.current_thread().name, name))
        return original(self, name)

    monkeypatch.setattr(FileStore, "_get_remote", spy)
    return calls


def test_a_multi_chunk_read_fetches_each_chunk_once_on_the_read_threads(
    stored: tuple[str, np.ndarray[Any, Any]], downloads: list[tuple[str, str]]
) -> None:
    path, data = stored
    layer = build_cv_layer(path, readonly=True)
    layer[FINE, 16:48, 32:64, 2:6]  # warm up: imports, the storage connection
    downloads.clear()
    # Not aligned: 4 x 4 x 2 chunks touched, the outer ones in part.
    out = layer[FINE, 20:140, 40:150, 3:9]
    np.testing.assert_array_equal(out, data[:, 4:124, 8:118, 1:7])
    names = [name for _, name in downloads]
    assert len(names) == len(set(names)) == 4 * 4 * 2
    threads = {thread for thread, _ in downloads}
    assert any(t.startswith("lamina-cv-read") for t in threads)
    assert threads <= {threading.current_thread().name} | {
        t.name for t in threading.enumerate() if t.name.startswith("lamina-cv-read")
    }
    # A (C, X, Y, Z) view of an (X, Y, Z, C) Fortran-ordered array.
    assert type(out) is np.ndarray
    assert out.base is not None
    assert out.transpose(1, 2, 3, 0).flags.f_contiguous


def test_outside_the_bounds_reads_the_background(
    stored: tuple[str, np.ndarray[Any, Any]], downloads: list[tuple[str, str]]
) -> None:
    path, data = stored
    out = build_cv_layer(path, readonly=True)[FINE, 0:80, 0:80, 0:12]
    assert out.shape == (1, 80, 80, 12)
    np.testing.assert_array_equal(out[:, 16:, 32:, 2:10], data[:, :64, :48, :])
    inside = np.zeros(out.shape, bool)
    inside[:, 16:, 32:, 2:10] = True
    assert not out[~inside].any()
    # Only the chunks inside the bounds are fetched: 2 x 2 x 2 of them.
    assert len(downloads) == 8

    shaded = build_cv_layer(path, readonly=True, cv_kwargs={"background_color": 3})
    out = shaded[FINE, 0:80, 0:80, 0:12]
    np.testing.assert_array_equal(out[:, 16:, 32:, 2:10], data[:, :64, :48, :])
    assert (out[~inside] == 3).all()
    assert not build_cv_layer(path, readonly=True)[FINE, 500:600, 500:600, 20:30].any()


def test_the_memory_cache_serves_repeated_reads(
    stored: tuple[str, np.ndarray[Any, Any]], downloads: list[tuple[str, str]]
) -> None:
    path, data = stored
    layer = build_cv_layer(path, readonly=True, cv_kwargs={"lru_bytes": 1 << 20})
    np.testing.assert_array_equal(layer[FINE, 16:144, 32:160, 2:10], data)
    assert len(downloads) == 32
    np.testing.assert_array_equal(layer[FINE, 16:144, 32:160, 2:10], data)
    assert len(downloads) == 32  # every chunk from memory the second time
    layer.backend.clear_cache()
    layer[FINE, 16:48, 32:64, 2:6]
    assert len(downloads) == 33


def test_the_disk_cache_serves_repeated_reads_and_is_cleared(
    stored: tuple[str, np.ndarray[Any, Any]], downloads: list[tuple[str, str]]
) -> None:
    path, data = stored
    layer = build_cv_layer(path, readonly=True, cv_kwargs={"cache": True})
    np.testing.assert_array_equal(layer[FINE, 16:144, 32:160, 2:10], data)
    assert len(downloads) == 32
    again = build_cv_layer(path, readonly=True, cv_kwargs={"cache": True})
    np.testing.assert_array_equal(again[FINE, 16:144, 32:160, 2:10], data)
    assert len(downloads) == 32  # another backend, the same files on disk
    again.backend.clear_disk_cache()
    again[FINE, 16:48, 32:64, 2:6]
    assert len(downloads) == 33


def test_bounded_refuses_reads_outside_the_bounds(
    stored: tuple[str, np.ndarray[Any, Any]],
) -> None:
    path, data = stored
    bounded = build_cv_layer(path, readonly=True, cv_kwargs={"bounded": True})
    np.testing.assert_array_equal(bounded[FINE, 20:40, 40:60, 3:5], data[:, 4:24, 8:28, 1:3])
    with pytest.raises(ValueError, match="outside the bounds"):
        bounded[FINE, 0:80, 0:80, 0:12]


def test_local_volumes_are_read_in_the_calling_thread(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lamina_precomputed.storage import FileStore

    threads: set[str] = set()
    original = FileStore.get

    def spy(self: Any, name: str) -> Any:
        threads.add(threading.current_thread().name)
        return original(self, name)

    monkeypatch.setattr(FileStore, "get", spy)
    for path in (tmp_path / "v", f"mem://lamina-test/{uuid.uuid4().hex[:8]}"):
        layer = build_cv_layer(path, **_params())
        layer[FINE, 16:144, 32:160, 2:10] = 5
        assert (layer[FINE, 16:144, 32:160, 2:10] == 5).all()
    assert threads == {threading.current_thread().name}


def test_a_missing_chunk_with_fill_missing_off_raises_after_every_fetch_finished(
    s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lamina_precomputed.scale_io import MissingChunkError
    from lamina_precomputed.storage import FileStore

    path = f"{s3_root}/missing-{uuid.uuid4().hex[:8]}"
    layer = build_cv_layer(path, **_params())
    layer[FINE, 16:48, 32:64, 2:6] = 9  # one chunk of 32 stored
    strict = build_cv_layer(path, readonly=True, cv_kwargs={"fill_missing": False})
    running: list[int] = []
    finished: list[int] = []
    original = FileStore._get_remote

    def spy(self: Any, name: str) -> Any:
        if "/" not in name:
            return original(self, name)
        running.append(1)
        try:
            return original(self, name)
        finally:
            finished.append(1)

    monkeypatch.setattr(FileStore, "_get_remote", spy)
    with pytest.raises(MissingChunkError, match="fill_missing=False"):
        strict[FINE, 16:144, 32:160, 2:10]
    assert len(running) == len(finished) == 32
    np.testing.assert_array_equal(strict[FINE, 16:48, 32:64, 2:6], np.full((1, 32, 32, 4), 9))


def _child_read(path: str, queue: Any) -> None:
    layer = build_cv_layer(path, readonly=True)
    queue.put(int(layer[FINE, 16:144, 32:160, 2:10].astype(np.int64).sum()))


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_a_forked_child_reads_on_threads_of_its_own(
    stored: tuple[str, np.ndarray[Any, Any]],
) -> None:
    path, data = stored
    layer = build_cv_layer(path, readonly=True)
    np.testing.assert_array_equal(layer[FINE, 16:144, 32:160, 2:10], data)  # parent's threads
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_read, args=(path, queue))
    child.start()
    try:
        total = queue.get(timeout=60)
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    assert total == int(data.astype(np.int64).sum())
