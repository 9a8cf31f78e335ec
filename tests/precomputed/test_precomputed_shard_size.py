"""New sharded volumes: ``info_shard_size``, ``lamina copy --dst-shard-size`` and
``lamina downsample`` of a sharded volume, read back by TensorStore."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_precomputed import build_cv_layer

from lamina import BBox3D, Vec3D

RES = Vec3D(8.0, 8.0, 40.0)
SHAPE = (512, 512, 64)


def new_volume(path: Path, **kwargs: Any) -> Any:
    return build_cv_layer(
        str(path), info_type="image", info_data_type="uint8", info_num_channels=1,
        info_chunk_size=(64, 64, 8), info_bbox=BBox3D.from_coords((0, 0, 0), SHAPE, RES),
        info_scales=[RES], **kwargs,
    )  # fmt: skip


def data() -> np.ndarray[Any, Any]:
    return np.random.default_rng(0).integers(0, 255, (1, *SHAPE), dtype=np.uint8)


def ts_read(path: Path, scale_index: int = 0) -> np.ndarray[Any, Any]:
    import tensorstore as ts

    store = ts.open(
        {
            "driver": "neuroglancer_precomputed",
            "kvstore": {"driver": "file", "path": f"{path}/"},
            "scale_index": scale_index,
        }
    ).result()
    return np.asarray(store.read(order="F").result()).transpose(3, 0, 1, 2)


def lamina_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lamina", *args], capture_output=True, text=True)


def test_info_shard_size_makes_identity_shards_tensorstore_reads(tmp_path: Path) -> None:
    layer = new_volume(tmp_path / "v", info_shard_size=(256, 256, 32))
    sharding = layer.backend.info["scales"][0]["sharding"]
    assert sharding["hash"] == "identity"
    assert tuple(layer.backend.get_write_grid_size(RES)) == (256, 256, 32)
    layer[RES, 0:512, 0:512, 0:64] = data()
    assert sorted(p.name for p in (tmp_path / "v" / "8_8_40").iterdir()) == [
        f"{i}.shard" for i in range(8)
    ]
    assert np.array_equal(ts_read(tmp_path / "v"), data())


def test_a_shard_size_morton_order_cannot_make_is_refused_before_anything(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        ValueError, match=r"info_shard_size.*shard sizes it can be are: .*256x256x32"
    ):
        new_volume(tmp_path / "v", info_shard_size=(512, 64, 8))
    assert not (tmp_path / "v").exists()
    new_volume(tmp_path / "w")
    with pytest.raises(ValueError, match="info_shard_size given without info_scales"):
        build_cv_layer(str(tmp_path / "w"), info_shard_size=(256, 256, 32))


def test_a_box_covering_the_grid_is_one_shard(tmp_path: Path) -> None:
    layer = new_volume(tmp_path / "v", info_shard_size=(4096, 4096, 4096))
    layer[RES, 0:512, 0:512, 0:64] = data()
    assert [p.name for p in (tmp_path / "v" / "8_8_40").iterdir()] == ["0.shard"]
    assert np.array_equal(ts_read(tmp_path / "v"), data())


def test_lamina_copy_and_downsample_write_sharded_volumes(tmp_path: Path) -> None:
    new_volume(tmp_path / "src")[RES, 0:512, 0:512, 0:64] = data()
    dst = tmp_path / "dst"
    done = lamina_cli("copy", str(tmp_path / "src"), str(dst), "--dst-shard-size", "256,256,32")
    assert done.returncode == 0, done.stderr
    assert np.array_equal(ts_read(dst), data())
    done = lamina_cli("downsample", str(dst), "--levels", "2")
    assert done.returncode == 0, done.stderr
    layer = build_cv_layer(str(dst))
    scales = layer.backend.info["scales"]
    assert len(scales) == 3
    for i, scale in enumerate(scales):  # TensorStore's scale_index: the info's order
        assert scale["sharding"]["hash"] == "identity"
        res, (x, y, z) = Vec3D(*scale["resolution"]), scale["size"]
        assert np.array_equal(ts_read(dst, i), layer[res, 0:x, 0:y, 0:z])
    info = lamina_cli("info", str(dst))
    assert info.stdout.count("sharded (identity hash)") == 3


def test_lamina_copy_refuses_a_bad_shard_size_and_creates_nothing(tmp_path: Path) -> None:
    new_volume(tmp_path / "src")[RES, 0:64, 0:64, 0:8] = 1
    bad = lamina_cli(
        "copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--dst-shard-size", "512,64,8"
    )
    assert bad.returncode != 0
    assert bad.stderr.count("\n") == 1
    assert "the shard sizes it can be are" in bad.stderr
    assert not (tmp_path / "dst").exists()
    tasks = lamina_cli(
        "copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--dst-shard-size", "256,256,32",
        "--chunk-size", "128,128,16",
    )  # fmt: skip
    assert tasks.returncode != 0
    assert "shard box (256, 256, 32)" in tasks.stderr
    assert not (tmp_path / "dst").exists()
    new_volume(tmp_path / "exists")
    again = lamina_cli(
        "copy", str(tmp_path / "src"), str(tmp_path / "exists"), "--dst-shard-size", "256,256,32"
    )
    assert again.returncode != 0
    assert "--dst-shard-size is the sharding of a new DST" in again.stderr
