"""The subchunkable apply (``flows.apply`` with ``processing_*`` levels): its semantics as
equalities — crop against ``fn`` over the whole padded volume, blends whose weights sum
to 1 — on 1 and 2 levels, on ``serial``, ``threads`` and ``processes``; ``fn`` called once
per lowest-level chunk; intermediaries, resume, a killed worker, the divisibility errors,
and the reference system's spec vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from apply_support import Counted, calls, seven
from flows_support import NpyVolumetricBackend

import lamina
from lamina import BBox3D, Vec3D
from lamina.errors import SpecError
from lamina.flows import FlowArgumentError, TasksFailedError, apply
from lamina.flows.subchunking import Level, blend_into, blend_weights, plan_levels, ramp, task_count
from lamina.testing.functions import affine, mean3
from lamina.volumetric.layer import build_volumetric_layer
from lamina.volumetric.scales import scales_from_bbox

R = Vec3D(4, 4, 40)
SHAPE = (128, 96, 16)
BOX = BBox3D.from_coords((0, 0, 0), SHAPE, R)
CHUNK = (32, 32, 4)

#: level configurations: (processing_chunk_sizes, crop pads, blend pads)
ONE_LEVEL = ([[64, 48, 8]], [[1, 1, 1]], [[0, 0, 0]])
TWO_LEVELS = ([[64, 48, 8], [32, 16, 4]], [[0, 0, 0], [1, 1, 1]], [[0, 0, 0], [0, 0, 0]])
TWO_LEVELS_TOP_CROP = ([[64, 48, 8], [34, 26, 4]], [[2, 2, 0], [1, 1, 1]], [[0, 0, 0], [0, 0, 0]])
TOP_BLEND = ([[64, 48, 8]], [[1, 1, 0]], [[8, 8, 2]])
BOTH_BLEND = ([[64, 48, 8], [40, 28, 4]], [[0, 0, 0], [1, 1, 0]], [[8, 4, 0], [2, 2, 0]])
LOW_BLEND = ([[64, 48, 8], [34, 26, 4]], [[2, 2, 0], [1, 1, 0]], [[0, 0, 0], [4, 4, 0]])


def _memory(dtype: str = "uint8") -> Any:
    return lamina.build_memory_volumetric_layer(
        BOX, [R], CHUNK, dtype=dtype, default_desired_resolution=R, index_resolution=R
    )


def _files(root: Path, dtype: str = "uint8") -> Any:
    backend = NpyVolumetricBackend(
        dtype=dtype,
        num_channels=1,
        scales=scales_from_bbox(BOX, [R], CHUNK),
        name=f"npy://{root}",
        root=str(root),
    )
    return build_volumetric_layer(backend, default_desired_resolution=R, index_resolution=R)


def _source(dtype: str = "uint8") -> tuple[Any, Any]:
    rng = np.random.default_rng(1)
    if dtype == "uint8":
        data = rng.integers(0, 100, (1, *SHAPE)).astype("uint8")
    else:
        data = (rng.random((1, *SHAPE)) * 10).astype(dtype)
    src = _memory(dtype)
    src[0:128, 0:96, 0:16] = data
    return src, data


def _levels(config: tuple[Any, Any, Any], **more: Any) -> dict[str, Any]:
    chunks, crops, blends = config
    return {
        "processing_chunk_sizes": chunks,
        "processing_crop_pads": crops,
        "processing_blend_pads": blends,
        **more,
    }


def _run(config: tuple[Any, Any, Any], fn: Any, src: Any, dst: Any, **more: Any) -> Any:
    return apply(fn, src, dst, **_levels(config, **more), progress=False)


# -- crop ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [ONE_LEVEL, TWO_LEVELS, TWO_LEVELS_TOP_CROP],
    ids=["1 level", "2 levels", "2 levels, top crop"],
)
@pytest.mark.parametrize("executor", ["serial", "threads", "processes"])
def test_crop_equals_fn_over_the_whole_padded_volume(
    config: tuple[Any, Any, Any], executor: str, tmp_path: Path
) -> None:
    src, _ = _source("float32")
    dst = _memory("float32") if executor != "processes" else _files(tmp_path, "float32")
    _run(config, mean3, src, dst, executor=executor, workers=2)
    whole = src[-1:129, -1:97, -1:17]  # the volume padded by the filter's reach
    expected = mean3(whole)[:, 1:-1, 1:-1, 1:-1]
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], expected)


def test_plain_apply_is_unchanged_by_the_levels() -> None:
    """Today's call (chunk_size, context) gives what one level with that crop gives."""
    src, _ = _source("float32")
    plain, levelled = _memory("float32"), _memory("float32")
    apply(mean3, src, plain, chunk_size=(64, 32, 8), context=1, progress=False)
    apply(
        mean3,
        src,
        levelled,
        processing_chunk_sizes=[[64, 32, 8]],
        processing_crop_pads=[1, 1, 1],
        progress=False,
    )
    np.testing.assert_array_equal(plain[0:128, 0:96, 0:16], levelled[0:128, 0:96, 0:16])


