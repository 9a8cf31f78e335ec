"""The public names of lamina, each named once: the package imports them from here on
first use (``lamina.lazy.stub_table``), and type checkers and IDEs read this file for
their types. A name that a plugin registers (``lamina.build_cv_layer``) is resolved by
the plugin registry: ``__getattr__`` below.

Add a public name by adding it here (``Name as Name`` marks it public), nowhere else.
"""

from typing import Any

from lamina.arrays.xarray_backend import open_dataarray as open_dataarray
from lamina.backend import Backend as Backend
from lamina.backend import Capabilities as Capabilities
from lamina.errors import AmbiguousPathError as AmbiguousPathError
from lamina.errors import LaminaError as LaminaError
from lamina.errors import NameConflictError as NameConflictError
from lamina.errors import PathNotFoundError as PathNotFoundError
from lamina.errors import PluginLoadError as PluginLoadError
from lamina.errors import ReadonlyLayerError as ReadonlyLayerError
from lamina.errors import SpecError as SpecError
from lamina.errors import UnknownNameError as UnknownNameError
from lamina.errors import UnknownResolutionError as UnknownResolutionError
from lamina.errors import UnsupportedOperationError as UnsupportedOperationError
from lamina.keyvalue.backend import DBBackend as DBBackend
from lamina.keyvalue.index import DBIndex as DBIndex
from lamina.keyvalue.layer import KeyValueLayer as KeyValueLayer
from lamina.keyvalue.layer import build_db_layer as build_db_layer
from lamina.keyvalue.memory import MemoryKeyValueBackend as MemoryKeyValueBackend
from lamina.keyvalue.memory import build_memory_db_layer as build_memory_db_layer
from lamina.keyvalue.scheme import MissingKeyError as MissingKeyError
from lamina.layer import Layer as Layer
from lamina.layer import build_layer as build_layer
from lamina.memory import MemoryBackend as MemoryBackend
from lamina.memory import build_memory_layer as build_memory_layer
from lamina.paths import open_path as open_path
from lamina.plugins.contributions import Command as Command
from lamina.plugins.contributions import PathOpener as PathOpener
from lamina.plugins.hookspecs import hookimpl as hookimpl
from lamina.processors import DataProcessor as DataProcessor
from lamina.processors import IndexProcessor as IndexProcessor
from lamina.processors import JointIndexDataProcessor as JointIndexDataProcessor
from lamina.scheme import IdentityScheme as IdentityScheme
from lamina.scheme import IndexScheme as IndexScheme
from lamina.specs import build as build
from lamina.specs import get_builder as get_builder
from lamina.specs import registered_names as registered_names
from lamina.volumetric.backend import VolumetricBackend as VolumetricBackend
from lamina.volumetric.chunker import VolumetricIndexChunker as VolumetricIndexChunker
from lamina.volumetric.constant import ConstantVolumetricBackend as ConstantVolumetricBackend
from lamina.volumetric.constant import (
    build_constant_volumetric_layer as build_constant_volumetric_layer,
)
from lamina.volumetric.geometry import BBox3D as BBox3D
from lamina.volumetric.geometry import BBoxStrider as BBoxStrider
from lamina.volumetric.geometry import IntVec3D as IntVec3D
from lamina.volumetric.geometry import Vec3D as Vec3D
from lamina.volumetric.index import VolumetricIndex as VolumetricIndex
from lamina.volumetric.interpolation import DataResolutionInterpolator as DataResolutionInterpolator
from lamina.volumetric.layer import VolumetricLayer as VolumetricLayer
from lamina.volumetric.layer import build_volumetric_layer as build_volumetric_layer
from lamina.volumetric.memory import MemoryVolumetricBackend as MemoryVolumetricBackend
from lamina.volumetric.memory import build_memory_volumetric_layer as build_memory_volumetric_layer
from lamina.volumetric.processors import InvertProcessor as InvertProcessor
from lamina.volumetric.processors import ROIMaskProcessor as ROIMaskProcessor
from lamina.volumetric.processors import VolumetricIndexOverrider as VolumetricIndexOverrider
from lamina.volumetric.processors import VolumetricIndexPadder as VolumetricIndexPadder
from lamina.volumetric.processors import VolumetricIndexScaler as VolumetricIndexScaler
from lamina.volumetric.processors import VolumetricIndexTranslator as VolumetricIndexTranslator

__version__: str

def __getattr__(name: str) -> Any: ...
