"""Plugin discovery and the plugin host: pluggy, entry points and the user's switches.

:class:`PluginHost` owns one pluggy ``PluginManager`` and one :class:`Registry`.
``load()`` (called on first use, then cached) registers the core's own hooks, then
each entry point of the group ``lamina`` unless switched off, each in its own
``try``: a plugin that fails to import, that implements a misspelt hook, or whose
registrar hook raises, is recorded with its distribution, version and error, reported
with a ``RuntimeWarning``, and the others keep working — unless
``LAMINA_STRICT_PLUGINS=1``, which raises :class:`~lamina.errors.PluginLoadError`.

Tests build their own host (``lamina.testing.isolated_host``) and register in-memory
plugins or in-memory ``importlib.metadata.EntryPoint`` objects without touching the
installed ones.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pluggy

from lamina.errors import NameConflictError, PluginLoadError
from lamina.plugins import hookspecs
from lamina.plugins.registrar import Entry, Registrar, Registry

__all__ = ["PluginHost", "PluginRecord", "get_host", "use_host"]

# Hook name → (registry name space, default kind of what it registers).
REGISTRAR_HOOKS: dict[str, tuple[str, str]] = {
    "lamina_register_builders": ("names", "layer builder"),
    "lamina_register_backends": ("names", "backend"),
    "lamina_register_processors": ("names", "processor"),
    "lamina_register_commands": ("commands", "command"),
    "lamina_register_path_openers": ("path_openers", "path opener"),
    "lamina_register_executors": ("executors", "executor"),
}

CORE_DISTRIBUTION = "lamina"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str) -> frozenset[str]:
    return frozenset(p.strip() for p in os.environ.get(name, "").split(",") if p.strip())


def _core_version() -> str:
    try:
        return importlib.metadata.version(CORE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


@attrs.define
class PluginRecord:
    """What the host knows about one plugin, for ``lamina plugins``."""

    distribution: str
    version: str
    entry_point: str | None  # "name = module:attr", None for the core and test plugins
    plugin_name: str
    hooks: list[str] = attrs.Factory(list)
    names: dict[str, list[str]] = attrs.Factory(dict)
    error: str | None = None
    disabled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _distribution_of(ep: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is not None:
        return dist.metadata["Name"], dist.version
    return ep.value.split(":", 1)[0].split(".", 1)[0], "unknown"


class PluginHost:
    """A pluggy plugin manager plus the registry its plugins filled.

    Args:
        entry_points: the entry points to discover; ``None`` reads the installed
            ones of the group ``lamina`` (at load time).
        autoload: whether to discover entry points at all; ``None`` reads
            ``LAMINA_DISABLE_PLUGIN_AUTOLOAD`` (at load time).
        disabled: entry-point or distribution names to skip; ``None`` reads
            ``LAMINA_DISABLED_PLUGINS``.
        strict: raise on the first plugin failure; ``None`` reads ``LAMINA_STRICT_PLUGINS``.
    """

    def __init__(
        self,
        *,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
        autoload: bool | None = None,
        disabled: Iterable[str] | None = None,
        strict: bool | None = None,
    ) -> None:
        self._entry_points = None if entry_points is None else list(entry_points)
        self._autoload = autoload
        self._disabled = None if disabled is None else frozenset(disabled)
        self._strict = strict
        self._lock = threading.RLock()
        self._loaded = False
        self._loading = False
        self._failure: Exception | None = None
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._registry = Registry()
        self._records: list[PluginRecord] = []

    # -- switches -------------------------------------------------------------------------
    @property
    def strict(self) -> bool:
        return _env_flag("LAMINA_STRICT_PLUGINS") if self._strict is None else self._strict

    @property
    def autoload(self) -> bool:
        if self._autoload is None:
            return not _env_flag("LAMINA_DISABLE_PLUGIN_AUTOLOAD")
        return self._autoload

    @property
    def disabled(self) -> frozenset[str]:
        return _env_list("LAMINA_DISABLED_PLUGINS") if self._disabled is None else self._disabled

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> None:
        """Discover and register every plugin once; later calls return at once."""
        with self._lock:  # re-entrant: a hook that looks a name up sees what is loaded so far
            if self._failure is not None:
                raise self._failure
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                core = self._core_entry_points()
                for ep in core:  # always, whatever the switches: lamina's own names
                    self._load_entry_point(ep, core=True)
                if self.autoload:
                    for ep in self._discover():
                        if ep not in core:
                            self._load_entry_point(ep)
                self._loaded = True
            except Exception as exc:  # strict mode: the same error on every later use
                self._failure = exc
                raise
            finally:
                self._loading = False

    def _installed(self) -> list[importlib.metadata.EntryPoint]:
        found = importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
        return sorted(found, key=lambda ep: (_distribution_of(ep)[0], ep.name))

    def _core_entry_points(self) -> list[importlib.metadata.EntryPoint]:
        """The core distribution's own entry points (found like any plugin's), and none
        else; an error when the core's metadata is missing (it was not installed)."""
        core = [ep for ep in self._installed() if _distribution_of(ep)[0] == CORE_DISTRIBUTION]
        if not core:
            raise PluginLoadError(
                "the lamina distribution's own entry points (group 'lamina') were not "
                "found: lamina must be installed (pip install lamina, or pip install -e "
                "./core from a source checkout) for its names to be registered"
            )
        return core

    def _discover(self) -> list[importlib.metadata.EntryPoint]:
        if self._entry_points is not None:
            return self._entry_points
        return self._installed()

    def _load_entry_point(self, ep: importlib.metadata.EntryPoint, core: bool = False) -> None:
        dist, version = _distribution_of(ep)
        spelled = f"{ep.name} = {ep.value}"
        if not core and (ep.name in self.disabled or dist in self.disabled):
            self._records.append(
                PluginRecord(dist, version, spelled, f"{dist}:{ep.name}", disabled=True)
            )
            return
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not hide the others
            record = PluginRecord(dist, version, spelled, f"{dist}:{ep.name}")
            self._records.append(record)
            self._fail(record, "failed to import", exc)
            return
        self._add(plugin, dist, version, spelled, plugin_name=f"{dist}:{ep.name}")

    def register_plugin(
        self, plugin: object, distribution: str = "<test>", version: str = "0"
    ) -> PluginRecord:
        """Register an in-memory plugin object now (tests, notebooks)."""
        with self._lock:
            self.load()
            return self._add(plugin, distribution, version, None)

    def _add(
        self,
        plugin: object,
        distribution: str,
        version: str,
        entry_point: str | None,
        plugin_name: str | None = None,
    ) -> PluginRecord:
        name = plugin_name or f"{distribution}:{getattr(plugin, '__name__', id(plugin))}"
        record = PluginRecord(distribution, version, entry_point, name)
        self._records.append(record)
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # invalid hook implementation signature, duplicate object
            self._fail(record, "could not be registered", exc)
            return record
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(plugin)
            self._fail(record, "implements an unknown hook", exc)
            return record
        self._run_registrars(plugin, record)
        return record

    def _run_registrars(self, plugin: object, record: PluginRecord) -> None:
        staged: list[Entry] = []
        for hook_name, (namespace, kind) in REGISTRAR_HOOKS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                record.hooks.append(hook_name)
                registrar = Registrar(namespace, kind, record.distribution)
                try:
                    impl.function(**{arg: registrar for arg in impl.argnames})
                except Exception as exc:
                    self.pm.unregister(plugin)
                    self._fail(record, f"failed in {hook_name}", exc)
                    return
                staged.extend(registrar.staged)
        for entry in staged:
            record.names.setdefault(entry.namespace, []).append(entry.name)
            conflict = self._registry.commit(entry)
            if conflict is not None:
                self._report_conflict(record, conflict)

    def _fail(self, record: PluginRecord, what: str, exc: BaseException) -> None:
        record.error = f"{what}: {type(exc).__name__}: {exc}"
        message = (
            f"lamina plugin {record.distribution} {record.version}"
            f"{f' (entry point {record.entry_point})' if record.entry_point else ''} "
            f"{record.error}"
        )
        if self.strict:
            raise PluginLoadError(message) from exc
        warnings.warn(message + " — the other plugins keep working", RuntimeWarning, stacklevel=4)

    def _report_conflict(self, record: PluginRecord, conflict: NameConflictError) -> None:
        record.error = str(conflict) if record.error is None else f"{record.error}; {conflict}"
        if self.strict:
            raise conflict
        warnings.warn(str(conflict), RuntimeWarning, stacklevel=4)

    # -- queries ----------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        self.load()
        return self._registry

    def records(self) -> list[PluginRecord]:
        """Every plugin distribution seen, the core first, with what it registered and any
        error (a distribution with several entry points, as the core has, is one record)."""
        self.load()
        merged: dict[str, PluginRecord] = {}
        for record in self._records:
            known = merged.get(record.distribution)
            if known is None:
                merged[record.distribution] = attrs.evolve(
                    record,
                    hooks=list(record.hooks),
                    names={k: list(v) for k, v in record.names.items()},
                )
                continue
            if record.entry_point:
                known.entry_point = "; ".join(
                    e for e in (known.entry_point, record.entry_point) if e
                )
            known.hooks.extend(h for h in record.hooks if h not in known.hooks)
            for namespace, names in record.names.items():
                known.names.setdefault(namespace, []).extend(names)
            if record.error:
                known.error = "; ".join(e for e in (known.error, record.error) if e)
            known.disabled = known.disabled and record.disabled
        return list(merged.values())

    def installed_distributions(self) -> list[str]:
        return sorted({r.distribution for r in self.records() if not r.disabled})

    def lookup(self, namespace: str, name: str) -> Any:
        """The object registered as ``name``, or an error saying what would provide it."""
        registry = self.registry
        return registry.lookup(namespace, name, self.installed_distributions()).obj


_host_lock = threading.Lock()
_current_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process's plugin host, created (not yet loaded) on first call."""
    global _current_host
    if _current_host is None:
        with _host_lock:
            if _current_host is None:
                _current_host = PluginHost()
    return _current_host


@contextmanager
def use_host(host: PluginHost) -> Iterator[PluginHost]:
    """Make ``host`` the process's plugin host inside the ``with`` block."""
    global _current_host
    with _host_lock:
        previous, _current_host = _current_host, host
    try:
        yield host
    finally:
        with _host_lock:
            _current_host = previous
