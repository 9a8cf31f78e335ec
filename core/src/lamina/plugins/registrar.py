"""The name registry: what every plugin registered, under which name, from which distribution.

Four name spaces: ``names`` (builders, backends, processors — everything buildable
from a spec), ``commands``, ``path_openers`` and ``executors``. Registration goes
through a :class:`Registrar` handed to one plugin's hook; it stages entries and the
host commits them only if the plugin's hooks all succeeded, so a plugin that fails
halfway leaves nothing behind.

A plugin registers an *import string*, ``"lamina_precomputed.builder:build_cv_layer"``
(as fsspec's registry does): nothing is imported while plugins are discovered, and the
first lookup imports the object itself and caches it, so ``lamina.build_cv_layer`` and
``get_builder("CVBackend")`` are the real function and class, with their signatures
and docstrings. A builder, backend or processor whose signature is only ``*args`` /
``**kwargs`` is refused (as xarray refuses such backends): specs, ``help()`` and IDEs
could not say what it takes.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import threading
from typing import Any

import attrs

from lamina.errors import NameConflictError, RegistrationError, UnknownNameError
from lamina.plugins.known import distribution_for_name, install_hint

__all__ = ["NAMESPACES", "Entry", "Registrar", "Registry", "check_signature", "import_target"]

NAMESPACES = ("names", "commands", "path_openers", "executors")

_NAMESPACE_NOUN = {
    "names": "name",
    "commands": "command",
    "path_openers": "path opener",
    "executors": "executor",
}


def import_target(target: str) -> Any:
    """The object an import string names: ``"package.module:attr"`` (``attr`` may be a
    dotted path, ``"lamina.volumetric.geometry:BBox3D.from_coords"``)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"an import string is 'package.module:attribute'; got {target!r}")
    found: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        found = getattr(found, part)
    return found


def check_signature(name: str, obj: Any, distribution: str) -> None:
    """Refuse a builder, backend or processor that takes ``*args`` or an untyped
    ``**kwargs``: a spec, ``help()`` or an IDE could not say what it takes, and a
    misspelt keyword would be swallowed instead of named. ``**options:
    Unpack[SomeTypedDict]`` is a real signature (every keyword named and typed: the
    flows' run options) and is accepted."""
    if not callable(obj):
        return
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin or extension type without one
        return
    variadic = [
        p.name
        for p in signature.parameters.values()
        if p.kind is p.VAR_POSITIONAL or (p.kind is p.VAR_KEYWORD and not _typed(p))
    ]
    if variadic:
        raise RegistrationError(
            f"{distribution} registers {name!r} as {_describe(obj)}{signature}, which takes "
            f"{', '.join(_star(signature.parameters[v]) for v in variadic)}: lamina refuses "
            "builders without a real signature (specs, help() and IDEs could not say what "
            "they take). Register the function or class itself, by import string "
            f"(registry.register({name!r}, 'package.module:{name}')), with named parameters"
        )


def _typed(parameter: inspect.Parameter) -> bool:
    """``**name: Unpack[TypedDict]``: keywords named and typed by a TypedDict."""
    annotation = parameter.annotation
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "Unpack[" in text


def _star(parameter: inspect.Parameter) -> str:
    return ("*" if parameter.kind is parameter.VAR_POSITIONAL else "**") + parameter.name


