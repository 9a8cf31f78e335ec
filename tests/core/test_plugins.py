"""Plugin discovery: lazy, cached, guarded per entry point, switchable, conflicts named.

Entry points are in-memory ``importlib.metadata.EntryPoint`` objects pointing at
modules written to a temporary directory, so no package is installed to test broken,
duplicate and well-behaved plugins.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import lamina
from lamina.errors import (
    NameConflictError,
    PluginLoadError,
    RegistrationError,
    UnknownNameError,
)
from lamina.plugins import PluginHost, hookimpl
from lamina.testing import isolated_host

GOOD = """
from lamina import hookimpl

def build_good_layer(value=1):
    return ("good", value)

@hookimpl
def lamina_register_builders(registry):
    registry.register("build_good_layer", build_good_layer)

@hookimpl
def lamina_register_processors(registry):
    registry.register("GoodProcessor", lambda: "proc")
"""

BROKEN_IMPORT = """
import a_module_that_does_not_exist
"""

MISSPELT = """
from lamina import hookimpl

@hookimpl
def lamina_register_bilders(registry):
    registry.register("never", object())
"""

FAILS_IN_HOOK = """
from lamina import hookimpl

@hookimpl
def lamina_register_builders(registry):
    registry.register("half_registered", object())
    raise RuntimeError("boom in the hook")
"""

SAME_NAME = """
from lamina import hookimpl

@hookimpl
def lamina_register_builders(registry):
    registry.register("build_good_layer", lambda: "impostor")
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, source in {
        "plug_good": GOOD,
        "plug_broken": BROKEN_IMPORT,
        "plug_misspelt": MISSPELT,
        "plug_fails": FAILS_IN_HOOK,
        "plug_same": SAME_NAME,
    }.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in list(sys.modules):
        if name.startswith("plug_"):
            del sys.modules[name]
    return tmp_path


def ep(module: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=module, value=module, group="lamina")


def test_good_plugin_is_registered_and_usable_by_name(plugin_dir: Path) -> None:
    with isolated_host(entry_points=[ep("plug_good")]) as host:
        assert lamina.get_builder("build_good_layer")(value=3) == ("good", 3)
        assert lamina.build({"@type": "build_good_layer", "value": 4}) == ("good", 4)
        record = next(r for r in host.records() if r.distribution == "plug_good")
        assert record.error is None
        assert record.names == {"names": ["build_good_layer", "GoodProcessor"]}
        kinds = {e.name: e.kind for e in host.registry.entries("names")}
        assert kinds["build_good_layer"] == "layer builder"
        assert kinds["GoodProcessor"] == "processor"


def test_broken_plugin_is_reported_and_others_keep_working(plugin_dir: Path) -> None:
    with (
        pytest.warns(RuntimeWarning, match=r"plug_broken.*failed to import.*ModuleNotFoundError"),
        isolated_host(entry_points=[ep("plug_broken"), ep("plug_good")]) as host,
    ):
        assert lamina.get_builder("build_good_layer")() == ("good", 1)
    broken = next(r for r in host.records() if r.distribution == "plug_broken")
    assert "a_module_that_does_not_exist" in (broken.error or "")
    assert broken.entry_point == "plug_broken = plug_broken"


