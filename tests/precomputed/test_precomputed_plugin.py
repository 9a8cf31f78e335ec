"""The distribution: entry point, light import, names, specs, the builder's parameters."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from lamina_precomputed import CVBackend, build_cv_layer
from precomputed_support import small_volume_params

import lamina
from lamina.testing import plugin_listing

# build_cv_layer's parameters and defaults as the reference system's API documents them,
# in order.
SEED_PARAMETERS = [
    ("path", inspect.Parameter.empty),
    ("cv_kwargs", None),
    ("default_desired_resolution", None),
    ("index_resolution", None),
    ("data_resolution", None),
    ("interpolation_mode", None),
    ("readonly", False),
    ("info_reference_path", None),
    ("info_inherit_all_params", False),
    ("info_type", None),
    ("info_data_type", None),
    ("info_num_channels", None),
    ("info_chunk_size", None),
    ("info_bbox", None),
    ("info_encoding", None),
    ("info_scales", None),
    ("info_extra_scale_data", None),
    ("info_overwrite", False),
    ("info_keep_existing_scales", True),
    ("allow_slice_rounding", False),
    ("index_procs", ()),
    ("read_procs", ()),
    ("write_procs", ()),
]


def test_build_cv_layer_takes_every_seed_parameter_in_order() -> None:
    params = list(inspect.signature(build_cv_layer).parameters.values())
    positional = [(p.name, p.default) for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional == SEED_PARAMETERS
    extras = {p.name for p in params if p.kind == p.KEYWORD_ONLY}
    assert extras == {
        "info_reference_scale",
        "info_shard_size",
        "mask_value_thr",
        "cache_bytes_limit",
        "engine",
    }


def test_listed_by_lamina_plugins() -> None:
    record = plugin_listing()["lamina-precomputed"]
    assert record["error"] is None
    assert record["entry_point"] == "precomputed = lamina_precomputed.hooks"
    assert record["names"] == {
        "names": ["build_cv_layer", "build_ts_layer", "CVBackend"],
        "path_openers": ["precomputed"],
    }


def test_import_and_discovery_do_not_import_cloudvolume() -> None:
    code = (
        "import sys, lamina, lamina_precomputed;"
        "lamina.registered_names(); lamina.get_builder('build_cv_layer');"
        "from lamina.cli import build_parser; build_parser();"
        "heavy = [m for m in ('cloudvolume', 'cloudfiles', 'tensorstore', 'torch', 'boto3')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_usable_by_name_and_from_specs(tmp_path: Path) -> None:
    layer = lamina.build_cv_layer(str(tmp_path / "v"), **small_volume_params())
    layer[(4, 4, 40), 0:32, 0:32, 0:4] = 1
    spec = {"@type": "build_cv_layer", "path": str(tmp_path / "v"), "readonly": True}
    assert (lamina.build(spec)[(4, 4, 40), 0:32, 0:32, 0:4] == 1).all()
    backend = lamina.build({"@type": "CVBackend", "path": str(tmp_path / "v")})
    assert isinstance(backend, CVBackend)
    assert backend.resolutions == layer.backend.resolutions


def test_a_full_spec_creates_a_volume(tmp_path: Path) -> None:
    spec = {
        "@type": "build_cv_layer",
        "path": str(tmp_path / "spec"),
        "info_scales": [[8, 8, 40]],
        "info_type": "image",
        "info_data_type": "float32",
        "info_num_channels": 1,
        "info_chunk_size": [16, 16, 4],
        "info_bbox": {"@type": "BBox3D.from_coords", "start": [0, 0, 0], "end": [32, 32, 4],
                      "resolution": [8, 8, 40]},
    }  # fmt: skip
    layer = lamina.build(spec)
    assert layer.backend.dtype == "float32"
    assert layer.backend.get_dataset_size((8, 8, 40)) == (32, 32, 4)
