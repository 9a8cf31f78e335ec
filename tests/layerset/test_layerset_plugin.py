"""The distribution: entry point, light import, names, specs with nested member specs,
the builders' parameters, pickling and spawned processes."""

from __future__ import annotations

import inspect
import multiprocessing
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_layerset import (
    LayerSet,
    LayerSetBackend,
    VolumetricSetBackend,
    build_layer_set,
    build_volumetric_layer_set,
)
from layerset_support import RES, box

import lamina
from lamina import BBox3D, ROIMaskProcessor, VolumetricLayer
from lamina.testing import plugin_listing

INFO = {
    "info_type": "image",
    "info_num_channels": 1,
    "info_chunk_size": [16, 16, 4],
    "info_scales": [[4, 4, 40]],
}


def bbox_spec() -> dict[str, Any]:
    return {"@type": "BBox3D.from_coords", "start": [0, 0, 0], "end": [64, 64, 8],
            "resolution": [4, 4, 40]}  # fmt: skip


def cv_spec(path: Path, dtype: str, **extra: Any) -> dict[str, Any]:
    return {"@type": "build_cv_layer", "path": f"file://{path}", "info_data_type": dtype,
            "info_bbox": bbox_spec(), **INFO, **extra}  # fmt: skip


def test_builders_take_the_seed_parameters_in_order() -> None:
    def positional(func: Any) -> list[tuple[str, Any]]:
        params = inspect.signature(func).parameters.values()
        return [(p.name, p.default) for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]

    empty = inspect.Parameter.empty
    assert positional(build_layer_set) == [
        ("layers", empty),
        ("readonly", False),
        ("index_procs", ()),
        ("read_procs", ()),
        ("write_procs", ()),
    ]
    assert positional(build_volumetric_layer_set) == [
        ("layers", empty),
        ("readonly", False),
        ("default_desired_resolution", None),
        ("index_resolution", None),
        ("allow_slice_rounding", False),
        ("index_procs", ()),
        ("read_procs", ()),
        ("write_procs", ()),
    ]
    for func in (build_layer_set, build_volumetric_layer_set):
        keyword_only = inspect.signature(func).parameters["max_workers"]
        assert keyword_only.kind == keyword_only.KEYWORD_ONLY
        assert keyword_only.default is None


def test_listed_by_lamina_plugins() -> None:
    record = plugin_listing()["lamina-layerset"]
    assert record["error"] is None
    assert record["entry_point"] == "layerset = lamina_layerset.hooks"
    assert record["names"] == {
        "names": [
            "build_layer_set",
            "build_volumetric_layer_set",
            "LayerSetBackend",
            "VolumetricSetBackend",
        ]
    }
    text = subprocess.run(
        [sys.executable, "-m", "lamina", "plugins"], capture_output=True, text=True, check=True
    ).stdout
    assert "lamina-layerset" in text


def test_discovery_does_not_import_the_set_modules() -> None:
    """Discovery imports the hook module only; the first lookup of a name imports the
    module that defines it (names are registered by import string)."""
    code = (
        "import sys, lamina, lamina_layerset;"
        "lamina.registered_names();"
        "print([m for m in sys.modules if m.startswith('lamina_layerset.')]);"
        "lamina.get_builder('build_volumetric_layer_set');"
        "print('lamina_layerset.volumetric' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["['lamina_layerset.hooks']", "True"]


def test_usable_by_name() -> None:
    mem = lamina.build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (64, 64, 8), RES), [RES], chunk_size=(16, 16, 4)
    )
    layer_set = lamina.build_volumetric_layer_set({"img": mem}, default_desired_resolution=RES)
    assert isinstance(layer_set, VolumetricLayer)
    assert isinstance(layer_set.backend, VolumetricSetBackend)
    assert isinstance(lamina.build_layer_set({"img": mem}), LayerSet)
    backend = lamina.build({"@type": "VolumetricSetBackend", "layers": {"img": mem}})
    assert isinstance(backend, VolumetricSetBackend)
    generic = lamina.build({"@type": "LayerSetBackend", "layers": {"img": mem}})
    assert isinstance(generic, LayerSetBackend)


