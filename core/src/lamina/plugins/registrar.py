"""The name registry: what every plugin registered, under which name, from which distribution.

Four name spaces: ``names`` (builders, backends, processors — everything buildable
from a spec), ``commands``, ``path_openers`` and ``executors``. Registration goes
through a :class:`Registrar` handed to one plugin's hook; it stages entries and the
host commits them only if the plugin's hooks all succeeded, so a plugin that fails
halfway leaves nothing behind.
"""

from __future__ import annotations

import difflib
import threading
from typing import Any

import attrs

from lamina.errors import NameConflictError, UnknownNameError
from lamina.plugins.known import distribution_for_name, install_hint

__all__ = ["NAMESPACES", "Entry", "Registrar", "Registry"]

NAMESPACES = ("names", "commands", "path_openers", "executors")

_NAMESPACE_NOUN = {
    "names": "name",
    "commands": "command",
    "path_openers": "path opener",
    "executors": "executor",
}


@attrs.frozen
class Entry:
    """One registered name."""

    namespace: str
    name: str
    obj: Any = attrs.field(eq=False, repr=False)
    kind: str
    distribution: str
    replace: bool = False


class Registrar:
    """Handed to a plugin's registrar hook; ``register`` stages one entry.

    Args of ``register``:
        name: the public name (``"build_cv_layer"``, ``"info"``, ``"dask"``).
        obj: the builder, class, :class:`~lamina.plugins.contributions.Command`, …
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
        self.staged.append(
            Entry(
                namespace=self.namespace,
                name=name,
                obj=obj,
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
