"""The command line: ``lamina plugins``, ``--version``, plugin subcommands, errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from lamina import Command, UnknownNameError
from lamina.cli import main
from lamina.plugins import PluginHost, hookimpl


class CommandPlugin:
    @hookimpl
    def lamina_register_commands(self, registry):  # type: ignore[no-untyped-def]
        def add(parser: argparse.ArgumentParser) -> None:
            parser.add_argument("who", help="whom to greet")

        def run(args: argparse.Namespace) -> int:
            if args.who == "nobody":
                raise UnknownNameError("nobody is not a name")
            print(f"hello {args.who}")
            return 0

        registry.register("hello", Command(help="say hello", add_arguments=add, run=run))


def test_plugins_json_lists_the_core(
    lamina_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    core = listing[0]
    assert core["distribution"] == "lamina"
    assert "build_memory_layer" in core["names"]["names"]
    assert "plugins" in core["names"]["commands"]
    assert core["error"] is None


def test_plugins_text_lists_names_and_errors(
    lamina_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    lamina_host.register_plugin(CommandPlugin(), distribution="greeter", version="1.2")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "greeter 1.2  [ok]" in out
    assert "commands: hello" in out


def test_plugin_subcommand_runs_and_errors_are_one_line(
    lamina_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    lamina_host.register_plugin(CommandPlugin(), distribution="greeter")
    assert main(["hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    assert main(["hello", "nobody"]) == 2
    err = capsys.readouterr().err
    assert err == "lamina hello: error: nobody is not a name\n"


def test_no_command_prints_help(
    lamina_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 2
    assert "plugins" in capsys.readouterr().out


def test_version_shows_plugins(lamina_host: PluginHost, capsys: pytest.CaptureFixture[str]) -> None:
    lamina_host.register_plugin(CommandPlugin(), distribution="greeter", version="1.2")
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("lamina ")
    assert "greeter 1.2" in out


@pytest.mark.parametrize("argv", [["--help"], ["plugins", "--help"]])
def test_help_works_as_a_module(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lamina", *argv], capture_output=True, text=True, check=True
    )
    assert "usage: lamina" in result.stdout
