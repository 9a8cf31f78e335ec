"""What the generic and the volumetric set backends share: their members.

* **Concurrency.** A set runs one task per member (read, write, delete,
  ``with_changes``) on its own bounded thread pool, so a set over members with latency
  takes about as long as its slowest member. ``max_workers`` bounds the threads
  (default ``min(number of members, 8)``); ``max_workers=1`` runs the members one
  after another in the calling thread. Each set has its own pool (created on first
  use, never pickled, re-created in a forked child), so nested sets cannot starve
  each other's threads.
* **Errors name the member.** A member's exception is re-raised as the same type with
  a message naming the member and the set, chained ``from`` the original (a type that
  cannot be built from one message is re-raised as it is, with a note naming the
  member). Nothing is swallowed: when several members fail, the first (in member
  order) is raised and the others are listed in its message; a failed write or delete
  says which members were done and which were not.
* **Checks before work.** A write's keys, data and target members are all checked
  before any member is written (see ``MemberSet.checked_write``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, ClassVar, NoReturn, TypeVar

from lamina.backend import Capabilities
from lamina.concurrency import ThreadPool
from lamina.errors import ReadonlyLayerError, UnsupportedOperationError
from lamina.layer import Layer
from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.layer import VolumetricLayer
from lamina_layerset.errors import MemberKeyError, MembersDisagreeError, UnknownMemberError

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "MemberPool",
    "MemberSet",
    "check_layers",
    "check_max_workers",
    "reraise",
]

T = TypeVar("T")

#: The most threads a set uses by default (fewer when it has fewer members).
DEFAULT_MAX_WORKERS = 8


# -- the pool ---------------------------------------------------------------------------------
class MemberPool(ThreadPool):
    """One set's threads (``lamina-layerset``): started on first use with the set's
    worker count, never pickled or copied, and started again in a process forked after
    they were started (threads do not survive a fork); see
    :class:`lamina.concurrency.ThreadPool`."""

    __slots__ = ()

    def __init__(self, name: str = "layerset") -> None:
        super().__init__(name)


def check_max_workers(value: Any) -> int | None:
    """``None`` or an int >= 1 (a ``TypeError``/``ValueError`` naming the argument)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_workers must be None or an int >= 1; got {value!r}")
    if value < 1:
        raise ValueError(
            f"max_workers must be None (min(#members, {DEFAULT_MAX_WORKERS})) or >= 1 "
            f"(1 reads the members one after another); got {value}"
        )
    return value


def check_layers(value: Any, member_type: type[Layer[Any, Any]], what: str) -> dict[str, Any]:
    """``value`` as a dict of members; errors name the offending keys and types."""
    if not isinstance(value, Mapping):
        raise TypeError(
            f"layers must be a mapping {{name: layer}} of {what}; got {type(value).__name__}"
        )
    if not value:
        raise ValueError(f"layers must hold at least one member ({what}); got an empty mapping")
    members: dict[str, Any] = {}
    for key, layer in value.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"layer set member names must be non-empty str; got {key!r}")
        if not isinstance(layer, member_type):
            raise TypeError(
                f"member {key!r} must be a {what}; got {type(layer).__name__} {layer!r:.200}"
            )
        members[key] = layer
    return members


# -- errors that name the member -----------------------------------------------------------------
def reraise(exc: Exception, message: str) -> NoReturn:
    """Raise ``exc``'s type with ``message``, chained from ``exc`` (a plain ``KeyError``
    as a ``MemberKeyError``, which prints its message); a type that cannot be built from
    one message is raised itself, with ``message`` added as a note."""
    cls: type[Exception] = MemberKeyError if type(exc) is KeyError else type(exc)
    try:
        new = cls(message)
        readable = message in str(new)
    except Exception:  # a type that cannot be built from one message
        new, readable = exc, False
    if new is exc or not readable:
        exc.add_note(message)
        raise exc
    raise new from exc


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _format(value: Any) -> str:
    if isinstance(value, tuple) and not hasattr(value, "pformat"):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    pformat = getattr(value, "pformat", None)
    if callable(pformat):
        return str(pformat())
    return str(value)


