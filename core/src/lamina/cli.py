"""The ``lamina`` command line (also ``python -m lamina``).

Subcommands come from the command hook: the core contributes ``plugins``; plugins add
``info``, ``copy``, ``view`` and others. Errors lamina raises on purpose are printed as
one line (``lamina: error: …``) with exit code 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

from lamina.errors import LaminaError
from lamina.plugins.contributions import Command
from lamina.plugins.manager import PluginHost, get_host

__all__ = ["build_parser", "main", "plugins_command"]


def _version_text(host: PluginHost) -> str:
    records = host.records()
    core = records[0]
    lines = [f"lamina {core.version}"]
    others = [r for r in records[1:] if not r.disabled]
    if others:
        lines.append("plugins:")
        lines.extend(
            f"  {r.distribution} {r.version}{'  (failed to load)' if r.error else ''}"
            for r in others
        )
    else:
        lines.append("plugins: none installed")
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="show lamina's and the plugins' versions"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(_version_text(get_host()))
        parser.exit()


def build_parser(host: PluginHost | None = None) -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    host = host or get_host()
    parser = argparse.ArgumentParser(
        prog="lamina",
        description="Read, write, copy and inspect large datasets through lamina layers.",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in host.registry.entries("commands"):
        command: Command = entry.obj
        sub = subparsers.add_parser(
            entry.name,
            help=command.help,
            description=command.description or command.help,
        )
        try:
            command.add_arguments(sub)
        except Exception as exc:  # one broken plugin command must not break the CLI
            warnings.warn(
                f"lamina command {entry.name!r} from {entry.distribution} could not set up "
                f"its arguments ({type(exc).__name__}: {exc}); it is unavailable",
                RuntimeWarning,
                stacklevel=2,
            )
            subparsers._name_parser_map.pop(entry.name, None)
            continue
        sub.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        return int(run(args))
    except LaminaError as exc:
        print(f"lamina: error: {exc}", file=sys.stderr)
        return 1


# -- lamina plugins -----------------------------------------------------------------------
def _add_plugins_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the listing as JSON")


def _run_plugins(args: argparse.Namespace) -> int:
    records = get_host().records()
    if args.json:
        print(json.dumps([r.as_dict() for r in records], indent=2))
        return 0
    for record in records:
        state = "disabled" if record.disabled else ("ERROR" if record.error else "ok")
        print(f"{record.distribution} {record.version}  [{state}]")
        if record.entry_point:
            print(f"  entry point: {record.entry_point}")
        if record.hooks:
            print(f"  hooks: {', '.join(record.hooks)}")
        for namespace, names in sorted(record.names.items()):
            print(f"  {namespace}: {', '.join(sorted(names))}")
        if record.error:
            print(f"  error: {record.error}")
    return 0


plugins_command = Command(
    help="list installed plugin distributions, what they register and any load error",
    description=(
        "List each lamina plugin distribution with its version, the hooks it implements, "
        "the names it registers and any load error."
    ),
    add_arguments=_add_plugins_arguments,
    run=_run_plugins,
)
