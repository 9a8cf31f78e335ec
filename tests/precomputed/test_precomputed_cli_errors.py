"""The command line on precomputed volumes as a newcomer meets it: one-line errors that
change nothing, every scale copied, scales added to an existing volume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina import BBox3D, Vec3D
from lamina.testing import run_lamina

R = Vec3D(8, 8, 40)


def _volume(path: Path, size: tuple[int, int, int] = (128, 128, 16), **info: object) -> object:
    params: dict[str, object] = {
        "info_scales": [R],
        "info_type": "image",
        "info_data_type": "uint8",
        "info_num_channels": 1,
        "info_chunk_size": (64, 64, 8),
        "info_bbox": BBox3D.from_coords((0, 0, 0), size, R),
    }
    params.update(info)
    return lamina.build_cv_layer(str(path), **params)


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = run_lamina(
        *args, cwd=tmp_path, env={"LAMINA_JOURNAL_DIR": str(tmp_path / "j"), **(env or {})}
    )
    return done.returncode, done.stdout, done.stderr


def _one_line(stderr: str, command: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"lamina {command}: error: "), stderr
    return lines[0]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    layer = _volume(tmp_path / "src")
    layer[R, 0:128, 0:128, 0:16] = np.full((1, 128, 128, 16), 3, np.uint8)  # type: ignore[index]
    return tmp_path / "src"


def test_a_copy_onto_a_smaller_destination_changes_nothing(src: Path, tmp_path: Path) -> None:
    _volume(tmp_path / "small", size=(64, 64, 8))
    before = (tmp_path / "small" / "info").read_text()
    code, _, err = _run(tmp_path, "copy", "src", "small")
    assert code == 2
    assert "reaches outside" in _one_line(err, "copy")
    assert (tmp_path / "small" / "info").read_text() == before
    assert not (tmp_path / "small" / "8_8_40").exists()


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--chunk-size", "100,100,8"], "multiple of the destination's write grid"),
        (["--workers", "0", "--executor", "processes"], "workers must be a positive int"),
        (["--resolution", "9,9,40"], "is not a scale of"),
        (["--executor", "gpu"], "executor 'gpu'"),
    ],
)
def test_a_bad_copy_option_is_one_line_and_creates_nothing(
    src: Path, tmp_path: Path, flags: list[str], says: str
) -> None:
    code, _, err = _run(tmp_path, "copy", "src", "out", *flags)
    assert code == 2
    assert says in _one_line(err, "copy")
    assert not (tmp_path / "out").exists()


def test_a_reversed_bbox_is_reported_in_the_units_given(src: Path, tmp_path: Path) -> None:
    code, _, err = _run(tmp_path, "copy", "src", "out", "--bbox", "64,64,8:0,0,0")
    assert code == 2
    assert "--bbox 64,64,8:0,0,0 is empty or reversed on x (64 to 0)" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "is empty"),
        ('{"type": "image", "scales": [', "is not valid JSON"),
        (
            json.dumps(
                {
                    "type": "image",
                    "data_type": "uint8",
                    "num_channels": 1,
                    "scales": [
                        {
                            "key": "a",
                            "encoding": "raw",
                            "resolution": [8, 8, 40],
                            "size": [-5, 10, 10],
                            "voxel_offset": [0, 0, 0],
                            "chunk_sizes": [[8, 8, 8]],
                        }
                    ],
                }
            ),
            "size must be 3 whole numbers >= 0; got [-5, 10, 10]",
        ),
    ],
)
def test_a_corrupt_info_names_the_file(tmp_path: Path, content: str, says: str) -> None:
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "info").write_text(content)
    code, out, err = _run(tmp_path, "info", "vol")
    assert code == 1
    line = _one_line(err, "info")
    assert f"{tmp_path}/vol/info" in line
    assert says in line
    assert out == ""


def test_object_storage_without_credentials_is_one_line(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),  # no ~/.aws, no ~/.cloudvolume/secrets, no gcloud login
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "GOOGLE_APPLICATION_CREDENTIALS": "",
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "NO_GCE_CHECK": "True",
        "GCE_METADATA_HOST": "127.0.0.1:9",
    }
    code, out, err = _run(tmp_path, "info", "s3://some-bucket/volume", env=env)
    assert code == 1
    assert "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in _one_line(
        err, "info"
    )
    code, out, err = _run(tmp_path, "info", "gs://some-bucket/volume", env=env)
    assert code == 1
    assert "no Google credentials were found" in _one_line(err, "info")
    assert out == ""  # cloud-files' printed warnings are gone too


def test_lamina_copy_copies_every_scale_and_resolution_picks_one(src: Path, tmp_path: Path) -> None:
    code, out, err = _run(tmp_path, "downsample", "src", "--levels", "2", "--quiet")
    assert code == 0, err
    code, out, err = _run(tmp_path, "copy", "src", "all")
    assert code == 0, err
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "8x8x40 nm",
        "16x16x40 nm",
        "32x32x40 nm",
    ]
    copied = lamina.build_cv_layer(str(tmp_path / "all"))
    source = lamina.build_cv_layer(str(src))
    assert copied.backend.resolutions == source.backend.resolutions
    for res in source.backend.resolutions:
        box = source.backend.get_bounds(res)
        np.testing.assert_array_equal(copied[box], source[box])
    code, out, err = _run(tmp_path, "copy", "src", "one", "--resolution", "16,16,40")
    assert code == 0, err
    assert lamina.build_cv_layer(str(tmp_path / "one")).backend.resolutions == (Vec3D(16, 16, 40),)


def test_copying_a_volume_onto_itself_is_refused(src: Path, tmp_path: Path) -> None:
    code, _, err = _run(tmp_path, "copy", "src", "src")
    assert code == 2
    assert "the same volume" in _one_line(err, "copy")


def test_a_dst_chunk_size_an_existing_destination_lacks_is_an_error(
    src: Path, tmp_path: Path
) -> None:
    _volume(tmp_path / "dst")
    code, _, err = _run(tmp_path, "copy", "src", "dst", "--dst-chunk-size", "32,32,8")
    assert code == 2
    assert "exists with chunk size (64, 64, 8)" in _one_line(err, "copy")
    assert not (tmp_path / "dst" / "8_8_40").exists()


def test_info_scales_alone_add_a_scale_to_an_existing_volume(src: Path, tmp_path: Path) -> None:
    layer = lamina.build_cv_layer(str(src), info_scales=[(32, 32, 40)])
    assert layer.backend.resolutions == (R, Vec3D(32, 32, 40))
    assert layer.backend.dtype == np.uint8
    assert layer.backend.get_chunk_size(Vec3D(32, 32, 40)) == Vec3D(64, 64, 8)
    with pytest.raises(ValueError, match=r"needs info_type, .* nothing is stored at the path"):
        lamina.build_cv_layer(str(tmp_path / "new"), info_scales=[(32, 32, 40)])
