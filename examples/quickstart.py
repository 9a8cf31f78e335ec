"""lamina quickstart: build layers, read and write through processors, use every plugin,
and run the main job — copy a volume with a new chunking and build its pyramid.

Run from the repository root (see README.md): ``python examples/quickstart.py [DIR]``.
Writes only under DIR (default ``./quickstart-output``) and needs no network. Each
installed plugin adds its own section, so this script grows as plugins land.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lamina
from lamina.cli import main as lamina_cli


def core_section() -> None:
    print("== core: an in-memory layer with processors")
    layer = lamina.build_memory_layer(
        read_procs=[lambda text: text.upper()],  # runs on every read
        write_procs=[lambda text: text.strip()],  # runs on every write
    )
    layer["greeting"] = "  hello, layer  "
    print(f"layer['greeting'] -> {layer['greeting']!r}")

    spec = {
        "@type": "build_layer",
        "backend": {"@type": "MemoryBackend", "name": "mem://from-a-spec"},
        "readonly": True,
    }
    built = lamina.build(spec)
    print(f"built from a spec: {built.name}, readonly={built.readonly}")
    try:
        built["k"] = 1
    except lamina.ReadonlyLayerError as exc:
        print(f"writing to it is refused: {exc}")


def volumetric_section() -> None:
    print("== core: an in-memory volume, indexed at any resolution")
    import numpy as np

    from lamina import BBox3D, Vec3D, build_memory_volumetric_layer

    volume = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (512, 512, 32), resolution=(8, 8, 40)),
        resolutions=[(8, 8, 40), (16, 16, 40)],
        chunk_size=(64, 64, 8),
    )
    print(volume.pformat())
    fine = Vec3D(8, 8, 40)
    volume[fine, 0:128, 0:128, 0:8] = np.arange(128 * 128 * 8, dtype=np.uint8).reshape(
        1, 128, 128, 8
    )
    print(f"read (C, X, Y, Z) = {volume[fine, 0:64, 0:32, 0:8].shape}")
    coarse = volume.with_changes(data_resolution=(16, 16, 40), interpolation_mode="img")
    coarse[fine, 0:128, 0:128, 0:8] = 9  # downsampled into the 16 nm scale
    stored = volume[Vec3D(16, 16, 40), 0:64, 0:64, 0:8]
    print(f"a write at 8 nm through data_resolution stored {stored.shape} voxels at 16 nm")


def precomputed_section(out: Path) -> None:
    print("== lamina-precomputed: a Neuroglancer precomputed volume on local disk")
    import numpy as np

    from lamina import BBox3D, Vec3D

    path = out / "precomputed" / "image"
    layer = lamina.build_cv_layer(
        str(path),
        info_scales=[(8, 8, 40), (16, 16, 40)],  # two resolutions, finest first
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=(64, 64, 8),
        info_bbox=BBox3D.from_coords((0, 0, 0), (256, 256, 16), resolution=(8, 8, 40)),
    )  # a second run finds the same info and writes none
    fine, coarse = Vec3D(8, 8, 40), Vec3D(16, 16, 40)
    image = np.arange(256 * 256 * 16, dtype=np.uint8).reshape(1, 256, 256, 16)
    layer[fine, 0:256, 0:256, 0:16] = image
    layer[coarse, 0:128, 0:128, 0:16] = image[:, ::2, ::2, :]  # the 16 nm scale
    print(f"wrote {path} (raw, uncompressed chunks: any precomputed reader sees them)")
    again = lamina.build_cv_layer(str(path), readonly=True)  # the info now exists
    at_8 = again[fine, 0:256, 0:256, 0:16]
    at_16 = again[coarse, 0:128, 0:128, 0:16]
    print(
        f"read back at 8 nm: {at_8.shape}, at 16 nm: {at_16.shape}; equal: "
        f"{bool((at_8 == image).all() and (at_16 == image[:, ::2, ::2, :]).all())}"
    )
    lamina_cli(["info", str(path)])


def hdf5_section(out: Path) -> None:
    print("== lamina-hdf5: the same kind of volume in an HDF5 file (z, y, x datasets)")
    import h5py
    import numpy as np

    from lamina import BBox3D, Vec3D

    path = out / "hdf5" / "image.h5"
    path.unlink(missing_ok=True)
    layer = lamina.build_h5_layer(
        str(path),
        "image",  # the volume's group; one dataset per scale inside it
        info_scales=[(8, 8, 40), (16, 16, 40)],
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=(64, 64, 8),  # the HDF5 chunk shape (x, y, z)
        info_bbox=BBox3D.from_coords((0, 0, 0), (256, 256, 16), resolution=(8, 8, 40)),
        info_compression="gzip",
    )
    fine = Vec3D(8, 8, 40)
    image = np.arange(256 * 256 * 16, dtype=np.uint8).reshape(1, 256, 256, 16)
    layer[fine, 0:256, 0:256, 0:16] = image
    with h5py.File(path, "r") as f:  # plain h5py: datasets are (z, y, x)
        ds = f["image/8_8_40"]
        print(f"plain h5py sees {ds.name} {ds.shape} (z, y, x), axes={ds.attrs['axes']!r}")
        print(f"ds[3, 10, 20] == layer voxel (20, 10, 3): {ds[3, 10, 20] == image[0, 20, 10, 3]}")
    lamina_cli(["info", f"{path}:/image"])


def pipeline_section(out: Path) -> None:
    print("== the main job: write a sample volume, copy it with a new chunking, build a pyramid")
    import shutil

    import numpy as np

    from lamina import BBox3D

    root = out / "pipeline"
    shutil.rmtree(root, ignore_errors=True)  # a fresh run every time
    sample = lamina.build_cv_layer(
        str(root / "sample"),
        info_scales=[(8, 8, 40)],
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=(64, 64, 16),
        info_bbox=BBox3D.from_coords((0, 0, 0), (1024, 1024, 64), resolution=(8, 8, 40)),
    )
    # made and written 16 sections at a time (one chunk deep): a few tens of MB at once
    rng = np.random.default_rng(0)
    x = np.arange(1024, dtype=np.float32)[:, None, None]
    y = np.arange(1024, dtype=np.float32)[None, :, None]
    waves = 128 + 60 * np.sin(x / 37.0) * np.cos(y / 23.0)
    for z0 in range(0, 64, 16):
        z = np.arange(z0, z0 + 16, dtype=np.float32)[None, None, :]
        slab = (waves + 10 * np.sin(z / 5.0)).astype(np.uint8)
        slab += rng.integers(0, 20, slab.shape, dtype=np.uint8)
        sample[(8, 8, 40), 0:1024, 0:1024, z0 : z0 + 16] = slab[np.newaxis]
    print(f"wrote the sample volume {root / 'sample'} (64 x 64 x 16 chunks)")
    copy_args = ["copy", str(root / "sample"), str(root / "copy"), "--dst-chunk-size", "128,128,16"]
    lamina_cli([*copy_args, "--chunk-size", "256,256,32", "--executor", "processes"])
    lamina_cli(["downsample", str(root / "copy"), "--executor", "processes"])  # 3 levels, 2x2x1
    lamina_cli(["info", str(root / "copy")])


def jsondir_section(out: Path) -> None:
    print("== lamina-jsondir (example third-party plugin): a directory of JSON files")
    layer = lamina.build_jsondir_layer(out / "notes")
    layer["today"] = {"done": ["core"], "next": ["volumetric"]}
    print(f"wrote {out / 'notes' / 'today.json'}; read back {layer['today']}")


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart-output").absolute()
    out.mkdir(parents=True, exist_ok=True)
    core_section()
    volumetric_section()
    installed = set(lamina.registered_names())
    if "build_jsondir_layer" in installed:
        jsondir_section(out)
    if "build_cv_layer" in installed:
        precomputed_section(out)
    if "build_h5_layer" in installed:
        hdf5_section(out)
    print("== installed plugins (`lamina plugins`)")
    lamina_cli(["plugins"])
    if "build_cv_layer" in installed:
        pipeline_section(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
