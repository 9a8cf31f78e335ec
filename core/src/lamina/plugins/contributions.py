"""Value classes that plugins register through the command and path-opener hooks.

They live here, not in the modules that use them, so that a plugin's hook module can
import them without pulling in the command line or any format library.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Command", "PathOpener"]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """Default for commands that take no arguments."""


@attrs.frozen(kw_only=True)
class Command:
    """A ``lamina`` subcommand.

    Attributes:
        help: one line, shown by ``lamina --help``.
        run: called with the parsed ``argparse.Namespace``; returns the exit code.
        add_arguments: adds the command's arguments to its ``argparse`` parser.
        description: the longer text shown by ``lamina COMMAND --help``.
    """

    help: str
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    description: str | None = None


@attrs.frozen(kw_only=True)
class PathOpener:
    """Opens paths of one family (``precomputed://…``, ``*.h5``) as layers.

    Attributes:
        recognises: whether this opener handles ``path``; cheap (no IO that can hang).
        open: opens ``path`` as a layer; keyword options are the command's options.
        forms: the path forms it accepts, for error messages (``"precomputed://PATH"``).
    """

    recognises: Callable[[str], bool]
    open: Callable[..., Any]
    forms: tuple[str, ...] = ()
