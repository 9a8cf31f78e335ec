"""Resampling speed: ``lamina.volumetric.resample`` next to tinybrain, numpy and torch.

Run: ``python bench/bench_resample.py [--repeat N] [--profile]`` (with lamina installed,
or from the repository root, where ``core/src`` is used). Prints one table; asserts
nothing about time.

Cases, all downsampling by 2 in x and y (2x2x1) unless said otherwise:

* ``img`` and ``segmentation`` on a random uint8 volume of 1024 x 1024 x 128, given to
  lamina as C-ordered ``(C=1, X, Y, Z)`` numpy -- the layout lamina's in-memory data has
  -- and to tinybrain in its preferred layout, a Fortran-ordered ``(X, Y, Z, C)`` array
  (x fastest, CloudVolume's layout). Both conversions happen before timing. lamina
  rounds image means half up, tinybrain truncates; the "tinybrain + rounding" row is
  tinybrain made to round the way lamina does (widening ``x`` to ``4x + 2``).
* ``segmentation`` of random full-range uint64 ids (512 x 512 x 64), 2x2x1 and 2x2x2.

``speed vs tinybrain`` is tinybrain's time over the row's time (1.0: as fast, 0.5: half
as fast). Outputs are checked to be equal where they should be, outside the timing.
Rows for other paths (e.g. reads through a layer with ``data_resolution``) are added by
passing row builders to :func:`main` or :func:`run`; each gets the shared :class:`Inputs`
(the same volumes, ``repeat``, and an ``extra`` dict for its own state) and returns
:class:`Row` objects. A row whose ``case`` names an existing case is listed and compared
with that case's tinybrain row::

    def layer_rows(inp: Inputs) -> list[Row]:
        layer = ...  # a layer over inp.img_c with data_resolution twice the index's
        read = lambda: layer[...]
        return [Row(IMG_CASE, "layer read, data_resolution", best_of(read, inp.repeat))]

    main(extra=[layer_rows])
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tinybrain

try:
    from lamina.volumetric.resample import resample
except ImportError:  # running from a checkout without lamina installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "src"))
    from lamina.volumetric.resample import resample


@dataclass
class Row:
    """One timed implementation of one case."""

    case: str
    impl: str
    seconds: float
    note: str = ""
    baseline: bool = False  # the tinybrain row the others of its case are compared to


@dataclass
class Inputs:
    """The volumes every row builder shares (made once per run)."""

    repeat: int
    img_c: np.ndarray[Any, Any]  # (1, X, Y, Z) uint8, C order
    img_f: np.ndarray[Any, Any]  # (X, Y, Z, 1) uint8, Fortran order
    ids_c: np.ndarray[Any, Any]  # (1, X, Y, Z) uint64, C order
    ids_f: np.ndarray[Any, Any]  # (X, Y, Z, 1) uint64, Fortran order
    extra: dict[str, Any] = field(default_factory=dict)


RowBuilder = Callable[[Inputs], Iterable[Row]]


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time of ``repeat`` calls, in seconds (one untimed warm-up call first)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_inputs(repeat: int, seed: int = 0) -> Inputs:
    rng = np.random.default_rng(seed)
    img_c = rng.integers(0, 256, (1, 1024, 1024, 128), dtype=np.uint8)
    ids_c = rng.integers(0, 2**64 - 1, (1, 512, 512, 64), dtype=np.uint64, endpoint=True)
    return Inputs(
        repeat=repeat,
        img_c=img_c,
        img_f=np.asfortranarray(img_c.transpose(1, 2, 3, 0)),
        ids_c=ids_c,
        ids_f=np.asfortranarray(ids_c.transpose(1, 2, 3, 0)),
    )


def _as_cxyz(xyzc: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return xyzc.transpose(3, 0, 1, 2)


def _tinybrain_rounded(xyzc: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """tinybrain's 2x2 mean rounded half up: widen to 4x + 2, average, shift right by 2."""
    wide = np.empty(xyzc.shape, dtype=np.uint16, order="F")
    np.copyto(wide, xyzc)
    wide <<= 2
    wide += 2
    mean = tinybrain.downsample_with_averaging(wide, (2, 2, 1))[0]
    out: np.ndarray[Any, Any] = (mean >> 2).astype(np.uint8)
    return out


IMG_CASE = "img 2x2x1 uint8 1024x1024x128"
SEG_CASE = "segmentation 2x2x1 uint8 1024x1024x128"