def test_strict_mode_turns_a_broken_plugin_into_an_error(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMINA_STRICT_PLUGINS", "1")
    host = PluginHost(entry_points=[ep("plug_broken")], autoload=True)
    with pytest.raises(PluginLoadError, match="plug_broken"):
        host.load()


def test_misspelt_hook_is_caught(plugin_dir: Path) -> None:
    with (
        pytest.warns(RuntimeWarning, match=r"unknown hook.*lamina_register_bilders"),
        isolated_host(entry_points=[ep("plug_misspelt"), ep("plug_good")]) as host,
    ):
        record = next(r for r in host.records() if r.distribution == "plug_misspelt")
        assert "lamina_register_bilders" in (record.error or "")
        assert lamina.get_builder("build_good_layer")() == ("good", 1)


def test_failing_registrar_leaves_nothing_half_registered(plugin_dir: Path) -> None:
    with (
        pytest.warns(RuntimeWarning, match="boom in the hook"),
        isolated_host(entry_points=[ep("plug_fails")]) as host,
    ):
        with pytest.raises(UnknownNameError):
            lamina.get_builder("half_registered")
        record = next(r for r in host.records() if r.distribution == "plug_fails")
        assert "lamina_register_builders" in (record.error or "")


def test_two_distributions_registering_one_name_is_an_error_naming_both(
    plugin_dir: Path,
) -> None:
    with (
        pytest.warns(RuntimeWarning, match="registered by both"),
        isolated_host(entry_points=[ep("plug_good"), ep("plug_same")]),
    ):
        with pytest.raises(NameConflictError, match=r"'plug_good' and 'plug_same'"):
            lamina.get_builder("build_good_layer")
        # The rest of the first plugin keeps working.
        assert lamina.get_builder("GoodProcessor")() == "proc"


def test_conflict_is_raised_in_strict_mode(plugin_dir: Path) -> None:
    host = PluginHost(entry_points=[ep("plug_good"), ep("plug_same")], autoload=True, strict=True)
    with pytest.raises(NameConflictError, match="plug_same"):
        host.load()


def test_replace_true_overrides_without_conflict(lamina_host: PluginHost) -> None:
    class Override:
        @hookimpl
        def lamina_register_builders(self, registry):  # type: ignore[no-untyped-def]
            registry.register("build_memory_layer", lambda: "mine", replace=True)

    lamina_host.register_plugin(Override(), distribution="overrider")
    assert lamina.get_builder("build_memory_layer")() == "mine"


def test_disabled_plugins_are_skipped_and_listed(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMINA_DISABLED_PLUGINS", "plug_broken, plug_good")
    host = PluginHost(entry_points=[ep("plug_broken"), ep("plug_good")], autoload=True)
    records = host.records()  # no warning: the broken plugin is never imported
    assert [r.disabled for r in records if r.distribution.startswith("plug_")] == [True, True]
    assert "plug_broken" not in sys.modules
    with pytest.raises(UnknownNameError):
        host.lookup("names", "build_good_layer")


def test_autoload_switch_skips_entry_points(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMINA_DISABLE_PLUGIN_AUTOLOAD", "1")
    host = PluginHost(entry_points=[ep("plug_good")])
    assert [r.distribution for r in host.records()] == ["lamina"]
    # The core's own names are still there.
    assert host.lookup("names", "build_memory_layer") is not None


def test_discovery_is_cached(plugin_dir: Path) -> None:
    host = PluginHost(entry_points=[ep("plug_good")], autoload=True)
    host.load()
    first = host.records()
    host.load()
    assert host.records() == first
    assert sum(r.distribution == "plug_good" for r in host.records()) == 1


def test_unknown_name_says_what_to_install_and_what_is_there(lamina_host: PluginHost) -> None:
    with pytest.raises(UnknownNameError) as info:
        lamina.get_builder("build_cv_layer")
    message = str(info.value)
    assert "pip install lamina-precomputed" in message
    assert "build_memory_layer" in message  # what is registered
    assert "lamina" in message  # what is installed
    with pytest.raises(UnknownNameError, match="Did you mean 'build_memory_layer'"):
        lamina.get_builder("build_memory_layr")


def test_module_attribute_resolves_registered_names(lamina_host: PluginHost) -> None:
    class Plugin:
        @hookimpl
        def lamina_register_builders(self, registry):  # type: ignore[no-untyped-def]
            registry.register("build_test_layer", lambda: "built")

    lamina_host.register_plugin(Plugin(), distribution="test-dist")
    assert lamina.build_test_layer() == "built"
    with pytest.raises(AttributeError, match=r"build_h5_layer.*pip install lamina-hdf5"):
        _ = lamina.build_h5_layer
    assert not hasattr(lamina, "build_nothing_at_all")


def test_import_lamina_loads_no_plugin() -> None:
    code = (
        "import sys, lamina\n"
        "loaded = sorted(k for k in sys.modules if k.startswith(('lamina', 'pluggy')))\n"
        "import lamina.plugins.manager as m\n"
        "print(loaded, m._current_host is None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['lamina', 'lamina.lazy'] True"


def test_a_failed_strict_load_raises_the_same_error_again(plugin_dir: Path) -> None:
    host = PluginHost(entry_points=[ep("plug_broken")], autoload=True, strict=True)
    with pytest.raises(PluginLoadError, match="plug_broken") as first:
        host.load()
    with pytest.raises(PluginLoadError) as again:
        host.lookup("names", "build_memory_layer")
    assert again.value is first.value  # not a new complaint about the core
    core = [r.entry_point for r in host._records if r.distribution == "lamina"]
    assert core
    assert len(core) == len(set(core))  # each of the core's entry points once


def test_replace_wins_whichever_distribution_loads_first() -> None:
    class Replacer:
        @hookimpl
        def lamina_register_builders(self, registry):  # type: ignore[no-untyped-def]
            registry.register("build_thing", lambda: "replacement", replace=True)

    class Plain:
        @hookimpl
        def lamina_register_builders(self, registry):  # type: ignore[no-untyped-def]
            registry.register("build_thing", lambda: "plain")

    for order in (
        ((Replacer, "a-replacer"), (Plain, "b-plain")),
        ((Plain, "b-plain"), (Replacer, "a-replacer")),
    ):
        with isolated_host() as host:
            for plugin, dist in order:
                host.register_plugin(plugin(), distribution=dist)
            assert lamina.get_builder("build_thing")() == "replacement"


def test_a_broken_plugin_command_does_not_break_the_cli(
    lamina_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    from lamina import Command
    from lamina.cli import main

    def broken(parser: Any) -> None:
        raise RuntimeError("bad arguments")

    class BrokenCommand:
        @hookimpl
        def lamina_register_commands(self, registry):  # type: ignore[no-untyped-def]
            registry.register("broken", Command(help="x", add_arguments=broken, run=lambda a: 0))

    lamina_host.register_plugin(BrokenCommand(), distribution="broken-dist")
    with pytest.warns(RuntimeWarning, match="'broken' from broken-dist"):
        assert main(["plugins"]) == 0
    assert "broken-dist" in capsys.readouterr().out


BY_IMPORT_STRING = """
from lamina import hookimpl

@hookimpl
def lamina_register_builders(registry):
    registry.register("build_lazy_layer", "plug_lazy_impl:build_lazy_layer")
    registry.register("build_variadic_layer", "plug_lazy_impl:build_variadic_layer")
    registry.register("build_missing_layer", "plug_lazy_impl:not_there")
"""

LAZY_IMPL = '''
IMPORTED = True

def build_lazy_layer(path: str, readonly: bool = False) -> tuple:
    """Build a lazy layer.

    Args:
        path: where.
        readonly: refuse writes.
    """
    return ("lazy", path, readonly)

def build_variadic_layer(*args, **kwargs):
    return ("variadic", args, kwargs)
'''


def test_names_are_registered_by_import_string_and_imported_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plug_lazy.py").write_text(textwrap.dedent(BY_IMPORT_STRING))
    (tmp_path / "plug_lazy_impl.py").write_text(textwrap.dedent(LAZY_IMPL))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("plug_lazy", "plug_lazy_impl"):
        sys.modules.pop(name, None)
    with isolated_host(entry_points=[ep("plug_lazy")]):
        assert "plug_lazy_impl" not in sys.modules  # discovery imported the hooks only
        builder = lamina.get_builder("build_lazy_layer")
        import plug_lazy_impl  # type: ignore[import-not-found]

        assert builder is plug_lazy_impl.build_lazy_layer  # the real function, not a wrapper
        assert list(inspect.signature(builder).parameters) == ["path", "readonly"]
        assert lamina.build({"@type": "build_lazy_layer", "path": "p"}) == ("lazy", "p", False)
        with pytest.raises(RegistrationError, match=r"\*args, \*\*kwargs.*real signature"):
            lamina.get_builder("build_variadic_layer")
        with pytest.raises(RegistrationError, match=r"cannot be imported.*not_there"):
            lamina.get_builder("build_missing_layer")


def test_a_builder_object_without_a_real_signature_is_refused_when_registered() -> None:
    class Variadic:
        @hookimpl
        def lamina_register_builders(self, registry: Any) -> None:
            def build_anything(*args: Any, **kwargs: Any) -> Any:
                return args, kwargs

            registry.register("build_anything", build_anything)

    with (
        pytest.warns(RuntimeWarning, match=r"'build_anything'.*takes \*args, \*\*kwargs"),
        isolated_host(Variadic(), distribution="variadic-plugin") as host,
    ):
        record = next(r for r in host.records() if r.distribution == "variadic-plugin")
        assert "real signature" in str(record.error)
        with pytest.raises(UnknownNameError):
            lamina.get_builder("build_anything")


def test_the_plugin_host_imports_no_flow_command_line_or_registration_module() -> None:
    """The host finds the core's own contributions through entry points, as a plugin's:
    no module of ``lamina.plugins`` imports the flows, the command line or the core's
    registration modules, at the top or inside a function."""
    import ast

    import lamina.plugins

    forbidden = ("lamina.flows", "lamina.cli", "lamina.registration")
    package = Path(lamina.plugins.__file__).parent
    found = []
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.startswith(forbidden) or name.split(".")[-1] == "registration":
                    found.append(f"{module.name}:{node.lineno} {name}")
    assert len(list(package.glob("*.py"))) > 3
    assert found == []
