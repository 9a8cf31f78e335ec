"""The layer: an index scheme, an IO backend and the processors applied on the way.

``layer[user_idx]`` converts the user's index with the scheme, runs the processors
and reads from the backend; ``layer[user_idx] = data`` does the same for a write.
The processor order is the reference system's, exactly, so processor lists written for it
keep their meaning (docs/design.md#processor-order):

read
  1. ``index_procs`` in list order;
  2. the index steps of the joint processors in ``read_procs``, in *reverse* order,
     each applied with its probability;
  3. ``backend.read``;
  4. ``read_procs`` in list order: plain data processors always, joint ones only
     when their index step was applied in this call.
  So ``read_procs[0]`` sits closest to the backend on both paths.

write
  1. readonly (and the backend's ``writable`` capability) checked first, before any
     processor runs;
  2. ``index_procs`` in list order;
  3. the index steps of the joint processors in ``write_procs``, in list order;
  4. ``write_procs`` data steps in list order (joint ones only when applied);
  5. ``backend.write``.
  So ``write_procs[0]`` sits closest to the user.

A joint processor's per-call state travels in local variables of the call (never on
the processor), so one layer may be used from many threads at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, Self, TypeVar

import attrs

from lamina.backend import Backend
from lamina.errors import ReadonlyLayerError, UnsupportedOperationError
from lamina.processors import JointIndexDataProcessor, Mode, draw
from lamina.scheme import IdentityScheme, IndexScheme

__all__ = ["Layer", "build_layer"]

IndexT = TypeVar("IndexT")
DataT = TypeVar("DataT")

_NOT_APPLIED = object()


def _to_procs(procs: Iterable[Any] | None) -> tuple[Any, ...]:
    if procs is None:
        return ()
    if callable(procs) or isinstance(procs, JointIndexDataProcessor):
        raise TypeError(
            "processors must be given as a sequence (list or tuple); "
            f"got one {type(procs).__name__}"
        )
    result = tuple(procs)
    for proc in result:
        if not (callable(proc) or isinstance(proc, JointIndexDataProcessor)):
            raise TypeError(
                "each processor must be callable or a JointIndexDataProcessor; "
                f"got {proc!r} of type {type(proc).__name__}"
            )
    return result


def _to_index_procs(procs: Iterable[Any] | None) -> tuple[Any, ...]:
    result = _to_procs(procs)
    for proc in result:
        if isinstance(proc, JointIndexDataProcessor):
            raise TypeError(
                f"{type(proc).__name__} is a joint index-data processor: put it in read_procs "
                "or write_procs, not index_procs (index processors are callables idx -> idx)"
            )
    return result


def _joint_positions(procs: Sequence[Any]) -> tuple[int, ...]:
    return tuple(i for i, p in enumerate(procs) if isinstance(p, JointIndexDataProcessor))


def _data_steps(procs: Sequence[Any], states: Sequence[Any], data: Any, mode: Mode) -> Any:
    """Run the data step of each processor in list order (joint ones only when applied)."""
    for proc, state in zip(procs, states, strict=True):
        if state is _NOT_APPLIED:
            if not isinstance(proc, JointIndexDataProcessor):
                data = proc(data)
        else:
            data = proc.process_data(data, mode, state)
    return data


@attrs.frozen(kw_only=True)
class Layer(Generic[IndexT, DataT]):
    """An indexable set of data: backend + index scheme + readonly flag + processors.

    Layers are immutable values: ``with_procs`` and ``with_changes`` return copies.
    """

    backend: Backend[IndexT, Any]
    scheme: IndexScheme[IndexT] = attrs.field(factory=IdentityScheme)
    readonly: bool = False
    index_procs: tuple[Any, ...] = attrs.field(default=(), converter=_to_index_procs)
    read_procs: tuple[Any, ...] = attrs.field(default=(), converter=_to_procs)
    write_procs: tuple[Any, ...] = attrs.field(default=(), converter=_to_procs)
    # Positions of the joint processors, worked out once so the hot path is a tuple walk.
    _read_joints: tuple[int, ...] = attrs.field(init=False, repr=False, eq=False)
    _write_joints: tuple[int, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_read_joints", _joint_positions(self.read_procs))
        object.__setattr__(self, "_write_joints", _joint_positions(self.write_procs))

    # -- identity ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The backend's name (usually the path of the stored data)."""
        return self.backend.name

    # -- user-facing indexing -----------------------------------------------------------
    def __getitem__(self, user_idx: Any) -> Any:
        idx = self.scheme.to_index(user_idx)
        return self.scheme.shape_read(user_idx, idx, self.read_with_procs(idx))

    def __setitem__(self, user_idx: Any, data: Any) -> None:
        self._check_writable()
        idx = self.scheme.to_index(user_idx)
        self.write_with_procs(idx, self.scheme.prepare_write(user_idx, idx, data, self.backend))

    # -- standard-index IO with processors ------------------------------------------------
    def read_with_procs(self, idx: IndexT) -> DataT:
        """Read the data at standard index ``idx`` through every processor."""
        for index_proc in self.index_procs:
            idx = index_proc(idx)
        procs = self.read_procs
        if not procs:
            return self._read_from_backend(idx)
        states: list[Any] = [_NOT_APPLIED] * len(procs)
        for i in reversed(self._read_joints):
            proc = procs[i]
            if proc.draws_own_coin or draw(proc.prob):
                idx, states[i] = proc.process_index(idx, "read")
        return _data_steps(procs, states, self._read_from_backend(idx), "read")  # type: ignore[no-any-return]

    def write_with_procs(self, idx: IndexT, data: Any) -> None:
        """Write ``data`` at standard index ``idx`` through every processor."""
        self._check_writable()
        for index_proc in self.index_procs:
            idx = index_proc(idx)
        procs = self.write_procs
        if procs:
            states: list[Any] = [_NOT_APPLIED] * len(procs)
            for i in self._write_joints:
                proc = procs[i]
                if proc.draws_own_coin or draw(proc.prob):
                    idx, states[i] = proc.process_index(idx, "write")
            data = _data_steps(procs, states, data, "write")
        self._write_to_backend(idx, data)

    # -- the innermost stage --------------------------------------------------------------
    def _read_from_backend(self, idx: IndexT) -> DataT:
        """Read from the backend. Subclasses override this to add a stage that sits
        innermost on both paths (the volumetric layer resamples here)."""
        return self.backend.read(idx)  # type: ignore[no-any-return]

    def _write_to_backend(self, idx: IndexT, data: Any) -> None:
        """Write to the backend; the write-side twin of ``_read_from_backend``."""
        self.backend.write(idx, data)

    def _check_writable(self) -> None:
        if self.readonly:
            raise ReadonlyLayerError(
                f"layer {self.name!r} is readonly; build it with readonly=False "
                "(or use layer.with_changes(readonly=False)) to write to it"
            )
        if not self.backend.capabilities.writable:
            raise UnsupportedOperationError(
                f"backend {type(self.backend).__name__} ({self.name!r}) does not support "
                "writes (capabilities.writable is False)"
            )

    # -- copies -------------------------------------------------------------------------
    def with_procs(
        self,
        index_procs: Iterable[Any] | None = None,
        read_procs: Iterable[Any] | None = None,
        write_procs: Iterable[Any] | None = None,
    ) -> Self:
        """Return a copy with the processor lists that are given replaced (``None`` keeps)."""
        changes: dict[str, Any] = {}
        if index_procs is not None:
            changes["index_procs"] = index_procs
        if read_procs is not None:
            changes["read_procs"] = read_procs
        if write_procs is not None:
            changes["write_procs"] = write_procs
        return attrs.evolve(self, **changes)

    def with_changes(self, **changes: Any) -> Self:
        """Return a copy with the given layer fields changed (e.g. ``backend=``, ``readonly=``).

        Backend options change through the backend:
        ``layer.with_changes(backend=layer.backend.with_changes(...))``.
        """
        fields = {f.name for f in attrs.fields(type(self)) if f.init}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.with_changes() got unknown field(s) {unknown}; "
                f"fields: {sorted(fields)}"
            )
        return attrs.evolve(self, **changes)

    # -- lifetime -----------------------------------------------------------------------
    def delete(self) -> None:
        """Delete all data stored by the backend (refused on a readonly layer)."""
        if self.readonly:
            raise ReadonlyLayerError(
                f"layer {self.name!r} is readonly; refusing to delete its data "
                "(build it with readonly=False to delete)"
            )
        if not self.backend.capabilities.deletable:
            raise UnsupportedOperationError(
                f"backend {type(self.backend).__name__} ({self.name!r}) does not support "
                "delete (capabilities.deletable is False)"
            )
        self.backend.delete()


