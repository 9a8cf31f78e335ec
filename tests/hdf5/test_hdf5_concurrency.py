"""Concurrency: threads, spawned and forked processes, plain h5py between calls, pickling."""

from __future__ import annotations

import multiprocessing
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from lamina_hdf5 import build_h5_layer

from lamina import BBox3D, VolumetricIndex

RES = (4, 4, 40)
CHUNK = (32, 32, 4)


def make_layer(path: Path) -> Any:
    return build_h5_layer(
        path,
        "vol",
        index_resolution=RES,
        default_desired_resolution=RES,
        info_type="segmentation",
        info_data_type="uint16",
        info_num_channels=1,
        info_chunk_size=CHUNK,
        info_bbox=BBox3D.from_coords((0, 0, 0), (256, 64, 8), RES),
        info_scales=[RES],
    )


def region(i: int) -> VolumetricIndex:
    """Chunk column ``i`` (x) of the volume: 8 x-chunks by 2 y-chunks by 2 z-chunks."""
    x = (i % 8) * 32
    y = ((i // 8) % 2) * 32
    z = (i // 16) * 4
    return VolumetricIndex.from_coords((x, y, z), (x + 32, y + 32, z + 4), RES)


def _write_many(layer: Any, indices: list[int], rounds: int) -> None:
    for r in range(rounds):
        for i in indices:
            layer[region(i)] = np.full((1, 32, 32, 4), 100 * r + i + 1, dtype=np.uint16)


def _read_uniform(layer: Any, i: int, times: int) -> list[int]:
    """Read region ``i`` repeatedly; each read must be one value (no partial write)."""
    seen = []
    for _ in range(times):
        out = layer[region(i)]
        values = np.unique(out)
        assert len(values) == 1, values
        seen.append(int(values[0]))
    return seen


def _expected(i: int, rounds: int) -> int:
    return 100 * (rounds - 1) + i + 1


def _check_all(path: Path, n: int, rounds: int) -> None:
    with h5py.File(path, "r") as f:
        ds = f["vol/4_4_40"]
        for i in range(n):
            idx = region(i)
            block = ds[
                idx.start[2] : idx.stop[2], idx.start[1] : idx.stop[1], idx.start[0] : idx.stop[0]
            ]
            assert (block == _expected(i, rounds)).all(), (i, np.unique(block))


def test_threads_writing_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    layer = make_layer(path)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            _write_many(layer, list(range(k, 32, 8)), rounds=3)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    _check_all(path, 32, rounds=3)


def test_spawned_processes_writing_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    layer = make_layer(path)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.starmap(_write_many, [(layer, list(range(k, 32, 4)), 3) for k in range(4)])
    _check_all(path, 32, rounds=3)


def test_a_spawned_reader_never_sees_a_partial_write(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    layer = make_layer(path)
    _write_many(layer, [0], rounds=1)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        pending = pool.apply_async(_read_uniform, (layer, 0, 300))
        _write_many(layer, [0], rounds=30)
        seen = pending.get(120)
    assert set(seen) <= {_expected(0, r) for r in range(1, 31)}


def test_forked_children_open_their_own_handles(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    layer = make_layer(path)
    _write_many(layer, [0, 1, 2], rounds=1)
    assert layer[region(1)].max() == 2  # used in the parent before the fork
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        seen = pool.starmap(_read_uniform, [(layer, 1, 3), (layer, 2, 3)])
        pool.starmap(_write_many, [(layer, [3], 1)])
    assert seen == [[2, 2, 2], [3, 3, 3]]
    _check_all(path, 4, rounds=1)


def test_plain_h5py_opens_the_file_between_calls(tmp_path: Path) -> None:
    path = tmp_path / "h.h5"
    layer = make_layer(path)
    _write_many(layer, [0], rounds=1)
    with h5py.File(path, "r") as f:  # this process, while the layer exists
        assert (f["vol/4_4_40"][0:4, 0:32, 0:32] == 1).all()
    with h5py.File(path, "r+") as f:  # even for writing
        f["vol/4_4_40"][0:4, 0:32, 32:64] = 9
    assert (layer[region(1)] == 9).all()
    code = (
        "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); "
        "assert (f['vol/4_4_40'][0:4, 0:32, 0:32] == 1).all()"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)


def test_layer_pickles_by_spec(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    layer = make_layer(path)
    _write_many(layer, [0], rounds=1)
    blob = pickle.dumps(layer)
    assert len(blob) < 4000
    clone = pickle.loads(blob)
    assert clone.backend.name == layer.backend.name
    assert (clone[region(0)] == 1).all()
    state = layer.backend.__getstate__()
    assert set(state) == {"file", "inner", "open_args", "enforce", "keep_open"}


def test_delete_and_with_changes_leave_the_file_closed(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    layer = make_layer(path)
    _write_many(layer, [0], rounds=1)
    layer.backend.with_changes(enforce_chunk_aligned_writes=False)
    with h5py.File(path, "r+"):  # nothing of lamina holds it
        pass
    other = layer.backend.with_changes(name=f"{path}:/copy")
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["copy", "vol"]
        assert f["copy/4_4_40"].shape == f["vol/4_4_40"].shape
    other.delete()
    layer.backend.delete()
    assert not path.exists()


def test_keep_open_reads_see_writes_and_close_on_clear_cache(tmp_path: Path) -> None:
    path = tmp_path / "k.h5"
    writer = make_layer(path)
    reader = build_h5_layer(
        path, "vol", index_resolution=RES, default_desired_resolution=RES, keep_open=True
    )
    _write_many(writer, [0], rounds=1)
    assert (reader[region(0)] == 1).all()  # opens the kept handle
    with h5py.File(path, "r") as f:  # same flags: allowed while it is kept
        assert (f["vol/4_4_40"][0:4, 0:32, 0:32] == 1).all()
    _write_many(writer, [0], rounds=2)  # the write closes the kept handle first
    assert (reader[region(0)] == 101).all()
    assert (pickle.loads(pickle.dumps(reader))[region(0)] == 101).all()
    reader.backend.clear_cache()
    with h5py.File(path, "r+"):  # nothing of lamina holds it now
        pass
