"""``lamina view PATH [PATH ...]`` and ``lamina preview PATH --out slice.png``.

Both open their paths through the path-opener hook (``lamina.open_path``), so every
installed plugin's paths work. Everything that goes wrong on purpose is a
:class:`~lamina.errors.LaminaError`, which the ``lamina`` command prints as one line
with exit code 1: a path that does not exist (named), a path no installed plugin
recognises (named, with the ``pip install`` that adds it when its form is known), a
missing neuroglancer (``pip install lamina-view``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from lamina.errors import LaminaError
from lamina.paths import add_format_argument
from lamina.plugins.contributions import Command

__all__ = ["PREVIEW_COMMAND", "VIEW_COMMAND", "local_part", "open_layer"]

_LOCAL_PREFIXES = ("precomputed://file://", "precomputed://", "file://", "hdf5://")


class PathError(LaminaError, FileNotFoundError):
    """A path given on the command line does not exist."""


def local_part(path: str) -> str | None:
    """The local file or directory ``path`` names, or ``None`` for a remote or in-memory
    path (``gs://``, ``s3://``, ``mem://``, ``http://``…)."""
    text = path
    for prefix in _LOCAL_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if "://" in text:
        return None
    if ":/" in text:  # FILE.h5:/GROUP
        head = text.split(":/", 1)[0]
        if os.path.splitext(head)[1]:
            text = head
    return os.path.expanduser(text)


def open_layer(path: str, format: str | None = None, engine: str | None = None) -> Any:
    """The volumetric layer at ``path`` (in ``format``, else the format that recognises
    it; on ``engine`` where the format has several), or a :class:`LaminaError` saying
    why not."""
    from lamina.paths import open_path
    from lamina.volumetric.backend import VolumetricBackend

    local = local_part(path)
    if local is not None and not os.path.exists(local):
        raise PathError(f"{path}: no such file or directory")
    try:
        layer = open_path(path, format=format, engine=engine)
    except LaminaError:
        raise
    except Exception as exc:
        raise LaminaError(f"cannot open {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(getattr(layer, "backend", None), VolumetricBackend):
        volumes = getattr(layer, "volumes", None)
        hint = ""
        if volumes:
            names = ", ".join(f"{path}:/{getattr(v, 'dataset', v)}" for v in volumes)
            hint = f"; it holds several volumes, name one: {names}"
        raise LaminaError(f"{path} is not a volumetric layer{hint}")
    return layer


def _name(path: str, taken: set[str]) -> str:
    text = path.rstrip("/")
    for prefix in _LOCAL_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
    base = text.replace(":/", "/").rstrip("/").rsplit("/", 1)[-1] or text or "layer"
    name, n = base, 2
    while name in taken:
        name, n = f"{base} ({n})", n + 1
    taken.add(name)
    return name


# -- lamina view -------------------------------------------------------------------------------
def _add_view_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="the volumes to show")
    add_format_argument(parser, "every PATH")
    parser.add_argument(
        "--no-browser", action="store_true", help="print the URL only; do not open a browser"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="serve the viewer on port N and the data on N+1 (default: any free ports)",
    )
    parser.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="the address to serve on (default 127.0.0.1: this machine only)",
    )


def _can_open_browser() -> bool:
    """Whether the system browser can open a window here (on Linux: a display exists);
    never a text browser that would take over the terminal."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _run_view(args: argparse.Namespace) -> int:
    from lamina_view.viewer import _neuroglancer, is_loopback, view

    _neuroglancer()  # a missing neuroglancer is said before any path is opened
    taken: set[str] = set()
    layers = {}
    for path in args.paths:
        layer = open_layer(path, args.format, args.engine)
        layers[_name(path, taken)] = layer
    shown = view(layers, bind_address=args.bind, port=args.port)
    if not is_loopback(args.bind):
        print(
            f"lamina view: warning: serving on {args.bind}: anyone who can reach this "
            "address can read the data of these layers",
            file=sys.stderr,
            flush=True,
        )
    print(shown.url, flush=True)
    print(
        f"lamina view: the data is served from {shown.data_url.rsplit('/', 1)[0]}; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    if not args.no_browser and _can_open_browser():
        import webbrowser

        webbrowser.open(shown.url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        shown.close()
        print("lamina view: stopped", file=sys.stderr, flush=True)
    return 0


VIEW_COMMAND = Command(
    help="show volumes in neuroglancer (served from this machine until Ctrl-C)",
    description=(
        "Open each PATH (any installed plugin's path forms) and show them in neuroglancer: "
        "prints the viewer's URL, opens the system browser when there is one, and serves "
        "the data, read on demand chunk by chunk, until Ctrl-C. It serves on 127.0.0.1 "
        "unless --bind names another address."
    ),
    add_arguments=_add_view_arguments,
    run=_run_view,
)


# -- lamina preview ----------------------------------------------------------------------------
def _resolution(text: str) -> tuple[float, float, float]:
    try:
        x, y, z = (float(v) for v in text.split(","))
    except ValueError:
        x = y = z = 0.0
    if not (x > 0 and y > 0 and z > 0):
        raise argparse.ArgumentTypeError(f"expected X,Y,Z in nm (e.g. 8,8,40); got {text!r}")
    return (x, y, z)


def _add_preview_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="the volume")
    add_format_argument(parser)
    parser.add_argument("--out", required=True, metavar="FILE.png", help="the PNG to write")
    parser.add_argument(
        "--resolution",
        type=_resolution,
        default=None,
        metavar="X,Y,Z",
        help="nm per voxel (default: the finest scale)",
    )
    parser.add_argument(
        "--z",
        type=int,
        default=None,
        help="the z voxel at that resolution, voxel offset included (default: the middle)",
    )


def _run_preview(args: argparse.Namespace) -> int:
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise LaminaError("lamina preview needs Pillow: pip install lamina-view") from None
    from lamina_view.preview import preview, slice_index

    layer = open_layer(args.path, args.format, args.engine)
    try:
        slice_index(layer, args.resolution, args.z)  # a z outside the volume, no scale…
    except (ValueError, TypeError) as exc:
        raise LaminaError(f"{args.path}: {exc}") from None
    try:
        idx = preview(layer, args.out, resolution=args.resolution, z=args.z)
    except OSError as exc:
        raise LaminaError(f"cannot write {args.out}: {exc}") from None
    x0, y0, z = idx.start
    x1, y1, _ = idx.stop
    print(
        f"wrote {args.out}: z={z}, x {x0}..{x1 - 1} (columns), y {y0}..{y1 - 1} (rows) "
        f"at {idx.resolution.pformat()} nm"
    )
    return 0


PREVIEW_COMMAND = Command(
    help="write one z-slice of a volume as a PNG",
    description=(
        "Write the z-slice of PATH at --z (a voxel coordinate at --resolution, voxel offset "
        "included; default the middle slice of the finest scale) as a PNG: columns are x, "
        "rows y (first row = lowest y). Image contrast is left as stored; segmentation ids "
        "are shown in distinct colours."
    ),
    add_arguments=_add_preview_arguments,
    run=_run_preview,
)
