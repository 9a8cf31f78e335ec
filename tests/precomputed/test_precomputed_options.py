"""Options: cv_kwargs, with_changes, caches, defaults, no info churn, pickling, delete."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_precomputed import DEFAULT_CV_KWARGS, CVBackend, build_cv_layer
from precomputed_support import small_volume_params, stored_chunks

from lamina import Vec3D

FINE = Vec3D(4, 4, 40)
COARSE = Vec3D(8, 8, 40)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    build_cv_layer(tmp_path / "v", **small_volume_params())
    return tmp_path / "v"


@pytest.fixture
def backend(path: Path) -> CVBackend:
    """A backend over an existing volume, built without info_scales (with_changes must work on
    it: the reference's failed there)."""
    built: CVBackend = build_cv_layer(path).backend
    return built


def info_at(path: Path) -> dict[str, Any]:
    return json.loads((path / "info").read_text())


# -- defaults and cv_kwargs --------------------------------------------------------------------
@pytest.mark.cloudvolume_engine
def test_defaults_are_fast_and_lossless(backend: CVBackend, path: Path) -> None:
    options = backend.cv_kwargs
    assert options["bounded"] is False
    assert options["fill_missing"] is True
    assert options["delete_black_uploads"] is False  # all-zero chunks are stored
    assert options["non_aligned_writes"] is False
    assert options["autocrop"] is False  # lamina crops only when asked
    assert options["compress"] is False  # no gzip: fast writes, readable by TensorStore
    backend.write(_idx((0, 0, 0), (32, 32, 4)), np.zeros((1, 32, 32, 4), np.uint8))
    assert os.listdir(path / "4_4_40") == ["0-32_0-32_0-4"]  # stored, uncompressed
    assert backend._memory_cache is None  # no in-memory chunk cache
    assert backend._io(FINE).disk_cache is None  # no disk cache
    assert (backend.allow_cache, backend.use_compression, backend.cache_bytes_limit) == (
        False,
        False,
        0,
    )
    assert backend.enforce_chunk_aligned_writes
    assert not backend.overwrite_partial_chunks
    assert backend.cv_kwargs == dict(DEFAULT_CV_KWARGS)


def test_new_chunk_files_are_plain_raw_bytes(path: Path) -> None:
    layer = build_cv_layer(path)
    layer[FINE, 0:32, 0:32, 0:4] = 3
    (name,) = os.listdir(path / "4_4_40")
    assert name == "0-32_0-32_0-4"
    assert (path / "4_4_40" / name).stat().st_size == 32 * 32 * 4


def test_cv_kwargs_are_honoured_accepted_or_refused(path: Path) -> None:
    layer = build_cv_layer(path, cv_kwargs={"lru_encoding": "raw", "cdn_cache": False})
    assert layer.backend._io(FINE).options.cache_control == "no-cache"
    assert layer.backend.cv_kwargs["lru_encoding"] == "raw"  # accepted, without effect here
    with pytest.raises(ValueError, match=r"does not know: \['fill_mising'\]"):
        build_cv_layer(path, cv_kwargs={"fill_mising": False})  # a typo is not ignored
    with pytest.raises(ValueError, match="compress"):
        build_cv_layer(path, cv_kwargs={"compress": "lz4"})
    with pytest.raises(ValueError, match="mip"):
        build_cv_layer(path, cv_kwargs={"mip": 1})
    with pytest.raises(ValueError, match="info"):
        build_cv_layer(path, cv_kwargs={"info": {}})


# -- with_changes: every key honoured on a layer built without info_scales ---------------------
def test_voxel_offset_res_moves_the_start_of_every_scale(backend: CVBackend, path: Path) -> None:
    moved = backend.with_changes(voxel_offset_res=((8, 8, 2), FINE))
    assert moved.get_voxel_offset(FINE) == Vec3D(8, 8, 2)
    assert moved.get_dataset_size(FINE) == Vec3D(120, 120, 6)  # the end stays
    assert moved.get_voxel_offset(COARSE) == Vec3D(4, 4, 2)
    assert moved.get_dataset_size(COARSE) == Vec3D(60, 60, 6)
    fine, coarse = info_at(path)["scales"]
    assert (fine["voxel_offset"], fine["size"]) == ([8, 8, 2], [120, 120, 6])
    assert (coarse["voxel_offset"], coarse["size"]) == ([4, 4, 2], [60, 60, 6])
    assert backend.get_voxel_offset(FINE) == Vec3D(0, 0, 0)  # the original is unchanged


def test_dataset_size_res_moves_the_end(backend: CVBackend, path: Path) -> None:
    resized = backend.with_changes(dataset_size_res=((32, 16, 8), COARSE))
    assert resized.get_dataset_size(COARSE) == Vec3D(32, 16, 8)
    assert resized.get_dataset_size(FINE) == Vec3D(64, 32, 8)
    assert info_at(path)["scales"][0]["size"] == [64, 32, 8]


def test_chunk_size_res_rechunks_every_scale(backend: CVBackend, path: Path) -> None:
    rechunked = backend.with_changes(chunk_size_res=((16, 16, 2), FINE))
    assert rechunked.get_chunk_size(FINE) == rechunked.get_chunk_size(COARSE) == Vec3D(16, 16, 2)
    assert [s["chunk_sizes"] for s in info_at(path)["scales"]] == [[[16, 16, 2]]] * 2


def test_name_writes_the_info_at_the_new_path(backend: CVBackend, tmp_path: Path) -> None:
    other = backend.with_changes(
        name=str(tmp_path / "tmp-layer"),
        voxel_offset_res=((32, 32, 0), FINE),
        enforce_chunk_aligned_writes=False,
        overwrite_partial_chunks=True,
        use_compression=False,
        cache_bytes_limit=0,
    )
    assert other.name == f"file://{tmp_path}/tmp-layer"
    assert info_at(tmp_path / "tmp-layer")["scales"][0]["voxel_offset"] == [32, 32, 0]
    assert info_at(tmp_path / "v")["scales"][0]["voxel_offset"] == [0, 0, 0]
    other.write(_idx((33, 33, 0), (40, 40, 4)), np.ones((1, 7, 7, 4), np.uint8))
    assert stored_chunks(other.name, "4_4_40") == [(32, 64, 32, 64, 0, 4)]
    assert stored_chunks(backend.name, "4_4_40") == []


def _idx(start: Any, stop: Any, res: Any = FINE) -> Any:
    from lamina import VolumetricIndex

    return VolumetricIndex.from_coords(start, stop, res)


def test_enforce_chunk_aligned_writes(backend: CVBackend) -> None:
    loose = backend.with_changes(enforce_chunk_aligned_writes=False)
    assert not loose.enforce_chunk_aligned_writes
    assert loose.cv_kwargs["non_aligned_writes"]
    loose.write(_idx((1, 1, 1), (5, 5, 3)), np.full((1, 4, 4, 2), 4, np.uint8))
    assert (backend.read(_idx((1, 1, 1), (5, 5, 3))) == 4).all()
    strict = loose.with_changes(enforce_chunk_aligned_writes=True)
    with pytest.raises(ValueError, match="not aligned"):
        strict.write(_idx((1, 1, 1), (5, 5, 3)), np.ones((1, 4, 4, 2), np.uint8))


def test_overwrite_partial_chunks(backend: CVBackend) -> None:
    whole = _idx((0, 0, 0), (32, 32, 4))
    part = _idx((0, 0, 0), (16, 16, 4))
    loose = backend.with_changes(enforce_chunk_aligned_writes=False)
    backend.write(whole, np.full((1, 32, 32, 4), 9, np.uint8))
    loose.write(part, np.full((1, 16, 16, 4), 1, np.uint8))  # read-modify-write
    out = backend.read(whole)
    assert (out[:, :16, :16] == 1).all()
    assert (out[:, 16:] == 9).all()
    shell = loose.with_changes(overwrite_partial_chunks=True)
    assert shell.overwrite_partial_chunks
    shell.write(part, np.full((1, 16, 16, 4), 2, np.uint8))  # no read: the rest becomes 0
    out = backend.read(whole)
    assert (out[:, :16, :16] == 2).all()
    assert not out[:, 16:].any()


def test_use_compression(backend: CVBackend, path: Path) -> None:
    gz = backend.with_changes(use_compression=True)
    assert gz.use_compression
    assert gz.cv_kwargs["compress"] == "gzip"
    gz.write(_idx((0, 0, 0), (32, 32, 4)), np.full((1, 32, 32, 4), 6, np.uint8))
    assert os.listdir(path / "4_4_40") == ["0-32_0-32_0-4.gz"]
    assert (backend.read(_idx((0, 0, 0), (32, 32, 4))) == 6).all()
    assert not gz.with_changes(use_compression=False).use_compression


def test_allow_cache_turns_the_disk_cache_on_for_remote_volumes(
    backend: CVBackend, mem_root: str
) -> None:
    cached = backend.with_changes(allow_cache=True)
    assert cached.allow_cache
    assert cached._io(FINE).disk_cache is None  # a local volume has nothing to cache
    remote = build_cv_layer(mem_root, **small_volume_params()).backend
    assert remote._io(FINE).disk_cache is None
    # (mem:// counts as local too; S3 reads through the disk cache: test_remote_reads)
    assert not cached.with_changes(allow_cache=False).allow_cache


@pytest.mark.cloudvolume_engine
def test_cache_bytes_limit_sizes_the_memory_cache_and_clear_cache_empties_it(
    backend: CVBackend,
) -> None:
    limited = backend.with_changes(cache_bytes_limit=1_000_000)
    assert limited.cache_bytes_limit == 1_000_000
    idx = _idx((0, 0, 0), (64, 64, 4))
    limited.write(idx, np.full((1, 64, 64, 4), 2, np.uint8))
    limited.read(idx)
    cache = limited._memory_cache
    assert cache is not None
    assert cache.limit == 1_000_000
    assert len(cache) == 4
    limited.write(_idx((0, 0, 0), (32, 32, 4)), np.full((1, 32, 32, 4), 5, np.uint8))
    assert len(cache) == 3  # a write forgets the chunks it replaces
    assert (limited.read(idx)[:, :32, :32] == 5).all()
    limited.clear_cache()
    assert len(cache) == 0
    via_builder = build_cv_layer(backend.name, cache_bytes_limit=4096).backend
    via_builder.read(idx)
    assert via_builder._memory_cache is not None
    assert via_builder._memory_cache.nbytes == 4096  # one 32 x 32 x 4 chunk fits, not two
    with pytest.raises(ValueError, match="cache_bytes_limit"):
        backend.with_changes(cache_bytes_limit=-1)


def test_unknown_keys_are_refused(backend: CVBackend) -> None:
    with pytest.raises(KeyError, match="alow_cache"):
        backend.with_changes(alow_cache=True)  # type: ignore[call-arg]


# -- no info churn: option changes and pickles read and write no info file ---------------------
def test_option_changes_and_pickles_touch_no_info(backend: CVBackend, path: Path) -> None:
    idx = _idx((0, 0, 0), (32, 32, 4))
    backend.write(idx, np.full((1, 32, 32, 4), 5, np.uint8))
    (path / "info").unlink()  # any info read from now on would fail
    changed = backend.with_changes(
        allow_cache=False,
        cache_bytes_limit=100,
        use_compression=False,
        enforce_chunk_aligned_writes=False,
        overwrite_partial_chunks=False,
    )
    assert (changed.read(idx) == 5).all()
    clone = pickle.loads(pickle.dumps(changed))
    assert (clone.read(idx) == 5).all()
    assert clone.cache_bytes_limit == 100
    assert not clone.enforce_chunk_aligned_writes
    assert not (path / "info").exists()


def test_building_again_does_not_rewrite_the_info(path: Path) -> None:
    before = (path / "info").stat().st_mtime_ns
    build_cv_layer(path)
    build_cv_layer(path, **small_volume_params())
    assert (path / "info").stat().st_mtime_ns == before


# -- capabilities, pickling, delete ------------------------------------------------------------
def test_capabilities_are_honest(backend: CVBackend, mem_root: str) -> None:
    assert backend.capabilities.shared_across_processes
    assert backend.is_local
    mem = build_cv_layer(mem_root, **small_volume_params()).backend
    assert not mem.capabilities.shared_across_processes
    assert mem.is_local


def test_pickles_carry_no_handles(backend: CVBackend) -> None:
    backend.read(_idx((0, 0, 0), (32, 32, 4)))  # opens the scale's IO
    state = backend.__getstate__()
    assert set(state) == {"path", "kwargs", "info", "engine"}
    assert len(pickle.dumps(backend)) < 4096


def test_delete_removes_every_object(backend: CVBackend, path: Path) -> None:
    backend.write(_idx((0, 0, 0), (64, 64, 8)), np.ones((1, 64, 64, 8), np.uint8))
    backend.write(_idx((0, 0, 0), (32, 32, 4), COARSE), np.ones((1, 32, 32, 4), np.uint8))
    backend.delete()
    from cloudfiles import CloudFiles

    assert list(CloudFiles(backend.name).list()) == []


def test_mem_volumes_travel_by_value(mem_root: str) -> None:
    backend = build_cv_layer(mem_root, **small_volume_params()).backend
    idx = _idx((0, 0, 0), (32, 32, 4))
    backend.write(idx, np.full((1, 32, 32, 4), 3, np.uint8))
    payload = pickle.dumps(backend)
    backend.delete()
    clone = pickle.loads(payload)  # the volume is gone here: the snapshot restores it
    assert (clone.read(idx) == 3).all()
