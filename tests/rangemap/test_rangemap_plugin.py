"""Range maps from specs, through the plugin registry; the distribution is listed."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from lamina_rangemap import RangeMapBackend, RangeMapDBBackend

import lamina
from lamina import KeyValueLayer, Vec3D, VolumetricLayer
from lamina.testing import plugin_listing


def _box(start: Any, stop: Any) -> dict[str, Any]:
    return {"@type": "BBox3D.from_coords", "start": start, "end": stop, "resolution": [4, 4, 40]}


def _cv(path: Path, start: Any, stop: Any) -> dict[str, Any]:
    return {
        "@type": "build_cv_layer",
        "path": str(path),
        "info_scales": [[4, 4, 40]],
        "info_type": "image",
        "info_data_type": "uint8",
        "info_num_channels": 1,
        "info_chunk_size": [16, 16, 4],
        "info_bbox": _box(start, stop),
    }


def test_a_volumetric_range_map_from_a_spec_with_nested_precomputed_members(
    tmp_path: Path,
) -> None:
    spec = {
        "@type": "build_range_mapped_layer",
        "ranges": [
            [_box([0, 0, 0], [32, 32, 4]), _cv(tmp_path / "left", [0, 0, 0], [32, 32, 4])],
            [_box([32, 0, 0], [64, 32, 4]), _cv(tmp_path / "right", [32, 0, 0], [64, 32, 4])],
            [
                _box([16, 0, 0], [48, 16, 4]),
                {
                    "@type": "build_memory_volumetric_layer",
                    "bbox": _box([16, 0, 0], [48, 16, 4]),
                    "resolutions": [[4, 4, 40]],
                    "chunk_size": [16, 16, 4],
                },
            ],
        ],
        "fill_value": 0,
        "default_desired_resolution": [4, 4, 40],
        "index_resolution": [4, 4, 40],
    }
    layer = lamina.build(spec)
    assert isinstance(layer, VolumetricLayer)
    assert isinstance(layer.backend, RangeMapBackend)
    left, right, patch = (source for _, source in layer.backend.ranges)
    assert type(left.backend).__name__ == "CVBackend"
    layer[0:64, 0:32, 0:4] = np.arange(64, dtype=np.uint8)[None, :, None, None] * np.ones(
        (1, 64, 32, 4), np.uint8
    )
    assert (left[Vec3D(4, 4, 40), 0:32, 0:32, 0:4][0, :, 16:, 0] == np.arange(32)[:, None]).all()
    assert (
        right[Vec3D(4, 4, 40), 32:64, 0:32, 0:4][0, :, 16:, 0] == np.arange(32, 64)[:, None]
    ).all()
    assert (patch[Vec3D(4, 4, 40), 16:48, 0:16, 0:4][0, :, 0, 0] == np.arange(16, 48)).all()
    # the left volume under the patch was not written
    assert not left[Vec3D(4, 4, 40), 16:32, 0:16, 0:4].any()
    assert (layer[0:64, 0:32, 0:4][0, :, 5, 2] == np.arange(64)).all()
    assert pickle.loads(pickle.dumps(layer))[0:64, 0:32, 0:4].sum() == layer[0:64, 0:32, 0:4].sum()


def test_a_key_value_range_map_from_a_spec() -> None:
    spec = {
        "@type": "build_range_mapped_layer",
        "ranges": [
            [["a", "m"], {"@type": "build_memory_db_layer", "name": "mem://low"}],
            [["m", None], {"@type": "build_memory_db_layer", "name": "mem://high"}],
            ["user/", {"@type": "build_memory_db_layer", "name": "mem://users"}],
        ],
    }
    layer = lamina.build(spec)
    assert isinstance(layer, KeyValueLayer)
    assert isinstance(layer.backend, RangeMapDBBackend)
    layer[["b", "q", "user/7"]] = [1, 2, 3]
    names = {
        key: layer.backend.ranges[layer.backend.owner(key)][1].name for key in ("b", "q", "user/7")
    }  # type: ignore[index]
    assert names == {"b": "mem://low", "q": "mem://high", "user/7": "mem://users"}
    assert (
        layer.name
        == "rangemap[['a', 'm') -> mem://low; ['m', +inf) -> mem://high; 'user/'* -> mem://users]"
    )
    key_range = lamina.build({"@type": "KeyRange", "prefix": "user/"})
    assert "user/1" in key_range


def test_the_builder_is_reachable_by_name() -> None:
    from lamina_rangemap import build_range_mapped_layer

    builder = lamina.get_builder("build_range_mapped_layer")
    box = lamina.BBox3D.from_coords((0, 0, 0), (8, 8, 1), (4, 4, 40))
    volume = lamina.build_memory_volumetric_layer(box, [(4, 4, 40)])
    assert isinstance(builder([(box, volume)]), VolumetricLayer)
    assert isinstance(lamina.build_range_mapped_layer([(box, volume)]), VolumetricLayer)
    assert build_range_mapped_layer.__module__ == "lamina_rangemap.builder"


def _run(*code: str) -> str:
    return subprocess.run(
        [sys.executable, *code], check=True, capture_output=True, text=True, timeout=120
    ).stdout


def test_lamina_plugins_lists_the_distribution() -> None:
    record = plugin_listing()["lamina-rangemap"]
    text = json.dumps(record)
    for name in ("build_range_mapped_layer", "RangeMapBackend", "RangeMapDBBackend"):
        assert name in text
    assert not record.get("error")
    listing = _run("-m", "lamina", "plugins")
    assert "lamina-rangemap 0.1.0  [ok]" in listing


def test_discovery_imports_nothing_but_the_hook_module() -> None:
    """Names are registered by import string: discovering every plugin imports only the
    hook module; the first lookup imports the real builder."""
    out = _run(
        "-c",
        "import sys, lamina; lamina.registered_names(); "
        "print(sorted(m for m in sys.modules if m.startswith('lamina_rangemap.') "
        "and m != 'lamina_rangemap.hooks')); "
        "lamina.get_builder('build_range_mapped_layer'); "
        "print('lamina_rangemap.builder' in sys.modules)",
    )
    assert out.split() == ["[]", "True"]


def test_the_readme_example_runs(tmp_path: Path) -> None:
    readme = Path(__file__).parents[2] / "plugins" / "rangemap" / "README.md"
    text = readme.read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    ).stdout.splitlines()
    assert out[0] == "[1 1 1 1 1 1 1 1 1 1 2 2 2 2 2 2 2 2 2 2]"
    assert out[1] == "[1 1 1 1 1 3 3 3 3 3 3 3 3 3 3 2 2 2 2 2]"
    assert out[2] == "['apple', 'user/42', 'zebra'] 3 True -"
    spec = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    assert spec["@type"] == "build_range_mapped_layer"
    assert len(spec["ranges"]) == 2
