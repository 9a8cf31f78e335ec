"""Zarr v3 volumes on local disk (issue 22): lamina-zarr's ``build_zarr_layer`` on each
of its engines next to raw TensorStore's ``zarr3`` driver and zarr-python 3, in one run,
on the same files.

Run: ``cd bench && python bench_zarr.py [--repeat N] [--quick] [--dir DIR]
[--encodings raw,zstd] [--keep]`` with ``lamina-zarr``, ``tensorstore`` and ``zarr`` (3.x)
installed. Prints one table per encoding; asserts nothing about time.

The volumes: 1024 x 1024 x 128 uint8 random voxels, one channel, resolution (8, 8, 40),
128 x 128 x 16 chunks (x, y, z), made by lamina (``build_zarr_layer`` with ``info_*``
parameters: OME-Zarr 0.5 on Zarr v3, the dataset ``s0`` a ``(c, z, y, x)`` array) and
filled through a lamina layer, in a fresh temporary directory (``--dir``: under it). Two
layouts, unsharded and in shards of 512 x 512 x 64, each in each encoding of
``--encodings`` (``raw``: no compression; ``zstd``: lamina's default, level 3), each
encoding its own table. ``--quick``: 512 x 512 x 32, 10 cutouts, best of 3, for a smoke
run (noisy ratios, not the ones the target is about). Rows:

* full read of the whole volume;
* 100 chunk-aligned 256 x 256 x 16 cutouts (offsets multiples of the chunk) and 100
  non-aligned 200 x 200 x 10 cutouts, at random offsets drawn once from a fixed seed (the
  same boxes for every library and every volume);
* full write of the whole volume from an in-memory array, into a fresh array each round
  (made by lamina with the same metadata, outside the timing, dirty pages flushed by
  ``os.sync()`` before each timed write). Every library gets the one C-ordered
  ``(c, z, y, x)`` array in the layout it takes best: lamina its ``(C, X, Y, Z)``
  transposed view (the stored layout, so no transposing copy: lamina's layers take
  ``(C, X, Y, Z)``), raw TensorStore and zarr-python the C-ordered array itself on the
  ``(c, z, y, x)`` array. The raw libraries' timed call includes opening the fresh array
  (``ts.open``, ``zarr.open_array``), as lamina's first write opens its handle. The last
  array each library wrote is read back and compared with the source. Raw TensorStore
  writes with its default (each chunk file fsynced) and, in a row of its own, with
  ``file_io_sync=false``: the durability lamina's writes have (none of lamina's writers
  fsyncs a chunk file, nor do CloudVolume and zarr-python).

The libraries: lamina with its defaults (``engine="auto"``: reads by lamina's own chunk
reader on local files, writes by TensorStore), with ``engine="tensorstore"`` and with
``engine="zarr-python"``, each a layer built once per volume, read as ``layer[x, y, z]``
(``(C, X, Y, Z)`` results); raw TensorStore, ``zarr3`` driver opened once on the dataset
``s0`` with no cache pool (like lamina's default ``cache_bytes_limit=0``), in its better
layout: the ``(x, y, z, c)`` transposed view read with ``order="F"``, or the ``(c, z, y,
x)`` array read in C order; both are timed over one pass of the three read rows (best of
2 interleaved passes) and the faster is kept (printed below each table); zarr-python 3:
``zarr.open_array(s0)[c, z, y, x]``, opened once.

Timing: one untimed warm-up call per library and row, which is also where every library's
output is compared with the source array (so all read the same values), then ``--repeat``
rounds (default 5), the libraries interleaved within each round, each read round in an
order of its own (a seeded shuffle: on this VM, TensorStore reading right after a
single-threaded reader ran up to 40% slower than after itself); the best round counts.
MB/s is 10^6 bytes of voxels per second. ``vs TS`` and ``vs zarr-python``: lamina's
throughput over raw TensorStore's and zarr-python's on the same row; the target is
>= 1.0x against both, marked yes / NO on both lamina rows.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bench_precomputed import Row, Slices, check_reads, cutouts, full, interleaved_best, loop, slug
from volumes import versions

RES = (8, 8, 40)
CHUNK = (128, 128, 16)
SHARD = (512, 512, 64)
ALIGNED = (256, 256, 16)
UNALIGNED = (200, 200, 10)
#: layout name -> shard size (x, y, z), None for unsharded
LAYOUTS: dict[str, tuple[int, int, int] | None] = {"unsharded": None, "sharded": SHARD}
VERSIONED = ("numpy", "tensorstore", "zarr", "numcodecs", "lamina", "lamina-zarr")
TARGET = 1.0

LAMINA = "lamina (default engine)"
LAMINA_TS = "lamina, engine=tensorstore"
LAMINA_ZP = "lamina, engine=zarr-python"
TS = "raw TensorStore"
#: writes only: raw TensorStore with lamina's durability (no fsync of each chunk file)
TS_NOSYNC = "raw TS, file_io_sync=false"
ZP = "zarr-python"
#: lamina's rows: the ``engine=`` each passes, and the engine the backend must report
LAMINAS: dict[str, tuple[str | None, str]] = {
    LAMINA: (None, "lamina"),
    LAMINA_TS: ("tensorstore", "tensorstore"),
    LAMINA_ZP: ("zarr-python", "zarr-python"),
}
LIBS = (LAMINA, LAMINA_TS, LAMINA_ZP, TS, ZP)

Array = np.ndarray[Any, Any]
Reader = Callable[[Slices], Any]
ToCXYZ = Callable[[Any], Array]


@dataclass(frozen=True)
class Config:
    shape: tuple[int, int, int]
    cutouts: int
    repeat: int
    seed: int = 0


FULL = Config(shape=(1024, 1024, 128), cutouts=100, repeat=5)
QUICK = Config(shape=(512, 512, 32), cutouts=10, repeat=3)


# --------------------------------------------------------------------------- the volumes


def new_volume(
    path: Path,
    shape: Sequence[int],
    shard: tuple[int, int, int] | None,
    encoding: str,
    engine: str | None = None,
) -> Any:
    """A new, empty OME-Zarr volume at ``path``, made by lamina; its layer on ``engine``."""
    from lamina_zarr import build_zarr_layer

    import lamina

    return build_zarr_layer(
        str(path),
        engine=engine,
        default_desired_resolution=RES,
        index_resolution=RES,
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=CHUNK,
        info_shard_size=shard,
        info_encoding=encoding,
        info_bbox=lamina.BBox3D.from_coords((0, 0, 0), tuple(shape), RES),
        info_scales=[RES],
    )


def open_layer(path: Path, lib: str) -> Any:
    """The layer of the volume at ``path`` for one of lamina's rows (its engine checked)."""
    from lamina_zarr import build_zarr_layer

    engine, expected = LAMINAS[lib]
    layer = build_zarr_layer(
        str(path), engine=engine, default_desired_resolution=RES, index_resolution=RES
    )
    backend: Any = layer.backend  # a ZarrBackend
    assert backend.engine == expected, (lib, backend.engine)
    return layer


