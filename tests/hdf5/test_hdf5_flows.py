"""The flows on HDF5 volumes: pyramids added to a lamina group (also from other
processes), lamina copy creating an HDF5 volume like its source, plain datasets refused."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import lamina
from lamina import BBox3D, Vec3D
from lamina.flows import downsample
from lamina.testing import run_lamina

R = Vec3D(8, 8, 40)


@pytest.fixture(autouse=True)
def _journals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_JOURNAL_DIR", str(tmp_path / "journals"))


def _volume(path: Path) -> tuple[Any, np.ndarray[Any, Any]]:
    layer = lamina.build_h5_layer(
        str(path),
        "img",
        default_desired_resolution=R,
        index_resolution=R,
        info_scales=[R],
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=(64, 64, 8),
        info_bbox=BBox3D.from_coords((0, 0, 0), (256, 256, 16), R),
    )
    data = np.random.default_rng(1).integers(0, 255, (1, 256, 256, 16), dtype="uint8")
    layer[0:256, 0:256, 0:16] = data
    return layer, data


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_downsample_adds_datasets_to_the_group(executor: str, tmp_path: Path) -> None:
    layer, data = _volume(tmp_path / "v.h5")
    downsample(layer, levels=2, executor=executor, workers=2, progress=False)
    with h5py.File(tmp_path / "v.h5", "r") as f:  # plain h5py sees the new scales
        assert sorted(f["img"]) == ["16_16_40", "32_32_40", "8_8_40"]
        assert f["img/16_16_40"].shape == (16, 128, 128)  # z, y, x
    again = lamina.build_h5_layer(f"{tmp_path / 'v.h5'}:/img")
    level1 = np.floor(data.reshape(1, 128, 2, 128, 2, 16).astype(float).mean(axis=(2, 4)) + 0.5)
    np.testing.assert_array_equal(again[Vec3D(16, 16, 40), 0:128, 0:128, 0:16], level1)


def test_a_plain_dataset_cannot_grow_a_pyramid(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("raw", data=np.zeros((8, 64, 64), dtype="uint8"), chunks=(8, 32, 32))
    layer = lamina.build_h5_layer(str(tmp_path / "plain.h5"), "raw", resolution=R, axes="zyx")
    with pytest.raises(lamina.UnsupportedOperationError, match="single dataset"):
        downsample(layer, levels=1)


def test_cli_copy_between_precomputed_and_hdf5(tmp_path: Path) -> None:
    _, data = _volume(tmp_path / "v.h5")
    env = {"LAMINA_JOURNAL_DIR": str(tmp_path / "journals")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_lamina(*args, cwd=tmp_path, env=env)

    to_pc = run("copy", "v.h5:/img", "pc", "--quiet")
    assert to_pc.returncode == 0, to_pc.stderr
    back = run("copy", "pc", "out.h5:/copy", "--dst-chunk-size", "128,128,16", "--quiet")
    assert back.returncode == 0, back.stderr
    out = lamina.build_h5_layer(f"{tmp_path / 'out.h5'}:/copy")
    assert out.backend.get_chunk_size(R) == Vec3D(128, 128, 16)
    np.testing.assert_array_equal(out[R, 0:256, 0:256, 0:16], data)
    pyramid = run("downsample", "out.h5:/copy", "--levels", "1", "--quiet")
    assert pyramid.returncode == 0, pyramid.stderr
    assert pyramid.stdout.startswith("1 task, ")  # 256 x 256 at 16 nm: one 128-chunk task
    grown = lamina.build_h5_layer(f"{tmp_path / 'out.h5'}:/copy")
    assert grown.backend.resolutions == (R, Vec3D(16, 16, 40))
