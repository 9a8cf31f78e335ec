"""``lamina copy``, ``lamina downsample`` and ``lamina run``: the flows on the command line.

Paths are opened by whichever installed plugin recognises them (the path-opener hook).
Vectors are written ``4,4,40``; a box ``x0,y0,z0:x1,y1,z1`` in voxels at
``--resolution``. Every option has a default. A progress bar shows tasks done,
storage chunks written, the throughput and the time left when standard error is a
terminal (never with ``--quiet``); every run ends with one summary line on standard output.

Every argument is checked before anything is created or changed: ``lamina copy``
checks against the geometry a new DST will have before it creates DST, so a command
that fails leaves nothing behind for the next one to reuse. ``--resume`` finds a run's
journal from any working directory (they live in a per-user state directory).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lamina.paths import add_format_argument
from lamina.plugins.contributions import Command

if TYPE_CHECKING:
    from lamina.flows.options import RunOptions

__all__ = ["COPY_COMMAND", "DOWNSAMPLE_COMMAND", "RUN_COMMAND", "parse_box", "parse_vector"]

_RUN_KEYS = ("executor", "workers", "resume", "scheduler", "retries", "journal_dir", "run_id")


def parse_vector(text: str, what: str = "vector") -> tuple[float, float, float]:
    """``"4,4,40"`` → ``(4.0, 4.0, 40.0)``; a clear error naming ``what`` otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(
            f"{what} must be three numbers x,y,z such as 4,4,40; got {text!r}"
        )
    return values