def dataset_path(path: Path) -> str:
    """The finest dataset's array (``s0``) of the OME-Zarr volume at ``path``."""
    from lamina_zarr.volume import read_volume

    return str(path / read_volume(str(path)).scales[0].path)


def ts_open(array: str, sync: bool = True) -> Any:
    """Raw TensorStore's ``zarr3`` driver on ``array`` (``(c, z, y, x)``), no cache pool;
    ``sync``: TensorStore's default of fsyncing each file it writes."""
    import tensorstore as ts

    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": array.rstrip("/") + "/"},
        "context": {"cache_pool": {"total_bytes_limit": 0}, "file_io_sync": sync},
    }
    return ts.open(spec, read=True, write=True, open=True).result()


def xyzc_as_cxyz(a: Any) -> Array:
    return np.asarray(a).transpose(3, 0, 1, 2)


def czyx_as_cxyz(a: Any) -> Array:
    return np.asarray(a).transpose(0, 3, 2, 1)


def cxyz(a: Any) -> Array:
    return np.asarray(a)


def lamina_reader(path: Path, lib: str) -> Reader:
    layer = open_layer(path, lib)

    def read(sl: Slices) -> Any:
        return layer[sl[0], sl[1], sl[2]]

    return read


def ts_readers(array: str) -> dict[str, tuple[Reader, ToCXYZ, str]]:
    """Raw TensorStore's two layouts: name -> (reader, to (C,X,Y,Z), note)."""
    store = ts_open(array)
    xyzc = store.T  # (x, y, z, c): each stored C-ordered chunk is Fortran-ordered here

    def read_f(sl: Slices) -> Any:
        return xyzc[sl[0], sl[1], sl[2], :].read(order="F").result()

    def read_c(sl: Slices) -> Any:
        return store[:, sl[2], sl[1], sl[0]].read().result()

    return {
        "F": (read_f, xyzc_as_cxyz, "(x,y,z,c) view, order='F'"),
        "C": (read_c, czyx_as_cxyz, "(c,z,y,x), C order"),
    }


