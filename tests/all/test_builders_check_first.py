"""Every volume builder checks the layer's own parameters before it creates a volume:
a bad one leaves nothing behind (no info file, no HDF5 file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lamina_hdf5 import build_h5_layer
from lamina_npydir.volume import build_npydir_layer
from lamina_precomputed import build_cv_layer

from lamina import BBox3D

NEW_VOLUME: dict[str, Any] = {
    "info_type": "image",
    "info_data_type": "uint8",
    "info_num_channels": 1,
    "info_chunk_size": (8, 8, 8),
    "info_bbox": BBox3D.from_coords((0, 0, 0), (64, 64, 64), (1, 1, 1)),
    "info_scales": [(1, 1, 1)],
}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"data_resolution": (2, 2, 2)}, "interpolation_mode is not"),
        ({"interpolation_mode": "bogus"}, "interpolation_mode must be one of"),
        ({"index_resolution": (1, 1)}, "index_resolution must have exactly 3"),
        ({"default_desired_resolution": "4,4"}, "default_desired_resolution"),
    ],
)
@pytest.mark.parametrize(
    ("build", "name"),
    [(build_cv_layer, "v"), (build_h5_layer, "v.h5"), (build_npydir_layer, "v.npydir")],
)
def test_a_bad_layer_parameter_creates_nothing(
    tmp_path: Path, build: Any, name: str, bad: dict[str, Any], message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        build(str(tmp_path / name), **NEW_VOLUME, **bad)
    assert list(tmp_path.iterdir()) == []
