"""Concurrency and handles under the default policy (a cached read handle per process):
threads, spawned and forked processes, plain h5py between calls, lamina and plain-h5py
writers in other processes, freshness, pickling."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from lamina_hdf5 import build_h5_layer, handles

from lamina import BBox3D, VolumetricIndex

RES = (4, 4, 40)
CHUNK = (32, 32, 4)
DS = "vol/4_4_40"


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


def open_layer(path: Path, **kwargs: Any) -> Any:
    return build_h5_layer(
        path, "vol", index_resolution=RES, default_desired_resolution=RES, **kwargs
    )


def region(i: int) -> VolumetricIndex:
    """Chunk column ``i`` (x) of the volume: 8 x-chunks by 2 y-chunks by 2 z-chunks."""
    x = (i % 8) * 32
    y = ((i // 8) % 2) * 32
    z = (i // 16) * 4
    return VolumetricIndex.from_coords((x, y, z), (x + 32, y + 32, z + 4), RES)


def zyx(idx: VolumetricIndex) -> tuple[slice, slice, slice]:
    """The plain-h5py selection of ``idx`` (the dataset's voxel offset is 0)."""
    return (
        slice(idx.start[2], idx.stop[2]),
        slice(idx.start[1], idx.stop[1]),
        slice(idx.start[0], idx.stop[0]),
    )


def state_of(layer: Any) -> handles.FileState:
    return handles.state(os.path.realpath(layer.backend.file_path))


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
        ds = f[DS]
        for i in range(n):
            block = ds[zyx(region(i))]
            assert (block == _expected(i, rounds)).all(), (i, np.unique(block))


# -- workers of spawned processes (module level: spawn imports them) -------------------------
def _lamina_write_value(path: str, i: int, value: int) -> None:
    open_layer(Path(path))[region(i)] = np.full((1, 32, 32, 4), value, dtype=np.uint16)


def _plain_write_value(path: str, i: int, value: int) -> None:
    with h5py.File(path, "r+") as f:
        f[DS][zyx(region(i))] = value


def _plain_read_value(path: str, i: int) -> int:
    with h5py.File(path, "r") as f:
        values = np.unique(f[DS][zyx(region(i))])
    assert len(values) == 1, values
    return int(values[0])


def _hold_open_for_writing(path: str, i: int, opened: Any, release: Any) -> None:
    """Plain h5py writer: writes ``i``'s region as 1 and flushes (the bytes are in the file),
    says so, waits, writes 2 and closes. A reader that does not wait would see the 1."""
    with h5py.File(path, "r+") as f:
        f[DS][zyx(region(i))] = 1
        f.flush()
        opened.set()
        release.wait(60)
        f[DS][zyx(region(i))] = 2


def _read_while_a_plain_writer_holds(layer: Any, path: Path) -> Any:
    """``layer[region(0)]``, read while a spawned plain h5py writer
    (:func:`_hold_open_for_writing`) has the file open and released 0.3 s into the read.
    A read that waits returns the writer's final 2, not its flushed 1."""
    ctx = multiprocessing.get_context("spawn")
    opened, release = ctx.Event(), ctx.Event()
    writer = ctx.Process(target=_hold_open_for_writing, args=(str(path), 0, opened, release))
    writer.start()
    try:
        assert opened.wait(60)
        threading.Timer(0.3, release.set).start()
        read = layer[region(0)]
    finally:
        release.set()
        writer.join(60)
    assert writer.exitcode == 0
    return read


def _hold_open_until(path: str, opened: Any, release: Any) -> None:
    with h5py.File(path, "r+"):
        opened.set()
        release.wait(60)


# -- writers lose nothing ---------------------------------------------------------------------
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


def test_threads_and_spawned_processes_with_readers_lose_nothing(tmp_path: Path) -> None:
    """Disjoint chunks written at once by 2 spawned processes and 4 threads of this one,
    while a thread here keeps reading through the cached handle."""
    path = tmp_path / "m.h5"
    layer = make_layer(path)
    assert (layer[region(0)] == 0).all()  # the cached handle is open from here on
    errors: list[BaseException] = []
    done = threading.Event()

    def write(k: int) -> None:
        try:
            _write_many(layer, list(range(16 + k, 32, 4)), rounds=3)
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not done.is_set():
                for i in range(32):
                    assert len(np.unique(layer[region(i)])) == 1
        except BaseException as exc:
            errors.append(exc)

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pending = pool.starmap_async(
            _write_many, [(layer, list(range(k, 16, 2)), 3) for k in range(2)]
        )
        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        reader = threading.Thread(target=read)
        for t in [*threads, reader]:
            t.start()
        pending.get(120)
        for t in threads:
            t.join(60)
        done.set()
        reader.join(60)
    assert not errors, errors
    _check_all(path, 32, rounds=3)
    for i in range(32):  # and this process's cached handle sees every write
        assert (layer[region(i)] == _expected(i, 3)).all(), i


# -- readers never see partial writes, and wait for writers ----------------------------------
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


@pytest.mark.parametrize("keep_open", [True, False])
def test_a_read_waits_while_a_plain_h5py_writer_has_the_file_open(
    tmp_path: Path, keep_open: bool
) -> None:
    path = tmp_path / "w.h5"
    make_layer(path)
    layer = open_layer(path, keep_open=keep_open)
    assert (layer[region(0)] == 0).all()
    # the 1 is in the file, but the writer still has it open: the read waits for the 2
    assert (_read_while_a_plain_writer_holds(layer, path) == 2).all()


def test_a_read_gives_up_after_the_lock_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "o.h5"
    layer = make_layer(path)
    monkeypatch.setattr(handles, "LOCK_TIMEOUT_S", 0.2)
    ctx = multiprocessing.get_context("spawn")
    opened, release = ctx.Event(), ctx.Event()
    writer = ctx.Process(target=_hold_open_until, args=(str(path), opened, release))
    writer.start()
    try:
        assert opened.wait(60)
        with pytest.raises(handles.H5LockTimeout, match="open for writing"):
            layer[region(0)]
    finally:
        release.set()
        writer.join(60)
    assert (layer[region(0)] == 0).all()  # and works once the writer is gone


# -- the cached handle: never in anyone's way, always fresh ------------------------------------
def test_plain_h5py_opens_the_file_between_calls_here_and_in_a_spawned_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.h5"
    layer = make_layer(path)
    _write_many(layer, [0], rounds=1)
    assert (layer[region(0)] == 1).all()
    assert state_of(layer).handle is not None  # this process keeps its read handle open
    with h5py.File(path, "r") as f:  # this process: HDF5 would refuse mismatched flags
        assert (f[DS][zyx(region(0))] == 1).all()
    with h5py.File(path, "r+") as f:  # even for writing
        f[DS][zyx(region(1))] = 9
    assert (layer[region(1)] == 9).all()
    _write_many(layer, [2], rounds=1)  # the last completed write, by lamina
    assert (layer[region(2)] == 3).all()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:  # another process: reads, and writes (never refused)
        assert pool.apply(_plain_read_value, (str(path), 2)) == 3
        pool.apply(_plain_write_value, (str(path), 3, 7))
    assert (layer[region(3)] == 7).all()
    code = (
        "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); "
        "assert (f['vol/4_4_40'][0:4, 0:32, 64:96] == 3).all()"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)


@pytest.mark.parametrize("writer", [_lamina_write_value, _plain_write_value])
def test_writes_by_another_process_are_seen_by_the_next_read(tmp_path: Path, writer: Any) -> None:
    """A spawned process writes (through lamina, or plain h5py) while this process holds its
    cached handle: 30 times right after this process's last read, then 10 times once the
    handle is old enough to be trusted (only the stat check can notice those writes)."""
    path = tmp_path / "x.h5"
    layer = make_layer(path)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        pool.apply(writer, (str(path), 5, 100))  # allocates the chunk: later writes in place
        for value in range(1, 41):
            if value > 30:
                time.sleep(0.05)
            before = layer[region(5)]
            assert state_of(layer).handle is not None
            if value > 30:
                assert not state_of(layer).racy
            pool.apply(writer, (str(path), 5, value))
            assert (before == (value - 1 or 100)).all()
            assert (layer[region(5)] == value).all(), value


def test_a_replaced_file_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "v.h5"
    layer = make_layer(path)
    _write_many(layer, [0], rounds=1)
    assert (layer[region(0)] == 1).all()
    other = tmp_path / "v2.h5"
    make_layer(other)[region(0)] = np.full((1, 32, 32, 4), 5, dtype=np.uint16)
    os.replace(other, path)
    assert (layer[region(0)] == 5).all()
    st = state_of(layer)  # the lock moved to the new file too
    assert os.fstat(st.fd).st_ino == path.stat().st_ino
    # waited for the new file's writer
    assert (_read_while_a_plain_writer_holds(layer, path) == 2).all()


@pytest.mark.parametrize("kind", ["symlink", "hard link"])
def test_a_second_path_to_the_same_file_does_not_share_a_stale_handle(
    tmp_path: Path, kind: str
) -> None:
    """HDF5 opens a file once per process: a second path's handle would share the first's
    open file and caches."""
    path = tmp_path / "s.h5"
    real = make_layer(path)
    link = tmp_path / "link.h5"
    if kind == "symlink":
        link.symlink_to(path)
    else:
        os.link(path, link)
    linked = open_layer(link)
    assert (real[region(0)] == 0).all()
    assert (linked[region(0)] == 0).all()
    with h5py.File(path, "r+") as f:
        f[DS][zyx(region(0))] = 4
    assert (real[region(0)] == 4).all()
    assert (linked[region(0)] == 4).all()
    with h5py.File(path, "r+") as f:
        f[DS][zyx(region(0))] = 6
    assert (linked[region(0)] == 6).all()
    assert (real[region(0)] == 6).all()


class _CoarseStat:
    """``os.stat`` or ``os.fstat`` of a filesystem that stores whole seconds and was last
    changed at ``when`` (ns): a write within that second leaves mtime, ctime and size as
    they were."""

    def __init__(self, stat: Any, when: int) -> None:
        self.stat, self.when = stat, when

    def __call__(self, file: Any) -> Any:
        s = self.stat(file)

        class Result:
            st_ino, st_dev, st_size, st_nlink = s.st_ino, s.st_dev, s.st_size, s.st_nlink
            st_mtime_ns = st_ctime_ns = self.when

        return Result


def coarse_timestamps(monkeypatch: pytest.MonkeyPatch, when: int) -> None:
    monkeypatch.setattr(handles, "_stat", _CoarseStat(os.stat, when))
    monkeypatch.setattr(handles, "_fstat", _CoarseStat(os.fstat, when))


def test_coarse_timestamps_cannot_hide_a_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.h5"
    layer = make_layer(path)
    _write_many(layer, [0], rounds=1)  # the chunk is allocated: the next write is in place
    now = time.time_ns()
    coarse_timestamps(monkeypatch, now - now % 1_000_000_000)
    assert (layer[region(0)] == 1).all()
    size = path.stat().st_size
    with h5py.File(path, "r+") as f:  # same size, same (coarse) timestamps
        f[DS][zyx(region(0))] = 8
    assert path.stat().st_size == size
    assert (layer[region(0)] == 8).all()  # the handle was too young to be trusted


def test_the_cached_handle_is_reused_while_the_file_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "u.h5"
    layer = make_layer(path)
    coarse_timestamps(monkeypatch, 1_000_000_000)  # long ago
    assert (layer[region(0)] == 0).all()
    handle = state_of(layer).handle
    for i in range(4):
        assert (layer[region(i)] == 0).all()
    assert state_of(layer).handle is handle


# -- fork, pickling, closing -------------------------------------------------------------------
def _forked_read(layer: Any, i: int, out: Any) -> None:
    """In a forked child (the layer inherited, not unpickled): read, and report whether the
    parent's state was left unused and closed."""
    inherited = layer.backend._st  # the parent's state, as the fork copied it
    assert inherited.pid != os.getpid()
    assert inherited.handle is not None
    seen = _read_uniform(layer, i, 2)
    st = state_of(layer)
    out.put((st.pid == os.getpid(), st is not inherited, inherited.handle is None, seen))


def test_forked_children_never_use_the_parents_handle(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    layer = make_layer(path)
    _write_many(layer, [0, 1, 2], rounds=1)
    assert layer[region(1)].max() == 2  # the parent's handle is open before the fork
    parent = state_of(layer)
    handle = parent.handle
    # changed behind the parent's back: a child whose new handle shared the inherited open
    # file would see its cached chunk of region 1 (a 2)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        pool.apply(_plain_write_value, (str(path), 1, 12))
    fork = multiprocessing.get_context("fork")
    out = fork.SimpleQueue()
    for i in (1, 2):
        child = fork.Process(target=_forked_read, args=(layer, i, out))
        child.start()
        child.join(60)
        assert child.exitcode == 0
    results = [out.get(), out.get()]
    assert [r[:3] for r in results] == [(True, True, True)] * 2
    assert [r[3] for r in results] == [[12, 12], [3, 3]]
    assert parent.handle is handle  # the children closed only their copies
    assert (layer[region(2)] == 3).all()  # and the parent's handle still works
    with fork.Pool(1) as pool:  # a forked child writes
        pool.apply(_write_many, (layer, [3], 1))
    assert (layer[region(1)] == 12).all()
    assert (layer[region(3)] == 4).all()


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
    assert state["keep_open"] is True


def test_clear_cache_delete_and_with_changes_close_the_handle(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    layer = make_layer(path)
    _write_many(layer, [0], rounds=1)
    assert (layer[region(0)] == 1).all()
    st = state_of(layer)
    assert st.handle is not None
    layer.backend.clear_cache()
    assert st.handle is None
    assert st.fd == -1
    assert (layer[region(0)] == 1).all()
    handle = st.handle
    assert handle  # open again
    layer.backend.with_changes(enforce_chunk_aligned_writes=False)
    assert not handle  # closed (the copy's metadata read opened another one)
    assert (layer[region(0)] == 1).all()
    handle = st.handle
    _write_many(layer, [1], rounds=1)  # a lamina write closes it too
    assert not handle
    assert st.handle is None
    other = layer.backend.with_changes(name=f"{path}:/copy")
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["copy", "vol"]
        assert f["copy/4_4_40"].shape == f[DS].shape
    other.delete()
    assert (layer[region(0)] == 1).all()
    layer.backend.delete()
    assert st.handle is None
    assert not path.exists()


def test_keep_open_false_keeps_nothing_open(tmp_path: Path) -> None:
    path = tmp_path / "k.h5"
    make_layer(path).backend.clear_cache()
    layer = open_layer(path, keep_open=False)
    _write_many(layer, [0], rounds=1)
    assert (layer[region(0)] == 1).all()
    st = state_of(layer)
    assert st.handle is None
    assert st.fd == -1
    assert layer.backend.__getstate__()["keep_open"] is False
