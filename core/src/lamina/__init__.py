"""lamina: read and write huge external datasets through one abstraction, the layer.

Everything here is imported on first use, so ``import lamina`` stays cheap and loads
no plugin. Names that plugins register (``lamina.build_cv_layer``, …) are resolved
through the plugin registry the first time they are asked for.
"""

from __future__ import annotations

from lamina.lazy import MISSING, resolve

# Not ``from typing import TYPE_CHECKING``: importing ``typing`` alone costs more than all
# of ``import lamina`` (mypy treats this name as true all the same).
TYPE_CHECKING = False

# Public name → module that defines it. Nothing is imported until the name is used.
_LAZY: dict[str, str] = {
    # layers, backends, schemes, processors
    "Layer": "lamina.layer",
    "build_layer": "lamina.layer",
    "Backend": "lamina.backend",
    "Capabilities": "lamina.backend",
    "IndexScheme": "lamina.scheme",
    "IdentityScheme": "lamina.scheme",
    "IndexProcessor": "lamina.processors",
    "DataProcessor": "lamina.processors",
    "JointIndexDataProcessor": "lamina.processors",
    "MemoryBackend": "lamina.memory",
    "build_memory_layer": "lamina.memory",
    # the volumetric scheme
    "Vec3D": "lamina.volumetric.geometry",
    "IntVec3D": "lamina.volumetric.geometry",
    "BBox3D": "lamina.volumetric.geometry",
    "BBoxStrider": "lamina.volumetric.geometry",
    "VolumetricIndex": "lamina.volumetric.index",
    "VolumetricLayer": "lamina.volumetric.layer",
    "build_volumetric_layer": "lamina.volumetric.layer",
    "VolumetricBackend": "lamina.volumetric.backend",
    "MemoryVolumetricBackend": "lamina.volumetric.memory",
    "build_memory_volumetric_layer": "lamina.volumetric.memory",
    "ConstantVolumetricBackend": "lamina.volumetric.constant",
    "build_constant_volumetric_layer": "lamina.volumetric.constant",
    "DataResolutionInterpolator": "lamina.volumetric.interpolation",
    "VolumetricIndexTranslator": "lamina.volumetric.processors",
    "VolumetricIndexScaler": "lamina.volumetric.processors",
    "VolumetricIndexOverrider": "lamina.volumetric.processors",
    "VolumetricIndexPadder": "lamina.volumetric.processors",
    "InvertProcessor": "lamina.volumetric.processors",
    "ROIMaskProcessor": "lamina.volumetric.processors",
    "VolumetricIndexChunker": "lamina.volumetric.chunker",
    # the key-value scheme
    "DBIndex": "lamina.keyvalue.index",
    "DBBackend": "lamina.keyvalue.backend",
    "KeyValueLayer": "lamina.keyvalue.layer",
    "build_db_layer": "lamina.keyvalue.layer",
    "MemoryKeyValueBackend": "lamina.keyvalue.memory",
    "build_memory_db_layer": "lamina.keyvalue.memory",
    "MissingKeyError": "lamina.keyvalue.scheme",
    # names and specs
    "build": "lamina.specs",
    "get_builder": "lamina.specs",
    "registered_names": "lamina.specs",
    # plugins
    "hookimpl": "lamina.plugins.hookspecs",
    "Command": "lamina.plugins.contributions",
    "PathOpener": "lamina.plugins.contributions",
    "open_path": "lamina.paths",
    # errors
    "LaminaError": "lamina.errors",
    "NameConflictError": "lamina.errors",
    "PluginLoadError": "lamina.errors",
    "ReadonlyLayerError": "lamina.errors",
    "SpecError": "lamina.errors",
    "UnknownNameError": "lamina.errors",
    "UnknownResolutionError": "lamina.errors",
    "UnsupportedOperationError": "lamina.errors",
}

# Submodules: ``from lamina import testing`` must import them, not ask the plugin registry.
_SUBMODULES = frozenset(
    {
        "backend",
        "cli",
        "errors",
        "flows",
        "keyvalue",
        "layer",
        "lazy",
        "memory",
        "paths",
        "plugins",
        "processors",
        "scheme",
        "specs",
        "testing",
        "torch",
        "volumetric",
    }
)

