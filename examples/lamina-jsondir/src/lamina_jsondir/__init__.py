"""A directory of JSON files as a lamina layer (an example third-party plugin)."""

from lamina_jsondir.backend import JsonDirBackend, build_jsondir_layer

__all__ = ["JsonDirBackend", "build_jsondir_layer"]
