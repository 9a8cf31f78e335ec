"""lamina's flows against Igneous, in one run on the same files.

The volume: 1024 x 1024 x 128 uint8 random voxels, raw encoding, uncompressed, 128 x 128
x 16 chunks, resolution (8, 8, 40), on local disk (written once, then copied afresh
before every timed run so every run starts from the same files; ``os.sync()`` then
writes the copy's dirty pages back before the timing starts). Two jobs:

* **copy** into a new volume with the same chunking, tasks of 512 x 512 x 64 voxels
  (8 tasks): lamina ``flows.copy``; Igneous ``create_transfer_tasks`` with the same task
  shape, ``skip_downsamples=True``, ``compress=False``;
* **downsample**: 3 levels of 2 x 2 x 1 from the finest scale, one read per task of
  1024 x 1024 x 16 voxels (8 tasks): lamina ``flows.downsample``; Igneous
  ``create_downsampling_tasks(num_mips=3, factor=(2, 2, 1))``.

lamina runs with ``serial``, ``threads`` x 2, ``processes`` x 2 and ``dask`` x 2 (when
lamina-dask is installed: a LocalCluster of 2 single-thread worker processes with a
default client in this process — the existing cluster a user scales out on — reached
with ``scheduler=``; its start-up time is printed, not timed; its workers are configured
as lamina-dask's own local cluster configures them: ``lamina_worker_config()``,
``lamina_worker_plugin()`` and ``LAMINA_RESAMPLE_THREADS=1``); Igneous with
``LocalTaskQueue(parallel=1)`` and ``parallel=2``. The rows without dask run first,
with no cluster alive: its scheduler (a thread of this process) and 4 idle processes
would otherwise take CPU from them. Then "processes x2, kept": the same executor inside
``flows.reuse_workers()``, its 2 worker processes started in the warm-up round and kept
from run to run, as the dask rows' workers are (the plain "processes x2" row forks
and stops its workers in every run); serial runs again in those rounds, and every
speed-up divides the faster of serial's two phases. The cluster then starts for the
dask rows. Best of
``--repeat`` rounds after one untimed warm-up round (imports and first handles, in every
process). Ratios:
lamina's throughput over Igneous's at equal parallelism (target >= 1.0), and each
lamina executor's speed-up over lamina serial (target >= 1.6 from 1 to 2 workers).
Beside them, the machine's own ceiling: the same numpy copies, and the same Python
loop, done by 1 process and split over 2 forked ones (a VM's 2 vCPUs may deliver less
than 2 cores' worth).

Memory (``--memory``): each job in a fresh process per executor, on this volume and on
one 8x larger (2048 x 2048 x 256); the peak resident memory of the busiest worker
(``VmHWM`` of the process itself for ``serial``, reset before the job; ``ru_maxrss`` of
its children for ``processes`` and Igneous ``parallel=2``; dask workers report their
own). Target: it grows by at most 10% when the volume grows 8x.

Every lamina worker resamples in one thread (``LAMINA_RESAMPLE_THREADS=1`` is set here),
so "serial" is one core, like Igneous with ``parallel=1``.

    python bench/bench_flows.py [--repeat 3] [--memory] [--quick]
    tox run -e bench-flows -- --memory     # with Igneous installed in its own env

Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from volumes import new_raw_volume

# One worker is one core: lamina's resampling threads (default: every CPU) are off
# everywhere, as in the process and dask workers and in Igneous (tinybrain, one thread).
os.environ["LAMINA_RESAMPLE_THREADS"] = "1"

RES = (8, 8, 40)
CHUNK = (128, 128, 16)
COPY_TASK = (512, 512, 64)
LAMINA_CONFIGS = (("serial", 1), ("threads", 2), ("processes", 2), ("dask", 2))
KEPT = "processes-kept"  # the processes x 2 row run inside flows.reuse_workers()
IGNEOUS_PARALLEL = (1, 2)


def make_source(path: Path, shape: tuple[int, int, int]) -> None:
    """The source volume, written with raw CloudVolume in z slabs (bounded memory)."""
    vol = new_raw_volume(path, shape, RES, CHUNK)
    rng = np.random.default_rng(0)
    for z in range(0, shape[2], CHUNK[2]):
        slab = rng.integers(0, 255, (shape[0], shape[1], CHUNK[2], 1), dtype=np.uint8)
        vol[:, :, z : z + CHUNK[2]] = slab


def _fresh(src: Path, work: Path, name: str) -> Path:
    target = work / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(src, target)
    return target


def _empty_like(src: Path, work: Path, name: str) -> Path:
    """A new volume with ``src``'s info and no chunks."""
    target = work / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy(src / "info", target / "info")
    return target


