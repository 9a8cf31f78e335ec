"""The ``lamina`` command line (also ``python -m lamina``).

Subcommands come from the command hook: the core contributes ``plugins``; plugins add
``info``, ``copy``, ``view`` and others.

An error is one line, ``lamina COMMAND: error: …``, and the exit status says what kind:
2 for a usage error (an option or argument the command cannot run with, found before
anything was done), 1 for a failure while it ran, 130 when interrupted (Ctrl-C: the line
says how much was done and how to resume). The traceback is printed only with
``--debug`` (anywhere on the command line) or ``LAMINA_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import NoReturn

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


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (``lamina copy: error: … (see lamina copy
    --help)``) instead of the whole usage block above it; exit status 2 as argparse's."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(host: PluginHost | None = None) -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    host = host or get_host()
    parser = _Parser(
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


#: Errors in the command line itself, found before anything ran (an option value, a
#: resolution or executor that does not exist, a spec file that does not parse): exit
#: status 2, as argparse's. Everything else (missing or damaged files, storage, failed
#: tasks) is a failure: 1.
_USAGE_ERRORS: tuple[type[BaseException], ...] = ()


def _usage_errors() -> tuple[type[BaseException], ...]:
    global _USAGE_ERRORS
    if not _USAGE_ERRORS:
        from lamina.errors import (
            AmbiguousPathError,
            SpecError,
            UnknownNameError,
            UnknownResolutionError,
        )
        from lamina.flows.checks import FlowArgumentError, FlowKeywordError

        _USAGE_ERRORS = (
            FlowArgumentError,
            FlowKeywordError,
            UnknownNameError,
            AmbiguousPathError,
            UnknownResolutionError,
            SpecError,
        )
    return _USAGE_ERRORS


def _debugging(argv: list[str]) -> bool:
    """Whether ``--debug`` was given (it is removed from ``argv``) or ``LAMINA_DEBUG`` set."""
    found = "--debug" in argv
    while "--debug" in argv:
        argv.remove("--debug")
    return found or os.environ.get("LAMINA_DEBUG", "") not in ("", "0")


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line; its type where the message alone would not
    say what went wrong (an error lamina does not raise on purpose)."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        text = exc.args[0]
    if not isinstance(exc, LaminaError | ValueError | TypeError | LookupError | OSError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see the module docstring)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = _debugging(args_list)
    prog = "lamina"
    try:
        parser = build_parser()
        _refuse_uninstalled_command(args_list)
        args = parser.parse_args(args_list)
        command = getattr(args, "command", None)
        prog = f"lamina {command}" if command else "lamina"
        run = getattr(args, "_run", None)
        if run is None:
            parser.print_help()
            return 2
        return int(run(args))
    except SystemExit:
        raise  # argparse's usage errors (2), --help and --version (0)
    except BrokenPipeError:  # the reader went away (lamina plugins | head): not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more is written
        return 0
    except KeyboardInterrupt as exc:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted{_interrupted_summary(exc, args_list)}", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        hint = "" if debug or isinstance(exc, LaminaError) else " (--debug shows the traceback)"
        text = one_line(exc)
        command = prog.removeprefix("lamina").strip()
        if command and text.startswith(f"{command}: "):  # said once, in the prefix
            text = text[len(command) + 2 :]
        print(f"{prog}: error: {text}{hint}", file=sys.stderr)
        return 2 if isinstance(exc, _usage_errors()) else 1


def _refuse_uninstalled_command(argv: list[str]) -> None:
    """``lamina view`` without lamina-view: say what to install (a usage error, 2),
    instead of argparse's ``invalid choice: 'view'``."""
    from lamina.errors import UnknownNameError
    from lamina.plugins.known import distribution_for_name, install_hint

    command = next((a for a in argv if not a.startswith("-")), None)
    if command is None or command in {e.name for e in get_host().registry.entries("commands")}:
        return
    dist = distribution_for_name("commands", command)
    if dist is None:
        return
    records = {r.distribution: r for r in get_host().records()}
    record = records.get(dist)
    if record is not None and record.disabled:
        raise UnknownNameError(
            f"`lamina {command}` is a command of {dist}, which is installed but switched "
            "off: remove it from LAMINA_DISABLED_PLUGINS (or unset "
            "LAMINA_DISABLE_PLUGIN_AUTOLOAD)"
        )
    if record is not None:
        raise UnknownNameError(
            f"`lamina {command}` is a command of {dist}, which did not load: "
            f"{record.error or 'see lamina plugins'}"
        )
    raise UnknownNameError(
        f"`lamina {command}` is a command of {dist}, which is not installed: {install_hint(dist)}"
    )


def _interrupted_summary(exc: BaseException, argv: list[str]) -> str:
    """``: N of M tasks finished and journaled; resume with: lamina … --resume`` when a
    flow was interrupted, else nothing."""
    describe = getattr(exc, "describe", None)
    if not callable(describe):
        return ""
    command = ["lamina", *argv]
    if "--resume" not in command:
        command.append("--resume")
    return f": {describe()}; resume with: {shlex.join(command)}"


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