def parse_int_vector(text: str, what: str = "size") -> tuple[int, int, int]:
    values = parse_vector(text, what)
    if not all(v.is_integer() and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"{what} must be three positive integers; got {text!r}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def parse_box(text: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``"x0,y0,z0:x1,y1,z1"`` → its two corners (voxels); refused unless the end is
    beyond the start on every axis (a reversed or empty box does nothing)."""
    if text.count(":") != 1:
        raise argparse.ArgumentTypeError(
            f"--bbox must be x0,y0,z0:x1,y1,z1 (voxels at --resolution); got {text!r}"
        )
    start_text, stop_text = text.split(":")
    start, stop = parse_vector(start_text, "--bbox start"), parse_vector(stop_text, "--bbox end")
    flat = [f"{'xyz'[d]} ({start[d]:g} to {stop[d]:g})" for d in range(3) if stop[d] <= start[d]]
    if flat:
        raise argparse.ArgumentTypeError(
            f"--bbox {text} is empty or reversed on {', '.join(flat)}: its end x1,y1,z1 must "
            "be beyond its start x0,y0,z0 on every axis"
        )
    return start, stop


def _add_run_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--bbox",
        type=parse_box,
        help=f"the region x0,y0,z0:x1,y1,z1 in voxels at --resolution (default: all of {what})",
    )
    parser.add_argument(
        "--resolution",
        type=lambda t: parse_vector(t, "--resolution"),
        help="nm per voxel x,y,z (default: the finest scale)",
    )
    parser.add_argument(
        "--chunk-size",
        type=lambda t: parse_int_vector(t, "--chunk-size"),
        help="voxels of one task, a multiple of the destination's chunk size "
        "(default: about 512,512,64 of whole chunks)",
    )
    _add_engine_arguments(parser)


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        default=None,
        help="where tasks run: serial (default), threads, processes, dask (lamina-dask), …",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="parallel workers (default: the CPUs)"
    )
    parser.add_argument(
        "--scheduler", default=None, help="a Dask scheduler's address (executor dask)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="skip the tasks an earlier run of the same command (or --run-id) finished, "
        "wherever it was run from; the summary says when no journal was found",
    )
    parser.add_argument(
        "--retries", type=int, default=None, help="attempts after a failure (default 3)"
    )
    parser.add_argument(
        "--journal-dir",
        default=None,
        help="where run journals are kept (default: $LAMINA_JOURNAL_DIR, else "
        "$XDG_STATE_HOME/lamina/journals, else ~/.local/state/lamina/journals)",
    )
    parser.add_argument(
        "--run-id",
        default=None,
        help="name the run: its journal is named after it, and --resume with the same "
        "--run-id continues it (default: the run is known by what it does)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_options(args: argparse.Namespace) -> RunOptions:
    options = {k: getattr(args, k) for k in _RUN_KEYS if getattr(args, k, None) is not None}
    options["progress"] = False if args.quiet else None
    return cast("RunOptions", options)


def _region(args: argparse.Namespace, resolution: Any) -> Any:
    """``--bbox`` (voxels at ``resolution``) in nm, or ``None``."""
    if args.bbox is None:
        return None
    from lamina.volumetric.geometry import BBox3D

    start, stop = args.bbox
    return BBox3D.from_coords(start, stop, resolution)


def _finest(layer: Any) -> Any:
    return layer.backend.resolutions[0]


def _finish(summary: Any) -> int:
    print(summary.line())
    return 0


# -- lamina copy ------------------------------------------------------------------------------
def _add_copy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="the volume read: precomputed://…, s3://…, file.h5:/dataset…")
    parser.add_argument("dst", help="the volume written; made like SRC when it does not exist")
    add_format_argument(parser, "DST")
    parser.add_argument(
        "--src-format",
        metavar="NAME",
        help="the format of SRC (default: the one that recognises the path)",
    )
    _add_run_arguments(parser, "SRC")
    parser.add_argument(
        "--dst-resolution",
        type=lambda t: parse_vector(t, "--dst-resolution"),
        help="write at this coarser resolution (default: --resolution)",
    )
    parser.add_argument(
        "--dst-chunk-size",
        type=lambda t: parse_int_vector(t, "--dst-chunk-size"),
        help="the chunking of a new DST (default: SRC's); refused when DST exists with another",
    )
    parser.add_argument(
        "--dst-shard-size",
        type=lambda t: parse_int_vector(t, "--dst-shard-size"),
        help="store a new DST's chunks in shards of this box (voxels; formats that shard, "
        "e.g. precomputed: identity-hashed shards, the copy's write grid); refused when "
        "DST exists",
    )


def _check_chunking_of_existing(path: str, dst: Any, resolution: Any, wanted: Any) -> None:
    """Refuse ``--dst-chunk-size`` that an existing DST does not have: it would be
    ignored, and the copy written with DST's own chunking without a word."""
    from lamina.flows.checks import FlowArgumentError
    from lamina.volumetric.geometry import Vec3D

    backend = dst.backend
    res = Vec3D.from_seq(resolution, "--dst-resolution").float()
    if res not in backend.resolutions:
        return  # copy() names the missing scale
    have = backend.get_chunk_size(res)
    if tuple(have) != tuple(wanted):
        raise FlowArgumentError(
            f"--dst-chunk-size {','.join(map(str, wanted))} is the chunking of a new DST, but "
            f"{path} exists with chunk size {have.pformat()} at {res.pformat()} nm; nothing "
            "was written. Copy into a new path, or leave out --dst-chunk-size to write with "
            "DST's chunking"
        )


def _run_copy(args: argparse.Namespace) -> int:
    """Copy every scale of SRC (or the one ``--resolution`` names), each at its own
    resolution. Every argument is checked for every scale, against DST's geometry or,
    when DST does not exist yet, against the geometry it will be created with, before
    DST is created or anything copied: a bad argument leaves nothing behind for the next
    command to reuse."""
    from lamina.flows.checks import backend_like, check_run_options
    from lamina.flows.copying import copy, plan_copy
    from lamina.paths import destination_exists, open_or_create_path, open_path, template_of

    options = _run_options(args)
    check_run_options("copy", options)
    src = open_path(args.src, format=args.src_format, engine=args.engine)
    if args.resolution is None and args.dst_resolution is None:
        pairs = [(res, res) for res in src.backend.resolutions]  # the whole dataset
    else:
        res = args.resolution or _finest(src)
        pairs = [(res, args.dst_resolution or res)]
    region = _region(args, args.resolution or _finest(src))
    like = template_of(
        src,
        resolutions=[d for _, d in pairs],
        chunk_size=args.dst_chunk_size,
        shard_size=args.dst_shard_size,
    )
    exists = destination_exists(args.dst, format=args.format)
    if exists and args.dst_shard_size is not None:
        from lamina.flows.checks import FlowArgumentError

        raise FlowArgumentError(
            f"--dst-shard-size is the sharding of a new DST, but {args.dst} exists; nothing "
            "was written. Copy into a new path, or leave out --dst-shard-size"
        )
    if not exists:
        # the stand-in lives in memory; whether DST's storage reaches other processes is
        # checked on DST itself once it is made
        stand_in = backend_like(like, args.dst)
        for res, dst_res in pairs:
            plan_copy(
                src,
                stand_in,
                bbox=region,
                resolution=res,
                dst_resolution=dst_res,
                chunk_size=args.chunk_size,
                run=cast("RunOptions", {k: v for k, v in options.items() if k != "executor"}),
            )
    dst = open_or_create_path(args.dst, like, format=args.format, engine=args.engine)
    if exists:
        if args.dst_chunk_size is not None:
            for _, dst_res in pairs:
                _check_chunking_of_existing(args.dst, dst, dst_res, args.dst_chunk_size)
        for res, dst_res in pairs:  # every scale's checks before the first is copied
            plan_copy(
                src,
                dst.backend,
                bbox=region,
                resolution=res,
                dst_resolution=dst_res,
                chunk_size=args.chunk_size,
                run=options,
            )
    for res, dst_res in pairs:
        label = "x".join(f"{v:g}" for v in dst_res)
        scale_options = dict(options)
        if len(pairs) > 1 and options.get("run_id"):  # a run, so a journal, per scale
            scale_options["run_id"] = f"{options['run_id']}-{label}"
        summary = copy(
            src,
            dst,
            bbox=region,
            resolution=res,
            dst_resolution=dst_res,
            chunk_size=args.chunk_size,
            **cast("RunOptions", scale_options),
        )
        print(("" if len(pairs) == 1 else f"{label} nm: ") + summary.line())
    return 0


COPY_COMMAND = Command(
    help="copy a volume (every scale, or a region of one) into another, task by task",
    description=(
        "Copy SRC into DST on DST's write grid: another format, chunking or coarser "
        "resolution. By default every scale of SRC is copied, each at its own resolution; "
        "--resolution picks one (and --dst-resolution writes it at a coarser one). DST is "
        "created like SRC when nothing is stored there yet (--dst-chunk-size changes its "
        "chunking). Copying a volume onto itself is refused."
    ),
    add_arguments=_add_copy_arguments,
    run=_run_copy,
)


# -- lamina downsample -----------------------------------------------------------------------
def _add_downsample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the volume: precomputed://…, a local directory, …")
    add_format_argument(parser)
    _add_run_arguments(parser, "the volume")
    parser.add_argument(
        "--factor",
        type=lambda t: parse_int_vector(t, "--factor"),
        default=(2, 2, 1),
        help="downsampling per level x,y,z (default 2,2,1)",
    )
    parser.add_argument("--levels", type=int, default=3, help="levels to add (default 3)")
    parser.add_argument(
        "--mode",
        default=None,
        help="img, segmentation, mask, … (default: the one the volume's type implies)",
    )


def _run_downsample(args: argparse.Namespace) -> int:
    from lamina.flows.checks import check_run_options
    from lamina.flows.pyramid import downsample
    from lamina.paths import open_path

    options = _run_options(args)
    check_run_options("downsample", options)
    layer = open_path(args.path, format=args.format, engine=args.engine, readonly=False)
    resolution = args.resolution or _finest(layer)
    summary = downsample(
        layer,
        from_resolution=resolution,
        factor=args.factor,
        levels=args.levels,
        mode=args.mode,
        bbox=_region(args, resolution),
        chunk_size=args.chunk_size,
        **options,
    )
    return _finish(summary)


DOWNSAMPLE_COMMAND = Command(
    help="add a resolution pyramid to a volume (default: 3 levels of 2x2x1)",
    description=(
        "Add --levels scales of --factor each to the volume at PATH, computed from its "
        "finest scale (or --resolution), one read per task."
    ),
    add_arguments=_add_downsample_arguments,
    run=_run_downsample,
)


# -- lamina run ------------------------------------------------------------------------------
def _add_run_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "spec",
        help='a JSON or YAML file: {"@type": "copy" | "downsample" | "apply" | …, '
        "the flow's arguments…}",
    )
    parser.add_argument(
        "--allow-lambda",
        action="store_true",
        help='evaluate the spec\'s {"@type": "lambda", "lambda_str": …} functions (a spec '
        "file is code: refused without this flag)",
    )
    _add_engine_arguments(parser)