# -- one job, one side -------------------------------------------------------------------------
def lamina_job(
    job: str, executor: str, workers: int, src: Path, dst: Path, scheduler: str | None = None
) -> float:
    import lamina
    from lamina import flows

    run: dict[str, Any] = {"executor": executor, "workers": workers, "progress": False}
    if scheduler is not None:
        run["scheduler"] = scheduler
    start = time.perf_counter()
    if job == "copy":
        flows.copy(
            lamina.build_cv_layer(f"file://{src}"),
            lamina.build_cv_layer(f"file://{dst}"),
            chunk_size=COPY_TASK,
            journal_dir=dst.parent / "journals",
            **run,
        )
    else:
        flows.downsample(
            lamina.build_cv_layer(f"file://{src}"),
            levels=3,
            factor=(2, 2, 1),
            journal_dir=src.parent / "journals",
            **run,
        )
    return time.perf_counter() - start


def start_dask_cluster(workers: int) -> tuple[Any, Any, float]:
    """A LocalCluster of ``workers`` single-thread worker processes (the "existing
    cluster" the dask rows run on), this process's default client of it (as a dask user
    has one; lamina's runs use it), and how long both took to start."""
    import dask
    from dask.distributed import Client, LocalCluster
    from lamina_dask import lamina_worker_config, lamina_worker_plugin

    start = time.perf_counter()
    with dask.config.set(lamina_worker_config()):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            env={"LAMINA_RESAMPLE_THREADS": "1"},
        )
    client = Client(cluster)
    client.register_plugin(lamina_worker_plugin())
    return cluster, client, time.perf_counter() - start


def igneous_job(job: str, parallel: int, src: Path, dst: Path) -> float:
    import igneous.task_creation as tc
    from taskqueue import LocalTaskQueue

    start = time.perf_counter()
    if job == "copy":
        tasks = tc.create_transfer_tasks(
            f"file://{src}",
            f"file://{dst}",
            chunk_size=CHUNK,
            shape=COPY_TASK,
            skip_downsamples=True,
            compress=False,
            encoding="raw",
        )
    else:
        tasks = tc.create_downsampling_tasks(
            f"file://{src}", mip=0, num_mips=3, factor=(2, 2, 1), compress=None, encoding="raw"
        )
    queue = LocalTaskQueue(parallel=parallel, progress=False)
    queue.insert(tasks)
    queue.execute(progress=False)
    return time.perf_counter() - start


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _has_dask_executor() -> bool:
    from lamina.plugins.manager import get_host

    return "dask" in {e.name for e in get_host().registry.entries("executors")}


# -- memory: one job in a fresh process ---------------------------------------------------------
def measure_one(
    job: str, side: str, executor: str, workers: int, src: Path, work: Path
) -> dict[str, Any]:
    """Run one job here and report the peak RSS (MiB) of this process and its children."""
    dst = _empty_like(src, work, "mem-dst")
    target = _fresh(src, work, "mem-src") if job == "downsample" else src
    # Linux carries the parent's peak RSS across fork + exec: reset this process's
    # high-water mark so that VmHWM below is this job's own peak
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    dask_peak = 0.0
    if side == "lamina" and executor == "dask":
        seconds, dask_peak = _dask_with_memory(job, workers, target, dst)
    elif side == "lamina":
        seconds = lamina_job(job, executor, workers, target, dst)
    else:
        seconds = igneous_job(job, workers, target, dst)
    own = _vm_hwm_mib()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "self_mib": own, "children_mib": children, "dask_mib": dask_peak}


def _vm_hwm_mib() -> float:
    """This process's peak resident memory (MiB): VmHWM, else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dask_with_memory(job: str, workers: int, src: Path, dst: Path) -> tuple[float, float]:
    """The dask run on a cluster of our own, so the workers' peaks can be asked for."""
    cluster, client, _ = start_dask_cluster(workers)
    try:
        seconds = lamina_job(job, "dask", workers, src, dst, cluster.scheduler_address)
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return seconds, max(peaks.values())
    finally:
        client.close()
        cluster.close()