# -- blend --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config", [TOP_BLEND, BOTH_BLEND, LOW_BLEND], ids=["top blend", "both levels", "low blend"]
)
@pytest.mark.parametrize("mode", ["linear", "quadratic", "defer", "max"])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_blends_of_a_pointwise_fn_and_a_constant(
    config: tuple[Any, Any, Any], mode: str, dtype: str
) -> None:
    if mode == "defer" and config is LOW_BLEND:
        mode = "linear"  # defer is for the top level only; its blend there is 0 here
    modes = mode if mode != "defer" else [mode] + ["quadratic"] * (len(config[0]) - 1)
    src, data = _source(dtype)
    for fn, expected in ((affine, affine(data)), (seven, np.full_like(data, 7))):
        dst = _memory(dtype)
        _run(config, fn, src, dst, processing_blend_modes=modes)
        out = dst[0:128, 0:96, 0:16]
        if dtype == "uint8" or mode == "max":
            np.testing.assert_array_equal(out, expected)
        else:
            np.testing.assert_allclose(out, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("mode", ["linear", "quadratic"])
@pytest.mark.parametrize("pad", [1, 2, 5, 16])
def test_weights_sum_to_one_over_every_overlap(mode: str, pad: int) -> None:
    rising = ramp(mode, pad)
    np.testing.assert_allclose(rising + rising[::-1], 1.0, rtol=0, atol=1e-15)
    assert np.all(np.diff(rising) > 0)
    assert rising[0] > 0
    assert rising[-1] < 1
    # four outputs of 3-D chunks tiling a region: their weights add up to 1 everywhere
    level = Level((8, 8, 8), (0, 0, 0), (pad % 4 + 1, pad % 4 + 1, 0), mode)
    region = ((0, 0, 0), (16, 16, 8))
    boxes = [((x, y, 0), (x + 8, y + 8, 8)) for y in (0, 8) for x in (0, 8)]
    b = level.blend
    ones = [np.ones((1, 8 + 2 * b[0], 8 + 2 * b[1], 8), dtype=np.float32) for _ in boxes]
    total = blend_into(region, boxes, ones, level)
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)
    weights = blend_weights(mode, (12, 12, 8), (2, 2, 0), (True, False, False), (False, True, True))
    assert weights[0, 0, 0] < 1
    assert weights[-1, 0, 0] == 1
    assert weights[0, -1, 0] < weights[0, 0, 0]


def test_max_takes_the_largest_output_where_outputs_overlap() -> None:
    level = Level((4, 4, 4), (0, 0, 0), (1, 0, 0), "max")
    region = ((0, 0, 0), (8, 4, 4))
    boxes = [((0, 0, 0), (4, 4, 4)), ((4, 0, 0), (8, 4, 4))]
    left = np.full((1, 6, 4, 4), 3, dtype=np.uint8)
    right = np.full((1, 6, 4, 4), 5, dtype=np.uint8)
    out = blend_into(region, boxes, [left, right], level)
    assert out[0, :, 0, 0].tolist() == [3, 3, 3] + [5] * 5


