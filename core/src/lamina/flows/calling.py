"""How ``apply`` calls its function.

``fn`` is a callable, a processor, the name of a registered processor (built with no
arguments), or an import string ``"package.module:function"``. It is called with the
``(C, X, Y, Z)`` arrays of its sources — by position for a list of sources, by name for
a mapping or ``op_kwargs`` (whose values that are not layers are passed on as they are)
— and returns a ``(C, X, Y, Z)`` array. With ``batch_size=n`` it is called with up to
``n`` inputs at once, each source's arrays stacked on a new first axis, and returns
the outputs stacked likewise. A torch module gets tensors on its own device, run
without autograd; tensors it returns come back as numpy arrays.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

__all__ = ["FnCall", "is_joint", "resolve_fn"]


def is_joint(fn: Any) -> bool:
    """A joint index/data processor (``process_index`` + ``process_data``)."""
    return hasattr(fn, "process_index") and hasattr(fn, "process_data")


def resolve_fn(fn: Any) -> Any:
    """The callable ``fn`` names (see the module docstring), or a ``TypeError``."""
    if isinstance(fn, str):
        if ":" in fn:
            from lamina.plugins.registrar import import_target

            try:
                return import_target(fn)
            except (ImportError, AttributeError) as exc:
                raise TypeError(
                    f"fn {fn!r} names nothing importable ({type(exc).__name__}: {exc}); an "
                    "import string is 'package.module:function'"
                ) from None
        from lamina.specs import get_builder

        found = get_builder(fn)
        if not isinstance(found, type):
            return found
        try:
            return found()
        except TypeError as exc:
            raise TypeError(
                f"the processor {fn!r} cannot be built without arguments ({exc}); pass it "
                f'built, e.g. lamina.build({{"@type": "{fn}", ...}}) or in a spec'
            ) from None
    if not callable(fn) and not is_joint(fn):
        raise TypeError(
            f"fn must be a callable, a processor, the name of a registered processor or an "
            f"import string 'package.module:function'; got {type(fn).__name__} {fn!r}"
        )
    return fn


def _torch_module(fn: Any) -> Any:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(fn, torch.nn.Module):
        return torch
    return None


def _to_numpy(value: Any) -> npt.NDArray[Any]:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)


@attrs.frozen
class FnCall:
    """``fn`` applied to the inputs of one or many regions (see the module docstring).

    ``names``: the keyword of each source (``None`` where it is passed by position);
    ``extras``: the other keyword arguments; ``batch_size``: how many inputs one call
    takes (``None``: one, without a batch axis).
    """

    fn: Any
    names: tuple[str | None, ...] = ()
    extras: Mapping[str, Any] = attrs.field(factory=dict)
    batch_size: int | None = None

    def __call__(self, inputs: Sequence[Sequence[npt.NDArray[Any]]]) -> list[npt.NDArray[Any]]:
        """The output of each region's inputs (one array per source)."""
        fn = self.fn
        torch = _torch_module(fn)
        if torch is not None:
            return self._torch(torch, fn, inputs)
        if self.batch_size is None:
            return [_to_numpy(self._invoke(fn, arrays)) for arrays in inputs]
        out: list[npt.NDArray[Any]] = []
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs[start : start + self.batch_size]
            stacked = [np.stack(parts) for parts in zip(*batch, strict=True)]
            out.extend(self._split(_to_numpy(self._invoke(fn, stacked)), len(batch)))
        return out

    def _invoke(self, fn: Callable[..., Any], arrays: Sequence[Any]) -> Any:
        named = zip(self.names, arrays, strict=True)
        positional = [a for name, a in zip(self.names, arrays, strict=True) if name is None]
        return fn(*positional, **{n: a for n, a in named if n is not None}, **self.extras)

    @staticmethod
    def _split(result: npt.NDArray[Any], n: int) -> list[npt.NDArray[Any]]:
        if result.ndim != 5 or result.shape[0] != n:
            raise ValueError(
                f"fn was called with a batch of {n} inputs (batch_size) and returned shape "
                f"{result.shape}; expected ({n}, C, X, Y, Z)"
            )
        return list(result)

    def _torch(
        self, torch: Any, module: Any, inputs: Sequence[Sequence[npt.NDArray[Any]]]
    ) -> list[npt.NDArray[Any]]:
        parameter = next(iter(module.parameters()), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        size = self.batch_size
        out: list[npt.NDArray[Any]] = []
        with torch.inference_mode():
            for start in range(0, len(inputs), size or 1):
                batch = inputs[start : start + (size or 1)]
                if size is None:
                    arrays = [torch.from_numpy(np.ascontiguousarray(a)) for a in batch[0]]
                else:
                    arrays = [
                        torch.from_numpy(np.stack(parts)) for parts in zip(*batch, strict=True)
                    ]
                result = _to_numpy(self._invoke(module, [a.to(device) for a in arrays]))
                out.extend([result] if size is None else self._split(result, len(batch)))
        return out
