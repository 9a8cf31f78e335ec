"""The flows (copy, downsample, apply) on dask over precomputed volumes on local files,
checked voxel by voxel against numpy, on the session's cluster reached with
``scheduler=`` (left running). A flow on a local cluster the executor starts for the run
is in test_dask_faults (apply, with killed workers) and test_dask_cli (copy)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dask_support import R, neighbours_in_x, triple_plus_one_uint8, volume

import lamina
from lamina import BBox3D, Vec3D
from lamina.flows import apply, copy, downsample
from lamina.testing.functions import mean3

SHAPE = (128, 128, 16)


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, np.ndarray[Any, Any]]:
    data = np.random.default_rng(7).integers(0, 255, (1, *SHAPE), dtype="uint8")
    volume(tmp_path / "src", SHAPE, (16, 16, 8))[R, 0:128, 0:128, 0:16] = data
    return tmp_path / "src", data


def test_copy_on_an_existing_cluster(
    source: tuple[Path, Any], tmp_path: Path, address: str, client: Any
) -> None:
    path, data = source
    src = lamina.build_cv_layer(str(path))
    dst = volume(tmp_path / "dst", SHAPE, (32, 32, 8))  # another chunking
    summary = copy(src, dst, executor="dask", workers=2, chunk_size=(64, 64, 8), scheduler=address)
    assert summary.tasks == 2 * 2 * 2
    assert summary.bytes == data.nbytes
    np.testing.assert_array_equal(
        lamina.build_cv_layer(str(tmp_path / "dst"))[R, 0:128, 0:128, 0:16], data
    )
    assert client.status == "running"  # the cluster is left running


def test_downsample_on_an_existing_cluster(
    source: tuple[Path, Any], tmp_path: Path, address: str, client: Any
) -> None:
    path, data = source
    layer = lamina.build_cv_layer(str(path))
    summary = downsample(
        layer,
        levels=2,
        chunk_size=(16, 16, 8),  # tasks on the coarsest level's grid: 2 x 2 x 2 of them
        executor="dask",
        workers=2,
        scheduler=address,
    )
    assert summary.tasks == 8
    reopened = lamina.build_cv_layer(str(path))
    assert reopened.backend.resolutions == (R, Vec3D(16, 16, 40), Vec3D(32, 32, 40))

    def halve(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:  # img mode: rounded means
        c, x, y, z = a.shape
        means = a.reshape(c, x // 2, 2, y // 2, 2, z).astype(float).mean(axis=(2, 4))
        return np.floor(means + 0.5).astype(a.dtype)

    level1 = halve(data)
    np.testing.assert_array_equal(reopened[Vec3D(16, 16, 40), 0:64, 0:64, 0:16], level1)
    np.testing.assert_array_equal(reopened[Vec3D(32, 32, 40), 0:32, 0:32, 0:16], halve(level1))
    # the existing cluster is still there, both workers with it
    assert client.status == "running"
    assert len(client.run(os.getpid)) == 2


def test_apply_with_context_on_an_existing_cluster(
    source: tuple[Path, Any], tmp_path: Path, address: str
) -> None:
    path, data = source
    src = lamina.build_cv_layer(str(path))
    dst = volume(tmp_path / "dst", SHAPE, (16, 16, 8), dtype="uint16")
    region = BBox3D.from_coords((16, 16, 0), (112, 112, 16), R)  # context stays inside src
    summary = apply(
        neighbours_in_x,
        src,
        dst,
        bbox=region,
        chunk_size=(32, 32, 8),
        context=(1, 1, 0),
        executor="dask",
        workers=2,
        scheduler=address,
    )
    assert summary.tasks == 3 * 3 * 2
    wide = data.astype("uint16")
    expected = np.zeros_like(wide)
    expected[:, 16:112, 16:112] = wide[:, 15:111, 16:112] + wide[:, 17:113, 16:112]
    np.testing.assert_array_equal(
        lamina.build_cv_layer(str(tmp_path / "dst"))[R, 0:128, 0:128, 0:16], expected
    )


def test_apply_with_a_lambda_on_an_existing_cluster(
    source: tuple[Path, Any], tmp_path: Path, address: str, client: Any
) -> None:
    """Plain pickle refuses a lambda; the run's operation then travels by cloudpickle
    (dask's own fallback), pickled once for the run."""
    path, data = source
    dst = volume(tmp_path / "dst", SHAPE, (64, 64, 8))
    summary = apply(
        lambda a: a // 2,
        lamina.build_cv_layer(str(path)),
        dst,
        executor="dask",
        workers=2,
        scheduler=address,
        chunk_size=(64, 64, 8),
    )
    assert summary.tasks == 2 * 2 * 2
    np.testing.assert_array_equal(
        lamina.build_cv_layer(str(tmp_path / "dst"))[R, 0:128, 0:128, 0:16], data // 2
    )


@pytest.mark.parametrize(
    ("chunks", "crops"),
    [([[64, 64, 8]], [1, 1, 1]), ([[64, 64, 8], [34, 34, 4]], [[2, 2, 0], [1, 1, 1]])],
    ids=["1 level", "2 levels"],
)
def test_subchunkable_apply_crops_and_blends_on_an_existing_cluster(
    chunks: Any, crops: Any, source: tuple[Path, Any], tmp_path: Path, address: str
) -> None:
    """Crop pads: equal to the function over the whole padded volume; and with blend
    pads at both levels (the top level's through intermediaries and the blend pass, on
    the cluster's workers): a pointwise function's result, exactly."""
    path, data = source
    src = lamina.build_cv_layer(str(path))
    cropped = volume(tmp_path / "cropped", SHAPE, (16, 16, 8), dtype="float32")
    apply(
        mean3,
        src,
        cropped,
        processing_chunk_sizes=chunks,
        processing_crop_pads=crops,
        executor="dask",
        workers=2,
        scheduler=address,
    )
    expected = mean3(src[R, -1:129, -1:129, -1:17])[:, 1:-1, 1:-1, 1:-1]
    np.testing.assert_array_equal(cropped[R, 0:128, 0:128, 0:16], expected)
    blended = volume(tmp_path / "blended", SHAPE, (16, 16, 8))
    summary = apply(
        triple_plus_one_uint8,
        src,
        blended,
        processing_chunk_sizes=[[64, 64, 8], [48, 48, 8]],  # 64 + 2 x 16 = 2 x 48
        processing_blend_pads=[[16, 16, 0], [8, 8, 0]],
        processing_blend_modes="linear",
        level_intermediaries_dirs=[str(tmp_path / "intermediaries"), None],
        executor="dask",
        workers=2,
        scheduler=address,
    )
    assert summary.tasks == 2 * 2 * 2
    np.testing.assert_array_equal(blended[R, 0:128, 0:128, 0:16], triple_plus_one_uint8(data))
    assert not any((tmp_path / "intermediaries").iterdir())