# -- calls, intermediaries ------------------------------------------------------------------------
@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_fn_runs_once_per_lowest_level_chunk(executor: str, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    src, data = _source()
    dst = _files(tmp_path / "dst")
    chunks, crops, blends = BOTH_BLEND
    levels = plan_levels(chunks, crops, blends)
    _run(BOTH_BLEND, Counted(str(markers)), src, dst, executor=executor, workers=2)
    top_tasks = 2 * 2 * 2  # 128 x 96 x 16 in 64 x 48 x 8
    assert calls(markers) == top_tasks * task_count(levels) == top_tasks * 2 * 2 * 2
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], affine(data))


def test_intermediaries_go_where_asked_and_are_removed_unless_kept(tmp_path: Path) -> None:
    src, data = _source()
    where = tmp_path / "inter"
    dst = _memory()
    _run(TOP_BLEND, affine, src, dst, level_intermediaries_dirs=[str(where)])
    assert where.is_dir()
    assert not any(where.iterdir())  # the run's own folder is gone
    _run(
        TOP_BLEND,
        affine,
        src,
        _memory(),
        level_intermediaries_dirs=[str(where)],
        keep_intermediaries=True,
    )
    (kept,) = where.iterdir()
    assert len(list(kept.glob("*.npy"))) == 8  # one per top-level task
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], affine(data))
    with pytest.raises(FlowArgumentError, match="skip_intermediaries=True, but the top level"):
        _run(TOP_BLEND, affine, src, _memory(), skip_intermediaries=True)
    with pytest.raises(FlowArgumentError, match="object storage is not supported"):
        _run(TOP_BLEND, affine, src, _memory(), level_intermediaries_dirs=["s3://b/x"])


def test_top_level_chunks_off_the_write_grid_go_through_intermediaries(tmp_path: Path) -> None:
    src, data = _source()
    dst = _files(tmp_path / "dst")
    config = ([[48, 48, 8]], [[0, 0, 0]], [[0, 0, 0]])  # 48 is off the 32-voxel grid
    _run(config, affine, src, dst, executor="processes", workers=2)
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], affine(data))
    with pytest.raises(FlowArgumentError, match=r"not on .* write grid"):
        _run(config, affine, src, dst, skip_intermediaries=True)


def test_the_region_grows_to_whole_top_level_chunks() -> None:
    src, data = _source()
    dst = _memory()
    region = BBox3D.from_coords((0, 0, 0), (96, 64, 8), R)
    apply(affine, src, dst, bbox=region, processing_chunk_sizes=[[64, 64, 8]], progress=False)
    np.testing.assert_array_equal(dst[0:128, 0:64, 0:8], affine(data)[:, :, :64, :8])
    assert not dst[0:128, 64:96, 0:16].any()
    assert not dst[0:128, 0:64, 8:16].any()
    with pytest.raises(FlowArgumentError, match="not a whole number of top-level chunks"):
        apply(
            affine,
            src,
            _memory(),
            bbox=region,
            processing_chunk_sizes=[[64, 64, 8]],
            expand_bbox_processing=False,
        )


# -- resume, faults -------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [TWO_LEVELS, BOTH_BLEND], ids=["direct", "intermediaries"])
def test_resume_redoes_only_unfinished_top_level_tasks(
    config: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    src, data = _source()
    data[0, 10, 10, 2] = 200  # one poisoned voxel
    src[0:128, 0:96, 0:16] = data
    dst = _files(tmp_path / "dst")
    markers, flag = tmp_path / "markers", tmp_path / "fail"
    markers.mkdir()
    flag.touch()
    fn = Counted(str(markers), fail_flag=str(flag), poison=200)
    with pytest.raises(TasksFailedError, match="poisoned input") as failed:
        _run(config, fn, src, dst, retries=0)
    assert len(failed.value.failures) == 1  # the one top-level task that sees the voxel
    first = calls(markers)
    flag.unlink()
    summary = _run(config, fn, src, dst, resume=True)
    assert (summary.skipped, summary.tasks) == (7, 1)
    assert calls(markers) - first == task_count(plan_levels(*config))
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], affine(data))


