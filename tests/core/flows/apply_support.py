"""Functions for the subchunkable-apply tests, at module level so that worker processes
unpickle them by name (the filter and the pointwise map are :mod:`lamina.testing.functions`):
a constant, and callables that count their calls, fail, or kill their worker, as planned
in files."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina.testing.functions import affine


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