def img_rows(inp: Inputs) -> list[Row]:
    case = IMG_CASE
    c, f, n = inp.img_c, inp.img_f, inp.repeat
    half = (0.5, 0.5, 1)

    def lamina_c() -> Any:
        return resample(c, half, "img")

    def lamina_f() -> Any:
        return resample(_as_cxyz(f), half, "img")

    def tiny() -> Any:
        return tinybrain.downsample_with_averaging(f, (2, 2, 1))

    def reshape_mean() -> Any:
        return c.reshape(1, 512, 2, 512, 2, 128).mean(axis=(2, 4)).astype(np.uint8)

    expected = _as_cxyz(_tinybrain_rounded(f))
    assert np.array_equal(lamina_c(), expected)
    assert np.array_equal(lamina_f(), expected)
    return [
        Row(case, "lamina resample", best_of(lamina_c, n), "C-order (C,X,Y,Z) in; rounds half up"),
        Row(case, "tinybrain", best_of(tiny, n), "F-order (X,Y,Z,C) in; truncates", baseline=True),
        Row(case, "lamina resample, F-order in", best_of(lamina_f, n), "numpy, x fastest"),
        Row(
            case,
            "tinybrain + rounding",
            best_of(lambda: _tinybrain_rounded(f), n),
            "F-order; whole volume widened to uint16",
        ),
        Row(
            case,
            "numpy reshape-mean",
            best_of(reshape_mean, max(1, n // 2)),
            "C-order; float64 mean, truncating cast",
        ),
        *_torch_rows(case, c, n),
    ]


def _torch_rows(case: str, c: np.ndarray[Any, Any], n: int) -> list[Row]:
    try:
        import torch
    except ImportError:
        return []
    x = torch.from_numpy(c.astype(np.float32))[None]  # (1, 1, X, Y, Z), converted untimed
    pool = torch.nn.functional.avg_pool3d
    note = f"float32 tensor in (converted untimed), {torch.get_num_threads()} threads"
    return [Row(case, "torch avg_pool3d", best_of(lambda: pool(x, (2, 2, 1)), n), note)]


def seg_rows(inp: Inputs) -> list[Row]:
    rows = []
    volumes = [
        (SEG_CASE, inp.img_c, inp.img_f, (2, 2, 1)),
        ("segmentation 2x2x1 uint64 512x512x64", inp.ids_c, inp.ids_f, (2, 2, 1)),
        ("segmentation 2x2x2 uint64 512x512x64", inp.ids_c, inp.ids_f, (2, 2, 2)),
    ]
    for case, c, f, factor in volumes:
        sf = tuple(1 / k for k in factor)
        n = inp.repeat if factor[2] == 1 else max(1, inp.repeat // 2)

        def lamina_c(c: Any = c, sf: Any = sf) -> Any:
            return resample(c, sf, "segmentation")

        def lamina_f(f: Any = f, sf: Any = sf) -> Any:
            return resample(_as_cxyz(f), sf, "segmentation")

        def tiny(f: Any = f, factor: Any = factor) -> Any:
            return tinybrain.downsample_segmentation(f, factor)

        expected = _as_cxyz(tiny()[0])
        assert np.array_equal(lamina_c(), expected)
        assert np.array_equal(lamina_f(), expected)
        rows += [
            Row(case, "lamina resample", best_of(lamina_c, n), "C-order (C,X,Y,Z) in"),
            Row(case, "tinybrain", best_of(tiny, n), "F-order (X,Y,Z,C) in", baseline=True),
            Row(case, "lamina resample, F-order in", best_of(lamina_f, n), "tinybrain underneath"),
        ]
    return rows


def layer_rows(inp: Inputs) -> list[Row]:
    """2x2x1 downsampling *through a layer with data_resolution*: ``layer[16 nm box]`` over
    data stored at 8 nm, in ``img`` and ``segmentation`` modes.

    Two backends: one that hands the layer the stored array itself (no copy: the layer
    starts from data in memory, as the direct tinybrain call does) and lamina's chunked
    in-memory backend, whose read assembles a fresh 128 MiB array from its chunks first.
    """
    from lamina import BBox3D, MemoryVolumetricBackend, build_volumetric_layer

    fine, coarse = (8, 8, 40), (16, 16, 40)
    data = inp.img_c
    bbox = BBox3D.from_coords((0, 0, 0), data.shape[1:], fine)

    class HandOver(MemoryVolumetricBackend):
        """Reads of the whole volume return the stored array itself."""

        def read(self, idx: Any) -> Any:
            return data if idx.bbox == bbox else super().read(idx)

    handover = HandOver.from_bbox(bbox, [fine], (128, 128, 16))
    rows = []

    def layer_row(case: str, mode: str, backend: Any, what: str, note: str) -> Row:
        layer = build_volumetric_layer(backend, data_resolution=fine, interpolation_mode=mode)

        def read() -> Any:
            return layer[coarse, bbox]

        assert np.array_equal(read(), resample(data, (0.5, 0.5, 1), mode))  # type: ignore[arg-type]
        return Row(case, f"lamina layer, {what}", best_of(read, inp.repeat), note)

    modes = ((IMG_CASE, "img"), (SEG_CASE, "segmentation"))
    for case, mode in modes:
        rows.append(layer_row(case, mode, handover, "zero-copy backend", "data handed over"))
    # Filling the in-memory backend allocates 128 MiB in 2 MiB blocks; the kernel's
    # hugepage compaction right after slows every large allocation for a while, so let
    # it settle before timing (measured: 3x slower resampling for about a second).
    memory = MemoryVolumetricBackend.from_bbox(bbox, [fine], (128, 128, 16))
    memory.write(memory.get_bounds(fine), data)
    for _ in range(10):
        resample(data, (0.5, 0.5, 1), "img")
    for case, mode in modes:
        note = "includes the backend's read (a fresh 128 MiB array)"
        rows.append(layer_row(case, mode, memory, "in-memory backend", note))
    # uint64 ids through a layer, handed over in both layouts: C order (lamina's in-memory
    # store) and x fastest (what CloudVolume and zyx HDF5 datasets deliver).
    ids_bbox = BBox3D.from_coords((0, 0, 0), inp.ids_c.shape[1:], fine)
    for ids, layout in ((inp.ids_c, "C-order"), (_as_cxyz(inp.ids_f), "x-fastest")):

        class HandOverIds(MemoryVolumetricBackend):
            def read(self, idx: Any, ids: Any = ids) -> Any:
                return ids if idx.bbox == ids_bbox else super().read(idx)

        backend = HandOverIds.from_bbox(ids_bbox, [fine], (128, 128, 16), dtype="uint64")
        layer = build_volumetric_layer(
            backend, data_resolution=fine, interpolation_mode="segmentation"
        )

        def read_ids(layer: Any = layer) -> Any:
            return layer[coarse, ids_bbox]

        assert np.array_equal(read_ids(), resample(inp.ids_c, (0.5, 0.5, 1), "segmentation"))
        rows.append(
            Row(
                "segmentation 2x2x1 uint64 512x512x64",
                f"lamina layer, zero-copy, {layout}",
                best_of(read_ids, inp.repeat),
                "layer[(16,16,40), bbox]; data handed over",
            )
        )
    return rows


DEFAULT_BUILDERS: tuple[RowBuilder, ...] = (img_rows, seg_rows, layer_rows)


def run(
    repeat: int = 5, extra: Sequence[RowBuilder] = (), inputs: Inputs | None = None
) -> list[Row]:
    """All rows: the default builders, then ``extra`` ones, on shared inputs."""
    inp = inputs or make_inputs(repeat)
    rows: list[Row] = []
    for builder in (*DEFAULT_BUILDERS, *extra):
        rows.extend(builder(inp))
    return rows


def format_table(rows: Iterable[Row]) -> str:
    """The rows as a text table, grouped by case (in order of first appearance)."""
    rows = list(rows)
    first = {r.case: i for i, r in reversed(list(enumerate(rows)))}
    rows.sort(key=lambda r: first[r.case])  # stable: extra rows join their case's group
    base = {r.case: r.seconds for r in rows if r.baseline}
    lines = [
        f"{'case':40s} {'implementation':30s} {'seconds':>9s} {'speed vs tinybrain':>19s}  note",
        "-" * 130,
    ]
    last = None
    for r in rows:
        if last is not None and r.case != last:
            lines.append("")
        last = r.case
        ratio = f"{base[r.case] / r.seconds:.2f}x" if r.case in base else "-"
        lines.append(f"{r.case:40s} {r.impl:30s} {r.seconds:9.4f} {ratio:>19s}  {r.note}")
    return "\n".join(lines)


class _Stages:
    """Wall time per named step, summed over chunks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


def profile_stages(inp: Inputs) -> str:
    """Where the time of lamina's C-order paths goes, step by step.

    The steps replay, with the same numpy calls and the same 1 MiB chunks, what
    ``resample`` does for C-ordered 2x2x1 ``img`` (uint8) and ``segmentation`` (uint64).
    """
    lines = []
    c = inp.img_c[0]
    st = _Stages()
    out = np.empty((512, 512, 128), np.uint8)
    st.mark("allocate output")
    rows = 4  # 4 output x-rows = 8 input planes = 1 MiB
    acc1 = np.empty((rows, 1024, 128), np.uint16)
    acc2 = np.empty((rows, 512, 128), np.uint16)
    for i in range(0, 512, rows):
        blk = c[2 * i : 2 * (i + rows)].reshape(rows, 2, 1024, 128)
        st.mark("python")
        np.copyto(acc1, blk[:, 0])
        st.mark("x pairs: copy, widening to uint16")
        np.add(acc1, blk[:, 1], out=acc1)
        st.mark("x pairs: add")
        pairs = acc1.reshape(rows, 512, 2, 128)
        np.add(pairs[:, :, 0], pairs[:, :, 1], out=acc2)
        st.mark("y pairs: add (strided)")
        np.add(acc2, 2, out=acc2)
        st.mark("+2 (rounding)")
        np.right_shift(acc2, 2, out=out[i : i + rows], casting="unsafe")
        st.mark("shift right 2, narrowing to uint8")
    lines.append(_format_stages("img 2x2x1 uint8, C order", st))

    ids = inp.ids_c[0]
    st = _Stages()
    out64 = np.empty((256, 256, 64), np.uint64)
    rows = 4
    a, b, cc, d, t, full = (np.empty((rows, 256, 64), np.uint64) for _ in range(6))
    m1, m2 = (np.empty((rows, 256, 64), np.bool_) for _ in range(2))
    st.mark("allocate")
    for i in range(0, 256, rows):
        blk = ids[2 * i : 2 * (i + rows)].reshape(rows, 2, 256, 2, 64)
        st.mark("python")
        for dst, src in zip((a, b, cc, d), (blk[:, 0, :, 0], blk[:, 1, :, 0], blk[:, 0, :, 1],
                                            blk[:, 1, :, 1]), strict=True):  # fmt: skip
            np.copyto(dst, src)
        st.mark("copy the 4 corners")
        np.equal(b, cc, out=m1)
        np.equal(a, b, out=m2)
        st.mark("compare")
        np.copyto(full, m1)
        np.negative(full, out=full)
        st.mark("widen mask to 64 bits")
        np.bitwise_xor(b, d, out=t)
        t &= full
        d ^= t
        st.mark("select (xor/and/xor)")
        np.equal(a, cc, out=m1)
        m1 |= m2
        st.mark("compare")
        np.copyto(full, m1)
        np.negative(full, out=full)
        st.mark("widen mask to 64 bits")
        np.bitwise_xor(a, d, out=t)
        t &= full
        np.bitwise_xor(d, t, out=out64[i : i + rows])
        st.mark("select (xor/and/xor)")
    lines.append(_format_stages("segmentation 2x2x1 uint64, C order", st))
    return "\n".join(lines)


def _format_stages(title: str, st: _Stages) -> str:
    total = sum(st.seconds.values())
    rows = [f"{title}: {total:.4f} s in all"]
    for name, sec in sorted(st.seconds.items(), key=lambda kv: -kv[1]):
        rows.append(f"  {name:40s} {sec:8.4f} s  {100 * sec / total:5.1f} %")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None, extra: Sequence[RowBuilder] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per row (best of)")
    parser.add_argument(
        "--profile", action="store_true", help="also time the steps of lamina's C-order paths"
    )
    args = parser.parse_args(argv)
    inp = make_inputs(args.repeat)
    tb_version = importlib.metadata.version("tinybrain")
    print(f"numpy {np.__version__}, tinybrain {tb_version}; best of {args.repeat} calls per row")
    print(format_table(run(args.repeat, extra, inp)))
    if args.profile:
        print()
        print(profile_stages(inp))


if __name__ == "__main__":
    main()
