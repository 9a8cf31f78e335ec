"""The core's own contributions, registered through the same hooks as any plugin.

Registering the core like a plugin keeps one code path: ``lamina plugins`` lists the
core's names beside the plugins', and a plugin that reuses a core name is reported as
a conflict like any other.
"""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    from lamina.keyvalue.index import DBIndex
    from lamina.keyvalue.layer import build_db_layer
    from lamina.keyvalue.memory import build_memory_db_layer
    from lamina.layer import build_layer
    from lamina.memory import build_memory_layer
    from lamina.volumetric.constant import build_constant_volumetric_layer
    from lamina.volumetric.geometry import BBox3D, BBoxStrider, Vec3D
    from lamina.volumetric.index import VolumetricIndex
    from lamina.volumetric.layer import build_volumetric_layer
    from lamina.volumetric.memory import build_memory_volumetric_layer

    registry.register("build_layer", build_layer)
    registry.register("build_memory_layer", build_memory_layer)
    registry.register("build_volumetric_layer", build_volumetric_layer)
    registry.register("build_memory_volumetric_layer", build_memory_volumetric_layer)
    registry.register("build_constant_volumetric_layer", build_constant_volumetric_layer)
    registry.register("Vec3D", Vec3D, kind="geometry")
    registry.register("BBox3D.from_slices", BBox3D.from_slices, kind="geometry")
    registry.register("BBox3D.from_coords", BBox3D.from_coords, kind="geometry")
    registry.register("BBox3D.from_points", BBox3D.from_points, kind="geometry")
    registry.register("BBoxStrider", BBoxStrider, kind="geometry")
    registry.register("VolumetricIndex", VolumetricIndex, kind="index")
    registry.register("VolumetricIndex.from_coords", VolumetricIndex.from_coords, kind="index")
    registry.register("build_db_layer", build_db_layer)
    registry.register("build_memory_db_layer", build_memory_db_layer)
    registry.register("DBIndex", DBIndex, kind="index")
    # chunked-processing flows, for specs ({"@type": "copy", ...}; ``lamina run SPEC``)
    from lamina.flows.blockwise import apply
    from lamina.flows.copying import copy
    from lamina.flows.pyramid import downsample

    registry.register("copy", copy, kind="flow")
    registry.register("downsample", downsample, kind="flow")
    registry.register("apply", apply, kind="flow")


@hookimpl
def lamina_register_backends(registry: Registrar) -> None:
    from lamina.keyvalue.memory import MemoryKeyValueBackend
    from lamina.memory import MemoryBackend
    from lamina.volumetric.constant import ConstantVolumetricBackend
    from lamina.volumetric.memory import MemoryVolumetricBackend

    registry.register("MemoryBackend", MemoryBackend)
    registry.register("MemoryVolumetricBackend", MemoryVolumetricBackend)
    registry.register("ConstantVolumetricBackend", ConstantVolumetricBackend)
    registry.register("MemoryKeyValueBackend", MemoryKeyValueBackend)


@hookimpl
def lamina_register_processors(registry: Registrar) -> None:
    from lamina.volumetric import processors
    from lamina.volumetric.chunker import VolumetricIndexChunker
    from lamina.volumetric.interpolation import DataResolutionInterpolator

    registry.register("DataResolutionInterpolator", DataResolutionInterpolator)
    registry.register("VolumetricIndexChunker", VolumetricIndexChunker, kind="chunker")
    for name in processors.__all__:
        registry.register(name, getattr(processors, name))


@hookimpl
def lamina_register_commands(registry: Registrar) -> None:
    from lamina.cli import plugins_command
    from lamina.paths import INFO_COMMAND

    registry.register("plugins", plugins_command)
    registry.register("info", INFO_COMMAND)
    from lamina.flows.cli import COPY_COMMAND, DOWNSAMPLE_COMMAND, RUN_COMMAND

    registry.register("copy", COPY_COMMAND)
    registry.register("downsample", DOWNSAMPLE_COMMAND)
    registry.register("run", RUN_COMMAND)


@hookimpl
def lamina_register_executors(registry: Registrar) -> None:
    from lamina.flows.executors import processes_executor, serial_executor, threads_executor

    registry.register("serial", serial_executor)
    registry.register("threads", threads_executor)
    registry.register("processes", processes_executor)
