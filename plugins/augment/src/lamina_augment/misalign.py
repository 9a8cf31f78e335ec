"""``MisalignProcessor``: misaligned sections, as a failed alignment leaves them (the
reference system's, under its name and parameters).

The index step draws a displacement in x and y (nm, a magnitude between
``disp_min_in_unit`` and ``disp_max_in_unit`` and a random sign per axis), converts it to
voxels at the index's resolution and widens the read by it on the side it points to;
the data step shifts sections by it and crops back to the requested box: in ``"slip"``
mode one random section, in ``"step"`` mode every section from a random one on (never
the first: a step there would shift the whole block, which is no misalignment). Applied
to a plain volume, or to members of a layer set (``keys_to_apply``; default in step mode:
every array member), all by the same voxels; the other members are cropped back to the
requested box, unshifted (the reference returned them at the widened read's size).

Unlike the reference's, the displacement and the call's generator travel in the per-call
state (never on the processor, so threads sharing it do not mix their draws), the
``prob`` coin comes from that generator (``seed=`` makes calls reproducible), and the
input is never changed in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import attrs
import numpy as np
import numpy.typing as npt

from lamina.processors import JointIndexDataProcessor, Mode
from lamina.volumetric.geometry import Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina_augment.joint import map_members, member_names, z_size
from lamina_augment.randomness import applies, call_generator

__all__ = ["MisalignProcessor"]


@attrs.frozen
class _Shift:
    dx: int
    dy: int
    rng: np.random.Generator


@attrs.frozen
class MisalignProcessor(JointIndexDataProcessor[Any, VolumetricIndex]):
    """Misalign sections of a read (see the module docstring).

    Args:
        prob: the chance that a read is misaligned.
        disp_min_in_unit: the smallest displacement magnitude (nm), per axis.
        disp_max_in_unit: the largest displacement magnitude (nm), per axis.
        mode: ``"slip"`` (one section) or ``"step"`` (every section from one on).
        keys_to_apply: the layer set members it applies to (required in slip mode for
            a layer set).
        add_misalignment_metadata: a key of the layer set's data to which the pairs of
            sections that meet misaligned are appended.
        seed: makes the sequence of reads reproducible.
    """

    draws_own_coin: ClassVar[bool] = True

    prob: float
    disp_min_in_unit: float
    disp_max_in_unit: float
    mode: Literal["slip", "step"] = "step"
    keys_to_apply: tuple[str, ...] | None = attrs.field(default=None, converter=member_names)
    add_misalignment_metadata: str | None = None
    seed: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.mode not in ("slip", "step"):
            raise ValueError(f"MisalignProcessor: mode must be 'slip' or 'step'; got {self.mode!r}")
        if not 0 <= self.disp_min_in_unit <= self.disp_max_in_unit:
            raise ValueError(
                "MisalignProcessor: need 0 <= disp_min_in_unit <= disp_max_in_unit; got "
                f"{self.disp_min_in_unit}, {self.disp_max_in_unit}"
            )
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"MisalignProcessor: prob must be between 0 and 1; got {self.prob}")

    def process_index(self, idx: VolumetricIndex, mode: Mode) -> tuple[VolumetricIndex, Any]:
        if mode != "read":
            raise NotImplementedError("MisalignProcessor applies to reads only")
        rng = call_generator(self.seed, owner=self)
        if not applies(rng, self.prob):
            return idx, None
        shift = []
        for d in range(2):
            magnitude = rng.uniform(self.disp_min_in_unit, self.disp_max_in_unit)
            sign = 1 if rng.random() < 0.5 else -1
            shift.append(int((sign * magnitude) // idx.resolution[d]))
        dx, dy = shift
        start = Vec3D(-dx if dx > 0 else 0, -dy if dy > 0 else 0, 0)
        end = Vec3D(-dx if dx < 0 else 0, -dy if dy < 0 else 0, 0)
        return idx.translated_start(start).translated_end(end), _Shift(dx, dy, rng)

    def process_data(self, data: Any, mode: Mode, state: Any) -> Any:
        if mode != "read":
            raise NotImplementedError("MisalignProcessor applies to reads only")
        if state is None:
            return data
        keys = self.keys_to_apply
        if isinstance(data, Mapping) and not keys and self.mode == "slip":
            raise ValueError("MisalignProcessor: slip mode on a layer set needs keys_to_apply")
        depth = z_size(data, keys)
        rng = state.rng
        z = (
            int(rng.integers(0, depth))
            if self.mode == "slip"
            else int(rng.integers(min(1, depth - 1), depth))
        )
        out = map_members(
            data,
            lambda a: self._shift(a, depth, z, state),
            keys,
            "MisalignProcessor",
            others=lambda a: self._crop(a, state),  # the other members: the box asked for
        )
        if self.add_misalignment_metadata is not None:
            if not isinstance(out, dict):
                raise TypeError("add_misalignment_metadata needs a layer set's {name: data}")
            pairs = [(z - 1, z)] + ([(z, z + 1)] if self.mode == "slip" else [])
            out[self.add_misalignment_metadata] = [
                *out.get(self.add_misalignment_metadata, []),
                *pairs,
            ]
        return out

    @staticmethod
    def _crop(t: npt.NDArray[Any], state: _Shift) -> npt.NDArray[Any]:
        """The requested box of a widened read, unshifted."""
        ax, ay = max(state.dx, 0), max(state.dy, 0)
        return t[:, ax : ax + t.shape[1] - abs(state.dx), ay : ay + t.shape[2] - abs(state.dy)]

    def _shift(self, t: npt.NDArray[Any], depth: int, z: int, state: _Shift) -> npt.NDArray[Any]:
        dx, dy = state.dx, state.dy
        xs, ys = t.shape[1] - abs(dx), t.shape[2] - abs(dy)
        ax, ay = max(dx, 0), max(dy, 0)  # the requested box in the widened read
        sx, sy = max(-dx, 0), max(-dy, 0)  # the displaced window
        out = t[:, ax : ax + xs, ay : ay + ys, :].copy()
        gap = depth - t.shape[3]  # a member with fewer sections, centred in z
        local = z - gap // 2
        if local >= t.shape[3] or (local < 0 and self.mode == "slip"):
            return out
        local = max(local, 0)
        sections = slice(local, local + 1) if self.mode == "slip" else slice(local, None)
        out[..., sections] = t[:, sx : sx + xs, sy : sy + ys, sections]
        return out