def zarr_reader(array: str) -> Reader:
    import zarr

    arr = zarr.open_array(array, mode="r")

    def read(sl: Slices) -> Any:
        return arr[:, sl[2], sl[1], sl[0]]

    return read


# --------------------------------------------------------------------------- reads


def read_rows(
    path: Path, data: Array, cfg: Config, repeat: int, layout: str
) -> tuple[list[Row], str]:
    """The read rows of the volume at ``path`` (``data``: its ``(C, X, Y, Z)`` source) and
    a line saying which layout raw TensorStore was read in."""
    rng = np.random.default_rng(cfg.seed)
    shape = cfg.shape
    aligned = cutouts(rng, shape, ALIGNED, cfg.cutouts, CHUNK)
    unaligned = cutouts(rng, shape, UNALIGNED, cfg.cutouts, (1, 1, 1))
    x, y, z = shape
    cases: list[tuple[str, Sequence[Slices]]] = [
        (f"full read {x}x{y}x{z}", [full(shape)]),
        (f"{cfg.cutouts} aligned 256x256x16", aligned),
        (f"{cfg.cutouts} non-aligned 200x200x10", unaligned),
    ]
    array = dataset_path(path)
    readers: dict[str, tuple[Reader, ToCXYZ, str]] = {
        lib: (lamina_reader(path, lib), cxyz, "(C,X,Y,Z) layer read") for lib in LAMINAS
    }
    readers[ZP] = (zarr_reader(array), czyx_as_cxyz, "open_array once, (c,z,y,x) C order")
    candidates = ts_readers(array)
    checked = {**readers, **{f"{TS}, {k}": v for k, v in candidates.items()}}
    for _, boxes in cases:  # the warm-up: every library reads the same values
        for lib, (read, to_cxyz, _) in checked.items():
            check_reads(lib, read, to_cxyz, data, boxes)

    every = [box for _, boxes in cases for box in boxes]
    passes = interleaved_best({k: loop(r, every) for k, (r, _, _) in candidates.items()}, 2)
    kept = min(passes, key=lambda k: passes[k])
    readers[TS] = candidates[kept]
    shown = ", ".join(f"{candidates[k][2]} {t:.4f} s" for k, t in passes.items())
    ts_line = (
        f"{layout}: raw TensorStore kept {candidates[kept][2]} (one pass of the reads: {shown})"
    )

    rows = []
    for case, boxes in cases:
        loops = {lib: loop(readers[lib][0], boxes) for lib in LIBS}
        best = interleaved_best(loops, repeat, shuffle=True)
        nbytes = sum(int(np.prod([s.stop - s.start for s in sl])) for sl in boxes)
        rows += [
            Row(f"{layout}: {case}", lib, best[lib], "s", nbytes, readers[lib][2]) for lib in LIBS
        ]
    return rows, ts_line