def test_a_killed_worker_loses_nothing(tmp_path: Path) -> None:
    src, data = _source()
    dst = _files(tmp_path / "dst")
    markers, kill = tmp_path / "markers", tmp_path / "kill"
    markers.mkdir()
    kill.touch()
    summary = _run(
        BOTH_BLEND,
        Counted(str(markers), kill_flag=str(kill)),
        src,
        dst,
        executor="processes",
        workers=2,
    )
    assert summary.tasks == 8
    assert (tmp_path / "kill.claimed").exists()
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], affine(data))


# -- checks ---------------------------------------------------------------------------------------
def test_divisibility_and_argument_errors_name_the_level_and_the_nearest_sizes() -> None:
    src, _ = _source()
    dst = _memory()
    with pytest.raises(
        FlowArgumentError,
        match=r"processing_chunk_sizes\[1\] = \[30, 16, 4\] must divide the region of level 0"
        r".*\[64, 48, 8\].*Nearest sizes that do: processing_chunk_sizes\[1\] = \[32, 16, 4\], "
        r"or processing_chunk_sizes\[0\] = \[60, 48, 8\]",
    ):
        apply(affine, src, dst, processing_chunk_sizes=[[64, 48, 8], [30, 16, 4]])
    levels = plan_levels([[64, 48, 8], [30, 16, 4]], auto_divisibility=True)
    assert levels.top.chunk == (60, 48, 8)
    with pytest.raises(
        FlowArgumentError, match=r"processing_blend_pads\[0\] = \[40, 0, 0\] must be at most half"
    ):
        apply(
            affine, src, dst, processing_chunk_sizes=[[64, 48, 8]], processing_blend_pads=[40, 0, 0]
        )
    with pytest.raises(FlowArgumentError, match="only the top level"):
        apply(
            affine,
            src,
            dst,
            processing_chunk_sizes=[[64, 48, 8], [32, 16, 4]],
            processing_blend_modes=["linear", "defer"],
        )
    with pytest.raises(FlowArgumentError, match=r"processing_blend_modes.*one of"):
        apply(
            affine, src, dst, processing_chunk_sizes=[[64, 48, 8]], processing_blend_modes="cubic"
        )
    with pytest.raises(FlowArgumentError, match="gives 1 levels, but processing_chunk_sizes has 2"):
        apply(
            affine,
            src,
            dst,
            processing_chunk_sizes=[[64, 48, 8], [32, 16, 4]],
            processing_crop_pads=[[1, 1, 1]],
        )
    with pytest.raises(FlowArgumentError, match="context is the crop pad of the plain form"):
        apply(affine, src, dst, context=1, processing_chunk_sizes=[[64, 48, 8]])
    with pytest.raises(FlowArgumentError, match="both give the top-level task's size"):
        apply(affine, src, dst, chunk_size=(32, 32, 4), processing_chunk_sizes=[[64, 48, 8]])
    with pytest.raises(FlowArgumentError, match="go with processing_chunk_sizes"):
        apply(affine, src, dst, processing_blend_pads=[2, 2, 0])
    assert not dst[0:128, 0:96, 0:16].any()  # nothing was written by any of them


