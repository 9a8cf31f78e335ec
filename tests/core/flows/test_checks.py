"""A failed flow changes nothing: every argument of copy, downsample and apply (and of
``lamina copy``, ``lamina downsample`` and ``lamina run``) is checked before any info is
created or changed and before any chunk is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lamina import (
    BBox3D,
    PathOpener,
    ReadonlyLayerError,
    UnknownNameError,
    UnknownResolutionError,
    Vec3D,
    build_memory_volumetric_layer,
)
from lamina.cli import main
from lamina.flows import FlowArgumentError, FlowKeywordError, apply, copy, downsample
from lamina.flows.checks import backend_like, planned_scales
from lamina.paths import destination_exists, template_of
from lamina.plugins import PluginHost, hookimpl
from lamina.volumetric.memory import MemoryVolumetricBackend

R = Vec3D(4, 4, 40)
BOX = BBox3D.from_coords((0, 0, 0), (128, 96, 16), R)


def _volume(dtype: str = "uint8", readonly: bool = False, **kw: Any) -> Any:
    kw.setdefault("chunk_size", (32, 32, 4))
    kw.setdefault("resolutions", [R])
    return build_memory_volumetric_layer(
        BOX,
        dtype=dtype,
        default_desired_resolution=R,
        index_resolution=R,
        readonly=readonly,
        **kw,
    )


def _filled(dtype: str = "uint8") -> Any:
    layer = _volume(dtype)
    layer[0:128, 0:96, 0:16] = (
        np.random.default_rng(0).integers(1, 200, (1, 128, 96, 16)).astype(dtype)
    )
    return layer


def _untouched(layer: Any, resolutions: tuple[Vec3D[float], ...] = (R,)) -> None:
    assert layer.backend.resolutions == resolutions, "a scale was added"
    for res in resolutions:
        assert not layer[res, 0:128, 0:96, 0:16].any(), f"data was written at {res}"


# -- keywords --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flow", "keyword", "closest"),
    [
        ("downsample", "levls", "levels"),
        ("downsample", "factr", "factor"),
        ("copy", "chunk_sise", "chunk_size"),
        ("copy", "worker", "workers"),
        ("apply", "contxt", "context"),
        ("apply", "rezume", "resume"),
    ],
)
def test_an_unknown_keyword_names_the_flow_and_the_closest_one(
    flow: str, keyword: str, closest: str
) -> None:
    src, dst = _filled(), _volume()
    call = {
        "downsample": lambda: downsample(dst, **{keyword: 2}),
        "copy": lambda: copy(src, dst, **{keyword: 2}),
        "apply": lambda: apply(np.negative, src, dst, **{keyword: 2}),
    }[flow]
    with pytest.raises(TypeError) as caught:
        call()
    assert isinstance(caught.value, FlowKeywordError)
    assert str(caught.value).startswith(
        f"{flow}() got an unexpected keyword argument {keyword!r}; did you mean {closest!r}?"
    )
    assert "Nothing was changed" in str(caught.value)
    _untouched(dst)


def test_a_misspelt_downsample_keyword_adds_no_scale() -> None:
    """The measured case: ``levls=2`` failed only after the info had gained a scale."""
    layer = _filled()
    with pytest.raises(TypeError, match="did you mean 'levels'"):
        downsample(layer, levls=2)  # type: ignore[call-arg]
    assert layer.backend.resolutions == (R,)


# -- run options -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("run", "error", "message"),
    [
        ({"executor": "gpu"}, UnknownNameError, r"executor 'gpu'.*processes, serial, threads"),
        ({"executor": 3}, FlowArgumentError, "executor must be the name"),
        ({"workers": 0}, FlowArgumentError, r"workers must be a positive int .*got 0"),
        ({"workers": 1.5}, FlowArgumentError, "workers must be a positive int"),
        ({"workers": True}, FlowArgumentError, "workers must be a positive int"),
        ({"retries": -1}, FlowArgumentError, r"retries must be an int >= 0 .*got -1"),
        ({"resume": "yes"}, FlowArgumentError, "resume must be True or False"),
        ({"progress": "no"}, FlowArgumentError, "progress must be True, False or None"),
        ({"run_id": ""}, FlowArgumentError, "run_id must be a non-empty name"),
        ({"run_id": "a\nb"}, FlowArgumentError, "run_id must be a non-empty name"),
        ({"journal_dir": 5}, FlowArgumentError, "journal_dir must be a directory"),
    ],
)
def test_run_options_are_checked_before_anything_changes(
    run: dict[str, Any], error: type[Exception], message: str
) -> None:
    src, dst = _filled(), _volume()
    with pytest.raises(error, match=message):
        copy(src, dst, **run)
    with pytest.raises(error, match=message):
        downsample(dst, levels=1, **run)
    with pytest.raises(error, match=message):
        apply(np.negative, src, dst, **run)
    _untouched(dst)


# -- resolutions, task sizes, boxes, modes, dtypes -------------------------------------------------
def test_copy_checks_resolutions_task_sizes_boxes_and_dtypes() -> None:
    src, dst = _filled(), _volume()
    with pytest.raises(UnknownResolutionError, match=r"copy: resolution \(8, 8, 40\) nm is not"):
        copy(src, dst, resolution=(8, 8, 40))
    with pytest.raises(UnknownResolutionError, match=r"dst_resolution \(8, 8, 40\) nm is not a"):
        copy(_volume(resolutions=[R, (8, 8, 40)]), dst, dst_resolution=(8, 8, 40))
    with pytest.raises(FlowArgumentError, match=r"write grid \(chunk size \(32, 32, 4\)\)"):
        copy(src, dst, chunk_size=(48, 32, 4))
    flat = BBox3D.from_coords((0, 0, 0), (128, 96, 0), R)
    with pytest.raises(FlowArgumentError, match=r"copy: bbox .* is empty"):
        copy(src, dst, bbox=flat)
    with pytest.raises(FlowArgumentError, match="bbox must be a BBox3D"):
        copy(src, dst, bbox=((0, 0, 0), (1, 1, 1)))  # type: ignore[arg-type]
    with pytest.raises(FlowArgumentError, match="float32 values are not uint8 values"):
        copy(_filled("float32"), dst)
    with pytest.raises(FlowArgumentError, match=r"has 3 channel.* has 1"):
        copy(_volume(num_channels=3), dst)
    with pytest.raises(ReadonlyLayerError, match=r"copy: dst .* is readonly"):
        copy(src, _volume(readonly=True))
    _untouched(dst)
    wider = _volume("uint16")
    copy(src, wider, progress=False)  # uint8 fits in uint16
    np.testing.assert_array_equal(wider[0:128, 0:96, 0:16], src[0:128, 0:96, 0:16])


def test_downsample_checks_against_the_scales_it_will_add() -> None:
    """Task size, box and mode are checked against the new scales' geometry before
    ``add_resolutions`` runs."""
    layer = _filled()
    with pytest.raises(FlowArgumentError, match=r"multiple of the destination's write grid"):
        downsample(layer, levels=2, chunk_size=(48, 32, 4))
    with pytest.raises(FlowArgumentError, match="reaches outside"):
        downsample(layer, bbox=BBox3D.from_coords((0, 0, 0), (256, 96, 16), R))
    with pytest.raises(FlowArgumentError, match="not on the write grid"):
        downsample(layer, levels=1, bbox=BBox3D.from_coords((64, 0, 0), (96, 96, 16), (2, 2, 40)))
    with pytest.raises(
        FlowArgumentError, match=r"mode must be one of .*did you mean 'segmentation'"
    ):
        downsample(layer, mode="segmentaton")  # type: ignore[arg-type]
    with pytest.raises(FlowArgumentError, match="mode 'field' resamples 2-channel"):
        downsample(layer, mode="field")
    with pytest.raises(UnknownResolutionError, match="from_resolution"):
        downsample(layer, from_resolution=(2, 2, 40))
    with pytest.raises(FlowArgumentError, match="levels must be an int >= 1"):
        downsample(layer, levels=0)
    with pytest.raises(ReadonlyLayerError, match=r"downsample: layer .* is readonly"):
        downsample(layer.with_changes(readonly=True))
    assert layer.backend.resolutions == (R,)
    summary = downsample(layer, levels=2, progress=False)  # the corrected call runs
    assert summary.tasks == 4
    assert layer.backend.resolutions == (R, Vec3D(8, 8, 40), Vec3D(16, 16, 40))


def test_planned_scales_are_what_add_resolutions_makes() -> None:
    layer = _volume(resolutions=[R, (8, 8, 40)])
    wanted = [Vec3D(8.0, 8.0, 40.0), Vec3D(16.0, 16.0, 40.0), Vec3D(32.0, 32.0, 40.0)]
    plan = planned_scales(layer.backend, wanted)
    assert plan[wanted[0]] is layer.backend  # a scale it has: asked as it is
    added = layer.backend.add_resolutions(wanted)
    for res in wanted:
        for question in ("get_voxel_offset", "get_dataset_size", "get_write_grid_size"):
            assert getattr(plan[res], question)(res) == getattr(added, question)(res)


def test_apply_checks_before_anything_runs() -> None:
    src, dst = _filled(), _volume()
    with pytest.raises(UnknownResolutionError, match=r"apply: resolution \(8, 8, 40\) nm"):
        apply(np.negative, src, dst, resolution=(8, 8, 40))
    other = build_memory_volumetric_layer(BOX, [(8, 8, 40)], (16, 16, 4))
    with pytest.raises(UnknownResolutionError, match="read from source '0'"):
        apply(np.negative, other, dst)
    with pytest.raises(FlowArgumentError, match="context must be >= 0"):
        apply(np.negative, src, dst, context=-1)
    with pytest.raises(FlowArgumentError, match="multiple of the destination's write grid"):
        apply(np.negative, src, dst, chunk_size=(48, 32, 4))
    with pytest.raises(ReadonlyLayerError):
        apply(np.negative, src, _volume(readonly=True))
    _untouched(dst)


# -- the command line ------------------------------------------------------------------------------
class FakeVolumes:
    """A path opener over in-memory volumes named ``fake://NAME`` that creates new ones."""

    def __init__(self) -> None:
        self.volumes: dict[str, Any] = {}

    @hookimpl
    def lamina_register_path_openers(self, registry):  # type: ignore[no-untyped-def]
        registry.register(
            "fake",
            PathOpener(
                recognises=lambda p: p.startswith("fake://"),
                open=lambda p, **options: self.volumes[p],
                forms=("fake://NAME",),
                exists=lambda p: p in self.volumes,
                create=self.create,
            ),
        )

    def create(self, path: str, like: Any) -> Any:
        finest = like.resolutions[0]
        self.volumes[path] = build_memory_volumetric_layer(
            BBox3D.from_coords(like.bbox_start, like.bbox_end),
            like.resolutions,
            like.chunk_size,
            dtype=like.data_type,
            num_channels=like.num_channels,
            name=path,
            default_desired_resolution=finest,
            index_resolution=finest,
        )
        return self.volumes[path]


