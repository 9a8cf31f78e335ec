"""No silent loss on data other tools wrote: sharded scales (TensorStore, identity and
murmurhash3 hashes), compression siblings (CloudVolume's gzip default), damaged chunks,
and the shape of one-voxel reads."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_precomputed import build_cv_layer
from lamina_precomputed.codecs import DamagedChunkError

from lamina import BBox3D, Vec3D, VolumetricIndex, flows
from lamina.testing import random_data, run_lamina

RES = Vec3D(4, 4, 40)
SIZE = (128, 128, 32)
CHUNK = (32, 32, 16)


# -- a sharded scale written by TensorStore ----------------------------------------------------
def sharding_spec(hash_: str) -> dict[str, Any]:
    # a 4 x 4 x 2 chunk grid: 5 bits of chunk id; 3 low bits (x0, y0, z0) form the box
    # of a shard (2 x 2 x 2 chunks = 64 x 64 x 32 voxels) with the identity hash.
    return {
        "@type": "neuroglancer_uint64_sharded_v1",
        "preshift_bits": 2,
        "hash": hash_,
        "minishard_bits": 1,
        "shard_bits": 2,
        "minishard_index_encoding": "gzip",
        "data_encoding": "gzip",
    }


def ts_sharded(path: Path, hash_: str, data: np.ndarray[Any, Any]) -> Any:
    """A uint8 sharded volume written whole by TensorStore; ``data`` is ``(X, Y, Z, C)``."""
    import tensorstore as ts

    store = ts.open(
        {
            "driver": "neuroglancer_precomputed",
            "kvstore": {"driver": "file", "path": str(path)},
            "multiscale_metadata": {"type": "image", "data_type": "uint8", "num_channels": 1},
            "scale_metadata": {
                "resolution": list(RES),
                "encoding": "raw",
                "chunk_size": list(CHUNK),
                "size": list(SIZE),
                "sharding": sharding_spec(hash_),
            },
            "create": True,
        }
    ).result()
    store.write(data).result()
    return store


def ts_read(path: Path) -> np.ndarray[Any, Any]:
    """``(C, X, Y, Z)`` as TensorStore reads the volume."""
    import tensorstore as ts

    store = ts.open(
        {"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": str(path)}},
        read=True,
    ).result()
    return np.asarray(store.read(order="F").result()).transpose(3, 0, 1, 2)


@pytest.fixture(params=["identity", "murmurhash3_x86_128"])
def sharded(request: Any, tmp_path: Path) -> tuple[Path, str, np.ndarray[Any, Any]]:
    data = random_data((*SIZE, 1), "uint8", seed=11)
    data[data == 0] = 1
    path = tmp_path / f"sharded-{request.param}"
    ts_sharded(path, request.param, data)
    return path, request.param, data.transpose(3, 0, 1, 2)


def idx(start: Any, stop: Any) -> VolumetricIndex:
    return VolumetricIndex.from_coords(start, stop, RES)


def test_lamina_reads_a_tensorstore_sharded_scale(sharded: Any) -> None:
    path, _, expected = sharded
    layer = build_cv_layer(path, readonly=True)
    np.testing.assert_array_equal(layer[RES, 0:128, 0:128, 0:32], expected)
    np.testing.assert_array_equal(layer[RES, 30:70, 5:99, 10:20], expected[:, 30:70, 5:99, 10:20])


def test_the_write_grid_of_a_sharded_scale_is_its_shard_box(sharded: Any) -> None:
    path, hash_, _ = sharded
    backend = build_cv_layer(path).backend
    assert backend.get_chunk_size(RES) == Vec3D(*CHUNK)
    if hash_ == "identity":
        assert backend.get_write_grid_size(RES) == Vec3D(64, 64, 32)
    else:  # murmurhash3 scatters a shard's chunks over the volume: no box but the whole
        assert backend.get_write_grid_size(RES) == Vec3D(*SIZE)
    scale = backend.describe()["scales"][0]
    assert scale["sharded"] is True
    assert scale["sharding"]["hash"] == hash_
    assert scale["write_grid"] == list(backend.get_write_grid_size(RES))


def test_a_write_smaller_than_a_shard_is_refused_before_anything_is_written(
    sharded: Any,
) -> None:
    path, hash_, expected = sharded
    before = {p.name: p.read_bytes() for p in (path / "4_4_40").iterdir()}
    layer = build_cv_layer(path)
    grid = "shard box" if hash_ == "identity" else "whole dataset"
    with pytest.raises(ValueError, match=rf"not aligned.*{grid}.*Nearest aligned boxes"):
        layer[RES, 0:32, 0:32, 0:16] = np.full((1, 32, 32, 16), 200, np.uint8)
    assert {p.name: p.read_bytes() for p in (path / "4_4_40").iterdir()} == before
    np.testing.assert_array_equal(ts_read(path), expected)


def test_an_opted_in_partial_write_keeps_every_other_voxel(sharded: Any) -> None:
    path, _, expected = sharded
    loose = build_cv_layer(path).backend.with_changes(enforce_chunk_aligned_writes=False)
    patch = np.full((1, 32, 32, 16), 200, np.uint8)
    loose.write(idx((32, 0, 16), (64, 32, 32)), patch)  # one chunk: a read-modify-write
    odd = np.full((1, 5, 7, 3), 9, np.uint8)
    loose.write(idx((70, 70, 2), (75, 77, 5)), odd)  # part of a chunk
    want = expected.copy()
    want[:, 32:64, 0:32, 16:32] = 200
    want[:, 70:75, 70:77, 2:5] = 9
    np.testing.assert_array_equal(ts_read(path), want)  # TensorStore agrees, voxel for voxel
    np.testing.assert_array_equal(loose.read(idx((0, 0, 0), SIZE)), want)


def test_whole_shard_writes_store_exactly_what_was_written(sharded: Any) -> None:
    path, hash_, expected = sharded
    layer = build_cv_layer(path)
    box = (64, 64, 32) if hash_ == "identity" else SIZE
    new = random_data((1, *box), "uint8", seed=12)
    layer[RES, 0 : box[0], 0 : box[1], 0 : box[2]] = new
    want = expected.copy()
    want[:, : box[0], : box[1], : box[2]] = new
    np.testing.assert_array_equal(ts_read(path), want)


def test_copy_into_a_sharded_destination_copies_every_voxel(tmp_path: Path, sharded: Any) -> None:
    _, hash_, _ = sharded
    src_data = random_data((*SIZE, 1), "uint8", seed=13)
    src = build_cv_layer(
        tmp_path / "src",
        info_scales=[RES],
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=CHUNK,
        info_bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
    )
    src[RES, 0:128, 0:128, 0:32] = src_data.transpose(3, 0, 1, 2)
    dst_path = tmp_path / "dst"
    ts_sharded(dst_path, hash_, np.zeros((*SIZE, 1), np.uint8))
    dst = build_cv_layer(dst_path)
    summary = flows.copy(src, dst, chunk_size=None, progress=False)
    assert summary.tasks >= 1
    np.testing.assert_array_equal(ts_read(dst_path), src_data.transpose(3, 0, 1, 2))


def test_lamina_info_shows_the_sharding(sharded: Any) -> None:
    path, hash_, _ = sharded
    out = run_lamina("info", str(path), "--json")
    assert out.returncode == 0, out.stderr
    scale = json.loads(out.stdout)["scales"][0]
    assert scale["sharding"]["hash"] == hash_
    text = run_lamina("info", str(path))
    assert text.returncode == 0, text.stderr
    assert "shard" in text.stdout


def small_volume(path: Any, channels: int = 1) -> Any:
    """A new uint8 volume of 64 x 64 x 16 voxels in chunks of 32 x 32 x 16."""
    return build_cv_layer(
        path,
        info_scales=[RES],
        info_type="image",
        info_data_type="uint8",
        info_num_channels=channels,
        info_chunk_size=(32, 32, 16),
        info_bbox=BBox3D.from_coords((0, 0, 0), (64, 64, 16), RES),
    )


# -- compression siblings ----------------------------------------------------------------------
def cv_gzip_volume(cloudpath: str) -> Any:
    """A uint8 volume written by plain CloudVolume with its defaults (gzip chunks)."""
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="image",
        data_type="uint8",
        encoding="raw",
        resolution=list(RES),
        voxel_offset=[0, 0, 0],
        volume_size=[64, 64, 16],
        chunk_size=[32, 32, 16],
    )
    cv = CloudVolume(cloudpath, info=info, progress=False)
    cv.commit_info()
    cv[0:64, 0:64, 0:16] = np.full((64, 64, 16, 1), 11, np.uint8)
    return cv


def stored_forms(cloudpath: str, name: str) -> list[str]:
    """Every stored form of ``name`` (``name``, ``name.gz``, …), as the storage lists
    them (cloud-files' listing would drop the suffix)."""
    if cloudpath.startswith("file://"):
        directory = Path(cloudpath[len("file://") :]) / name.split("/")[0]
        stem = name.split("/")[1]
        return sorted(f"{name.split('/')[0]}/{p.name}" for p in directory.glob(stem + "*"))
    from cloudfiles.connectionpools import MEMORY_DATA

    bucket, _, prefix = cloudpath[len("mem://") :].partition("/")
    full = f"{prefix}/{name}"
    return sorted(k[len(prefix) + 1 :] for k in MEMORY_DATA[bucket] if k.startswith(full))


def _read_fresh(cloudpath: str) -> int:
    code = (
        "import sys; from lamina_precomputed import build_cv_layer; from lamina import Vec3D;"
        "layer = build_cv_layer(sys.argv[1], readonly=True);"
        "print(int(layer[Vec3D(4, 4, 40), 0:1, 0:1, 0:1].ravel()[0]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, cloudpath], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def test_a_raw_write_over_cloudvolume_gzip_leaves_one_form(tmp_path: Path) -> None:
    cloudpath = f"file://{tmp_path / 'v'}"
    cv_gzip_volume(cloudpath)
    assert sorted(os.listdir(tmp_path / "v" / "4_4_40"))[0].endswith(".gz")
    layer = build_cv_layer(cloudpath)  # lamina's default writer: no compression
    layer[RES, 0:32, 0:32, 0:16] = 99
    names = sorted(os.listdir(tmp_path / "v" / "4_4_40"))
    assert "0-32_0-32_0-16" in names
    assert "0-32_0-32_0-16.gz" not in names
    assert int(layer[RES, 0:1, 0:1, 0:1].ravel()[0]) == 99
    assert _read_fresh(cloudpath) == 99  # and every other process


def test_a_compressed_rewrite_reads_back_what_was_written(tmp_path: Path, mem_root: str) -> None:
    for cloudpath in (f"file://{tmp_path / 'v'}", mem_root):
        layer = small_volume(cloudpath)
        layer[RES, 0:32, 0:32, 0:16] = 11
        gz = layer.backend.with_changes(use_compression=True)
        gz.write(idx((0, 0, 0), (32, 32, 16)), np.full((1, 32, 32, 16), 99, np.uint8))
        assert int(layer[RES, 5:6, 5:6, 5:6].ravel()[0]) == 99
        assert int(gz.read(idx((5, 5, 5), (6, 6, 6))).ravel()[0]) == 99
        assert stored_forms(cloudpath, "4_4_40/0-32_0-32_0-16") == ["4_4_40/0-32_0-32_0-16.gz"]
        if cloudpath.startswith("file://"):
            assert _read_fresh(cloudpath) == 99


def test_on_s3_a_rewrite_in_another_compression_is_one_object(s3_root: str) -> None:
    cloudpath = f"{s3_root}/siblings"
    cv_gzip_volume(cloudpath)
    layer = build_cv_layer(cloudpath)
    layer[RES, 0:32, 0:32, 0:16] = 99
    from cloudfiles import CloudFiles

    listed = [n for n in CloudFiles(cloudpath).list(prefix="4_4_40/") if "0-32_0-32" in n]
    assert listed == ["4_4_40/0-32_0-32_0-16"]
    assert int(build_cv_layer(cloudpath, readonly=True)[RES, 0:1, 0:1, 0:1].ravel()[0]) == 99


# -- damaged chunks ----------------------------------------------------------------------------
def test_a_gzip_chunk_whose_size_field_is_zero_is_an_error(tmp_path: Path) -> None:
    cloudpath = f"file://{tmp_path / 'v'}"
    cv_gzip_volume(cloudpath)
    chunk = tmp_path / "v" / "4_4_40" / "0-32_0-32_0-16.gz"
    body = chunk.read_bytes()
    chunk.write_bytes(body[:-4] + b"\0\0\0\0")  # ISIZE = 0: decodes to nothing
    layer = build_cv_layer(cloudpath, readonly=True)
    with pytest.raises(DamagedChunkError, match="0-32_0-32_0-16"):
        layer[RES, 0:64, 0:64, 0:16]
    assert (layer[RES, 32:64, 0:32, 0:16] == 11).all()  # the other chunks still read


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-100], id="cut-short"),
        pytest.param(lambda b: b + b"x", id="too-long"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: gzip.compress(b"")[:-4] + b"\0\0\0\0", id="empty-gzip"),
    ],
)
def test_a_present_chunk_of_the_wrong_size_is_an_error(tmp_path: Path, damage: Any) -> None:
    layer = small_volume(tmp_path / "v")
    layer[RES, 0:64, 0:64, 0:16] = 5
    chunk = tmp_path / "v" / "4_4_40" / "32-64_0-32_0-16"
    chunk.write_bytes(damage(chunk.read_bytes()))
    with pytest.raises(DamagedChunkError, match="32-64_0-32_0-16"):
        layer[RES, 0:64, 0:64, 0:16]
    chunk.unlink()  # absent: the fill value, no error
    assert not layer[RES, 32:64, 0:32, 0:16].any()