# -- the reference system's specs -------------------------------------------------------------
def _reference_spec(fn: Any, src: Any, dst: Any) -> dict[str, Any]:
    return {
        "@type": "build_subchunkable_apply_flow",
        "fn": fn,
        "op_kwargs": {"src": src},
        "dst": dst,
        "dst_resolution": list(R),
        "bbox": {
            "@type": "BBox3D.from_coords",
            "start_coord": [0, 0, 0],
            "end_coord": [128 * 4, 96 * 4, 16 * 40],
            "resolution": [1, 1, 1],
        },
        "processing_chunk_sizes": [[64, 48, 8], [40, 28, 4]],
        "processing_crop_pads": [[0, 0, 0], [1, 1, 0]],
        "processing_blend_pads": [[8, 4, 0], [2, 2, 0]],
        "processing_blend_modes": "linear",
        "level_intermediaries_dirs": ["file://~/.lamina-test-unused", "file://~/.unused"],
        "print_summary": True,
        "progress": False,
    }


def test_a_reference_spec_runs_with_a_registered_fn_and_a_lambda_only_when_allowed(
    tmp_path: Path,
) -> None:
    src, data = _source()
    spec = _reference_spec("apply_support:affine_of_src", src, _memory())
    spec["level_intermediaries_dirs"] = [str(tmp_path / "i"), None]
    lamina.build(spec)
    np.testing.assert_array_equal(spec["dst"][0:128, 0:96, 0:16], affine(data))
    lam = {"@type": "lambda", "lambda_str": "lambda src: src * 2 + 1"}
    spec = _reference_spec(lam, src, _memory())
    spec["level_intermediaries_dirs"] = [str(tmp_path / "i"), None]
    with pytest.raises(SpecError, match=r"a spec file is code.*--allow-lambda"):
        lamina.build(spec)
    assert not spec["dst"][0:128, 0:96, 0:16].any()
    lamina.build(spec, allow_lambda=True)
    np.testing.assert_array_equal(spec["dst"][0:128, 0:96, 0:16], affine(data))
    with pytest.raises(FlowArgumentError, match="processing_gap is not supported"):
        lamina.build(
            {
                **_reference_spec("apply_support:affine_of_src", src, _memory()),
                "processing_gap": [2, 2, 0],
            }
        )
    bbox = lamina.build(
        {
            "@type": "BBox3D.from_coords",
            "start": [1, 2, 3],
            "end": [4, 5, 6],
            "resolution": [4, 4, 40],
        }
    )
    assert bbox == BBox3D.from_coords((1, 2, 3), (4, 5, 6), (4, 4, 40))


# -- batches, torch -------------------------------------------------------------------------------
def test_batch_size_stacks_lowest_level_inputs_on_a_first_axis() -> None:
    shapes: list[tuple[int, ...]] = []

    def batched(a: Any) -> Any:
        shapes.append(a.shape)
        return affine(a)

    src, data = _source()
    dst = _memory()
    _run(BOTH_BLEND, batched, src, dst, batch_size=3)
    assert {len(s) for s in shapes} == {5}
    assert max(s[0] for s in shapes) == 3
    assert sum(s[0] for s in shapes) == 8 * 8  # every lowest-level chunk, once
    np.testing.assert_array_equal(dst[0:128, 0:96, 0:16], affine(data))
    with pytest.raises(TasksFailedError, match=r"batch of 3 inputs .* expected \(3, C, X, Y, Z\)"):
        _run(BOTH_BLEND, lambda a: a[0], src, _memory(), batch_size=3, retries=0)


def test_a_torch_module_runs_on_tensors_in_batches() -> None:
    torch = pytest.importorskip("torch")

    class Affine(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(2.0))
            self.seen: list[tuple[int, ...]] = []

        def forward(self, x: Any) -> Any:
            self.seen.append(tuple(x.shape))
            assert isinstance(x, torch.Tensor)
            assert not torch.is_grad_enabled()
            return x * self.scale + 1

    module = Affine()
    src, data = _source("float32")
    dst = _memory("float32")
    _run(BOTH_BLEND, module, src, dst, batch_size=4)
    assert sum(shape[0] for shape in module.seen) == 8 * 8
    np.testing.assert_allclose(dst[0:128, 0:96, 0:16], data * 2 + 1, rtol=1e-6)