def build_layer(
    backend: Backend[Any, Any],
    readonly: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> Layer[Any, Any]:
    """Build a layer whose user index is the backend's standard index.

    ``layer[idx]`` hands ``idx`` to the index processors and the backend as it is, and
    ``layer[idx] = data`` writes ``data`` as it is: use it for a backend whose index is
    already what users write (a key, a file name). Volumetric and key-value backends have
    their own builders (:func:`lamina.build_volumetric_layer`,
    :func:`lamina.build_db_layer`), which add their user index forms.

    Each processor list is a sequence (a list or tuple); a single processor not in one,
    or an item that is neither callable nor a
    :class:`~lamina.processors.JointIndexDataProcessor`, is a ``TypeError``. A joint
    processor applies to a call with its probability ``prob`` (both of its steps, or
    neither).

    Args:
        backend: the :class:`~lamina.backend.Backend` that stores the data (any
            plugin's).
        readonly: refuse writes and ``delete()`` with a
            :class:`~lamina.errors.ReadonlyLayerError` (an ``IOError``), raised before
            any processor runs; default ``False``. A backend that cannot write
            (``capabilities.writable`` is False) refuses writes either way
            (:class:`~lamina.errors.UnsupportedOperationError`).
        index_procs: index processors, callables ``idx -> idx`` applied in list order
            before every read and write; a joint processor here is a ``TypeError`` (put
            it in ``read_procs`` or ``write_procs``).
        read_procs: data processors (callables ``data -> data``, lambdas work) and joint
            index-data processors of reads. The joint ones' index steps run in reverse
            list order before the backend read, then every data step in list order, so
            ``read_procs[0]`` sits closest to the backend.
        write_procs: the same for writes, both steps in list order, so
            ``write_procs[0]`` sits closest to the user.

    Returns:
        The :class:`~lamina.layer.Layer`.
    """
    return Layer(
        backend=backend,
        readonly=readonly,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
