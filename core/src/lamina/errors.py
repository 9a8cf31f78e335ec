"""Exceptions that lamina raises on purpose.

Each one says what was asked, what was found and, where there is one, what to do next.
They subclass the builtin a caller would catch anyway (``LookupError``, ``OSError``,
``ValueError``), so ``except KeyError``-style code written against the reference system
keeps working where it makes sense.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousPathError",
    "DamagedChunkError",
    "LaminaError",
    "NameConflictError",
    "PathNotFoundError",
    "PluginLoadError",
    "ReadonlyLayerError",
    "RegistrationError",
    "SpecError",
    "UnknownNameError",
    "UnknownResolutionError",
    "UnsupportedOperationError",
]


class LaminaError(Exception):
    """Base class of every error lamina raises on purpose."""


class UnknownNameError(LaminaError, LookupError):
    """A name (builder, processor, command, executor, path form) that nothing installed provides."""

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class NameConflictError(LaminaError, LookupError):
    """Two plugin distributions registered the same name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PluginLoadError(LaminaError, RuntimeError):
    """A plugin failed to import or register (raised only with ``LAMINA_STRICT_PLUGINS=1``)."""


class ReadonlyLayerError(LaminaError, OSError):
    """A write or delete was attempted on a readonly layer (an ``IOError``, as in the reference)."""


class UnsupportedOperationError(LaminaError, OSError):
    """The backend declares that it cannot do what was asked (see ``Backend.capabilities``)."""


class SpecError(LaminaError, ValueError):
    """A spec handed to ``lamina.build`` is malformed; the message names where in the spec."""


class UnknownResolutionError(LaminaError, ValueError):
    """A volume was asked for a resolution it does not store; the message lists those it does."""


class DamagedChunkError(LaminaError, ValueError):
    """A stored chunk is present but does not decode (cut short, the wrong size, not its
    encoding). Only an absent chunk reads as the fill value; a damaged one is this error,
    naming the chunk, never zeros."""


class PathNotFoundError(LaminaError, FileNotFoundError):
    """A local path given to open a dataset does not exist."""


class RegistrationError(LaminaError, TypeError):
    """A plugin registered something lamina cannot use: an import string that does not
    import, or a builder whose signature is only ``*args`` / ``**kwargs``."""


class AmbiguousPathError(LaminaError, LookupError):
    """Several installed formats claim a path with the same priority: the message lists
    them and says how to name one (``format=``, ``--format``)."""

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""
