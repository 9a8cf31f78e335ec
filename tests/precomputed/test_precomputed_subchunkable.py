"""The subchunkable apply on precomputed files: the crop and blend equalities with 1 and 2
levels on ``serial`` and ``processes``, and a spec written for the reference system's
``build_subchunkable_apply_flow`` (wrapped in ``mazepa.execute``, as its specs are) run by
``lamina run``, its lambda only with ``--allow-lambda``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import lamina
from lamina import BBox3D, Vec3D
from lamina.flows import apply
from lamina.testing import affine, mean3, run_lamina

R = Vec3D(8, 8, 40)
SHAPE = (256, 192, 32)

pytestmark = pytest.mark.explicit_engine  # the default engine; both engines' IO is tested elsewhere


def _volume(path: Path, dtype: str = "uint8") -> Any:
    return lamina.build_cv_layer(
        str(path),
        default_desired_resolution=R,
        index_resolution=R,
        info_type="image",
        info_data_type=dtype,
        info_encoding="raw",
        info_num_channels=1,
        info_chunk_size=(64, 64, 8),
        info_scales=[R],
        info_bbox=BBox3D.from_coords((0, 0, 0), SHAPE, R),
    )


def _source(tmp_path: Path, dtype: str = "uint8") -> tuple[Any, npt.NDArray[Any]]:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 100, (1, *SHAPE)).astype(dtype)
    src = _volume(tmp_path / f"src-{dtype}", dtype)
    src[0:256, 0:192, 0:32] = data
    return src, data


LEVELS = {
    "1 level": {"processing_chunk_sizes": [[128, 96, 16]], "processing_crop_pads": [1, 1, 1]},
    "2 levels": {
        "processing_chunk_sizes": [[128, 96, 16], [66, 50, 8]],
        "processing_crop_pads": [[2, 2, 0], [1, 1, 1]],
    },
}


@pytest.mark.parametrize("levels", list(LEVELS))
@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_crop_equals_fn_over_the_whole_volume(levels: str, executor: str, tmp_path: Path) -> None:
    src, _ = _source(tmp_path, "float32")
    dst = _volume(tmp_path / "dst", "float32")
    apply(mean3, src, dst, **LEVELS[levels], executor=executor, workers=2, progress=False)
    expected = mean3(src[-1:257, -1:193, -1:33])[:, 1:-1, 1:-1, 1:-1]
    np.testing.assert_array_equal(dst[0:256, 0:192, 0:32], expected)


@pytest.mark.parametrize("mode", ["linear", "quadratic", "max"])
@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_blends_are_exact_for_a_pointwise_fn(mode: str, executor: str, tmp_path: Path) -> None:
    src, data = _source(tmp_path)
    dst = _volume(tmp_path / "dst")
    apply(
        affine,
        src,
        dst,
        processing_chunk_sizes=[
            [128, 96, 16],
            [40, 26, 8],
        ],  # 128 + 2 x 16 = 4 x 40; 96 + 2 x 4 = 4 x 26
        processing_crop_pads=[[0, 0, 0], [1, 1, 0]],
        processing_blend_pads=[[16, 4, 0], [4, 2, 0]],
        processing_blend_modes=mode,
        executor=executor,
        workers=2,
        progress=False,
    )
    np.testing.assert_array_equal(dst[0:256, 0:192, 0:32], affine(data))


def _reference_spec(src: Path, dst: Path, intermediaries: Path) -> dict[str, Any]:
    return {
        "@type": "mazepa.execute",
        "target": {
            "@type": "build_subchunkable_apply_flow",
            "fn": {"@type": "lambda", "lambda_str": "lambda src: 255 - src"},
            "op_kwargs": {"src": {"@type": "build_cv_layer", "path": str(src)}},
            "dst": {
                "@type": "build_cv_layer",
                "path": str(dst),
                "info_reference_path": str(src),
                "info_scales": [[8, 8, 40]],
                "info_inherit_all_params": True,
            },
            "bbox": {
                "@type": "BBox3D.from_coords",
                "start_coord": [0, 0, 0],
                "end_coord": [256, 192, 32],
                "resolution": [8, 8, 40],
            },
            "dst_resolution": [8, 8, 40],
            "processing_chunk_sizes": [[128, 96, 16], [40, 26, 8]],
            "processing_crop_pads": [[0, 0, 0], [1, 1, 0]],
            "processing_blend_pads": [[16, 4, 0], [4, 2, 0]],
            "processing_blend_modes": "linear",
            "level_intermediaries_dirs": [str(intermediaries), str(intermediaries)],
            "expand_bbox_processing": True,
        },
    }


def test_a_reference_spec_runs_with_lamina_run(tmp_path: Path) -> None:
    _, data = _source(tmp_path)
    spec = _reference_spec(tmp_path / "src-uint8", tmp_path / "dst", tmp_path / "tmp")
    file = tmp_path / "inference.json"
    file.write_text(json.dumps(spec))
    env = {"LAMINA_JOURNAL_DIR": str(tmp_path / "journals")}
    refused = run_lamina("run", str(file), cwd=tmp_path, env=env)
    assert refused.returncode != 0
    (line,) = refused.stderr.strip().splitlines()
    assert "a spec file is code" in line
    assert "--allow-lambda" in line
    assert not (tmp_path / "dst").exists()  # refused before anything was created
    ran = run_lamina(
        "run", str(file), "--allow-lambda", "--executor", "processes", "--workers", "2",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("8 tasks, 48 chunks, ")
    out = lamina.build_cv_layer(str(tmp_path / "dst"))[R, 0:256, 0:192, 0:32]
    np.testing.assert_array_equal(out, 255 - data)
    assert not any((tmp_path / "tmp").iterdir())  # intermediaries removed
    # a registered processor as fn, built from the spec: no flag needed
    spec = _reference_spec(tmp_path / "src-uint8", tmp_path / "dst2", tmp_path / "tmp")
    spec["target"]["fn"] = {"@type": "InvertProcessor", "invert": True}
    file.write_text(json.dumps(spec))
    ran = run_lamina("run", str(file), cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    out = lamina.build_cv_layer(str(tmp_path / "dst2"))[R, 0:256, 0:192, 0:32]
    np.testing.assert_array_equal(out, 255 - data)
