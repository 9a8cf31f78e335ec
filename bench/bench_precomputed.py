"""Precomputed volumes on local disk: lamina's ``build_cv_layer`` on each of its engines
next to raw CloudVolume and TensorStore's ``neuroglancer_precomputed`` driver, in one run,
on the same files.

Run: ``python bench/bench_precomputed.py [--repeat N] [--quick] [--profile]`` with
``lamina-precomputed``, ``cloud-volume``, ``tensorstore`` (and ``torch`` for the
training loop) installed. Prints two tables; asserts nothing about time. Without a
working ``lamina_precomputed.build_cv_layer`` the lamina rows are left out (and said so)
and the rest still runs.

The volume: 1024 x 1024 x 128 uint8 random voxels, one channel, resolution (8, 8, 40),
raw encoding, uncompressed, 128 x 128 x 16 chunks, in a fresh temporary directory
(``--quick``: 512 x 512 x 32, 10 cutouts, best of 3, for a smoke run: its ratios are
noisy and not the ones the targets are about). It is written once with raw CloudVolume,
then every library reads those same files:

* full read of the whole volume;
* 100 chunk-aligned 256 x 256 x 16 cutouts and 100 non-aligned 200 x 200 x 10 cutouts, at
  random offsets drawn once from a fixed seed (the same offsets for every library);
* a 1-voxel read, in µs per call (a fixed list of voxels in different chunks, cycled);
* full write of the whole volume, each library into its own directory made with the same
  info: lamina from the C-ordered ``(C, X, Y, Z)`` array; raw CloudVolume from its best
  case, a Fortran-ordered ``(X, Y, Z, C)`` array, and from the C-ordered array's
  ``(X, Y, Z, C)`` transpose; TensorStore from that same transpose (its axes are x, y, z,
  channel);
* sharded: a write of whole shards, ``lamina.flows.copy`` of the volume into a sharded
  destination (identity-hashed shards of 4 x 4 x 4 chunks, raw data), against TensorStore
  writing the same data into the same layout (its copy: ``dst.write(src)``), and every
  library's full read of TensorStore's sharded volume; every result is read back with
  TensorStore and compared with the source;
* peak memory of the full read, each library in a fresh subprocess: peak RSS above the
  RSS just before the read (the kernel's high-water mark ``VmHWM``, reset through
  ``/proc/self/clear_refs`` right before the read; ``ru_maxrss`` minus the RSS before if
  that is not possible), and separately tracemalloc's peak (Python and numpy allocations
  only: TensorStore's C++ buffers are not seen by it). Both after a 1-voxel warm-up read,
  so that lazy imports are not counted;
* a training loop: 1,000 random 128 x 128 x 16 cutouts through ``lamina.torch``'s
  ``LayerDataset`` and ``DataLoader(num_workers=2)``, on each engine, each in a fresh
  interpreter (best of ``--repeat`` epochs after a warm-up epoch).

Timing: one untimed warm-up call per library (which is also where outputs are checked
against the source array), then ``--repeat`` rounds, the libraries interleaved within each
round; the best round counts. MB/s is 10^6 bytes of voxels per second. Raw CloudVolume is
opened with ``bounded=False, fill_missing=True, progress=False, cache=False,
lru_bytes=0, compress=False, delete_black_uploads=False, parallel=1``; lamina with its
defaults and ``engine=`` each engine; TensorStore with no cache pool, reading into
Fortran-ordered ``(X, Y, Z, C)`` arrays like CloudVolume's (``read(order="F")``: its
default C order costs a transpose, several times the time of the full read: see
bench/README.md, "Precomputed"). After the writes, every directory is read back with raw
CloudVolume and compared with the source, and checked to hold no ``.gz`` chunk (which would
mean a compressed write).

``vs raw CV`` and ``vs TS``: throughput over raw CloudVolume's and TensorStore's (reads:
the same row; writes: CloudVolume's best, Fortran-ordered write), µs per call and memory
as a multiple. The targets are for lamina's default engine on local files
(``engine="auto"``: the cloudvolume engine): against raw TensorStore, >= 1.0x on the
reads, the write and the sharded read, <= TensorStore + 30 µs per 1-voxel call; against
raw CloudVolume, >= 0.95x on every read row, >= 1.0x on the write, <= 1.1x per 1-voxel
call, <= 1.3x peak memory. ``--profile`` adds cProfile listings of lamina's calls (sorted
by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import io
import json
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from volumes import new_raw_volume, versions

RES = (8, 8, 40)
VERSIONED = ("numpy", "cloud-volume", "cloud-files", "tensorstore", "lamina", "lamina-precomputed")
CHUNK = (128, 128, 16)
ALIGNED = (256, 256, 16)
UNALIGNED = (200, 200, 10)
CV_KWARGS: dict[str, Any] = {
    "mip": 0,
    "bounded": False,
    "fill_missing": True,
    "progress": False,
    "cache": False,
    "lru_bytes": 0,
    "compress": False,
    "delete_black_uploads": False,
    "parallel": 1,
}

Slices = tuple[slice, slice, slice]
Reader = Callable[[Slices], Any]

CV = "raw CloudVolume"
TS = "TensorStore"
LAMINA_TS = "lamina, tensorstore engine"
LAMINA_CV = "lamina, cloudvolume engine"
#: lamina on each engine
LAMINAS = {LAMINA_TS: "tensorstore", LAMINA_CV: "cloudvolume"}
#: the engine ``engine="auto"`` takes on local files: the rows the targets are about
DEFAULT_LOCAL = LAMINA_CV


@dataclass(frozen=True)
class Config:
    shape: tuple[int, int, int]
    cutouts: int
    voxel_calls: int
    repeat: int
    seed: int = 0


FULL = Config(shape=(1024, 1024, 128), cutouts=100, voxel_calls=200, repeat=5)
QUICK = Config(shape=(512, 512, 32), cutouts=10, voxel_calls=20, repeat=3)


# --------------------------------------------------------------------------- libraries


def cv_open(path: str) -> Any:
    from cloudvolume import CloudVolume

    return CloudVolume(f"file://{path}", **CV_KWARGS)


def cv_reader(path: str) -> Reader:
    vol = cv_open(path)

    def read(sl: Slices) -> Any:
        return vol[sl]

    return read


def ts_open(path: str) -> Any:
    import tensorstore as ts

    spec = {
        "driver": "neuroglancer_precomputed",
        "kvstore": {"driver": "file", "path": path},
        "scale_index": 0,
        "context": {"cache_pool": {"total_bytes_limit": 0}},
    }
    return ts.open(spec, read=True, write=True).result()


def ts_reader(path: str) -> Reader:
    arr = ts_open(path)

    def read(sl: Slices) -> Any:
        return arr[sl].read(order="F").result()

    return read


def lamina_layer(path: str, lib: str = LAMINA_TS) -> Any:
    import lamina_precomputed

    return lamina_precomputed.build_cv_layer(f"file://{path}", engine=LAMINAS[lib])


def lamina_reader(path: str, lib: str = LAMINA_TS) -> Reader:
    from lamina import Vec3D

    layer = lamina_layer(path, lib)
    assert layer.backend.engine == LAMINAS[lib]
    res = Vec3D(*RES)

    def read(sl: Slices) -> Any:
        return layer[res, sl[0], sl[1], sl[2]]

    return read


def xyzc_as_cxyz(a: Any) -> np.ndarray[Any, Any]:
    return np.asarray(a).transpose(3, 0, 1, 2)


def cxyz(a: Any) -> np.ndarray[Any, Any]:
    return np.asarray(a)


READERS: dict[str, tuple[Callable[[str], Reader], Callable[[Any], np.ndarray[Any, Any]]]] = {
    CV: (cv_reader, xyzc_as_cxyz),
    LAMINA_TS: (functools.partial(lamina_reader, lib=LAMINA_TS), cxyz),
    LAMINA_CV: (functools.partial(lamina_reader, lib=LAMINA_CV), cxyz),
    TS: (ts_reader, xyzc_as_cxyz),
}


def lamina_problem() -> str | None:
    """Why lamina's rows cannot run, or None if ``build_cv_layer`` is there."""
    try:
        import lamina_precomputed

        lamina_precomputed.build_cv_layer  # noqa: B018
    except (ImportError, AttributeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


# --------------------------------------------------------------------------- the volume


def new_volume(path: str, shape: tuple[int, int, int]) -> Any:
    """An empty raw, uncompressed volume at ``path`` (made by CloudVolume), opened."""
    return new_raw_volume(path, shape, RES, CHUNK, **CV_KWARGS)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower())


