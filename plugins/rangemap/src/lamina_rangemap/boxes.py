"""Boxes in voxels at one resolution, and the arithmetic a range map does with them.

A range map cuts every read and write into voxel boxes: a range's box minus the boxes
of the later ranges (which take precedence), and the parts of the index that no box
covers. Boxes are half-open ``((x0, x1), (y0, y1), (z0, z1))`` tuples of ints rather
than :class:`~lamina.volumetric.geometry.BBox3D` (nm, floats), so that subtracting them
is exact; this module converts between the two and writes them in messages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from lamina.volumetric.geometry import BBox3D, Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = [
    "DECIMALS",
    "Box",
    "box_text",
    "centre_voxel",
    "index_of",
    "slices_in",
    "subtract_all",
    "uncovered_text",
    "voxel_box_text",
]

# A box in voxels at one resolution: ((x0, x1), (y0, y1), (z0, z1)), half-open.
Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

#: Box edges in voxels are rounded to this many decimals before they are compared with
#: the voxel grid, so that nm / resolution is not off the grid by a rounding error.
DECIMALS = 10


def _subtract(a: Box, b: Box) -> list[Box]:
    """``a`` minus ``b`` as at most 6 disjoint boxes (slabs along x, then y, then z)."""
    if any(a[d][1] <= b[d][0] or b[d][1] <= a[d][0] for d in range(3)):
        return [a]
    out: list[Box] = []
    rest = [a[0], a[1], a[2]]
    for d in range(3):
        lo, hi = rest[d]
        blo, bhi = b[d]
        if lo < blo:
            piece = list(rest)
            piece[d] = (lo, blo)
            out.append((piece[0], piece[1], piece[2]))
        if bhi < hi:
            piece = list(rest)
            piece[d] = (bhi, hi)
            out.append((piece[0], piece[1], piece[2]))
        rest[d] = (max(lo, blo), min(hi, bhi))
    return out


def subtract_all(pieces: list[Box], boxes: Iterable[Box | None]) -> list[Box]:
    """``pieces`` minus every box of ``boxes`` (``None`` entries are skipped)."""
    for box in boxes:
        if box is None:
            continue
        pieces = [p for piece in pieces for p in _subtract(piece, box)]
        if not pieces:
            break
    return pieces


def centre_voxel(q: float) -> int:
    """The first voxel whose centre is at or past ``q`` voxels (``q`` itself if integral)."""
    q = round(q, DECIMALS)
    if q.is_integer():
        return int(q)
    return math.ceil(q - 0.5)


def box_text(box: BBox3D) -> str:
    return f"{box.pformat((1, 1, 1))} nm"


def voxel_box_text(box: Box, res: Vec3D[float]) -> str:
    start = Vec3D(box[0][0], box[1][0], box[2][0])
    stop = Vec3D(box[0][1], box[1][1], box[2][1])
    nm = BBox3D.from_coords(start, stop, res)
    return f"{box_text(nm)} = voxels {start.pformat()} - {stop.pformat()} at {res.pformat()} nm"


def uncovered_text(uncovered: list[Box], res: Vec3D[float]) -> str:
    """The first few boxes no range covers, for a message."""
    shown = "; ".join(voxel_box_text(b, res) for b in uncovered[:6])
    more = f" and {len(uncovered) - 6} more" if len(uncovered) > 6 else ""
    return shown + more


def index_of(box: Box, idx: VolumetricIndex) -> VolumetricIndex:
    """``box`` as an index at ``idx``'s resolution, with ``idx``'s other settings."""
    return VolumetricIndex.from_coords(
        (box[0][0], box[1][0], box[2][0]),
        (box[0][1], box[1][1], box[2][1]),
        idx.resolution,
        chunk_id=idx.chunk_id,
        allow_slice_rounding=idx.allow_slice_rounding,
    )


def slices_in(box: Box, origin: Vec3D[int]) -> tuple[slice, slice, slice, slice]:
    """Where ``box`` is in a ``(C, X, Y, Z)`` array whose first voxel is ``origin``."""
    return (
        slice(None),
        slice(box[0][0] - origin[0], box[0][1] - origin[0]),
        slice(box[1][0] - origin[1], box[1][1] - origin[1]),
        slice(box[2][0] - origin[2], box[2][1] - origin[2]),
    )
