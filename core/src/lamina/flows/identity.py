"""Which run is which: identities of a run's function that are the same in every process.

``resume=True`` finds a run's journal by a hash of what the run does, so everything in
that description must be the same in every process and on every machine that runs the
same thing — never a memory address, which ``repr`` of an object holds and which
differs in each process (a resumed run would then find nothing and silently run every
task again). So :func:`callable_identity` names

* a registered processor (``fn="InvertProcessor"``) by its name;
* a function (or a callable object a module names, such as ``numpy.flip``) by its
  module and qualified name (``pkg.mod.fn``); an anonymous or local one (a lambda, a
  function defined in a function) adds a digest of its code and of the values it
  closes over, since its name does not tell two apart;
* a callable object (a model, a configured processor, a ``functools.partial``) by its
  class's module and qualified name and a digest of its pickled state: the same
  parameters give the same identity, other parameters another.

:func:`state_digest` pickles deterministically: sets in a fixed order, no memo
references that depend on which equal objects happen to be shared, and torch tensors
by their values (torch's own pickles hold addresses); what plain pickle refuses is
pickled with cloudpickle when it is installed, as the engine ships operations. Arrays
and tensors enter the digest as digests of their bytes, so a model's weights are
hashed where they are, not copied into a pickle first.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["callable_identity", "state_digest"]

_PROTOCOL = 4  # fixed: the digest must not change with the interpreter's default


def _tensor(kind: str, dtype: str, shape: tuple[int, ...], digest: str, grad: bool) -> None:
    """Stands for a torch tensor in a digest's pickle (never called: digests are not
    unpickled)."""


def _array(dtype: str, shape: tuple[int, ...], digest: str) -> None:
    """Stands for a numpy array in a digest's pickle (never called)."""


def _bytes_digest(buffer: Any) -> str:
    return hashlib.sha256(memoryview(buffer).cast("B")).hexdigest()


class _HashWriter:
    """A file that hashes what is written to it (a model's pickle is never held whole)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: Any) -> int:
        self.hash.update(data)
        return len(data)


class _StablePickler(pickle._Pickler):
    """A pure-Python pickler whose output depends on values only (see the module
    docstring): the digest of a pickle is the identity of its state. Arrays and
    tensors are written as a digest of their bytes."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file: Any, memo: bool = False) -> None:
        super().__init__(file, protocol=_PROTOCOL)
        self.fast = not memo  # no memo: equal values pickle alike, shared or not

    def reducer_override(self, obj: Any) -> Any:
        try:
            if type(obj) is np.ndarray and obj.dtype.kind not in "OV":
                raw = np.ascontiguousarray(obj)
                return _array, (raw.dtype.str, raw.shape, _bytes_digest(raw))
            torch = sys.modules.get("torch")
            if torch is not None and isinstance(obj, torch.Tensor):
                flat = obj.detach().cpu().contiguous().reshape(-1)
                digest = _bytes_digest(flat.view(torch.uint8).numpy())
                kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
                return _tensor, (kind, str(obj.dtype), tuple(obj.shape), digest, obj.requires_grad)
        except Exception:  # not viewable as bytes: pickled as it pickles itself
            return NotImplemented
        return NotImplemented

    def _save_unordered(self, obj: set[Any] | frozenset[Any]) -> None:
        items = sorted(obj, key=_stable_dumps)
        self.save_reduce(type(obj), (items,), obj=obj)  # type: ignore[attr-defined]

    dispatch[set] = _save_unordered  # type: ignore[assignment]
    dispatch[frozenset] = _save_unordered  # type: ignore[assignment]


def _stable_dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _StablePickler(buffer).dump(obj)
    return buffer.getvalue()


def _stable_digest(obj: Any) -> str:
    writer = _HashWriter()
    try:
        _StablePickler(writer).dump(obj)
    except RecursionError:  # a structure that refers to itself needs the memo
        writer = _HashWriter()
        _StablePickler(writer, memo=True).dump(obj)
    return writer.hash.hexdigest()


def state_digest(obj: Any) -> str | None:
    """A hex digest of ``obj``'s pickled state, the same in every process for equal
    state; ``None`` when it cannot be pickled (with cloudpickle either, if installed)."""
    try:
        return _stable_digest(obj)[:16]
    except Exception:
        try:
            import cloudpickle  # type: ignore[import-untyped]

            data = bytes(cloudpickle.dumps(obj, protocol=_PROTOCOL))
        except Exception:
            return None
    return hashlib.sha256(data).hexdigest()[:16]


def _code_summary(code: types.CodeType) -> tuple[Any, ...]:
    """What a code object computes, without where it is (file, line numbers)."""
    consts = tuple(_code_summary(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return (code.co_code, code.co_names, code.co_varnames, code.co_freevars, consts)


def _cell_values(fn: types.FunctionType) -> tuple[Any, ...]:
    values = []
    for cell in fn.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # a cell not filled yet
            values.append(None)
    return tuple(values)


def _named(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None) or '?'}.{getattr(obj, '__qualname__', '?')}"


def _global_name(obj: Any) -> str | None:
    """``module.qualname`` when ``obj`` is what that name holds (a function or callable
    object of a module, such as ``numpy.flip``), else ``None``."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return f"{module}.{qualname}" if found is obj else None


def callable_identity(fn: Callable[..., Any] | str) -> str | None:
    """The identity of a run's function, the same in every process (see the module
    docstring); ``None`` when it has none (an object whose state cannot be pickled)."""
    if isinstance(fn, str):
        return fn
    named = _global_name(fn)
    if named is not None:  # a function, class or callable object a module names
        return named
    if isinstance(fn, type):
        return _named(fn)
    if isinstance(fn, types.FunctionType):
        name = _named(fn)
        if "<" not in fn.__qualname__:  # a named function (not reachable by its name)
            return name
        digest = state_digest(
            (_code_summary(fn.__code__), _cell_values(fn), fn.__defaults__, fn.__kwdefaults__)
        )
        return None if digest is None else f"{name}#{digest}"
    if isinstance(fn, types.BuiltinFunctionType):
        owner = getattr(fn, "__self__", None)
        if owner is None or isinstance(owner, types.ModuleType):
            return _named(fn)
        digest = state_digest(owner)  # a method of an object: that object's state too
        return None if digest is None else f"{_named(type(owner))}.{fn.__name__}#{digest}"
    if isinstance(fn, types.MethodType):
        digest = state_digest(fn.__self__)
        return None if digest is None else f"{_named(fn.__func__)}#{digest}"
    digest = state_digest(fn)
    return None if digest is None else f"{_named(type(fn))}#{digest}"