# --------------------------------------------------------------------------- writes


def fresh_best(
    setups: dict[str, Callable[[int], Callable[[], Any]]], repeat: int
) -> dict[str, float]:
    """Best wall time of each library's write over ``repeat`` rounds after an untimed
    warm-up round, the libraries interleaved in each round; ``setups[lib](round)`` makes a
    fresh target and returns the write, and dirty pages are flushed before each timed
    call (both outside the timing)."""
    best = dict.fromkeys(setups, math.inf)
    for r in range(-1, repeat):
        for lib, setup in setups.items():
            write = setup(r)
            os.sync()
            start = time.perf_counter()
            write()
            elapsed = time.perf_counter() - start
            if r >= 0:
                best[lib] = min(best[lib], elapsed)
    return best


def write_rows(
    root: Path,
    czyx: Array,
    cfg: Config,
    repeat: int,
    layout: str,
    shard: tuple[int, int, int] | None,
    encoding: str,
) -> list[Row]:
    """Full writes, every library into a fresh array each round (made by lamina with the
    volume's metadata); the last array of each is read back and compared."""
    import zarr

    data = czyx.transpose(0, 3, 2, 1)  # (C, X, Y, Z): lamina's axes, the stored layout
    sl = full(cfg.shape)
    root.mkdir(parents=True, exist_ok=True)

    def target(lib: str, r: int) -> Path:
        return root / f"{slug(lib)}-{r + 1}.ome.zarr"

    def setup(lib: str) -> Callable[[int], Callable[[], Any]]:
        def make(r: int) -> Callable[[], Any]:
            shutil.rmtree(target(lib, r - 1), ignore_errors=True)  # the last round's array
            where = target(lib, r)
            engine = LAMINAS[lib][0] if lib in LAMINAS else None
            layer = new_volume(where, cfg.shape, shard, encoding, engine)
            array = dataset_path(where)
            if lib in LAMINAS:

                def lamina_write() -> None:
                    layer[sl[0], sl[1], sl[2]] = data

                return lamina_write
            if lib in (TS, TS_NOSYNC):
                return lambda: ts_open(array, sync=lib == TS).write(czyx).result()

            def zarr_write() -> None:
                zarr.open_array(array, mode="r+")[...] = czyx

            return zarr_write

        return make

    libs = (*LIBS, TS_NOSYNC)
    best = fresh_best({lib: setup(lib) for lib in libs}, repeat)
    for lib in libs:
        back = ts_open(dataset_path(target(lib, repeat - 1))).read().result()
        if not np.array_equal(back, czyx):
            raise AssertionError(f"{lib}: the {layout} {encoding} write does not read back equal")
        shutil.rmtree(target(lib, repeat - 1), ignore_errors=True)
    notes = {
        LAMINA: "(C,X,Y,Z) view of the C-ordered (c,z,y,x) array",
        LAMINA_TS: "(C,X,Y,Z) view of the C-ordered (c,z,y,x) array",
        LAMINA_ZP: "(C,X,Y,Z) view of the C-ordered (c,z,y,x) array",
        TS: "C-ordered (c,z,y,x) into (c,z,y,x), ts.open included",
        TS_NOSYNC: "as raw TensorStore, each chunk file not fsynced (as lamina writes)",
        ZP: "C-ordered (c,z,y,x), open_array included",
    }
    return [
        Row(f"{layout}: full write", lib, best[lib], "s", czyx.nbytes, notes[lib]) for lib in libs
    ]


# --------------------------------------------------------------------------- table


def vs(r: Row, base: Row | None) -> str:
    """``r``'s throughput over ``base``'s, marked against the target on lamina's rows."""
    if base is None or r.lib == base.lib:
        return "-"
    ratio = base.value / r.value
    mark = (" yes" if ratio >= TARGET else " NO") if r.lib in LAMINAS else ""
    return f"{ratio:.2f}x{mark}"