def memory_table(work: Path, quick: bool) -> list[tuple[str, ...]]:
    base = (512, 512, 64) if quick else (1024, 1024, 128)
    big = tuple(2 * s for s in base)
    sources = {}
    for label, shape in (("base", base), ("8x", big)):
        path = work / f"memsrc-{label}"
        if not path.exists():
            print(f"writing the {label} source {shape} ...", file=sys.stderr)
            make_source(path, shape)  # type: ignore[arg-type]
        sources[label] = path
    configs = [("lamina", e, w) for e, w in LAMINA_CONFIGS if e != "threads"]
    if not _has_dask_executor():
        configs = [c for c in configs if c[1] != "dask"]
    if _has("igneous"):
        configs += [("igneous", f"parallel={p}", p) for p in IGNEOUS_PARALLEL]
    rows = []
    for job in ("copy", "downsample"):
        for side, executor, workers in configs:
            peaks = []
            for label in ("base", "8x"):
                out = subprocess.run(
                    [
                        sys.executable, __file__, "--measure-one", job, side, executor,
                        str(workers), str(sources[label]), str(work),
                    ],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                m = json.loads(out.stdout.strip().splitlines()[-1])
                if side == "lamina" and executor == "dask":
                    peak = m["dask_mib"]
                elif workers > 1:
                    peak = m["children_mib"]
                else:
                    peak = m["self_mib"]
                peaks.append(peak)
            growth = peaks[1] / peaks[0]
            rows.append(
                (job, f"{side} {executor}", f"{peaks[0]:.0f}", f"{peaks[1]:.0f}", f"{growth:.2f}x")
            )
    return rows


def _timed_rounds(
    configs: list[tuple[str, str, int]],
    src: Path,
    work: Path,
    repeat: int,
    best: dict[tuple[str, str, str, int], float],
    scheduler: str | None = None,
) -> None:
    """Every configuration once per round, after one untimed warm-up round (imports,
    first handles, dask workers' imports); the best time of each goes into ``best``."""
    for round_number in range(repeat + 1):
        for job in ("copy", "downsample"):
            for side, executor, workers in configs:
                dst = _empty_like(src, work, "dst")
                target = _fresh(src, work, "pyramid") if job == "downsample" else src
                shutil.rmtree(work / "journals", ignore_errors=True)
                # the fresh copy's dirty pages are written back now, not during the timed
                # run (where the kernel's writeback would take a core from 2 workers)
                os.sync()
                if side == "lamina":
                    address = scheduler if executor == "dask" else None
                    t = lamina_job(job, executor, workers, target, dst, address)
                else:
                    t = igneous_job(job, workers, target, dst)
                if round_number == 0:
                    continue
                key = (job, side, executor, workers)
                best[key] = min(best.get(key, t), t)


def _kept_rounds(
    src: Path, work: Path, repeat: int, best: dict[tuple[str, str, str, int], float]
) -> None:
    """processes x 2 again, its workers kept from run to run inside
    ``flows.reuse_workers()`` (started in the warm-up round), as the dask rows' workers
    are on their running cluster. serial runs again in the same rounds, and the faster of
    its two phases is the one every speed-up divides, so a machine that got faster
    meanwhile flatters no row."""
    from lamina import flows

    kept: dict[tuple[str, str, str, int], float] = {}
    with flows.reuse_workers():
        configs = [("lamina", "serial", 1), ("lamina", "processes", 2)]
        _timed_rounds(configs, src, work, repeat, kept)
    for (job, _, executor, workers), seconds in kept.items():
        if executor == "serial":
            serial = (job, "lamina", "serial", 1)
            best[serial] = min(best[serial], seconds)
        else:
            best[(job, "lamina", KEPT, workers)] = seconds


# -- the machine's own scaling ------------------------------------------------------------------
def _numpy_copies(turns: int) -> None:
    """Memory-bound work like a flow task's: copy 16 MiB arrays and sum every other byte."""
    a = np.random.default_rng(0).integers(0, 255, 16 << 20, dtype=np.uint8)
    b = np.empty_like(a)
    for _ in range(turns):
        np.copyto(b, a)
        b[::2].sum()


def _python_loop(turns: int) -> None:
    """CPU-bound interpreter work, as in CloudVolume's per-chunk bookkeeping."""
    total = 0
    for i in range(turns * 100_000):
        total += i


def machine_scaling(repeat: int) -> list[tuple[str, ...]]:
    """The speed-up of the same work from 1 to 2 forked processes, with nothing of lamina
    in it: the ceiling this machine puts on any 2-worker speed-up. Best of ``repeat``."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    rows = []
    for name, work, turns in (
        ("numpy copies", _numpy_copies, 40),
        ("Python loop", _python_loop, 40),
    ):
        one = two = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            work(2 * turns)
            one = min(one, time.perf_counter() - start)
            start = time.perf_counter()
            processes = [ctx.Process(target=work, args=(turns,)) for _ in range(2)]
            for process in processes:
                process.start()
            for process in processes:
                process.join()
            two = min(two, time.perf_counter() - start)
        rows.append((name, f"{one:.2f}", f"{two:.2f}", f"{one / two:.2f}x"))
    return rows


# -- speed ----------------------------------------------------------------------------------------
def speed_table(work: Path, repeat: int, quick: bool) -> list[tuple[str, ...]]:
    shape = (512, 512, 64) if quick else (1024, 1024, 128)
    src = work / "src"
    make_source(src, shape)
    configs: list[tuple[str, str, int]] = [("lamina", e, w) for e, w in LAMINA_CONFIGS]
    if not _has_dask_executor():
        configs = [c for c in configs if c[1] != "dask"]
        print("lamina-dask is not installed: no dask rows", file=sys.stderr)
    if _has("igneous"):
        configs += [("igneous", "parallel", p) for p in IGNEOUS_PARALLEL]
    else:
        print("igneous-pipeline is not installed: no Igneous rows", file=sys.stderr)
    nbytes = int(np.prod(shape))
    best: dict[tuple[str, str, str, int], float] = {}
    # Two phases: the rows without dask first, with no cluster alive (its scheduler thread
    # in this process and its 4 idle processes would take CPU from serial and processes
    # x2), then the dask rows on a cluster started for them.
    without_dask = [c for c in configs if c[1] != "dask"]
    with_dask = len(without_dask) < len(configs)
    _timed_rounds(without_dask, src, work, repeat, best)
    _kept_rounds(src, work, repeat, best)
    configs.insert(configs.index(("lamina", "processes", 2)) + 1, ("lamina", KEPT, 2))
    if with_dask:
        cluster, client, startup = start_dask_cluster(2)
        print(f"dask LocalCluster of 2 workers started in {startup:.1f} s (not timed)")
        try:
            dask_rows = [c for c in configs if c[1] == "dask"]
            _timed_rounds(dask_rows, src, work, repeat, best, cluster.scheduler_address)
        finally:
            client.close()
            cluster.close()
    rows = []
    for job in ("copy", "downsample"):
        serial = best[(job, "lamina", "serial", 1)]
        for side, executor, workers in configs:
            t = best[(job, side, executor, workers)]
            label = f"{side} {executor}" + (
                f" x{workers}" if workers > 1 or side == "igneous" else ""
            )
            if executor == KEPT:
                label = f"{side} processes x{workers}, kept"
            vs_igneous = ""
            if side == "lamina" and _has("igneous"):  # Igneous parallel=N: N processes
                ig = best.get((job, "igneous", "parallel", workers))
                if ig is not None:
                    vs_igneous = f"{ig / t:.2f}x"
            speedup = f"{serial / t:.2f}x" if side == "lamina" else ""
            rows.append((job, label, f"{t:.2f}", f"{nbytes / t / 1e6:.0f}", vs_igneous, speedup))
    return rows


def _print(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best counts")
    parser.add_argument("--memory", action="store_true", help="also the memory table")
    parser.add_argument("--quick", action="store_true", help="a 512 x 512 x 64 volume")
    parser.add_argument("--dir", default=None, help="work directory (default: a tmp dir)")
    parser.add_argument("--measure-one", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_one:
        job, side, executor, workers, src, work = args.measure_one
        result = measure_one(job, side, executor, int(workers), Path(src), Path(work))
        print(json.dumps(result))
        return 0
    os.environ.setdefault("LAMINA_JOURNAL_DIR", tempfile.mkdtemp(prefix="lamina-journals-"))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        rows = speed_table(work, args.repeat, args.quick)
        print(
            f"\nflows on {'512x512x64' if args.quick else '1024x1024x128'} uint8, raw, "
            f"{CHUNK[0]}x{CHUNK[1]}x{CHUNK[2]} chunks, local disk; best of {args.repeat}\n"
        )
        _print(("job", "run", "seconds", "MB/s", "vs Igneous", "vs lamina serial"), rows)
        print(
            "\nvs Igneous: lamina's throughput over Igneous's at equal parallelism (target "
            ">= 1.0x);\nvs lamina serial: speed-up over lamina serial (target >= 1.6x at 2 "
            "workers)."
        )
        print(
            "\nthis machine's own speed-up from 1 to 2 processes (the same work split in "
            "two forked processes, nothing of lamina; the ceiling of the speed-ups above)\n"
        )
        _print(("work", "1 process", "2 processes", "speed-up"), machine_scaling(args.repeat))
        if args.memory:
            print("\npeak resident memory of the busiest worker (MiB), volume and 8x volume\n")
            _print(("job", "run", "volume", "8x volume", "growth"), memory_table(work, args.quick))
            print("\ngrowth: target <= 1.10x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