def full(shape: Sequence[int]) -> Slices:
    return (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))


def cutouts(
    rng: np.random.Generator, shape: Sequence[int], size: Sequence[int], n: int, step: Sequence[int]
) -> list[Slices]:
    """``n`` boxes of ``size`` inside ``shape``, offsets multiples of ``step``."""
    boxes = []
    for _ in range(n):
        lo = [
            int(rng.integers(0, (s - k) // st + 1)) * st
            for s, k, st in zip(shape, size, step, strict=True)
        ]
        boxes.append(tuple(slice(a, a + k) for a, k in zip(lo, size, strict=True)))
    return boxes  # type: ignore[return-value]


# --------------------------------------------------------------------------- timing


@dataclass
class Row:
    case: str
    lib: str
    value: float  # seconds, or µs per call, or bytes (memory rows)
    unit: str  # "s", "us", "bytes"
    nbytes: int = 0  # voxel bytes moved, for MB/s
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def interleaved_best(
    fns: dict[str, Callable[[], Any]], repeat: int, shuffle: bool = False
) -> dict[str, float]:
    """Best wall time of each function over ``repeat`` rounds, all run once per round;
    ``shuffle``: each round in an order of its own (seeded), so that no function always
    runs right after the same other one (on this VM a read that hands work to threads
    right after a single-threaded one was up to 40% slower: the idle core wakes late)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    rng = random.Random(0)
    for _ in range(repeat):
        if shuffle:
            rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def loop(read: Reader, boxes: Sequence[Slices]) -> Callable[[], None]:
    def run() -> None:
        for sl in boxes:
            read(sl)

    return run


def check_reads(
    lib: str, read: Reader, to_cxyz: Callable[[Any], Any], data: Any, boxes: Sequence[Slices]
) -> None:
    """The warm-up: read every box once and compare it with the source array."""
    for sl in boxes:
        got = to_cxyz(read(sl))
        want = data[(slice(None), *sl)]
        if got.shape != want.shape or not np.array_equal(got, want):
            raise AssertionError(f"{lib}: wrong data for {sl} (shape {got.shape})")


def read_rows(libs: Sequence[str], path: str, data: Any, cfg: Config, repeat: int) -> list[Row]:
    rng = np.random.default_rng(cfg.seed)
    shape = cfg.shape
    aligned = cutouts(rng, shape, ALIGNED, cfg.cutouts, CHUNK)
    unaligned = cutouts(rng, shape, UNALIGNED, cfg.cutouts, (1, 1, 1))
    voxel_boxes = cutouts(rng, shape, (1, 1, 1), 8, (1, 1, 1))
    voxels = [voxel_boxes[i % len(voxel_boxes)] for i in range(cfg.voxel_calls)]
    readers = {lib: READERS[lib][0](path) for lib in libs}
    x, y, z = shape
    cases: list[tuple[str, Sequence[Slices], str]] = [
        (f"full read {x}x{y}x{z}", [full(shape)], "1 call"),
        (f"{cfg.cutouts} aligned 256x256x16 cutouts", aligned, "offsets multiples of the chunk"),
        (f"{cfg.cutouts} non-aligned 200x200x10 cutouts", unaligned, "fixed random offsets"),
    ]
    rows = []
    for case, boxes, note in cases:
        for lib in libs:
            check_reads(lib, readers[lib], READERS[lib][1], data, boxes)
        best = interleaved_best({lib: loop(readers[lib], boxes) for lib in libs}, repeat)
        nbytes = sum(int(np.prod([s.stop - s.start for s in sl])) for sl in boxes)
        rows += [Row(case, lib, best[lib], "s", nbytes, note) for lib in libs]
    case = "1-voxel read"
    for lib in libs:
        check_reads(lib, readers[lib], READERS[lib][1], data, voxel_boxes)
    best = interleaved_best({lib: loop(readers[lib], voxels) for lib in libs}, repeat)
    note = f"µs per call, {cfg.voxel_calls} calls over 8 voxels in different chunks"
    rows += [Row(case, lib, best[lib] / len(voxels) * 1e6, "us", 0, note) for lib in libs]
    return rows


def write_rows(libs: Sequence[str], root: Path, data_c: Any, cfg: Config, repeat: int) -> list[Row]:
    """Full writes, each into its own directory made with the same info."""
    data_f = np.asfortranarray(data_c.transpose(1, 2, 3, 0))  # CloudVolume's best layout
    data_t = data_c.transpose(1, 2, 3, 0)  # (X, Y, Z, C) view of the C-ordered array
    assert data_t.flags.c_contiguous
    assert data_f.flags.f_contiguous
    sl = full(cfg.shape)
    writers: dict[str, tuple[Callable[[], None], str]] = {}

    def cv_write(name: str, arr: Any, note: str) -> None:
        vol = new_volume(str(root / slug(name)), cfg.shape)

        def write() -> None:
            vol[sl] = arr

        writers[name] = (write, note)

    cv_write(f"{CV}, F-order", data_f, "Fortran-ordered (X,Y,Z,C): CloudVolume's best")
    cv_write(f"{CV}, C-order", data_t, "(X,Y,Z,C) transpose of the C-ordered array")
    from lamina import Vec3D

    res = Vec3D(*RES)
    for lib in (lib for lib in libs if lib in LAMINAS):
        new_volume(str(root / slug(lib)), cfg.shape)
        layer = lamina_layer(str(root / slug(lib)), lib)

        def lamina_write(layer: Any = layer) -> None:
            layer[res, sl[0], sl[1], sl[2]] = data_c

        writers[lib] = (lamina_write, "C-ordered (C,X,Y,Z)")
    if TS in libs:
        new_volume(str(root / slug(TS)), cfg.shape)
        arr = ts_open(str(root / slug(TS)))

        def ts_write() -> None:
            arr[sl].write(data_t).result()

        writers[TS] = (ts_write, "(X,Y,Z,C) transpose of the C-ordered array")

    for write, _ in writers.values():
        write()  # warm-up: the chunk files exist from here on, for every library
    best = interleaved_best({name: w for name, (w, _) in writers.items()}, repeat)
    for name in writers:
        where = root / slug(name)
        gz = list(where.rglob("*.gz"))
        if gz:
            raise AssertionError(f"{name}: wrote compressed chunks, e.g. {gz[0]}")
        back = xyzc_as_cxyz(cv_open(str(where))[sl])
        if not np.array_equal(back, data_c):
            raise AssertionError(f"{name}: the written volume does not read back equal")
    return [
        Row("full write", name, best[name], "s", data_c.nbytes, note)
        for name, (_, note) in writers.items()
    ]


# --------------------------------------------------------------------------- sharded

#: Identity-hashed shards of 4 x 4 x 4 chunks (512 x 512 x 64 voxels of 128 x 128 x 16
#: chunks): the layout Igneous and TensorStore choose for image volumes.
SHARDING = {
    "@type": "neuroglancer_uint64_sharded_v1",
    "hash": "identity",
    "preshift_bits": 3,
    "minishard_bits": 3,
    "shard_bits": 3,
    "minishard_index_encoding": "gzip",
    "data_encoding": "raw",
}


def new_sharded_volume(path: str, shape: tuple[int, int, int]) -> Any:
    """An empty sharded raw uint8 volume at ``path``, made and opened by TensorStore."""
    import tensorstore as ts

    spec = {
        "driver": "neuroglancer_precomputed",
        "kvstore": {"driver": "file", "path": path},
        "multiscale_metadata": {"type": "image", "data_type": "uint8", "num_channels": 1},
        "scale_metadata": {
            "resolution": list(RES),
            "encoding": "raw",
            "chunk_size": list(CHUNK),
            "size": list(shape),
            "sharding": SHARDING,
        },
        "create": True,
        "context": {"cache_pool": {"total_bytes_limit": 0}},
    }
    return ts.open(spec).result()


def sharded_rows(
    libs: Sequence[str], root: Path, src: str, data_c: Any, cfg: Config, repeat: int
) -> list[Row]:
    """A write of whole shards, and a copy of the unsharded source into a sharded
    destination, by lamina and by TensorStore, each into its own volume; every result is
    read back with TensorStore and compared with the source."""
    from lamina import Vec3D, flows

    data_t = data_c.transpose(1, 2, 3, 0)  # (X, Y, Z, C) view of the C-ordered array
    sl = full(cfg.shape)
    res = Vec3D(*RES)
    writes: dict[str, Callable[[], None]] = {}
    copies: dict[str, Callable[[], None]] = {}
    made: list[str] = []
    for lib in (lib for lib in libs if lib in LAMINAS):
        write_dir, copy_dir = str(root / f"{slug(lib)}-write"), str(root / f"{slug(lib)}-copy")
        new_sharded_volume(write_dir, cfg.shape)
        new_sharded_volume(copy_dir, cfg.shape)
        layer = lamina_layer(write_dir, lib)
        source, target = lamina_layer(src, lib), lamina_layer(copy_dir, lib)

        def lamina_write(layer: Any = layer) -> None:
            layer[res, sl[0], sl[1], sl[2]] = data_c

        def lamina_copy(source: Any = source, target: Any = target) -> None:
            flows.copy(source, target, progress=False, journal_dir=str(root / "journals"))

        writes[lib], copies[lib] = lamina_write, lamina_copy
        made += [write_dir, copy_dir]
    write_dir, copy_dir = str(root / "ts-write"), str(root / "ts-copy")
    ts_out = new_sharded_volume(write_dir, cfg.shape)
    ts_dst = new_sharded_volume(copy_dir, cfg.shape)
    ts_src = ts_open(src)

    def ts_write() -> None:
        ts_out[sl].write(data_t).result()

    def ts_copy() -> None:
        ts_dst[sl].write(ts_src[sl]).result()

    writes[TS], copies[TS] = ts_write, ts_copy
    made += [write_dir, copy_dir]
    rows = []
    shard = "identity-hashed shards of 512x512x64 voxels"
    for case, fns, note in (
        (f"full write, sharded ({shard})", writes, "whole shards, from the C-ordered array"),
        (f"copy into a sharded volume ({shard})", copies, "lamina: flows.copy, serial"),
    ):
        for fn in fns.values():
            fn()  # warm-up
        best = interleaved_best(fns, repeat)
        rows += [Row(case, lib, best[lib], "s", data_c.nbytes, note) for lib in fns]
    for where in made:
        back = xyzc_as_cxyz(ts_reader(where)(sl))
        if not np.array_equal(back, data_c):
            raise AssertionError(f"{where}: the sharded volume does not read back equal")
    # every library reads the volume TensorStore wrote in shards
    readers = {lib: READERS[lib][0](write_dir) for lib in libs}
    for lib in libs:
        check_reads(lib, readers[lib], READERS[lib][1], data_c, [sl])
    best = interleaved_best({lib: loop(readers[lib], [sl]) for lib in libs}, repeat)
    case = f"full read, sharded ({shard})"
    rows += [Row(case, lib, best[lib], "s", data_c.nbytes, "TensorStore's shards") for lib in libs]
    return rows


# --------------------------------------------------------------------------- memory


def _status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def memory_child(lib: str, path: str, method: str, shape: Sequence[int]) -> dict[str, Any]:
    """Runs in a fresh interpreter: the peak memory of one full read by ``lib``."""
    make, _ = READERS[lib]
    read = make(path)
    read((slice(0, 1), slice(0, 1), slice(0, 1)))  # lazy imports, first-call set-up
    gc.collect()
    if method == "tracemalloc":
        tracemalloc.start()
        out = read(full(shape))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {"peak": peak, "nbytes": np.asarray(out).nbytes, "how": "tracemalloc peak"}
    before = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        how = "VmHWM after reset - VmRSS before"
        hwm = True
    except OSError:
        how = "ru_maxrss after - VmRSS before"
        hwm = False
    out = read(full(shape))
    after = _status_kib("VmHWM") if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak": (after - before) * 1024, "nbytes": np.asarray(out).nbytes, "how": how}


def memory_rows(libs: Sequence[str], path: str, cfg: Config) -> tuple[list[Row], str]:
    rows = []
    hows = set()
    for lib in libs:
        res: dict[str, Any] = {}
        for method in ("rss", "tracemalloc"):
            cmd = [sys.executable, __file__, "--memory-child", lib, path, method]
            cmd += [str(s) for s in cfg.shape]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode:
                raise RuntimeError(f"memory child for {lib} failed:\n{out.stderr}")
            res[method] = json.loads(out.stdout.strip().splitlines()[-1])
        hows.add(res["rss"]["how"])
        nbytes = res["rss"]["nbytes"]
        traced = res["tracemalloc"]["peak"]
        note = f"tracemalloc peak {traced / 2**20:.1f} MiB" + (
            " (C++ buffers not seen)" if lib == TS else ""
        )
        rows.append(
            Row(
                "peak memory of the full read",
                lib,
                res["rss"]["peak"],
                "bytes",
                nbytes,
                note,
                {"traced": traced},
            )
        )
    return rows, "; ".join(sorted(hows))


# --------------------------------------------------------------------------- training loop

#: A training-style loop: random 128 x 128 x 16 cutouts read through lamina.torch's
#: LayerDataset by torch's DataLoader with 2 worker processes (forked: torch's default on
#: Linux), one sample per item, on each engine, and the same loop over raw CloudVolume
#: (a Dataset whose items are ``cv[box]``). Issue 21 asked lamina's default engine for
#: 2x the loop on CloudVolume; its "cloudvolume engine" has since become lamina's own chunk
#: IO, so the target is taken against raw CloudVolume, and both engines are shown.
TRAIN_SIZE = (128, 128, 16)
TRAIN_WORKERS = 2
TRAIN_TARGET = 2.0


class RandomCutouts:
    """The dataset's indexer: ``n`` random boxes of :data:`TRAIN_SIZE` inside ``shape``."""

    def __init__(self, shape: Sequence[int], n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.boxes = cutouts(rng, shape, TRAIN_SIZE, n, (1, 1, 1))

    def __len__(self) -> int:
        return len(self.boxes)

    def __call__(self, i: int) -> Any:
        from lamina import VolumetricIndex

        sl = self.boxes[i]
        return VolumetricIndex.from_coords([s.start for s in sl], [s.stop for s in sl], RES)


class CloudVolumeCutouts:
    """A map-style torch dataset of the same boxes read by raw CloudVolume (as a
    CloudVolume user's loop does), each sample a ``(C, X, Y, Z)`` tensor like lamina's."""

    def __init__(self, path: str, boxes: RandomCutouts) -> None:
        self.cv = cv_open(path)
        self.boxes = boxes.boxes

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, i: int) -> Any:
        import torch

        return torch.from_numpy(xyzc_as_cxyz(self.cv[self.boxes[i]]))


def training_child(lib: str, path: str, shape: Sequence[int], n: int, repeat: int) -> float:
    """Runs in a fresh interpreter (so the parent has not used TensorStore before the
    DataLoader forks): the best time of ``repeat`` epochs after a warm-up epoch."""
    import torch.utils.data

    from lamina.torch import LayerDataset

    boxes = RandomCutouts(shape, n, seed=1)
    dataset: Any
    if lib == CV:
        dataset = CloudVolumeCutouts(path, boxes)
    else:
        dataset = LayerDataset(lamina_layer(path, lib), boxes)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=TRAIN_WORKERS)
    times = []
    for epoch in range(repeat + 1):
        start = time.perf_counter()
        count = sum(1 for _ in loader)
        if epoch:
            times.append(time.perf_counter() - start)
        assert count == n
    return min(times)


def training_rows(libs: Sequence[str], path: str, cfg: Config, repeat: int) -> list[Row]:
    """The training loop on each engine, each in its own subprocess."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed: no training-loop rows")
        return []
    n = cfg.cutouts * 10
    rows = []
    for lib in (lib for lib in libs if lib in LAMINAS or lib == CV):
        cmd = [sys.executable, __file__, "--training-child", lib, path, str(n), str(repeat)]
        cmd += [str(s) for s in cfg.shape]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode:
            raise RuntimeError(f"training child for {lib} failed:\n{out.stderr}")
        best = float(out.stdout.strip().splitlines()[-1])
        nbytes = n * int(np.prod(TRAIN_SIZE))
        note = f"{n} samples, DataLoader(num_workers={TRAIN_WORKERS}), forked workers"
        rows.append(Row(f"training loop, {n} random 128x128x16", lib, best, "s", nbytes, note))
    return rows


def format_training(rows: Sequence[Row]) -> str:
    """The training rows, each against raw CloudVolume's loop and the cloudvolume engine's."""
    if not rows:
        return ""
    engine = next((r for r in rows if r.lib == LAMINA_CV), None)
    raw = next((r for r in rows if r.lib == CV), None)
    lines = [
        f"{'case':40s} {'library':28s} {'best':>10s} {'samples/s':>10s} {'vs raw CV':>10s} "
        f"{'vs cv engine':>12s}"
    ]
    for r in rows:
        vs_raw = raw.value / r.value if raw else None
        vs_engine = engine.value / r.value if engine else None
        met = ""
        if r.lib in LAMINAS and vs_raw is not None:
            met = f"  target >={TRAIN_TARGET:.1f}x CV: {'yes' if vs_raw >= TRAIN_TARGET else 'NO'}"
        n = r.nbytes // int(np.prod(TRAIN_SIZE))
        lines.append(
            f"{r.case:40s} {r.lib:28s} {r.value:>8.3f} s {n / r.value:>10.0f} "
            f"{(f'{vs_raw:.2f}x' if vs_raw else '-'):>10s} "
            f"{(f'{vs_engine:.2f}x' if vs_engine else '-'):>12s}{met}  {r.note}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- table

#: Targets of the CloudVolume engine against raw CloudVolume (issue 4): throughput ratios
#: for reads ("s") and the write, multiples for 1-voxel µs and memory.
CV_TARGETS = {"s": 0.95, "write": 1.0, "us": 1.1, "bytes": 1.3}
#: Targets of the default (TensorStore) engine against raw TensorStore (issue 21):
#: throughput >= 1.0x on reads, the write and the sharded read; 1-voxel <= TS + 30 µs.
TS_TARGET = 1.0
TS_VOXEL_MARGIN_US = 30.0
SHARDED_CASES = ("full write, sharded", "copy into a sharded volume")


def _ratio(r: Row, base: Row | None) -> float | None:
    """Throughput over ``base``'s for timed rows; a multiple of it for µs and memory."""
    if base is None:
        return None
    return base.value / r.value if r.unit == "s" else r.value / base.value


def _target(r: Row, vs_cv: float | None, ts_row: Row | None) -> tuple[str, str]:
    """The targets of a row of lamina's default engine on local files (the cloudvolume
    engine): against raw TensorStore (issue 21) and raw CloudVolume (issue 4); blank for
    other rows. ``met`` is yes when every target of the row is."""
    if r.lib != DEFAULT_LOCAL or r.case.startswith(SHARDED_CASES):
        return "", ""
    goals: list[tuple[str, bool]] = []
    if ts_row is not None and r.unit == "s":
        goals.append((f">={TS_TARGET:.1f}x TS", ts_row.value / r.value >= TS_TARGET))
    if ts_row is not None and r.unit == "us":
        limit = ts_row.value + TS_VOXEL_MARGIN_US
        goals.append((f"<=TS+{TS_VOXEL_MARGIN_US:.0f}µs", r.value <= limit))
    if vs_cv is not None and not r.case.startswith("full read, sharded"):
        goal = CV_TARGETS["write" if r.case == "full write" else r.unit]
        if r.unit == "s":
            goals.append((f">={goal:.2f}x CV", vs_cv >= goal))
        else:
            goals.append((f"<={goal:.2f}x CV", vs_cv <= goal))
    if not goals:
        return "", ""
    return ", ".join(g for g, _ in goals), "yes" if all(ok for _, ok in goals) else "NO"


def format_table(rows: Sequence[Row], mem_how: str) -> str:
    cv_rows: dict[str, Row] = {}
    ts_rows: dict[str, Row] = {}
    for r in rows:
        if r.lib == CV or r.lib == f"{CV}, F-order":
            cv_rows[r.case] = r
        elif r.lib == TS:
            ts_rows[r.case] = r
    head = (
        f"{'case':36s} {'library':28s} {'best':>10s} {'MB/s':>8s} {'vs raw CV':>9s} "
        f"{'vs TS':>7s} {'target':>26s} {'met':>4s}  note"
    )
    lines = [head, "-" * 170]
    last = None
    for r in rows:
        if last is not None and r.case != last:
            lines.append("")
        case = r.case if r.case != last else ""
        last = r.case
        rate = "-"
        if r.unit == "s":
            best = f"{r.value:.4f} s"
            rate = f"{r.nbytes / r.value / 1e6:.0f}"
        elif r.unit == "us":
            best = f"{r.value:.1f} µs"
        else:
            best = f"{r.value / 2**20:.1f} MiB"
            r.note = f"{r.value / r.nbytes:.2f}x the {r.nbytes / 2**20:.0f} MiB result; {r.note}"
        vs_cv = _ratio(r, cv_rows.get(r.case))
        vs_ts = _ratio(r, ts_rows.get(r.case))
        target, met = _target(r, vs_cv, ts_rows.get(r.case))
        shown_cv = f"{vs_cv:.2f}x" if vs_cv is not None else "-"
        shown_ts = f"{vs_ts:.2f}x" if vs_ts is not None else "-"
        lines.append(
            f"{case:36s} {r.lib:28s} {best:>10s} {rate:>8s} {shown_cv:>9s} {shown_ts:>7s} "
            f"{target:>26s} {met:>4s}  {r.note}"
        )
    lines.append("")
    lines.append(
        "vs raw CV, vs TS: throughput ratio for timed rows (higher is better; the write is "
        "compared with CloudVolume's F-order write), multiple for µs and memory (lower is "
        f"better). Memory: {mem_how}, each library in a fresh subprocess. Targets: for the "
        "default engine on local files (engine='auto': the cloudvolume engine), against "
        "raw TensorStore and raw CloudVolume."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- profile


def profile_lamina(path: str, write_path: str, data_c: Any, cfg: Config, top: int) -> str:
    """cProfile listings of lamina's calls, one per case, sorted by cumulative time."""
    from lamina import Vec3D

    rng = np.random.default_rng(cfg.seed)
    aligned = cutouts(rng, cfg.shape, ALIGNED, cfg.cutouts, CHUNK)
    unaligned = cutouts(rng, cfg.shape, UNALIGNED, cfg.cutouts, (1, 1, 1))
    voxel = cutouts(rng, cfg.shape, (1, 1, 1), 8, (1, 1, 1))
    read = lamina_reader(path, DEFAULT_LOCAL)
    layer = lamina_layer(write_path, DEFAULT_LOCAL)
    res = Vec3D(*RES)
    sl = full(cfg.shape)

    def write() -> None:
        layer[res, sl[0], sl[1], sl[2]] = data_c

    cases = [
        ("full read", loop(read, [sl])),
        ("aligned cutouts", loop(read, aligned)),
        ("non-aligned cutouts", loop(read, unaligned)),
        ("1-voxel reads", loop(read, voxel * max(1, cfg.voxel_calls // 8))),
        ("full write", write),
    ]
    out = []
    for name, fn in cases:
        fn()  # warm-up
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        by_package = own_time_by_package(stats)
        stats.strip_dirs().sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(min(top, 10))
        out.append(f"=== lamina, {name} ===\n{by_package}\n{buf.getvalue().strip()}")
    return "\n\n".join(out)


PACKAGES = (
    ("lamina_precomputed", "/lamina_precomputed/"),
    ("lamina (core)", "/lamina/"),
    ("cloudvolume", "/cloudvolume/"),
    ("cloudfiles", "/cloudfiles/"),
    ("numpy (Python part)", "/numpy/"),
    ("C functions (numpy kernels, file I/O, ...)", "~"),
)


def own_time_by_package(stats: pstats.Stats) -> str:
    """Profiled time spent in each package's own code (cProfile's tottime, summed)."""
    totals: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = next((name for name, mark in PACKAGES if mark in filename), "other")
        totals[where] = totals.get(where, 0.0) + tottime
    everything = sum(totals.values()) or 1.0
    lines = ["own time by package:"]
    for where, sec in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {where:44s} {sec:8.4f} s  {100 * sec / everything:5.1f} %")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, help="timed rounds, best counts (5; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="small volume, for a smoke run")
    parser.add_argument("--profile", action="store_true", help="cProfile lamina's calls")
    parser.add_argument("--profile-lines", type=int, default=25, help="lines per listing")
    parser.add_argument("--dir", help="where to put the volumes (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the volumes afterwards")
    parser.add_argument("--memory-child", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--training-child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        lib, path, method, *shape = args.memory_child
        print(json.dumps(memory_child(lib, path, method, [int(s) for s in shape])))
        return
    if args.training_child:
        lib, path, n, rounds, *shape = args.training_child
        print(training_child(lib, path, [int(s) for s in shape], int(n), int(rounds)))
        return

    cfg = QUICK if args.quick else FULL
    repeat = args.repeat or cfg.repeat
    problem = lamina_problem()
    libs = [CV, TS] if problem else [CV, *LAMINAS, TS]
    root = Path(tempfile.mkdtemp(prefix="bench-precomputed-", dir=args.dir))
    try:
        print(versions(VERSIONED))
        print(
            f"volume {'x'.join(map(str, cfg.shape))} uint8, chunks {'x'.join(map(str, CHUNK))}, "
            f"raw, uncompressed, in {root}; best of {repeat} interleaved rounds; "
            f"{os.cpu_count()} cores"
        )
        if problem:
            print(f"lamina rows left out: lamina_precomputed.build_cv_layer unusable ({problem})")
        rng = np.random.default_rng(cfg.seed)
        data = rng.integers(0, 256, (1, *cfg.shape), dtype=np.uint8)  # (C, X, Y, Z), C order
        src = str(root / "source")
        new_volume(src, cfg.shape)[full(cfg.shape)] = np.asfortranarray(data.transpose(1, 2, 3, 0))
        rows = read_rows(libs, src, data, cfg, repeat)
        rows += write_rows(libs, root / "writes", data, cfg, repeat)
        rows += sharded_rows(libs, root / "sharded", src, data, cfg, repeat)
        mem, how = memory_rows(libs, src, cfg)
        rows += mem
        training = training_rows(libs, src, cfg, repeat)
        print()
        print(format_table(rows, how))
        print()
        print(format_training(training))
        if args.profile:
            print()
            if problem:
                print(f"--profile: no lamina to profile ({problem})")
            else:
                lamina_dir = str(root / "writes" / slug(DEFAULT_LOCAL))
                print(profile_lamina(src, lamina_dir, data, cfg, args.profile_lines))
    finally:
        if args.keep:
            print(f"volumes kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
