"""The distribution: entry point, light import, path opener, ``lamina info``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from lamina_hdf5 import build_h5_layer
from lamina_hdf5.cli import recognises_hdf5

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
    assert "em/raw" in out
    assert "labels" in out
    assert "4x4x40 nm" in out
    assert main(["info", str(h5file), "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["volumes"] == ["em/raw", "labels"]
    assert [s["key"] for s in desc["scales"]] == ["em/raw/4_4_40", "em/raw/8_8_40", "labels"]
    assert desc["scales"][2]["data_type"] == "uint64"