def test_a_spec_with_nested_member_specs(tmp_path: Path) -> None:
    spec = {
        "@type": "build_volumetric_layer_set",
        "layers": {
            "img": cv_spec(tmp_path / "img", "uint8"),
            "seg": cv_spec(tmp_path / "seg", "uint64", info_type="segmentation"),
            "scratch": {
                "@type": "build_memory_volumetric_layer",
                "bbox": bbox_spec(),
                "resolutions": [[4, 4, 40]],
                "chunk_size": [16, 16, 4],
                "dtype": "float32",
            },
        },
        "index_resolution": [4, 4, 40],
        "default_desired_resolution": [4, 4, 40],
        "read_procs": [
            {
                "@type": "ROIMaskProcessor",
                "start_coord": [0, 0, 0],
                "end_coord": [8, 8, 4],
                "resolution": [4, 4, 40],
                "targets": ["img"],
            },
        ],
        "max_workers": 2,
    }
    layer_set = lamina.build(spec)
    assert isinstance(layer_set, VolumetricLayer)
    assert layer_set.backend.max_workers == 2
    assert isinstance(layer_set.read_procs[0], ROIMaskProcessor)
    layer_set[0:16, 0:16, 0:4] = {"img": 7, "seg": 2**50, "scratch": 0.5}
    out = layer_set[0:16, 0:16, 0:4]
    assert set(out) == {"img", "seg", "scratch", "img_mask"}
    assert (out["img"] == 7).all()
    assert (out["seg"] == 2**50).all()
    assert out["img_mask"].sum() == 8 * 8 * 4
    # the precomputed members wrote files another builder finds
    again = lamina.build(
        {
            "@type": "build_layer_set",
            "layers": {
                "seg": {
                    "@type": "build_cv_layer",
                    "path": f"file://{tmp_path / 'seg'}",
                    "readonly": True,
                }
            },
        }
    )
    assert (again[box((0, 0, 0), (16, 16, 4))]["seg"] == 2**50).all()


def test_sets_pickle_by_their_members(tmp_path: Path) -> None:
    layer_set = lamina.build(
        {
            "@type": "build_volumetric_layer_set",
            "layers": {"img": cv_spec(tmp_path / "img", "uint8")},
            "default_desired_resolution": [4, 4, 40],
            "max_workers": 3,
        }
    )
    layer_set[box((0, 0, 0), (16, 16, 4))] = {"img": 9}
    layer_set[box((0, 0, 0), (16, 16, 4))]  # start the threads: they are not pickled
    data = pickle.dumps(layer_set)
    assert len(data) < 20_000  # the member travels by spec, not by voxels
    clone = pickle.loads(data)
    assert clone.backend.max_workers == 3
    assert clone.name == layer_set.name
    assert (clone[box((0, 0, 0), (16, 16, 4))]["img"] == 9).all()


def _child(layer_set: Any) -> dict[str, int]:
    idx = box((16, 0, 0), (32, 16, 4))
    layer_set[idx] = {"seg": 5}
    out = layer_set[box((0, 0, 0), (16, 16, 4))]
    return {k: int(v.max()) for k, v in out.items()}


def test_a_spawned_process_reads_and_writes_the_set(tmp_path: Path) -> None:
    layer_set = build_volumetric_layer_set(
        {
            "img": lamina.build(cv_spec(tmp_path / "img", "uint8")),
            "seg": lamina.build(cv_spec(tmp_path / "seg", "uint64", info_type="segmentation")),
        },
        default_desired_resolution=RES,
    )
    layer_set[box((0, 0, 0), (16, 16, 4))] = {"img": 3, "seg": 4}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        seen = pool.apply(_child, (layer_set,))
    assert seen == {"img": 3, "seg": 4}
    assert (layer_set[box((16, 0, 0), (32, 16, 4))]["seg"] == 5).all()  # files are shared


def test_in_memory_members_travel_by_value() -> None:
    mem = lamina.build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (64, 64, 8), RES), [RES], chunk_size=(16, 16, 4)
    )
    layer_set = build_volumetric_layer_set({"img": mem}, default_desired_resolution=RES)
    layer_set[box((0, 0, 0), (16, 16, 4))] = {"img": 1}
    assert not layer_set.backend.capabilities.shared_across_processes
    clone = pickle.loads(pickle.dumps(layer_set))
    np.testing.assert_array_equal(clone[box((0, 0, 0), (16, 16, 4))]["img"], 1)


@pytest.mark.parametrize("name", ["build_layer_set", "build_volumetric_layer_set"])
def test_bad_specs_say_where(name: str) -> None:
    with pytest.raises(lamina.UnknownNameError, match=r"spec\['layers'\]\['x'\]"):
        lamina.build({"@type": name, "layers": {"x": {"@type": "build_nothing_such"}}})


def test_the_readme_example_runs() -> None:
    import re

    readme = Path(__file__).parents[2] / "plugins" / "layerset" / "README.md"
    example = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)[0]
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "disagree on dtype (img: uint8, seg: uint64)" in out.stdout
