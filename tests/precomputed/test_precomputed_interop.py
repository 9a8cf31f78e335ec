"""Interop with real clients (issue item 6): plain CloudVolume and TensorStore read what
lamina writes; lamina reads what CloudVolume writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_precomputed import build_cv_layer
from precomputed_support import small_volume_params

from lamina import BBox3D, Vec3D
from lamina.testing import random_data

FINE = Vec3D(4, 4, 40)
COARSE = Vec3D(8, 8, 40)


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A two-channel uint16 volume written by lamina at two scales, offset from 0."""
    path = tmp_path / "v"
    layer = build_cv_layer(
        path,
        **small_volume_params(
            info_data_type="uint16",
            info_num_channels=2,
            info_bbox=BBox3D.from_coords((32, 64, 4), (160, 192, 12), FINE),
        ),
    )
    fine = random_data((2, 128, 128, 8), "uint16", seed=1)
    coarse = random_data((2, 64, 64, 8), "uint16", seed=2)
    layer[FINE, 32:160, 64:192, 4:12] = fine
    layer[COARSE, 16:80, 32:96, 4:12] = coarse
    return path, fine, coarse


def test_plain_cloudvolume_reads_what_lamina_wrote(written: Any) -> None:
    from cloudvolume import CloudVolume

    path, fine, coarse = written
    cv = CloudVolume(f"file://{path}", mip=[4, 4, 40], progress=False)
    np.testing.assert_array_equal(cv[32:160, 64:192, 4:12].transpose(3, 0, 1, 2), fine)
    cv = CloudVolume(f"file://{path}", mip=[8, 8, 40], progress=False)
    np.testing.assert_array_equal(cv[16:80, 32:96, 4:12].transpose(3, 0, 1, 2), coarse)


def test_tensorstore_reads_what_lamina_wrote(written: Any) -> None:
    import tensorstore as ts

    path, fine, coarse = written
    for scale_index, (expected, lo) in enumerate([(fine, (32, 64, 4)), (coarse, (16, 32, 4))]):
        store = ts.open(
            {
                "driver": "neuroglancer_precomputed",
                "kvstore": {"driver": "file", "path": str(path)},
                "scale_index": scale_index,
            },
            read=True,
        ).result()
        assert store.dtype.numpy_dtype == np.uint16
        hi = [lo[d] + expected.shape[d + 1] for d in range(3)]
        got = store[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2], :].read().result()
        np.testing.assert_array_equal(np.asarray(got).transpose(3, 0, 1, 2), expected)


def test_lamina_reads_what_cloudvolume_wrote(tmp_path: Path) -> None:
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="segmentation",
        data_type="uint32",
        encoding="raw",
        resolution=[4, 4, 40],
        voxel_offset=[10, 20, 3],
        volume_size=[100, 90, 9],
        chunk_size=[32, 32, 4],
    )
    cv = CloudVolume(f"file://{tmp_path / 'cv'}", info=info, progress=False)
    cv.add_scale((2, 2, 1), chunk_size=[32, 32, 4])
    cv.commit_info()
    # CloudVolume's defaults: gzip-compressed chunk files (<key>.gz on local disk).
    fine = random_data((100, 90, 9, 1), "uint32", seed=3)
    cv[10:110, 20:110, 3:12] = fine
    coarse_cv = CloudVolume(f"file://{tmp_path / 'cv'}", mip=1, progress=False)
    coarse = random_data((50, 45, 9, 1), "uint32", seed=4)
    coarse_cv[5:55, 10:55, 3:12] = coarse
    assert any(p.suffix == ".gz" for p in (tmp_path / "cv" / "4_4_40").iterdir())

    layer = build_cv_layer(tmp_path / "cv", readonly=True)
    assert layer.backend.dtype == np.uint32
    assert layer.backend.get_voxel_offset(FINE) == Vec3D(10, 20, 3)
    np.testing.assert_array_equal(layer[FINE, 10:110, 20:110, 3:12], fine.transpose(3, 0, 1, 2))
    np.testing.assert_array_equal(layer[COARSE, 5:55, 10:55, 3:12], coarse.transpose(3, 0, 1, 2))