def load_spec(path: str) -> Any:
    """A spec file's contents: JSON, or YAML for ``.yaml``/``.yml``. A file that does
    not parse is a :class:`~lamina.errors.SpecError` naming the file, line and column."""
    from lamina.errors import PathNotFoundError, SpecError

    file = Path(path)
    if not file.is_file():
        what = "a directory, not a file" if file.is_dir() else "no such file"
        raise PathNotFoundError(f"the spec {path}: {what}")
    text = file.read_text()
    if file.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise SpecError(f"{path}{where}: not valid YAML: {problem}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
            + ("" if file.suffix.lower() == ".json" else " (YAML files end in .yaml or .yml)")
        ) from None


def _run_spec(args: argparse.Namespace) -> int:
    from lamina.flows.reference_specs import unwrap_execute
    from lamina.specs import TYPE_KEY, build

    spec = unwrap_execute(load_spec(args.spec))
    if not isinstance(spec, dict) or TYPE_KEY not in spec:
        from lamina.errors import SpecError

        got = type(spec).__name__ if not isinstance(spec, dict) else f"keys {sorted(spec)}"
        raise SpecError(
            f"{args.spec}: a spec is a mapping with {TYPE_KEY!r} naming the flow, e.g. "
            f'{{"@type": "copy", "src": ..., "dst": ...}}; got {got}'
        )
    summary = build({**spec, **_run_options(args)}, allow_lambda=args.allow_lambda)
    if hasattr(summary, "line"):
        return _finish(summary)
    print(summary)
    return 0


RUN_COMMAND = Command(
    help="run any flow from a JSON or YAML spec",
    description=(
        'Build and run SPEC, e.g. {"@type": "copy", "src": {"@type": "build_cv_layer", '
        '"path": "…"}, "dst": {…}}. The run flags override the spec\'s.'
    ),
    add_arguments=_add_run_spec_arguments,
    run=_run_spec,
)
