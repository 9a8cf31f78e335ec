"""Per-call cost of a 1-voxel read through a VolumetricLayer over the in-memory backend.

Run: ``python bench/bench_volumetric_layer.py`` with lamina installed (e.g.
``.tox/core/bin/python bench/bench_volumetric_layer.py``). Prints µs per call for:

* ``layer[res, x:x+1, y:y+1, z:z+1]`` — user index conversion, the layer and the backend;
* ``layer[idx]`` with a prebuilt ``VolumetricIndex`` — the layer and the backend;
* ``backend.read(idx)`` — the in-memory backend alone;
* the index conversion alone (``layer.scheme.to_index``).

The reference system's own cost per call (index conversion and runtime type checks on top
of its storage engine) is in bench/README.md, "The reference system". Nothing here is
asserted.
"""

from __future__ import annotations

import sys
import timeit

from lamina import BBox3D, Vec3D, VolumetricIndex, build_memory_volumetric_layer


def per_call_us(func: object, number: int = 20_000, repeat: int = 7) -> float:
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    res = Vec3D(8, 8, 40)
    layer = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (1024, 1024, 128), res),
        resolutions=[res],
        chunk_size=(128, 128, 16),
    )
    layer[res, 0:128, 0:128, 0:16] = 1
    idx = VolumetricIndex.from_coords((5, 6, 7), (6, 7, 8), res)
    user = (res, slice(5, 6), slice(6, 7), slice(7, 8))
    assert layer[user].shape == (1, 1, 1, 1)
    rows = [
        ("layer[res, x:x+1, y:y+1, z:z+1]", per_call_us(lambda: layer[user])),
        ("layer[VolumetricIndex]", per_call_us(lambda: layer[idx])),
        ("backend.read(VolumetricIndex)", per_call_us(lambda: layer.backend.read(idx))),
        ("index conversion alone", per_call_us(lambda: layer.scheme.to_index(user))),
    ]
    print(f"python {sys.version.split()[0]}; 1-voxel reads, in-memory volume 1024x1024x128 uint8")
    for name, us in rows:
        print(f"{name:<34} {us:8.2f} µs/call")


if __name__ == "__main__":
    main()