def _describe(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


@attrs.define
class Entry:
    """One registered name: the object, or the import string it is imported from on
    first use (:attr:`obj`)."""

    namespace: str
    name: str
    target: Any = attrs.field(eq=False, repr=False)
    kind: str
    distribution: str
    replace: bool = False
    _resolved: Any = attrs.field(default=None, init=False, eq=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, eq=False, repr=False)

    @property
    def obj(self) -> Any:
        """The registered object, imported (and checked) the first time it is asked for."""
        if self._resolved is not None:
            return self._resolved
        with self._lock:
            if self._resolved is None:
                target = self.target
                if isinstance(target, str):
                    try:
                        target = import_target(target)
                    except Exception as exc:
                        raise RegistrationError(
                            f"{self.distribution} registers {self.name!r} as {self.target!r}, "
                            f"which cannot be imported: {type(exc).__name__}: {exc}"
                        ) from exc
                if self.namespace == "names":
                    check_signature(self.name, target, self.distribution)
                self._resolved = target
        return self._resolved


class Registrar:
    """Handed to a plugin's registrar hook; ``register`` stages one entry.

    Args of ``register``:
        name: the public name (``"build_cv_layer"``, ``"info"``, ``"dask"``).
        obj: an import string, ``"package.module:attribute"`` (imported on first use),
            or the builder, class, :class:`~lamina.plugins.contributions.Command`, …
            itself.
        kind: what it is, for listings (defaults to the hook's kind).
        replace: replace an existing entry of that name instead of reporting a conflict.
    """

    def __init__(self, namespace: str, default_kind: str, distribution: str) -> None:
        if namespace not in NAMESPACES:
            raise ValueError(f"namespace must be one of {NAMESPACES}; got {namespace!r}")
        self.namespace = namespace
        self.default_kind = default_kind
        self.distribution = distribution
        self.staged: list[Entry] = []

    def register(
        self, name: str, obj: Any, *, kind: str | None = None, replace: bool = False
    ) -> None:
        """Stage ``obj`` under ``name``; it becomes visible once the plugin has registered."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str; got {name!r}")
        if obj is None:
            raise TypeError(f"cannot register None under {name!r}")
        if isinstance(obj, str) and ":" not in obj:
            raise ValueError(
                f"{name!r}: an import string is 'package.module:attribute'; got {obj!r}"
            )
        if self.namespace == "names" and not isinstance(obj, str):
            check_signature(name, obj, self.distribution)  # refused now, not on first use
        self.staged.append(
            Entry(
                namespace=self.namespace,
                name=name,
                target=obj,
                kind=kind or self.default_kind,
                distribution=self.distribution,
                replace=replace,
            )
        )


class Registry:
    """Committed entries by name space, plus the conflicts found while committing."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {ns: {} for ns in NAMESPACES}
        self._conflicts: dict[tuple[str, str], list[Entry]] = {}
        self._lock = threading.Lock()

    def commit(self, entry: Entry) -> NameConflictError | None:
        """Add ``entry``; return (not raise) the conflict error if the name is taken."""
        key = (entry.namespace, entry.name)
        with self._lock:
            space = self._entries[entry.namespace]
            if key in self._conflicts:
                self._conflicts[key].append(entry)
                return self._conflict_error(key)
            existing = space.get(entry.name)
            if existing is None or (entry.replace and not existing.replace):
                space[entry.name] = entry
                return None
            if existing.replace and not entry.replace:
                return None  # a deliberate replacement wins, whichever loaded first
            del space[entry.name]
            self._conflicts[key] = [existing, entry]
            return self._conflict_error(key)

    def _conflict_error(self, key: tuple[str, str]) -> NameConflictError:
        namespace, name = key
        dists = " and ".join(repr(e.distribution) for e in self._conflicts[key])
        return NameConflictError(
            f"{_NAMESPACE_NOUN[namespace]} {name!r} is registered by both {dists}; "
            "uninstall one of them, disable one with LAMINA_DISABLED_PLUGINS, or have "
            "one register it with replace=True"
        )

    def lookup(self, namespace: str, name: str, installed: list[str] | None = None) -> Entry:
        """Return the entry for ``name`` or raise an error saying what to install."""
        entry = self._entries[namespace].get(name)
        if entry is not None:
            return entry
        if (namespace, name) in self._conflicts:
            raise self._conflict_error((namespace, name))
        raise self.unknown(namespace, name, installed)

    def unknown(
        self, namespace: str, name: str, installed: list[str] | None = None
    ) -> UnknownNameError:
        """The error for a name nothing installed provides: hint, close matches, installed."""
        noun = _NAMESPACE_NOUN[namespace]
        parts = [f"no installed lamina plugin provides the {noun} {name!r}."]
        dist = distribution_for_name(namespace, name)
        if dist is not None and dist not in (installed or []):
            parts.append(f"It is provided by {dist}: {install_hint(dist)}.")
        elif dist is not None:
            parts.append(f"It should come from {dist}, which is installed but did not register it")
            parts.append("(see `lamina plugins` for its load error).")
        close = difflib.get_close_matches(name, list(self._entries[namespace]), n=3)
        if close:
            parts.append(f"Did you mean {', '.join(map(repr, close))}?")
        known = sorted(self._entries[namespace])
        parts.append(f"Registered {noun}s: {', '.join(known) if known else '(none)'}.")
        if installed is not None:
            parts.append(f"Installed plugin distributions: {', '.join(installed) or '(none)'}.")
        return UnknownNameError(" ".join(parts))

    def entries(self, namespace: str) -> list[Entry]:
        """Every usable entry of ``namespace``, sorted by name."""
        return sorted(self._entries[namespace].values(), key=lambda e: e.name)

    def conflicts(self) -> dict[tuple[str, str], list[Entry]]:
        """Names registered by more than one distribution (unusable until resolved)."""
        return dict(self._conflicts)