@pytest.fixture
def fake(lamina_host: PluginHost) -> FakeVolumes:
    volumes = FakeVolumes()
    lamina_host.register_plugin(volumes, distribution="fake-volumes")
    volumes.volumes["fake://src"] = _filled()
    return volumes


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--executor", "gpu"], "executor 'gpu'. Registered executors: processes, serial"),
        (["--workers", "0"], "workers must be a positive int"),
        (["--retries", "-1"], "retries must be an int >= 0"),
        (["--resolution", "3,3,3"], r"resolution (3, 3, 3) nm is not a scale of"),
        (["--chunk-size", "48,32,4"], "multiple of the destination's write grid"),
        # a task size off the chunking the new DST would be created with
        (["--dst-chunk-size", "64,64,8", "--chunk-size", "32,32,4"], "write grid (chunk size (64"),
        (["--dst-resolution", "6,8,40"], "must be resolution (4, 4, 40) times a whole number"),
        (["--bbox", "0,0,0:64,64,32"], "reaches outside"),
        (["--bbox", "8,0,0:64,64,8"], "not on the write grid"),
    ],
)
def test_lamina_copy_checks_everything_before_creating_dst(
    fake: FakeVolumes, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main(["copy", "fake://src", "fake://dst", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lamina copy: error: ")
    assert message in err
    assert "Traceback" not in err
    assert "fake://dst" not in fake.volumes  # nothing left behind for the next command


@pytest.mark.parametrize(
    "box", ["10,10,10:0,0,0", "0,0,0:64,64,0", "0,0,4:64,64,4"], ids=["reversed", "flat", "z"]
)
def test_lamina_copy_refuses_a_reversed_or_empty_box_on_parsing(
    fake: FakeVolumes, capsys: pytest.CaptureFixture[str], box: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["copy", "fake://src", "fake://dst", "--bbox", box])
    assert exited.value.code == 2
    assert "is empty or reversed on" in capsys.readouterr().err
    assert "fake://dst" not in fake.volumes


def test_the_corrected_lamina_copy_creates_dst_with_its_chunking(
    fake: FakeVolumes, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["copy", "fake://src", "fake://dst", "--dst-chunk-size", "64,64,8"]
    assert main([*argv, "--chunk-size", "32,32,4"]) == 2
    assert "fake://dst" not in fake.volumes
    assert main([*argv, "--chunk-size", "64,64,8", "--quiet", "--run-id", "first-copy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("8 tasks, ")
    dst = fake.volumes["fake://dst"]
    assert dst.backend.get_chunk_size(R) == Vec3D(64, 64, 8)
    np.testing.assert_array_equal(
        dst[0:128, 0:96, 0:16], fake.volumes["fake://src"][0:128, 0:96, 0:16]
    )
    journals = tmp_path / "journals"
    assert (journals / "first-copy.jsonl").exists()
    # resumed by name: everything is done; resumed under another name: said so
    assert main([*argv, "--chunk-size", "64,64,8", "--run-id", "first-copy", "--resume"]) == 0
    assert "(8 already done, skipped)" in capsys.readouterr().out
    assert main([*argv, "--chunk-size", "64,64,8", "--run-id", "other", "--resume"]) == 0
    assert "(resume: no journal of this run was found in" in capsys.readouterr().out
    # an existing DST of another chunking is not silently written with its own
    other = ["copy", "fake://src", "fake://dst", "--dst-chunk-size", "32,32,4"]
    assert main(other) == 2
    assert "exists with chunk size (64, 64, 8)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--executor", "gpu"], "Registered executors"),
        (["--workers", "0"], "workers must be a positive int"),
        (["--levels", "0"], "levels must be an int >= 1"),
        (["--factor", "1,1,1"], "factor must be whole numbers"),
        (["--mode", "bogus"], "mode must be one of"),
        (["--resolution", "3,3,40"], "from_resolution (3, 3, 40) nm is not a scale"),
        (["--chunk-size", "48,32,4"], "multiple of the destination's write grid"),
        (["--bbox", "0,0,0:256,96,16"], "reaches outside"),
    ],
)
def test_lamina_downsample_checks_everything_before_adding_scales(
    fake: FakeVolumes, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main(["downsample", "fake://src", "--levels", "2", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert fake.volumes["fake://src"].backend.resolutions == (R,)


def test_lamina_run_names_the_closest_keyword_and_takes_run_id(
    fake: FakeVolumes, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    volume = {
        "@type": "build_memory_volumetric_layer",
        "bbox": {"@type": "BBox3D.from_coords", "start": [0, 0, 0], "end": [64, 64, 8]},
        "resolutions": [[4, 4, 40]],
        "chunk_size": [32, 32, 4],
    }
    spec = {"@type": "copy", "src": volume, "dst": volume, "chunk_sise": [32, 32, 4]}
    file = tmp_path / "spec.json"
    file.write_text(json.dumps(spec))
    assert main(["run", str(file)]) == 2
    assert "did you mean 'chunk_size'?" in capsys.readouterr().err
    spec["chunk_size"] = spec.pop("chunk_sise")
    file.write_text(json.dumps(spec))
    assert main(["run", str(file), "--run-id", "from-spec", "--quiet"]) == 0
    assert (tmp_path / "journals" / "from-spec.jsonl").exists()


def test_destination_exists_tells_open_from_create(fake: FakeVolumes) -> None:
    assert destination_exists("fake://src")
    assert not destination_exists("fake://new")
    with pytest.raises(UnknownNameError, match="no installed plugin creates volumes"):
        destination_exists("nowhere://x")
    like = template_of(fake.volumes["fake://src"], chunk_size=(64, 64, 8))
    planned = backend_like(like, "fake://new")
    assert isinstance(planned, MemoryVolumetricBackend)
    assert planned.get_write_grid_size(R) == Vec3D(64, 64, 8)
    assert planned.get_bounds(R).bbox == BOX
    assert "fake://new" not in fake.volumes
    sharded = backend_like(template_of(fake.volumes["fake://src"], shard_size=(128, 128, 16)), "x")
    assert sharded.get_write_grid_size(R) == Vec3D(128, 128, 16)
    assert "shard box (128, 128, 16)" in sharded.describe_write_grid(R)