class MemberSet:
    """Member handling shared by ``LayerSetBackend`` and ``VolumetricSetBackend``.

    A mixin for the two attrs classes, which provide ``layers``, ``max_workers`` and
    ``_pool``.
    """

    kind: ClassVar[str] = "LayerSet"

    @property
    def layers(self) -> Mapping[str, Layer[Any, Any]]:
        raise NotImplementedError

    @property
    def max_workers(self) -> int | None:
        raise NotImplementedError

    def _member_pool(self) -> MemberPool:
        raise NotImplementedError

    # -- naming ---------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """``Kind[a, b]``: the set's member names, as used in messages."""
        return f"{self.kind}[{', '.join(self.layers)}]"

    def member_label(self, key: str) -> str:
        """``member 'seg' (<its name>) of VolumetricSet[img, seg]``."""
        try:
            name = self.layers[key].name
        except Exception:  # a member whose name cannot be told is still named by its key
            return f"member {key!r} of {self.label}"
        return f"member {key!r} ({name}) of {self.label}"

    # -- running one task per member ------------------------------------------------------------
    @property
    def workers(self) -> int:
        """How many threads the set uses: ``max_workers`` or min(#members, 8)."""
        return self.max_workers or min(len(self.layers), DEFAULT_MAX_WORKERS)

    def run_each(
        self,
        action: str,
        keys: Sequence[str],
        task: Callable[[str], T],
        *,
        done: str | None = None,
        concurrent: bool = True,
    ) -> dict[str, T]:
        """``{key: task(key)}`` for every key, in ``keys`` order; member errors re-raised
        naming the member (``action`` is the verb: "reading", "writing"…). ``done``
        (e.g. "written") makes a failure say which members were done and which not."""
        results: dict[str, T] = {}
        failures: dict[str, Exception] = {}
        if not concurrent or self.workers == 1 or len(keys) <= 1:
            for key in keys:
                try:
                    results[key] = task(key)
                except Exception as exc:
                    failures[key] = exc
                    break  # one after another: the members after it are not touched
        else:
            pool = self._member_pool().executor(self.workers)
            # Each task runs in a copy of the caller's context (contextvars, e.g. numpy's
            # errstate), as it would in the calling thread.
            futures: dict[str, Future[T]] = {
                key: pool.submit(contextvars.copy_context().run, task, key) for key in keys
            }
            for key, future in futures.items():
                try:
                    results[key] = future.result()
                except Exception as exc:
                    failures[key] = exc
        if failures:
            self._raise_failure(action, keys, results, failures, done)
        return results

    def _raise_failure(
        self,
        action: str,
        keys: Sequence[str],
        results: Mapping[str, Any],
        failures: Mapping[str, Exception],
        done: str | None,
    ) -> NoReturn:
        first = next(k for k in keys if k in failures)
        exc = failures[first]
        message = f"{action} {self.member_label(first)}: {exc}"
        others = [k for k in keys if k in failures and k != first]
        if others:
            message += " (also failed: " + "; ".join(
                f"{k!r}: {_brief(failures[k])}" for k in others
            )
            message += ")"
        if done is not None:
            finished = [k for k in keys if k in results]
            unfinished = [k for k in keys if k not in results]
            message += f"; members {done}: {finished}, not {done}: {unfinished}"
        reraise(exc, message)

    def ask(self, key: str, what: str, question: Callable[[Any], T]) -> T:
        """``question(member backend)``; an error names the member and what was asked."""
        try:
            return question(self.layers[key].backend)
        except Exception as exc:
            reraise(exc, f"asking {self.member_label(key)} for its {what}: {exc}")

    def agreed(self, what: str, question: Callable[[Any], T]) -> T:
        """The members' common answer; ``MembersDisagreeError`` listing each answer if
        they differ."""
        answers = {key: self.ask(key, what, question) for key in self.layers}
        values = list(answers.values())
        first = values[0]
        if all(v == first for v in values[1:]):
            return first
        listing = ", ".join(f"{k}: {_format(v)}" for k, v in answers.items())
        key = next(iter(answers))
        raise MembersDisagreeError(
            f"the members of {self.label} disagree on {what} ({listing}), so the set has "
            f"no single {what}; mixing them is fine, ask a member for its own "
            f"(layer.backend.layers[{key!r}].backend)"
        )

    # -- capabilities ---------------------------------------------------------------------------
    def member_capabilities(self) -> Capabilities:
        """Writable when a member is (writes name only some members); every other
        ability only when every member has it."""
        caps = [self.ask(k, "capabilities", lambda b: b.capabilities) for k in self.layers]
        return Capabilities(
            writable=any(c.writable for c in caps),
            deletable=all(c.deletable for c in caps),
            picklable=all(c.picklable for c in caps),
            shared_across_processes=all(c.shared_across_processes for c in caps),
            thread_safe=all(c.thread_safe for c in caps),
            non_aligned_writes=all(c.non_aligned_writes for c in caps),
        )

    # -- writes ---------------------------------------------------------------------------------
    def check_data(self, data: Any) -> dict[str, Any]:
        """``data`` as a ``{member: data}`` dict: a non-dict and an empty dict are a
        ``ValueError``, keys that are not members an ``UnknownMemberError`` (a
        ``KeyError``); the messages name the keys given and the members."""
        members = list(self.layers)
        if not isinstance(data, Mapping):
            raise ValueError(
                f"a write to {self.label} takes a dict {{member name: data}} for some of "
                f"its members {members}; got {type(data).__name__}"
            )
        if not data:
            raise ValueError(
                f"a write to {self.label} got an empty dict: give data for one or more of "
                f"its members {members}"
            )
        unknown = [k for k in data if k not in self.layers]
        if unknown:
            raise UnknownMemberError(
                f"{self.label} has no member(s) {unknown}: data was given for "
                f"{list(data)}, its members are {members}; nothing was written"
            )
        return dict(data)

    def prepare_members(self, idx: Any, data: Any) -> dict[str, Any]:
        """``check_data``, then each volumetric member's value in that member's own form
        (``member.backend.prepare_data``: scalars become fills of its dtype and channels;
        shapes and channel counts checked). Other members' values pass unchanged."""
        values = self.check_data(data)

        def prepare(key: str) -> Any:
            member = self.layers[key]
            if isinstance(member, VolumetricLayer):
                return member.backend.prepare_data(idx, values[key])
            return values[key]

        return self.run_each("preparing the write to", list(values), prepare, concurrent=False)

    def check_targets(self, keys: Iterable[str]) -> None:
        """Refuse a write naming a readonly or unwritable member, before anything runs."""
        keys = list(keys)
        readonly = [k for k in keys if self.layers[k].readonly]
        if readonly:
            raise ReadonlyLayerError(
                f"{self.label}: member(s) {readonly} are readonly, so the write of "
                f"{keys} was refused and nothing was written; leave them out of the dict "
                "or build them with readonly=False"
            )
        unwritable = [
            k for k in keys if not self.ask(k, "capabilities", lambda b: b.capabilities).writable
        ]
        if unwritable:
            raise UnsupportedOperationError(
                f"{self.label}: the backends of member(s) {unwritable} do not support "
                f"writes (capabilities.writable is False); nothing was written"
            )

    def checked_write(self, idx: Any, data: Any) -> dict[str, Any]:
        """Everything checked before any member is written: the keys, each member's data
        form, readonly members and — for every volumetric member whose write goes
        straight to its backend (no index or write processors, no resampling) — that
        backend's own pre-write checks (``check_write``: lossless dtype, chunk
        alignment). Returns the values to hand to the members."""
        values = self.prepare_members(idx, data)
        self.check_targets(values)
        direct = [k for k in values if _writes_directly(self.layers[k], idx)]
        if not direct:
            return values

        def check(key: str) -> Any:
            backend = self.layers[key].backend
            assert isinstance(backend, VolumetricBackend)
            return backend.check_write(idx, values[key])

        values.update(self.run_each("checking the write to", direct, check))
        return values

    def write_members(self, idx: Any, data: Any) -> None:
        """Write ``data`` (``{member: value}``) through each member's processors."""
        values = self.checked_write(idx, data)

        def write(key: str) -> None:
            self.layers[key].write_with_procs(idx, values[key])

        self.run_each("writing", list(values), write, done="written")

    # -- the rest -------------------------------------------------------------------------------
    def read_members(self, idx: Any) -> dict[str, Any]:
        """``{name: member.read_with_procs(idx)}``: the members' own index and read
        processors apply (their user-index conversion does not), concurrently."""
        layers = self.layers
        return self.run_each("reading", list(layers), lambda k: layers[k].read_with_procs(idx))

    def delete_members(self) -> None:
        """Delete every member's data; refused before anything is deleted when a member
        is readonly or cannot delete."""
        keys = list(self.layers)
        readonly = [k for k in keys if self.layers[k].readonly]
        if readonly:
            raise ReadonlyLayerError(
                f"{self.label}: member(s) {readonly} are readonly; refusing to delete "
                "the set (nothing was deleted)"
            )
        undeletable = [
            k for k in keys if not self.ask(k, "capabilities", lambda b: b.capabilities).deletable
        ]
        if undeletable:
            raise UnsupportedOperationError(
                f"{self.label}: the backends of member(s) {undeletable} do not support "
                "delete (capabilities.deletable is False); nothing was deleted"
            )
        self.run_each("deleting", keys, lambda k: self.layers[k].delete(), done="deleted")

    def changed_members(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Every member with its backend's ``with_changes(**changes)``; ``name=X`` gives
        member ``k`` the name ``X/k``. Volumetric members check the keys first, so a key
        one member refuses changes nothing."""
        per_member: dict[str, dict[str, Any]] = {}
        for key in self.layers:
            member_changes = dict(changes)
            if "name" in changes:
                name = changes["name"]
                if not isinstance(name, str) or not name:
                    raise TypeError(f"with_changes(name=...) takes a non-empty str; got {name!r}")
                member_changes["name"] = f"{name}/{key}"
            per_member[key] = member_changes
        for key, member_changes in per_member.items():
            backend = self.layers[key].backend
            if isinstance(backend, VolumetricBackend):
                try:
                    backend.check_changes(member_changes)
                except Exception as exc:  # nothing has changed yet
                    reraise(exc, f"changing {self.member_label(key)}: {exc}")

        def change(key: str) -> Any:
            member = self.layers[key]
            return member.with_changes(backend=member.backend.with_changes(**per_member[key]))

        return self.run_each("changing", list(self.layers), change)

    def member_lines(self) -> str:
        """One ``name: description`` block per member (members' ``pformat`` indented)."""
        lines = [self.label]
        for key, member in self.layers.items():
            pformat = getattr(member, "pformat", None)
            text = str(pformat()) if callable(pformat) else member.name
            lines.append(f"  {key}: " + text.replace("\n", "\n    "))
        return "\n".join(lines)


def _writes_directly(member: Layer[Any, Any], idx: Any) -> bool:
    """Whether ``member.write_with_procs(idx, v)`` hands ``v`` to ``member.backend.write``
    unchanged (so the backend's own ``check_write`` can run before any member writes)."""
    if not isinstance(member, VolumetricLayer) or not isinstance(idx, VolumetricIndex):
        return False
    if member.index_procs or member.write_procs:
        return False
    return member.data_resolution is None or member.data_resolution == idx.resolution
