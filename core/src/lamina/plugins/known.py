"""What the lamina project's own plugin distributions provide, for install hints.

Asking for a name that nothing installed provides says which distribution would
(``pip install lamina-precomputed``). This table is only for hints: it never imports
anything, and a third party's plugin needs no entry here.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "KNOWN_NAMES",
    "KNOWN_PATH_FORMS",
    "distribution_for_name",
    "distribution_for_path",
    "install_hint",
]

KNOWN_NAMES: dict[tuple[str, str], str] = {
    ("names", "build_cv_layer"): "lamina-precomputed",
    ("names", "CVBackend"): "lamina-precomputed",
    ("names", "build_h5_layer"): "lamina-hdf5",
    ("names", "H5Backend"): "lamina-hdf5",
    ("names", "build_dynamodb_layer"): "lamina-dynamodb",
    ("names", "DynamoDBBackend"): "lamina-dynamodb",
    ("names", "build_layer_set"): "lamina-layerset",
    ("names", "build_volumetric_layer_set"): "lamina-layerset",
    ("names", "build_range_mapped_layer"): "lamina-rangemap",
    ("names", "RangeMapBackend"): "lamina-rangemap",
    ("names", "RangeMapDBBackend"): "lamina-rangemap",
    ("names", "KeyRange"): "lamina-rangemap",
    ("names", "build_zarr_layer"): "lamina-zarr",
    ("names", "ZarrBackend"): "lamina-zarr",
    ("names", "view"): "lamina-view",
    ("commands", "view"): "lamina-view",
    ("commands", "preview"): "lamina-view",
    ("executors", "dask"): "lamina-dask",
    **{
        ("names", name): "lamina-augment"
        for name in (
            "brightness_aug",
            "clamp_values_aug",
            "square_tile_pattern_aug",
            "apply_to_random_sections",
            "apply_to_random_boxes",
            "MisalignProcessor",
            "uniform_distr",
            "normal_distr",
            "flip_rotate_aug",
        )
    },
}

# Path prefixes and suffixes, checked in order.
KNOWN_PATH_FORMS: tuple[tuple[str, str], ...] = (
    ("zarr://", "lamina-zarr"),
    ("zarr2://", "lamina-zarr"),
    ("zarr3://", "lamina-zarr"),
    ("n5://", "lamina-zarr"),
    (".zarr", "lamina-zarr"),
    (".n5", "lamina-zarr"),
    ("precomputed://", "lamina-precomputed"),
    ("gs://", "lamina-precomputed"),
    ("s3://", "lamina-precomputed"),
    ("file://", "lamina-precomputed"),
    ("mem://", "lamina-precomputed"),
    (".h5", "lamina-hdf5"),
    (".hdf5", "lamina-hdf5"),
    (".hdf", "lamina-hdf5"),
)


def distribution_for_name(namespace: str, name: str) -> str | None:
    """The lamina distribution that provides ``name`` in ``namespace``, if known."""
    return KNOWN_NAMES.get((namespace, name))


def distribution_for_path(path: str) -> str | None:
    """The lamina distribution that opens paths like ``path``, if known."""
    plain = path.split(":/", 1)[0] if ".h" in path else path
    for form, dist in KNOWN_PATH_FORMS:
        if path.startswith(form) or plain.lower().endswith(form):
            return dist
    return None


def _source_checkout() -> Path | None:
    """The root of the lamina source checkout this core runs from (an editable install:
    ``core/src/lamina`` beside ``plugins/``), or ``None`` for an installed wheel."""
    root = Path(__file__).resolve().parents[4]
    if (root / "core" / "pyproject.toml").is_file() and (root / "plugins").is_dir():
        return root
    return None


def install_hint(dist: str) -> str:
    """How to install ``dist``: ``pip install lamina-layerset``, and from a source
    checkout that holds it, the editable form (``pip install -e ./plugins/layerset``,
    relative to the current directory when it is inside the checkout)."""
    hint = f"pip install {dist}"
    root = _source_checkout()
    folder = dist.removeprefix("lamina-")
    if root is not None and (root / "plugins" / folder / "pyproject.toml").is_file():
        where = root / "plugins" / folder
        try:
            shown = "./" + str(where.relative_to(Path.cwd().resolve()))
        except ValueError:
            shown = os.fspath(where)
        hint += f" (from this source checkout: pip install -e {shown})"
    return hint
