"""Layers for the augmentation tests: an in-memory float32 image at (8, 8, 40) nm, and a
layer set of that image and a copy of it as labels (so misalignments and flips must keep
the two equal)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

import lamina
from lamina import BBox3D, Vec3D

R = Vec3D(8, 8, 40)
SHAPE = (128, 96, 16)
BOX = BBox3D.from_coords((0, 0, 0), SHAPE, R)


def image_data() -> npt.NDArray[Any]:
    return np.random.default_rng(3).random((1, *SHAPE)).astype(np.float32)


def image(dtype: str = "float32") -> Any:
    layer = lamina.build_memory_volumetric_layer(
        BOX, [R], (32, 32, 8), dtype=dtype, default_desired_resolution=R, index_resolution=R
    )
    data = image_data() if dtype == "float32" else (image_data() * 200).astype(dtype)
    layer[0:128, 0:96, 0:16] = data
    return layer


def image_and_labels() -> Any:
    return lamina.build_volumetric_layer_set(
        {"img": image(), "labels": image()}, default_desired_resolution=R, index_resolution=R
    )
