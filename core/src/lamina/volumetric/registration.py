"""What the volumetric scheme contributes: volumetric layers and their in-memory and
constant backends, the geometry and index values specs build, and the volumetric
processors (see :mod:`lamina.registration` for why the core registers like a plugin)."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar

_PROCESSORS = (
    "VolumetricIndexTranslator",
    "VolumetricIndexScaler",
    "VolumetricIndexOverrider",
    "VolumetricIndexPadder",
    "InvertProcessor",
    "ROIMaskProcessor",
)


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    for name, module in (
        ("build_volumetric_layer", "lamina.volumetric.layer"),
        ("build_memory_volumetric_layer", "lamina.volumetric.memory"),
        ("build_constant_volumetric_layer", "lamina.volumetric.constant"),
    ):
        registry.register(name, f"{module}:{name}")
    geometry = "lamina.volumetric.geometry"
    registry.register("Vec3D", f"{geometry}:Vec3D", kind="geometry")
    for method in ("from_slices", "from_coords", "from_points"):
        registry.register(f"BBox3D.{method}", f"{geometry}:BBox3D.{method}", kind="geometry")
    registry.register("BBoxStrider", f"{geometry}:BBoxStrider", kind="geometry")
    registry.register("VolumetricIndex", "lamina.volumetric.index:VolumetricIndex", kind="index")
    registry.register(
        "VolumetricIndex.from_coords",
        "lamina.volumetric.index:VolumetricIndex.from_coords",
        kind="index",
    )


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    registry.register("MemoryVolumetricBackend", "lamina.volumetric.memory:MemoryVolumetricBackend")
    registry.register(
        "ConstantVolumetricBackend", "lamina.volumetric.constant:ConstantVolumetricBackend"
    )


@hookimpl
def lamina_register_processors(registry: Registrar) -> None:
    registry.register(
        "DataResolutionInterpolator", "lamina.volumetric.interpolation:DataResolutionInterpolator"
    )
    registry.register(
        "VolumetricIndexChunker", "lamina.volumetric.chunker:VolumetricIndexChunker", kind="chunker"
    )
    for name in _PROCESSORS:
        registry.register(name, f"lamina.volumetric.processors:{name}")
