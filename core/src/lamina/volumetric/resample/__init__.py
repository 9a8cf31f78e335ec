"""Resampling of channels-first volumes ``(C, X, Y, Z)`` by a per-axis scale factor.

``resample(data, scale_factor, mode)`` is what a layer with ``data_resolution`` uses to
move data between the stored and the requested resolution. ``scale_factor[i]`` is the
output size over the input size along spatial axis ``i`` (x, y, z): ``(0.5, 0.5, 1)``
halves x and y.

What runs where:

* A factor of 1 on every axis returns ``data`` itself: no copy, no dtype change, so a
  read at the stored resolution costs nothing extra.
* Whole-number factors (``1/k`` down, ``k`` up, mixed over the axes) in the ``img``,
  ``area``, ``field``, ``segmentation``, ``mask``, ``nearest`` and ``nearest-exact``
  modes are computed exactly with numpy (tinybrain where its compiled kernels are
  faster: float means, mode pooling in x-fastest layouts); torch is not needed.
  Upsampling by ``k`` repeats each voxel ``k`` times in all of these modes (the reference
  interpolated ``img`` linearly; a repeat keeps values exact and needs no torch).
* ``nearest``, ``nearest-exact``, ``segmentation`` and ``mask`` never need torch, at any
  factor: they only pick or threshold values, so ids of any dtype stay exact (uint64 ids
  at or above 2**63 included, which a detour through float64 would round).
* ``img``, ``area`` and ``field`` at non-whole factors, ``bicubic``, and the linear modes
  except for the block means below, interpolate with ``torch.nn.functional.interpolate``;
  torch is imported only then and, if it is missing, :class:`TorchUnavailableError`
  says how to get it.

Mode by mode, for downsampling by blocks of ``kx * ky * kz`` voxels:

* ``img``, ``area``: the block mean. Integer dtypes are rounded half up, i.e. to
  ``floor(mean + 1/2)`` (also for negative values: -0.5 -> 0, -1.5 -> -1), not truncated
  as the reference does: truncating shifts the means by half a unit on average. Floats
  are averaged in float64 and cast back.
* ``linear``, ``bilinear``, ``trilinear``: the block mean where that is what the
  reference computes (all blocks 2 wide, where it equals torch's linear interpolation,
  and its tinybrain shortcut for factors (1/2^i, 1/2^i, 1) and (1/2^i, 1/2^i, 1/2^i),
  i = 1..4); otherwise torch's ``trilinear`` (``align_corners=False``) over x, y, z,
  whichever of the three names is given.
* ``bicubic``: torch's bicubic in x and y, plane by plane; the z factor must be 1.
* ``segmentation``: the most frequent value of each block, compared bit for bit. Ties:
  for 2x2x1 blocks tinybrain's COUNTLESS rule (with a, b, c, d the voxels at
  (0,0), (1,0), (0,1), (1,1): a if a == b or a == c, else b if b == c, else d); for every
  other block the tied value seen first in x-fastest order (x, then y, then z), which is
  also what tinybrain's 2x2x2 kernel picks. The result never depends on memory layout.
  At non-whole factors: the ``nearest-exact`` pick.
* ``mask``: 1 (in the input dtype) where any voxel of the block is ``> mask_value_thr``
  (strict), else 0; at non-whole factors, any voxel the output voxel overlaps. Upsampled
  masks are thresholded the same way, so a mask stays 0/1 at every factor. (The
  reference thresholds the *mean*; the two agree for the usual threshold 0 on
  non-negative masks.)
* ``field``: 2-channel displacement fields (in voxels): the block mean (or repeat) in
  float64 times the x factor (x and y factors must be equal), cast back to the input
  dtype; at non-whole factors torch's trilinear interpolation, times the factor.
* ``nearest``: the first voxel of each block; ``nearest-exact``: the voxel at offset
  ``k // 2`` -- both as torch picks them, at any factor.

Volumes of 8 MiB and more are resampled in slabs along their slowest spatial axis, one
thread per slab (numpy releases the GIL; each slab holds whole blocks, so the result is
the same); ``LAMINA_RESAMPLE_THREADS`` sets the number of threads (default: the CPUs
this process may use; 1 turns threads off).

Shapes not divisible by a block size are refused unless ``allow_shape_rounding=True``
(a layer's ``allow_slice_rounding``). With it, an output axis has ``ceil(n * factor)``
voxels -- the size of an index whose start is floored and whose stop is ceiled -- the
blocks start at voxel 0 and the last one is partial: its mean, mode or "any" is taken
over the voxels it has, its ``nearest-exact`` pick is clamped into it. At non-whole
factors voxel ``i`` of the output samples the input at ``(i + 1/2) / factor - 1/2``
(``align_corners=False``), and the extra voxel, if any, continues past the end with the
edge value, as torch's clamping would.

The code is laid out one concept per module: ``api`` (:func:`resample`), ``plan`` (the
arguments and the per-axis plan), ``dispatch`` (which kernel runs), ``threads`` (slabs
in the resampler's thread pool), ``blocks`` (the block-reduction engine), ``means``,
``segmentation``, ``mask`` and ``nearest`` (the kernels by family of modes),
``tinybrain_paths`` (where tinybrain's kernels run), ``torch`` (interpolation with
torch) and ``arrays`` (layout and dtype helpers). Import the names from here.
"""

from __future__ import annotations

from lamina.volumetric.modes import InterpolationMode
from lamina.volumetric.resample.api import resample
from lamina.volumetric.resample.threads import resample_threads
from lamina.volumetric.resample.torch import TorchUnavailableError

__all__ = [
    "InterpolationMode",
    "TorchUnavailableError",
    "resample",
    "resample_threads",
]

# The functions and the error keep the module they had before the split: pickles name
# them by it, and so do the run identities that name a function by its module (a resumed
# run finds its journal by them), so both stay the same as with the single module.
TorchUnavailableError.__module__ = __name__
resample.__module__ = __name__
resample_threads.__module__ = __name__
