"""The volumetric index scheme: volumes indexed at any resolution, channels-first.

Geometry (``Vec3D``, ``BBox3D``, ``BBoxStrider``), the standard index
(``VolumetricIndex``), the user index forms (``VolumetricScheme``), the layer
(``VolumetricLayer``, ``build_volumetric_layer``), resampling, the backend protocol
(``VolumetricBackend``) and the core's volumetric backends (in-memory, constant).
Names are imported on first use.
"""

from __future__ import annotations

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "Vec3D": "lamina.volumetric.geometry",
    "IntVec3D": "lamina.volumetric.geometry",
    "BBox3D": "lamina.volumetric.geometry",
    "BBoxStrider": "lamina.volumetric.geometry",
    "VolumetricIndex": "lamina.volumetric.index",
    "VolumetricScheme": "lamina.volumetric.scheme",
    "VolumetricLayer": "lamina.volumetric.layer",
    "build_volumetric_layer": "lamina.volumetric.layer",
    "VolumetricBackend": "lamina.volumetric.backend",
    "VolumetricChanges": "lamina.volumetric.backend",
    "ScaleGeometry": "lamina.volumetric.scales",
    "MemoryVolumetricBackend": "lamina.volumetric.memory",
    "build_memory_volumetric_layer": "lamina.volumetric.memory",
    "ConstantVolumetricBackend": "lamina.volumetric.constant",
    "build_constant_volumetric_layer": "lamina.volumetric.constant",
    "DataResolutionInterpolator": "lamina.volumetric.interpolation",
    "InterpolationMode": "lamina.volumetric.modes",
    "VolumetricIndexTranslator": "lamina.volumetric.processors",
    "VolumetricIndexScaler": "lamina.volumetric.processors",
    "VolumetricIndexOverrider": "lamina.volumetric.processors",
    "VolumetricIndexPadder": "lamina.volumetric.processors",
    "InvertProcessor": "lamina.volumetric.processors",
    "ROIMaskProcessor": "lamina.volumetric.processors",
    "VolumetricIndexChunker": "lamina.volumetric.chunker",
}

__all__ = sorted(_LAZY)


__getattr__ = module_getattr(__name__, _LAZY, globals())
