"""A volumetric layer set mixing members from three distributions: a precomputed volume
(lamina-precomputed), an HDF5 volume (lamina-hdf5) and an in-memory volume (the core),
read and written through the set (lamina-layerset).

Runs in the tox env ``all``, where every distribution is installed.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lamina
from lamina import BBox3D, Vec3D, VolumetricIndex
from lamina.testing import plugin_listing

RES = Vec3D(4.0, 4.0, 40.0)
BBOX = BBox3D.from_coords((0, 0, 0), (64, 64, 8), RES)
INFO: dict[str, Any] = {
    "info_chunk_size": (16, 16, 4),
    "info_bbox": BBOX,
    "info_scales": [RES],
}


def where(start: Any, stop: Any) -> VolumetricIndex:
    return VolumetricIndex.from_coords(start, stop, RES)


@pytest.fixture
def mixed(tmp_path: Path) -> Any:
    img = lamina.build_cv_layer(
        f"file://{tmp_path / 'img'}",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        **INFO,
    )
    seg = lamina.build_h5_layer(
        tmp_path / "labels.h5",
        "seg",
        info_type="segmentation",
        info_data_type="uint64",
        info_num_channels=1,
        **INFO,
    )
    aff = lamina.build_memory_volumetric_layer(
        BBOX, [RES], chunk_size=(16, 16, 4), dtype="float32", num_channels=3
    )
    return lamina.build_volumetric_layer_set(
        {"img": img, "seg": seg, "aff": aff},
        index_resolution=RES,
        default_desired_resolution=RES,
    )


def test_read_and_write_through_a_set_of_three_formats(mixed: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (1, 32, 32, 8), dtype=np.uint8)
    seg = rng.integers(2**62, 2**62 + 9, (1, 32, 32, 8), dtype=np.uint64)
    aff = rng.random((3, 32, 32, 8), dtype=np.float32)
    mixed[0:32, 0:32, 0:8] = {"img": img, "seg": seg, "aff": aff}
    out = mixed[0:32, 0:32, 0:8]
    np.testing.assert_array_equal(out["img"], img)
    np.testing.assert_array_equal(out["seg"], seg)
    np.testing.assert_array_equal(out["aff"], aff)
    # the files hold it, for any other reader
    again_img = lamina.build_cv_layer(f"file://{tmp_path / 'img'}", readonly=True)
    again_seg = lamina.build_h5_layer(tmp_path / "labels.h5", "seg", readonly=True)
    np.testing.assert_array_equal(again_img[where((0, 0, 0), (32, 32, 8))], img)
    np.testing.assert_array_equal(again_seg[where((0, 0, 0), (32, 32, 8))], seg)
    # a partial write touches only the members it names
    mixed[32:48, 0:16, 0:4] = {"seg": 7}
    part = mixed[32:48, 0:16, 0:4]
    assert (part["seg"] == 7).all()
    assert not part["img"].any()
    assert not part["aff"].any()


def test_geometry_and_refusals_across_formats(mixed: Any) -> None:
    backend = mixed.backend
    assert backend.get_bounds(RES) == where((0, 0, 0), (64, 64, 8))
    assert backend.get_chunk_size(RES) == Vec3D(16, 16, 4)
    with pytest.raises(ValueError, match="img: uint8, seg: uint64, aff: float32"):
        _ = backend.dtype
    with pytest.raises(ValueError, match=r"member 'seg'.*without losing data"):
        mixed[0:16, 0:16, 0:4] = {"img": 1, "seg": -1, "aff": 0.5}
    assert not mixed[0:16, 0:16, 0:4]["img"].any()  # nothing was written
    with pytest.raises(KeyError, match=r"\['labels'\]"):
        mixed[0:16, 0:16, 0:4] = {"img": 1, "labels": 2}
    assert not mixed[0:16, 0:16, 0:4]["img"].any()
    text = mixed.pformat()
    assert "img: file://" in text
    assert "labels.h5" in text
    assert "aff: mem://" in text


def _read_in_child(layer_set: Any) -> dict[str, int]:
    return {k: int(v.max()) for k, v in layer_set[0:16, 0:16, 0:4].items()}


def test_a_spawned_process_reads_the_mixed_set(mixed: Any) -> None:
    mixed[0:16, 0:16, 0:4] = {"img": 3, "seg": 2**63, "aff": 1.0}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_read_in_child, (mixed,)) == {"img": 3, "seg": 2**63, "aff": 1}


def test_from_a_spec_with_members_of_every_plugin(tmp_path: Path) -> None:
    bbox = {"@type": "BBox3D.from_coords", "start": [0, 0, 0], "end": [64, 64, 8],
            "resolution": [4, 4, 40]}  # fmt: skip
    common = {"info_chunk_size": [16, 16, 4], "info_bbox": bbox, "info_scales": [[4, 4, 40]],
              "info_num_channels": 1}  # fmt: skip
    spec = {
        "@type": "build_volumetric_layer_set",
        "default_desired_resolution": [4, 4, 40],
        "layers": {
            "img": {
                "@type": "build_cv_layer",
                "path": str(tmp_path / "img"),
                "info_type": "image",
                "info_data_type": "uint8",
                **common,
            },
            "seg": {
                "@type": "build_h5_layer",
                "path": str(tmp_path / "seg.h5"),
                "dataset": "seg",
                "info_type": "segmentation",
                "info_data_type": "uint32",
                **common,
            },
            "mem": {
                "@type": "build_memory_volumetric_layer",
                "bbox": bbox,
                "resolutions": [[4, 4, 40]],
                "chunk_size": [16, 16, 4],
            },
        },
    }
    layer_set = lamina.build(spec)
    layer_set[where((0, 0, 0), (16, 16, 4))] = {"img": 1, "seg": 2, "mem": 3}
    assert {k: int(v.max()) for k, v in layer_set[where((0, 0, 0), (16, 16, 4))].items()} == {
        "img": 1,
        "seg": 2,
        "mem": 3,
    }


def test_listed_beside_the_other_plugins() -> None:
    records = plugin_listing()
    for dist in ("lamina-layerset", "lamina-precomputed", "lamina-hdf5"):
        assert records[dist]["error"] is None, records[dist]
    assert "build_volumetric_layer_set" in records["lamina-layerset"]["names"]["names"]
