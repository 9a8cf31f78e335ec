"""Geometry of volumetric indexing: 3-vectors, bounding boxes in nm, and chunk striding.

Everything a volumetric index is made of lives here:

- :class:`Vec3D` — an immutable, hashable ``(x, y, z)`` vector with elementwise
  arithmetic. It is a ``tuple`` subclass, so it is cheap to build and hash, unpacks,
  pickles and converts to numpy like a tuple.
- :class:`BBox3D` — a frozen axis-aligned box whose bounds are kept in nanometres;
  voxel coordinates exist only relative to a resolution (``to_slices(resolution)``).
  ``intersection`` of boxes that do not overlap returns the one empty box, which raises
  :class:`EmptyBBoxError` wherever real coordinates are needed (see
  :mod:`lamina.volumetric.geometry.bbox`).
- :class:`BBoxStrider` — enumerates the chunk boxes that tile a box on a grid.

One concept per module: ``scalars`` (plain numbers, rounding), ``vec`` (``Vec3D``),
``args`` (checked vector, resolution and pad arguments), ``bounds`` (nm bounds and
their voxel coordinates), ``bbox`` (``BBox3D``) and ``strider`` (``BBoxStrider``).
Import the names from here; the modules are how the code is laid out, not an interface.
"""

from __future__ import annotations

# The public names; ``name as name``: the private helpers that lamina.volumetric.index
# and lamina.volumetric.scheme import from here for their hot paths.
from lamina.volumetric.geometry.args import PadLike
from lamina.volumetric.geometry.args import _positive_res as _positive_res
from lamina.volumetric.geometry.bbox import BBox3D, EmptyBBoxError
from lamina.volumetric.geometry.bbox import _make_bbox as _make_bbox
from lamina.volumetric.geometry.bounds import Bounds3D
from lamina.volumetric.geometry.bounds import _voxel as _voxel
from lamina.volumetric.geometry.bounds import _voxel_extent as _voxel_extent
from lamina.volumetric.geometry.scalars import _AXES as _AXES
from lamina.volumetric.geometry.scalars import EPS
from lamina.volumetric.geometry.strider import BBoxStrider, StriderMode
from lamina.volumetric.geometry.vec import IntVec3D, RawVec3D, Vec3D
from lamina.volumetric.geometry.vec import _tuple_new as _tuple_new

__all__ = [
    "EPS",
    "BBox3D",
    "BBoxStrider",
    "Bounds3D",
    "EmptyBBoxError",
    "IntVec3D",
    "PadLike",
    "RawVec3D",
    "StriderMode",
    "Vec3D",
]

# The classes keep the module they had before the split: pickles name them by it, and so
# do the run identities that digest pickled state (a resumed run finds its journal by
# them), so both stay the same as with the single module.
for _cls in (BBox3D, BBoxStrider, EmptyBBoxError, Vec3D):
    _cls.__module__ = __name__
del _cls