def format_table(title: str, rows: Sequence[Row], notes: Sequence[str]) -> str:
    bases = {(r.case, r.lib): r for r in rows if r.lib in (TS, ZP)}
    bases_nosync = {r.case: r for r in rows if r.lib == TS_NOSYNC}
    head = (
        f"{'case':38s} {'library':30s} {'best':>10s} {'MB/s':>7s} {'vs TS':>10s} "
        f"{'vs zarr-python':>14s}  note"
    )
    lines = [title, head, "-" * 150]
    last = None
    for r in rows:
        if last is not None and r.case != last:
            lines.append("")
        case = r.case if r.case != last else ""
        last = r.case
        lines.append(
            f"{case:38s} {r.lib:30s} {r.value:8.4f} s {r.nbytes / r.value / 1e6:7.0f} "
            f"{vs(r, bases.get((r.case, TS))):>10s} {vs(r, bases.get((r.case, ZP))):>14s}  {r.note}"
        )
    lines.append("")
    lines += notes
    lines.append(
        f"vs TS, vs zarr-python: throughput ratio on the same row (higher is better); target "
        f">= {TARGET:.1f}x against both for lamina's rows."
    )
    lines.append(
        "Writes: lamina fsyncs no chunk file (its TensorStore context sets file_io_sync=false, "
        "as its own writers, CloudVolume and zarr-python write); raw TensorStore's default "
        "fsyncs each. Same durability: "
        + ", ".join(
            f"{r.case.split(':')[0]} {base.value / r.value:.2f}x"
            for r in rows
            if r.lib == LAMINA and (base := bases_nosync.get(r.case)) is not None
        )
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, help="timed rounds, best counts (5; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="512x512x32, for a smoke run")
    parser.add_argument("--dir", help="where to put the volumes (default: a new temp dir)")
    parser.add_argument("--encodings", default="raw,zstd", help="tables to make (raw,zstd)")
    parser.add_argument("--keep", action="store_true", help="keep the volumes afterwards")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    repeat = args.repeat or cfg.repeat
    encodings = [e.strip() for e in args.encodings.split(",") if e.strip()]
    root = Path(tempfile.mkdtemp(prefix="bench-zarr-", dir=args.dir))
    try:
        print(versions(VERSIONED))
        shape = "x".join(map(str, cfg.shape))
        print(
            f"volume {shape} uint8, chunks {'x'.join(map(str, CHUNK))}, unsharded and in "
            f"shards of {'x'.join(map(str, SHARD))}, OME-Zarr 0.5 (Zarr v3) made by lamina, in "
            f"{root}; best of {repeat} interleaved rounds; {os.cpu_count()} cores"
        )
        x, y, z = cfg.shape
        rng = np.random.default_rng(cfg.seed)
        czyx = rng.integers(0, 256, (1, z, y, x), dtype=np.uint8)  # C-ordered, as stored
        data = czyx.transpose(0, 3, 2, 1)  # (C, X, Y, Z)
        for encoding in encodings:
            rows: list[Row] = []
            notes: list[str] = []
            for layout, shard in LAYOUTS.items():
                path = root / f"{encoding}-{layout}.ome.zarr"
                layer = new_volume(path, cfg.shape, shard, encoding)
                layer[0:x, 0:y, 0:z] = data
                read, ts_line = read_rows(path, data, cfg, repeat, layout)
                rows += read
                notes.append(ts_line)
                writes = root / f"writes-{encoding}-{layout}"
                rows += write_rows(writes, czyx, cfg, repeat, layout, shard, encoding)
                shutil.rmtree(writes, ignore_errors=True)
            print()
            title = f"== encoding {encoding!r}: {shape} uint8, shards {'x'.join(map(str, SHARD))}"
            print(format_table(title, rows, notes), flush=True)
    finally:
        if args.keep:
            print(f"volumes kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
