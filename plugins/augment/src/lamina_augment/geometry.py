"""``FlipRotateAug`` (registered as ``flip_rotate_aug``): flips in x and y and rotations
by multiples of 90° in the x-y plane, the same for every member of a layer set, so an
image and its labels stay aligned.

A rotation by 90° or 270° swaps the box's x and y sizes: for a box that is not square in
x-y the index step reads the box with x and y swapped about the same centre, so the
rotated data has the requested shape; when that box would not be whole voxels (the
sizes differ by an odd number), only 0° and 180° are drawn.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
import numpy.typing as npt

from lamina.processors import JointIndexDataProcessor, Mode
from lamina.volumetric.geometry import Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina_augment.joint import map_members, member_names
from lamina_augment.randomness import applies, call_generator

__all__ = ["FlipRotateAug"]


@attrs.frozen
class _Transform:
    flip_x: bool
    flip_y: bool
    quarter_turns: int


@attrs.frozen
class FlipRotateAug(JointIndexDataProcessor[Any, VolumetricIndex]):
    """Random flips and 90° rotations in x-y, the same for every member.

    Args:
        prob: the chance that a call applies.
        flip: draw flips in x and in y (each with chance 1/2).
        rotate: draw a rotation by 0, 90, 180 or 270 degrees.
        keys_to_apply: the layer set members it applies to (default: every array member).
        seed: makes the sequence of calls reproducible.
    """

    draws_own_coin: ClassVar[bool] = True

    prob: float = 1.0
    flip: bool = True
    rotate: bool = True
    keys_to_apply: tuple[str, ...] | None = attrs.field(default=None, converter=member_names)
    seed: int | None = None

    def process_index(self, idx: VolumetricIndex, mode: Mode) -> tuple[VolumetricIndex, Any]:
        rng = call_generator(self.seed, owner=self)
        if not applies(rng, self.prob):
            return idx, None
        flip_x = bool(self.flip and rng.random() < 0.5)
        flip_y = bool(self.flip and rng.random() < 0.5)
        nx, ny = int(idx.shape[0]), int(idx.shape[1])
        odd_ok = nx == ny or (nx - ny) % 2 == 0
        turns = int(rng.integers(0, 4)) if self.rotate else 0
        if turns % 2 and not odd_ok:
            turns = 2 if turns == 1 else 0
        if turns % 2 and nx != ny:  # read the box with x and y swapped, same centre
            half = (nx - ny) // 2
            idx = idx.translated_start(Vec3D(half, -half, 0)).translated_end(Vec3D(-half, half, 0))
        return idx, _Transform(flip_x, flip_y, turns)

    def process_data(self, data: Any, mode: Mode, state: Any) -> Any:
        if state is None:
            return data
        inverse = mode == "write"

        def transform(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            turns = -state.quarter_turns if inverse else state.quarter_turns
            if inverse:
                a = np.rot90(a, turns, axes=(1, 2))
            if state.flip_x:
                a = np.flip(a, axis=1)
            if state.flip_y:
                a = np.flip(a, axis=2)
            if not inverse:
                a = np.rot90(a, turns, axes=(1, 2))
            return np.ascontiguousarray(a)

        return map_members(data, transform, self.keys_to_apply, "flip_rotate_aug")
