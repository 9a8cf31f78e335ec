"""Remote reads over several chunks: cut at the chunk grid, each chunk downloaded by
CloudVolume on lamina's read threads (``READ_THREADS``) into one output array; the cases
that keep CloudVolume's single call; errors; a forked child."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from typing import Any

import numpy as np
import pytest
from cloudvolume.datasource.precomputed.image import PrecomputedImageSource
from cloudvolume.exceptions import EmptyVolumeException, OutOfBoundsError
from lamina_precomputed import build_cv_layer
from precomputed_support import small_volume_params

from lamina import BBox3D, Vec3D, VolumetricIndex

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
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, ...]]]:
    """Every CloudVolume image download: (thread name, requested size)."""
    calls: list[tuple[str, tuple[int, ...]]] = []
    original = PrecomputedImageSource.download

    def spy(self: Any, bbox: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((threading.current_thread().name, tuple(int(v) for v in bbox.size3())))
        return original(self, bbox, *args, **kwargs)

    monkeypatch.setattr(PrecomputedImageSource, "download", spy)
    return calls


def test_a_multi_chunk_read_is_one_download_per_chunk_on_the_read_threads(
    stored: tuple[str, np.ndarray[Any, Any]], downloads: list[tuple[str, tuple[int, ...]]]
) -> None:
    path, data = stored
    layer = build_cv_layer(path, readonly=True)
    layer[FINE, 16:48, 32:64, 2:6]  # warm up: the handle, imports
    downloads.clear()
    # Not aligned: 4 x 4 x 2 chunks touched, the outer ones in part.
    out = layer[FINE, 20:140, 40:150, 3:9]
    np.testing.assert_array_equal(out, data[:, 4:124, 8:118, 1:7])
    assert len(downloads) == 4 * 4 * 2
    assert all(s[0] <= 32 and s[1] <= 32 and s[2] <= 4 for _, s in downloads)
    names = {name for name, _ in downloads}
    assert any(name.startswith("lamina-cv-read") for name in names)
    assert names <= {threading.current_thread().name} | {
        t.name for t in threading.enumerate() if t.name.startswith("lamina-cv-read")
    }
    # The same layout as CloudVolume's own cutouts: a (C, X, Y, Z) view of an
    # (X, Y, Z, C) Fortran-ordered array.
    assert type(out) is np.ndarray
    assert out.base is not None
    assert out.transpose(1, 2, 3, 0).flags.f_contiguous


def test_outside_the_bounds_reads_the_background(
    stored: tuple[str, np.ndarray[Any, Any]], downloads: list[tuple[str, tuple[int, ...]]]
) -> None:
    path, data = stored
    out = build_cv_layer(path, readonly=True)[FINE, 0:80, 0:80, 0:12]
    assert out.shape == (1, 80, 80, 12)
    np.testing.assert_array_equal(out[:, 16:, 32:, 2:10], data[:, :64, :48, :])
    inside = np.zeros(out.shape, bool)
    inside[:, 16:, 32:, 2:10] = True
    assert not out[~inside].any()
    # Only the stored chunks are downloaded: 2 x 2 x 2 of them.
    assert len(downloads) == 8

    shaded = build_cv_layer(path, readonly=True, cv_kwargs={"background_color": 3})
    out = shaded[FINE, 0:80, 0:80, 0:12]
    np.testing.assert_array_equal(out[:, 16:, 32:, 2:10], data[:, :64, :48, :])
    assert (out[~inside] == 3).all()


@pytest.mark.parametrize(
    "cv_kwargs",
    [{"lru_bytes": 1 << 20}, {"cache": True}, {"green_threads": True}],
    ids=["lru", "disk-cache", "green"],
)
def test_caches_and_green_threads_keep_cloudvolumes_single_call(
    stored: tuple[str, np.ndarray[Any, Any]],
    downloads: list[tuple[str, tuple[int, ...]]],
    cv_kwargs: dict[str, Any],
) -> None:
    path, data = stored
    layer = build_cv_layer(path, readonly=True, cv_kwargs=cv_kwargs)
    if cv_kwargs.get("green_threads"):
        assert not layer.backend._split_mips
        return  # green threads need gevent's monkey patching: not done in the tests
    out = layer[FINE, 16:144, 32:160, 2:10]
    np.testing.assert_array_equal(out, data)
    assert downloads == [(threading.current_thread().name, (128, 128, 8))]
    if cv_kwargs.get("cache"):
        layer.backend.clear_disk_cache()


def test_one_chunk_nothing_stored_and_bounded_keep_the_single_call(
    stored: tuple[str, np.ndarray[Any, Any]], downloads: list[tuple[str, tuple[int, ...]]]
) -> None:
    path, data = stored
    layer = build_cv_layer(path, readonly=True)
    backend = layer.backend
    assert backend._split_mips
    np.testing.assert_array_equal(layer[FINE, 20:40, 40:60, 3:5], data[:, 4:24, 8:28, 1:3])
    assert not layer[FINE, 500:600, 500:600, 20:30].any()
    assert [s for _, s in downloads] == [(20, 20, 2), (100, 100, 10)]

    box = VolumetricIndex.from_coords((0, 0, 0), (80, 80, 12), FINE)
    bounded = build_cv_layer(path, readonly=True, cv_kwargs={"bounded": True})
    assert bounded.backend._chunk_boxes(box) is None
    with pytest.raises(OutOfBoundsError):
        bounded[FINE, 0:80, 0:80, 0:12]


def test_local_volumes_keep_the_single_call(tmp_path: Any) -> None:
    layer = build_cv_layer(tmp_path / "v", **_params())
    assert not layer.backend._split_mips
    mem = build_cv_layer(f"mem://lamina-test/{uuid.uuid4().hex[:8]}", **_params())
    assert not mem.backend._split_mips


def test_a_failing_chunk_raises_after_every_download_finished(
    s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"{s3_root}/missing-{uuid.uuid4().hex[:8]}"
    layer = build_cv_layer(path, **_params())
    layer[FINE, 16:48, 32:64, 2:6] = 9  # one chunk of 32 stored
    strict = build_cv_layer(path, readonly=True, cv_kwargs={"fill_missing": False})
    running: list[int] = []
    finished: list[int] = []
    original = PrecomputedImageSource.download

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        running.append(1)
        try:
            return original(self, *args, **kwargs)
        finally:
            finished.append(1)

    monkeypatch.setattr(PrecomputedImageSource, "download", spy)
    with pytest.raises(EmptyVolumeException):
        strict[FINE, 16:144, 32:160, 2:10]
    assert len(running) == len(finished) == 32


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