# -- shapes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
def test_a_one_voxel_read_is_channels_first(tmp_path: Path, channels: int) -> None:
    layer = small_volume(tmp_path / "v", channels)
    data = random_data((channels, 32, 32, 16), "uint8", seed=3)
    layer[RES, 0:32, 0:32, 0:16] = data
    one = layer[RES, 3:4, 4:5, 5:6]
    assert one.shape == (channels, 1, 1, 1)
    np.testing.assert_array_equal(one[:, 0, 0, 0], data[:, 3, 4, 5])


# -- what a fresh pair of eyes found ------------------------------------------------------------
def test_a_geometry_change_that_would_renumber_shards_is_refused(sharded: Any) -> None:
    path, _, expected = sharded
    backend = build_cv_layer(path).backend
    info_before = (path / "info").read_text()
    with pytest.raises(ValueError, match="sharded: changing its voxel offset"):
        backend.with_changes(dataset_size_res=((128, 128, 48), RES))  # z: 2 -> 3 chunks
    assert (path / "info").read_text() == info_before
    np.testing.assert_array_equal(ts_read(path), expected)


def test_mem_volumes_keep_a_copy_of_what_was_written(mem_root: str) -> None:
    layer = small_volume(mem_root)
    data = layer[RES, 0:32, 0:32, 0:16]  # a Fortran-ordered (X, Y, Z) view of one channel
    data[...] = 5
    layer[RES, 0:32, 0:32, 0:16] = data
    data[...] = 99  # the caller changes its own array afterwards
    assert (layer[RES, 0:32, 0:32, 0:16] == 5).all()


