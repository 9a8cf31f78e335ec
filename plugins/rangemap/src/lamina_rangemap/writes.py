"""A range map's write: split among the sources owning its parts, checked up front.

Everything that can be checked is checked before anything is written: coverage (a
write reaching a region no box covers is refused), readonly and non-writable sources,
and, for sources whose writes reach their backend unchanged, the backend's own
refusals (resolution, chunk alignment, bounds). Sources whose writes could not be
checked in advance are written first, so that if one of them refuses, nothing else
has been written. Each source is written through its own layer
(``write_with_procs``), so that it keeps its resolutions and processors.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

from lamina.errors import ReadonlyLayerError, UnknownResolutionError, UnsupportedOperationError
from lamina.volumetric.geometry import Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina_rangemap.boxes import index_of, slices_in, uncovered_text
from lamina_rangemap.errors import UncoveredRegionError
from lamina_rangemap.ownership import plan_parts
from lamina_rangemap.sources import VolumetricRange, plain_for_writes, range_label

__all__ = ["write_split"]


def _check_part_writable(ranges: tuple[VolumetricRange, ...], i: int, idx: VolumetricIndex) -> None:
    layer = ranges[i][1]
    if layer.readonly:
        raise ReadonlyLayerError(
            f"the write to {idx.pformat()} at {idx.resolution.pformat()} nm reaches "
            f"{range_label(ranges, i)}, which is readonly; nothing was written"
        )
    if not layer.backend.capabilities.writable:
        raise UnsupportedOperationError(
            f"the write to {idx.pformat()} at {idx.resolution.pformat()} nm reaches "
            f"{range_label(ranges, i)}, whose backend does not support writes; nothing was "
            "written"
        )


def _precheck_part(ranges: tuple[VolumetricRange, ...], i: int, part: VolumetricIndex) -> None:
    """The source backend's own refusals, made before anything is written."""
    backend = ranges[i][1].backend
    res = part.resolution
    if res not in backend.resolutions:
        known = ", ".join(r.pformat() for r in backend.resolutions)
        raise UnknownResolutionError(
            f"{range_label(ranges, i)} has no scale at {res.pformat()} nm (it has: {known}); "
            "nothing was written"
        )
    if backend.enforce_chunk_aligned_writes and not backend.is_write_aligned(part):
        try:
            backend.assert_idx_is_write_aligned(part)
        except ValueError as exc:
            raise ValueError(
                f"{range_label(ranges, i)} refuses its part of the write: {exc} Nothing was "
                "written. (Box edges inside a source's volume must lie on its chunk grid "
                "for aligned writes.)"
            ) from None
    if not backend.is_within_bounds(part):
        raise ValueError(
            f"{range_label(ranges, i)} refuses its part of the write: {part.pformat()} at "
            f"{res.pformat()} nm reaches outside its dataset bounds "
            f"({backend.get_bounds(res).pformat()}); nothing was written. Keep each box "
            "inside its source's bounds."
        )


def write_split(
    ranges: tuple[VolumetricRange, ...],
    idx: VolumetricIndex,
    array: npt.NDArray[Any],
    *,
    name: str,
    res: Vec3D[float],
) -> None:
    """Write ``array`` (checked, of ``idx``'s shape, in the range map's dtype) to the
    sources owning the parts of ``idx`` at resolution ``res``; ``name`` is the range
    map's, for messages."""
    parts, uncovered = plan_parts(ranges, idx)
    if uncovered:
        raise UncoveredRegionError(
            f"the write to {idx.pformat()} at {res.pformat()} nm reaches outside the "
            f"bounds of every range of {name}: "
            f"{uncovered_text(uncovered, res)} is not covered by any box; nothing "
            "was written. Write inside the ranges (or add a range for that region)."
        )
    plain: dict[int, bool] = {}
    for i, pieces in parts:
        _check_part_writable(ranges, i, idx)
        plain[i] = plain_for_writes(ranges[i][1], res)
        if plain[i]:
            for piece in pieces:
                _precheck_part(ranges, i, index_of(piece, idx))
    # Sources whose writes could not be checked in advance go first: if one of them
    # refuses, nothing else has been written.
    origin = idx.start
    for i, pieces in sorted(parts, key=lambda p: plain[p[0]]):
        layer = ranges[i][1]
        for piece in pieces:
            part = index_of(piece, idx)
            try:
                layer.write_with_procs(part, array[slices_in(piece, origin)])
            except Exception as exc:
                exc.add_note(
                    f"while writing {part.pformat()} at {res.pformat()} nm to "
                    f"{range_label(ranges, i)} of {name}"
                )
                raise
