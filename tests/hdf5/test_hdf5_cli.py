"""The distribution: entry point, light import, path opener, ``lamina info``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from lamina_hdf5 import build_h5_layer
from lamina_hdf5.opener import recognises_hdf5

from lamina import BBox3D
from lamina.cli import main
from lamina.testing import plugin_listing


def test_listed_by_lamina_plugins() -> None:
    record = plugin_listing()["lamina-hdf5"]
    assert record["error"] is None
    assert "build_h5_layer" in json.dumps(record)


def test_import_does_not_import_h5py() -> None:
    code = (
        "import sys, lamina, lamina_hdf5, lamina_hdf5.hooks; "
        "lamina.plugins.manager.get_host(); "
        "assert 'h5py' not in sys.modules, 'h5py imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.h5", True),
        ("dir/a.HDF5", True),
        ("sample_A.hdf", True),
        ("a.h5:/volumes/raw", True),
        ("hdf5://a.h5", True),
        ("precomputed://a.h5", False),
        ("gs://bucket/vol", False),
        ("some/dir", False),
    ],
)
def test_opener_recognises_its_forms(path: str, expected: bool) -> None:
    assert recognises_hdf5(path) is expected


@pytest.fixture
def h5file(tmp_path: Path) -> Path:
    path = tmp_path / "two.h5"
    build_h5_layer(
        path,
        "em/raw",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=(64, 64, 8),
        info_bbox=BBox3D.from_coords((0, 0, 0), (128, 128, 16), (4, 4, 40)),
        info_scales=[(4, 4, 40), (8, 8, 40)],
        info_compression="gzip",
    )
    with h5py.File(path, "a") as f:
        ds = f.create_dataset("labels", shape=(16, 128, 128), dtype="uint64")
        ds.attrs["resolution"] = (40.0, 4.0, 4.0)
    return path


def test_info_json_on_a_group(h5file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", f"{h5file}:/em/raw", "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["data_type"] == "uint8"
    assert desc["num_channels"] == 1
    assert desc["type"] == "image"
    assert [s["key"] for s in desc["scales"]] == ["4_4_40", "8_8_40"]
    fine = desc["scales"][0]
    assert fine["chunk_size"] == [64, 64, 8]
    assert fine["size"] == [128, 128, 16]
    assert fine["bounds_nm"] == [[0, 0, 0], [512, 512, 640]]
    assert fine["compression"] == "gzip"


def test_info_on_a_file_lists_every_volume(
    h5file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(h5file)]) == 0
    out = capsys.readouterr().out
    assert "volume em/raw" in out
    assert "volume labels" in out
    assert "4x4x40 nm" in out
    head, labels_part = out.split("volume labels")
    assert "data type: uint64" in labels_part
    assert "data type: uint64" not in head  # each volume's own dtype, under its name
    assert main(["info", str(h5file), "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert [v["volume"] for v in desc["volumes"]] == ["em/raw", "labels"]
    raw, labels = desc["volumes"]
    assert [s["key"] for s in raw["scales"]] == ["4_4_40", "8_8_40"]
    assert labels["data_type"] == "uint64"
    assert "scales" not in desc  # each volume's scales are its own, never merged


@pytest.mark.parametrize(
    "content", [b"", b"not an HDF5 file at all\n", b"\x89HDF\r\n" + b"\0" * 40]
)
def test_a_corrupt_h5_file_is_one_line(tmp_path: Path, content: bytes) -> None:
    from lamina.testing import run_lamina

    (tmp_path / "bad.h5").write_bytes(content)
    done = run_lamina("info", "bad.h5", cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("lamina info: error: ")
    assert "bad.h5" in lines[0]
    assert "not an HDF5 file" in lines[0]


def test_info_scales_alone_add_a_scale_to_an_existing_volume(tmp_path: Path) -> None:
    path = tmp_path / "v.h5"
    build_h5_layer(
        path,
        "raw",
        info_scales=[(8, 8, 40)],
        info_type="image",
        info_data_type="uint16",
        info_num_channels=2,
        info_chunk_size=(64, 64, 8),
        info_bbox=BBox3D.from_coords((0, 0, 0), (128, 128, 16), (8, 8, 40)),
    )
    added = build_h5_layer(path, "raw", info_scales=[(32, 32, 40)])
    assert [tuple(r) for r in added.backend.resolutions] == [(8, 8, 40), (32, 32, 40)]
    assert added.backend.dtype == "uint16"
    assert added.backend.num_channels == 2
    with pytest.raises(ValueError, match=r"needs .*info_type.* nothing is stored at the path"):
        build_h5_layer(tmp_path / "new.h5", "raw", info_scales=[(32, 32, 40)])