def test_a_write_through_one_backend_is_seen_by_the_cache_of_another(tmp_path: Path) -> None:
    small_volume(tmp_path / "v")
    cached = build_cv_layer(tmp_path / "v", cache_bytes_limit=1 << 20)
    assert int(cached[RES, 0:1, 0:1, 0:1].ravel()[0]) == 0  # cached now
    loose = cached.backend.with_changes(enforce_chunk_aligned_writes=False)
    loose.write(idx((0, 0, 0), (32, 32, 16)), np.full((1, 32, 32, 16), 7, np.uint8))
    other = build_cv_layer(tmp_path / "v")
    other[RES, 32:64, 0:32, 0:16] = 8
    assert int(cached[RES, 0:1, 0:1, 0:1].ravel()[0]) == 7
    assert int(cached[RES, 40:41, 0:1, 0:1].ravel()[0]) == 8


def test_a_gzip_labelled_shard_on_s3_reads_whole(s3_root: str) -> None:
    """A shard object stored with ``Content-Encoding: gzip`` (CloudVolume compresses what
    it uploads): its byte ranges are of the compressed form, so it is read whole."""
    from cloudfiles import CloudFiles

    cloudpath = f"{s3_root}/gzip-shard"
    data = random_data((*SIZE, 1), "uint8", seed=21)
    local = Path(f"/tmp/lamina-gzip-shard-{os.getpid()}")
    ts_sharded(local, "identity", data)
    try:
        files = CloudFiles(cloudpath)
        for file in local.rglob("*"):
            if file.is_file():
                name = str(file.relative_to(local))
                compress = "gzip" if name.endswith(".shard") else None
                files.put(name, file.read_bytes(), compress=compress)
    finally:
        import shutil

        shutil.rmtree(local, ignore_errors=True)
    layer = build_cv_layer(cloudpath, readonly=True)
    np.testing.assert_array_equal(layer[RES, 0:128, 0:128, 0:32], data.transpose(3, 0, 1, 2))