__all__ = [
    "BBox3D",
    "BBoxStrider",
    "Backend",
    "Capabilities",
    "Command",
    "ConstantVolumetricBackend",
    "DBBackend",
    "DBIndex",
    "DataProcessor",
    "DataResolutionInterpolator",
    "IdentityScheme",
    "IndexProcessor",
    "IndexScheme",
    "IntVec3D",
    "InvertProcessor",
    "JointIndexDataProcessor",
    "KeyValueLayer",
    "LaminaError",
    "Layer",
    "MemoryBackend",
    "MemoryKeyValueBackend",
    "MemoryVolumetricBackend",
    "MissingKeyError",
    "NameConflictError",
    "PathOpener",
    "PluginLoadError",
    "ROIMaskProcessor",
    "ReadonlyLayerError",
    "SpecError",
    "UnknownNameError",
    "UnknownResolutionError",
    "UnsupportedOperationError",
    "Vec3D",
    "VolumetricBackend",
    "VolumetricIndex",
    "VolumetricIndexChunker",
    "VolumetricIndexOverrider",
    "VolumetricIndexPadder",
    "VolumetricIndexScaler",
    "VolumetricIndexTranslator",
    "VolumetricLayer",
    "__version__",
    "build",
    "build_constant_volumetric_layer",
    "build_db_layer",
    "build_layer",
    "build_memory_db_layer",
    "build_memory_layer",
    "build_memory_volumetric_layer",
    "build_volumetric_layer",
    "get_builder",
    "hookimpl",
    "open_path",
    "registered_names",
]

if TYPE_CHECKING:
    from typing import Any

    from lamina.backend import Backend, Capabilities
    from lamina.errors import (
        LaminaError,
        NameConflictError,
        PluginLoadError,
        ReadonlyLayerError,
        SpecError,
        UnknownNameError,
        UnknownResolutionError,
        UnsupportedOperationError,
    )
    from lamina.keyvalue.backend import DBBackend
    from lamina.keyvalue.index import DBIndex
    from lamina.keyvalue.layer import KeyValueLayer, build_db_layer
    from lamina.keyvalue.memory import MemoryKeyValueBackend, build_memory_db_layer
    from lamina.keyvalue.scheme import MissingKeyError
    from lamina.layer import Layer, build_layer
    from lamina.memory import MemoryBackend, build_memory_layer
    from lamina.paths import open_path
    from lamina.plugins.contributions import Command, PathOpener
    from lamina.plugins.hookspecs import hookimpl
    from lamina.processors import DataProcessor, IndexProcessor, JointIndexDataProcessor
    from lamina.scheme import IdentityScheme, IndexScheme
    from lamina.specs import build, get_builder, registered_names
    from lamina.volumetric.backend import VolumetricBackend
    from lamina.volumetric.chunker import VolumetricIndexChunker
    from lamina.volumetric.constant import (
        ConstantVolumetricBackend,
        build_constant_volumetric_layer,
    )
    from lamina.volumetric.geometry import BBox3D, BBoxStrider, IntVec3D, Vec3D
    from lamina.volumetric.index import VolumetricIndex
    from lamina.volumetric.interpolation import DataResolutionInterpolator
    from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer
    from lamina.volumetric.memory import MemoryVolumetricBackend, build_memory_volumetric_layer
    from lamina.volumetric.processors import (
        InvertProcessor,
        ROIMaskProcessor,
        VolumetricIndexOverrider,
        VolumetricIndexPadder,
        VolumetricIndexScaler,
        VolumetricIndexTranslator,
    )

    __version__: str


def __getattr__(name: str) -> Any:
    value = resolve(_LAZY, name, globals())
    if value is not MISSING:
        return value
    if name == "__version__":
        from lamina.plugins.manager import _core_version

        return _core_version()
    if name.startswith("_") or name in _SUBMODULES:
        raise AttributeError(f"module 'lamina' has no attribute {name!r}")
    from lamina.errors import UnknownNameError
    from lamina.plugins.manager import get_host

    try:
        return get_host().lookup("names", name)
    except UnknownNameError as exc:
        raise AttributeError(str(exc), name=name, obj=None) from None


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
