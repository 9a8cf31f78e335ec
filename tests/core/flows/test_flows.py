"""copy, downsample and apply on in-memory volumes: voxels against numpy references, the
task grid, the checks made before anything runs, and specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lamina
from lamina import BBox3D, Vec3D, build_memory_volumetric_layer
from lamina.flows import TasksFailedError, apply, copy, downsample, task_grid

R = Vec3D(4, 4, 40)
BOX = BBox3D.from_coords((0, 0, 0), (128, 96, 16), R)


def _volume(chunk: tuple[int, int, int] = (32, 32, 4), **kw: Any) -> Any:
    kw.setdefault("resolutions", [R])
    return build_memory_volumetric_layer(
        BOX, chunk_size=chunk, index_resolution=R, default_desired_resolution=R, **kw
    )


def _filled(seed: int = 0, dtype: str = "uint8", **kw: Any) -> tuple[Any, np.ndarray[Any, Any]]:
    layer = _volume(dtype=dtype, **kw)
    data = np.random.default_rng(seed).integers(0, 200, (1, 128, 96, 16)).astype(dtype)
    layer[0:128, 0:96, 0:16] = data
    return layer, data


@pytest.fixture(autouse=True)
def _journals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_JOURNAL_DIR", str(tmp_path / "journals"))


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_copy_with_new_chunking(executor: str) -> None:
    src, data = _filled()
    dst = _volume(chunk=(64, 32, 8))
    summary = copy(src, dst, executor=executor, workers=2, chunk_size=(64, 32, 8), progress=False)
    assert summary.tasks == 2 * 3 * 2
    assert summary.bytes == data.nbytes
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], data)


def test_copy_of_a_region_leaves_the_rest() -> None:
    src, data = _filled()
    dst = _volume()
    region = BBox3D.from_coords((32, 32, 4), (96, 96, 12), R)
    copy(src, dst, bbox=region, progress=False)
    out = dst[0:128, 0:96, 0:16]
    np.testing.assert_array_equal(out[:, 32:96, 32:96, 4:12], data[:, 32:96, 32:96, 4:12])
    out[:, 32:96, 32:96, 4:12] = 0
    assert not out.any()


def test_copy_to_a_coarser_resolution_by_layer_type() -> None:
    src, data = _filled()
    dst = _volume(resolutions=[R, (8, 8, 40)])
    copy(src, dst, dst_resolution=(8, 8, 40), progress=False)
    out = dst[Vec3D(8, 8, 40), 0:128, 0:96, 0:16]
    means = data.reshape(1, 64, 2, 48, 2, 16).astype(float).mean(axis=(2, 4))
    np.testing.assert_array_equal(out, np.floor(means + 0.5).astype("uint8"))  # img: means
    labels, ids = _filled(dtype="uint32", volume_type="segmentation")
    ids[:, 0:2, 0:2, 0] = [[7, 7], [7, 9]]
    labels[0:128, 0:96, 0:16] = ids
    seg = _volume(resolutions=[R, (8, 8, 40)], dtype="uint32")
    copy(labels, seg, dst_resolution=(8, 8, 40), progress=False)
    assert seg[Vec3D(8, 8, 40), 0:2, 0:2, 0:1].item() == 7  # segmentation: the mode


def test_copy_refuses_what_it_cannot_do_before_writing() -> None:
    src, _ = _filled(resolutions=[R, (8, 8, 40)])
    dst = _volume(resolutions=[R, (8, 8, 40)])
    with pytest.raises(ValueError, match="do not upsample"):
        copy(src, dst, resolution=(8, 8, 40), dst_resolution=R)
    with pytest.raises(ValueError, match=r"resolution \(2, 2, 40\) nm is not a scale of"):
        copy(src, dst, resolution=(2, 2, 40))
    with pytest.raises(ValueError, match=r"whole number.*axis x: 6.0 / 4.0"):
        copy(src, dst, dst_resolution=(6, 8, 40))
    grid = r"multiple of the destination's write grid \(chunk size \(32, 32, 4\)\)"
    with pytest.raises(ValueError, match=grid):
        copy(src, dst, chunk_size=(48, 32, 4))
    with pytest.raises(ValueError, match=r"not on the write grid.*Use the aligned region"):
        copy(src, dst, bbox=BBox3D.from_coords((10, 0, 0), (64, 64, 8), R))
    small = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (64, 64, 16), R), [R], chunk_size=(32, 32, 4)
    )
    with pytest.raises(ValueError, match=r"reaches outside .*nothing was written"):
        copy(src, small)
    with pytest.raises(ValueError, match="keeps its data in this process"):
        copy(src, dst, executor="processes")
    with pytest.raises(TypeError, match="dst must be a volumetric layer"):
        copy(src, lamina.build_memory_db_layer())
    assert not dst[0:128, 0:96, 0:16].any()


def test_task_grid_follows_the_destination_grid() -> None:
    dst = _volume(chunk=(32, 32, 4))
    tasks = task_grid(dst.backend, BOX, R, (64, 64, 8))
    assert len(tasks) == 2 * 2 * 2
    assert all(dst.backend.is_chunk_aligned(t) for t in tasks)
    assert tasks[1].start == Vec3D(64, 0, 0)
    assert tasks[2].stop[1] == 96  # cropped to the region's (and volume's) end


def test_downsample_adds_levels_from_one_read_per_task() -> None:
    layer, data = _filled()
    reads: list[Any] = []

    def spy(idx: Any) -> Any:
        reads.append(idx)
        return idx

    layer = layer.with_procs(index_procs=[spy])
    summary = downsample(layer, levels=2, progress=False)
    assert layer.backend.resolutions == (R, Vec3D(8, 8, 40), Vec3D(16, 16, 40))
    # tasks: one chunk of the coarsest level (32 x 32 x 4 at 16 nm = 128 x 128 x 4 at 4 nm)
    assert summary.tasks == 1 * 1 * 4
    # chunks written (32 x 32 x 4): 64 x 48 x 16 voxels at 8 nm, 32 x 24 x 16 at 16 nm
    assert summary.storage_chunks == 2 * 2 * 4 + 1 * 1 * 4
    assert summary.line().startswith("4 tasks, 20 chunks, ")
    # index processors see reads and writes: one access at 4 nm per task (its one read),
    # then one write per level
    assert sum(idx.resolution == R for idx in reads) == 4
    assert len(reads) == 4 * 3
    level1 = data.reshape(1, 64, 2, 48, 2, 16).astype(float).mean(axis=(2, 4))
    level1 = np.floor(level1 + 0.5)
    level2 = np.floor(level1.reshape(1, 32, 2, 24, 2, 16).mean(axis=(2, 4)) + 0.5)
    np.testing.assert_array_equal(layer[Vec3D(8, 8, 40), 0:128, 0:96, 0:16], level1)
    np.testing.assert_array_equal(layer[Vec3D(16, 16, 40), 0:128, 0:96, 0:16], level2)


def test_downsample_checks_its_arguments() -> None:
    layer, _ = _filled()
    with pytest.raises(ValueError, match="factor must be whole numbers"):
        downsample(layer, factor=(1.5, 2, 1))
    with pytest.raises(ValueError, match="levels must be an int >= 1"):
        downsample(layer, levels=0)
    const = lamina.build_constant_volumetric_layer(1, num_channels=1)
    with pytest.raises(lamina.UnsupportedOperationError, match="cannot add resolutions"):
        downsample(const, from_resolution=R)


def _invert(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return 255 - a


def _box_sum(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    # a 3-voxel sum along x: needs one voxel of context on each side
    s = a.astype("int32") + b
    out = s.copy()
    out[:, 1:-1] = s[:, :-2] + s[:, 1:-1] + s[:, 2:]
    return np.clip(out, 0, 255).astype("uint8")


def test_apply_with_context_crops_back() -> None:
    a, da = _filled(0)
    b, db = _filled(1)
    dst = _volume()
    apply(_box_sum, [a, b], dst, context=(1, 0, 0), chunk_size=(32, 32, 4), progress=False)
    s = np.pad(da.astype("int32") + db, ((0, 0), (1, 1), (0, 0), (0, 0)))
    ref = np.clip(s[:, :-2] + s[:, 1:-1] + s[:, 2:], 0, 255).astype("uint8")
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], ref)


def test_apply_by_name_and_with_named_sources() -> None:
    a, da = _filled(0)
    dst = _volume()
    with pytest.raises(TypeError, match="'InvertProcessor' cannot be built without arguments"):
        apply("InvertProcessor", a, dst)
    with pytest.raises(lamina.UnknownNameError, match="InvertProcessor"):
        apply("InvertProcesor", a, dst)
    apply(lamina.build({"@type": "InvertProcessor", "invert": True}), a, dst, progress=False)
    assert dst[0:128, 0:96, 0:16].shape == da.shape
    apply(lambda img: _invert(img), {"img": a}, dst, executor="threads", progress=False)
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], 255 - da)
    with pytest.raises(TasksFailedError, match=r"fn returned an array of shape \(1, 2\)"):
        apply(lambda img: np.zeros((1, 2)), a, dst, progress=False, retries=0)
    with pytest.raises(TypeError, match="fn must be a callable"):
        apply(5, a, dst)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sources is empty"):
        apply(_invert, [], dst)


def test_flows_are_registered_for_specs(tmp_path: Path) -> None:
    src, data = _filled()
    dst = _volume()
    summary = lamina.build({"@type": "copy", "src": src, "dst": dst, "progress": False})
    assert summary.tasks >= 1
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], data)
    assert {"copy", "downsample", "apply"} <= set(lamina.registered_names())


def test_every_flow_warms_up_its_layers_backends_before_any_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``VolumetricBackend.warm_up`` runs in the parent before the pool starts (forked
    workers inherit what it loaded), once per run, for the layers each flow touches."""
    from lamina.volumetric.memory import MemoryVolumetricBackend

    events: list[str] = []
    monkeypatch.setattr(
        MemoryVolumetricBackend, "warm_up", lambda self: events.append(f"warm {self.name}")
    )
    src, _ = _filled()
    dst = _volume(chunk=(64, 48, 8))
    original = MemoryVolumetricBackend.read

    def read(self: Any, idx: Any) -> Any:
        events.append("task")
        return original(self, idx)

    monkeypatch.setattr(MemoryVolumetricBackend, "read", read)
    copy(src, dst, executor="threads", workers=2)
    assert events[:2] == [f"warm {src.backend.name}", f"warm {dst.backend.name}"]
    assert events[2:]
    assert set(events[2:]) == {"task"}
    events.clear()
    apply(lambda a: a, src, dst, executor="threads", workers=2)
    assert events[:2] == [f"warm {src.backend.name}", f"warm {dst.backend.name}"]
    events.clear()
    downsample(dst, levels=1, executor="threads", workers=2)
    assert events[0] == f"warm {dst.backend.name}"
    assert events[1:]
    assert set(events[1:]) == {"task"}