def test_mem_reads_the_form_cloudfiles_reads(mem_root: str) -> None:
    from cloudvolume import CloudVolume

    layer = small_volume(mem_root)
    layer[RES, 0:32, 0:32, 0:16] = 1  # raw
    cv = CloudVolume(mem_root, mip=0, progress=False, compress="gzip")
    cv[0:32, 0:32, 0:16] = np.full((32, 32, 16, 1), 2, np.uint8)  # a .gz beside it
    assert int(np.asarray(cv[0:1, 0:1, 0:1]).ravel()[0]) == 2
    assert int(build_cv_layer(mem_root)[RES, 0:1, 0:1, 0:1].ravel()[0]) == 2


def test_a_volume_with_one_unsupported_scale_opens_and_refuses_that_scale(
    tmp_path: Path,
) -> None:
    from lamina_precomputed.codecs import UnsupportedEncodingError

    layer = build_cv_layer(
        tmp_path / "v",
        info_scales=[RES, (8, 8, 40)],
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=(32, 32, 16),
        info_bbox=BBox3D.from_coords((0, 0, 0), (64, 64, 16), RES),
    )
    layer[RES, 0:64, 0:64, 0:16] = 3
    info = json.loads((tmp_path / "v" / "info").read_text())
    info["scales"][1]["encoding"] = "jxl"
    (tmp_path / "v" / "info").write_text(json.dumps(info))
    reopened = build_cv_layer(tmp_path / "v")
    assert (reopened[RES, 0:64, 0:64, 0:16] == 3).all()
    assert "jxl" in str(reopened.backend.describe()["scales"][1]["encoding"])
    with pytest.raises(UnsupportedEncodingError, match=r"'jxl'.*uint8.*1 channel"):
        reopened[Vec3D(8, 8, 40), 0:32, 0:32, 0:16]


def test_compress_none_is_cloudvolumes_default_gzip(tmp_path: Path) -> None:
    small_volume(tmp_path / "v")
    layer = build_cv_layer(tmp_path / "v", cv_kwargs={"compress": None})
    assert layer.backend.use_compression
    layer[RES, 0:32, 0:32, 0:16] = 4
    assert os.listdir(tmp_path / "v" / "4_4_40") == ["0-32_0-32_0-16.gz"]
