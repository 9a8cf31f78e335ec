"""Which source owns which voxels of an index: the plan of one read or write.

The source that owns a voxel is the last range whose box holds it (TensorStore's
overlay/stack rule: later layers take precedence where they overlap). A plan lists,
in range order, each source's disjoint voxel boxes inside the index (its box minus the
boxes of every later range) and the boxes that no range covers. A box edge inside the
index must lie on the voxel grid, unless the index allows slice rounding: a voxel then
belongs to the boxes holding its centre.
"""

from __future__ import annotations

from lamina.volumetric.geometry import Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina_rangemap.boxes import DECIMALS, Box, centre_voxel, subtract_all
from lamina_rangemap.errors import RangeMapError
from lamina_rangemap.sources import VolumetricRange, range_label

__all__ = ["Plan", "plan_parts"]

#: ``(parts, uncovered)``: each owning source's index in the ranges with its voxel
#: boxes, in range order, and the voxel boxes no range covers.
Plan = tuple[list[tuple[int, list[Box]]], list[Box]]

_AXES = "xyz"


def _clip(
    ranges: tuple[VolumetricRange, ...], i: int, extent: Box, res: Vec3D[float], rounding: bool
) -> Box | None:
    """Range ``i``'s box in voxels at ``res``, clipped to ``extent``; ``None`` if they
    do not overlap. An edge inside the extent must be on the voxel grid unless
    ``rounding`` (then a voxel belongs to the box holding its centre)."""
    box = ranges[i][0]
    b = box.bounds
    out: list[tuple[int, int]] = []
    for d in range(3):
        lo, hi = extent[d]
        q0, q1 = b[d][0] / res[d], b[d][1] / res[d]
        if q1 <= lo or q0 >= hi:
            return None
        edges = []
        for q, which in ((q0, "start"), (q1, "end")):
            if q <= lo:
                edges.append(lo)
            elif q >= hi:
                edges.append(hi)
            else:
                qr = round(q, DECIMALS)
                if not qr.is_integer() and not rounding:
                    raise RangeMapError(
                        f"the box of {range_label(ranges, i)} is not on the voxel grid at "
                        f"{res.pformat()} nm: its {which} in {_AXES[d]} is "
                        f"{b[d][0 if which == 'start' else 1]!r} nm = {qr!r} voxels (the box "
                        f"is {box.pformat(res)} in voxels). Give boxes on the voxel grid of "
                        "every resolution you read, or build the layer with "
                        "allow_slice_rounding=True (a voxel then belongs to the boxes "
                        "holding its centre)."
                    )
                edges.append(centre_voxel(qr))
        if edges[0] >= edges[1]:
            return None
        out.append((edges[0], edges[1]))
    return (out[0], out[1], out[2])


def plan_parts(ranges: tuple[VolumetricRange, ...], idx: VolumetricIndex) -> Plan:
    """Which source reads or writes which part of ``idx``, and what no box covers.

    Returns ``(parts, uncovered)``: ``parts`` lists, in range order, each source that
    owns part of ``idx`` with its disjoint voxel boxes at ``idx.resolution`` (its box
    inside ``idx`` minus the boxes of every later range); ``uncovered`` the voxel
    boxes of ``idx`` that no range covers.
    """
    res = idx.resolution
    start, stop = idx.start, idx.stop
    extent: Box = ((start[0], stop[0]), (start[1], stop[1]), (start[2], stop[2]))
    if not idx.allow_slice_rounding:  # the common case: idx inside one box, none later
        bbox = idx.bbox
        for i in range(len(ranges) - 1, -1, -1):
            range_box = ranges[i][0]
            if bbox.contained_in(range_box):
                return [(i, [extent])], []
            if range_box.intersects(bbox):
                break
    clipped = [_clip(ranges, i, extent, res, idx.allow_slice_rounding) for i in range(len(ranges))]
    parts: list[tuple[int, list[Box]]] = []
    for i, box in enumerate(clipped):
        if box is None:
            continue
        pieces = subtract_all([box], clipped[i + 1 :])
        if pieces:
            parts.append((i, pieces))
    return parts, subtract_all([extent], clipped)
