"""Every hook a lamina plugin may implement — the whole plugin contract in one file.

A plugin is a module (or any object) announced through the entry-point group
``lamina``; for example, in its ``pyproject.toml``::

    [project.entry-points.lamina]
    jsondir = "lamina_jsondir.hooks"

Its hook module implements any of the *registrar hooks* below, decorated with
``lamina.hookimpl``. Each receives a registrar and calls
``registry.register(name, obj, ...)``; it returns nothing. Registrars are per plugin,
so every name is recorded with the distribution that provides it, two distributions
registering one name is reported naming both, and no ``firstresult`` race between
plugins ever decides who wins. An implementation may accept no argument at all, but
its argument, if any, must be called ``registry``. A misspelt hook name is caught
when the plugin is loaded (pluggy's ``check_pending``).

Keep the hook module light: import cloudvolume, h5py, boto3 and friends inside the
registered builders, never at module level, so that discovering plugins stays cheap.

Discovery happens on first use (never during ``import lamina``) and is cached. A
plugin that fails to import or register is reported with a ``RuntimeWarning`` and in
``lamina plugins``; the others keep working. ``LAMINA_STRICT_PLUGINS=1`` turns such a
failure into an error, ``LAMINA_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry-point
discovery and ``LAMINA_DISABLED_PLUGINS=a,b`` skips the named entry points or
distributions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from lamina.plugins.registrar import Registrar

PROJECT_NAME = "lamina"
ENTRY_POINT_GROUP = "lamina"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "hookimpl", "hookspec"]


@hookspec
def lamina_register_builders(registry: Registrar) -> None:
    """Register layer builders and other values buildable by name.

    ``registry.register("build_jsondir_layer", build_jsondir_layer)`` makes the
    builder reachable as ``lamina.build_jsondir_layer(...)``,
    ``lamina.get_builder("build_jsondir_layer")`` and in specs as
    ``{"@type": "build_jsondir_layer", ...}``. Pass ``kind=`` to describe other
    buildable values (``"index"``, ``"geometry"``, ``"flow"``); the default kind is
    ``"layer builder"``.
    """


@hookspec
def lamina_register_backends(registry: Registrar) -> None:
    """Register backend classes (or factories) by name, for specs and for listing.

    Backends share the builders' name space: ``{"@type": "JsonDirBackend", "path": ...}``.
    """


@hookspec
def lamina_register_processors(registry: Registrar) -> None:
    """Register index, data and joint processors (classes or factories) by name.

    Processors share the builders' name space, so a layer spec can hold processor
    specs: ``{"@type": "build_cv_layer", "read_procs": [{"@type": "InvertProcessor",
    "invert": true}]}``.
    """


@hookspec
def lamina_register_commands(registry: Registrar) -> None:
    """Register ``lamina`` subcommands: ``registry.register("info", Command(...))``.

    The object is a :class:`lamina.plugins.contributions.Command`: a help line, a
    function that adds arguments to an ``argparse`` parser and a function that runs
    the command with the parsed arguments and returns the exit code.
    """


@hookspec
def lamina_register_path_openers(registry: Registrar) -> None:
    """Register path openers: ``registry.register("precomputed", PathOpener(...))``.

    A :class:`lamina.plugins.contributions.PathOpener` says whether it recognises a
    path (``precomputed://…``, ``s3://…``, ``file.h5:/dataset``) and opens it as a
    layer, so that ``lamina info``, ``lamina copy SRC DST`` and friends open any
    installed format.
    """


@hookspec
def lamina_register_executors(registry: Registrar) -> None:
    """Register executors that run the flows' tasks: ``registry.register("dask", factory)``.

    The factory is called as ``factory(workers=N, **options)`` and returns an object
    with the ``concurrent.futures.Executor`` interface (``submit``, ``shutdown``).
    The flows look executors up here by name (``executor="dask"``).
    """
