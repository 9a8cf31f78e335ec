"""Functions for the subchunkable-apply tests, at module level so that worker processes
unpickle them by name: a translation-equivariant filter, pointwise maps, a constant, and
callables that count their calls, fail, or kill their worker, as planned in files."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def mean3(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The 3 x 3 x 3 mean of every voxel (the edges of its input padded by repetition),
    in the input's dtype: what a small convolutional model does to its input."""
    padded = np.pad(a.astype(np.float64), ((0, 0), (1, 1), (1, 1), (1, 1)), mode="edge")
    out = np.zeros(a.shape, dtype=np.float64)
    x, y, z = a.shape[1:]
    for dx in range(3):
        for dy in range(3):
            for dz in range(3):
                out += padded[:, dx : dx + x, dy : dy + y, dz : dz + z]
    return (out / 27).astype(a.dtype)


def affine(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``2 a + 1`` in ``a``'s dtype: a pointwise function."""
    return (a * 2 + 1).astype(a.dtype)


def seven(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The constant 7."""
    return np.full_like(a, 7)


class Counted:
    """``fn`` that leaves a marker file per call under ``markers`` (any process), fails
    on inputs holding ``poison`` while the file ``fail_flag`` exists, and kills its own
    process once if it can claim ``kill_flag`` (renaming it away)."""

    def __init__(
        self, markers: str, fail_flag: str = "", poison: int = -1, kill_flag: str = ""
    ) -> None:
        self.markers = markers
        self.fail_flag = fail_flag
        self.poison = poison
        self.kill_flag = kill_flag

    def __call__(self, a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        if self.kill_flag:
            try:
                os.rename(self.kill_flag, f"{self.kill_flag}.claimed")
            except FileNotFoundError:
                pass
            else:
                os._exit(1)  # a worker that dies mid-task
        if self.fail_flag and os.path.exists(self.fail_flag) and (a == self.poison).any():
            raise RuntimeError("poisoned input")
        (Path(self.markers) / f"{os.getpid()}-{uuid.uuid4().hex}").touch()
        return affine(a)


def calls(markers: Path) -> int:
    return len(list(markers.iterdir())) if markers.exists() else 0


def affine_of_src(src: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """:func:`affine` of the keyword argument ``src`` (a reference-system spec's op_kwargs)."""
    return affine(src)
