"""What the joint augmentations share: the members of a layer set's data they apply to,
and numpy/torch per member."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy.typing as npt

from lamina_augment.arrays import as_numpy

__all__ = ["map_members", "member_names", "z_size"]


def member_names(value: Sequence[str] | None) -> tuple[str, ...] | None:
    """``keys_to_apply`` as a tuple (hashable, so the processor is a frozen value)."""
    return None if value is None else tuple(value)


def is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def map_members(
    data: Any,
    fn: Callable[[npt.NDArray[Any]], npt.NDArray[Any]],
    keys: Sequence[str] | None,
    what: str,
    others: Callable[[npt.NDArray[Any]], npt.NDArray[Any]] | None = None,
) -> Any:
    """``fn`` on ``data`` (an array or tensor), or on the members ``keys`` of a layer
    set's ``{name: data}`` (default: every array member) and ``others`` (if given) on its
    other array members, each given back in its type; a new mapping, the input
    untouched."""
    if not isinstance(data, Mapping):
        array, restore = as_numpy(data, what)
        return restore(fn(array))
    names = list(keys) if keys else [k for k, v in data.items() if is_array(v)]
    missing = [k for k in names if k not in data]
    if missing:
        raise KeyError(f"{what}: keys_to_apply names {missing}, not members ({sorted(data)})")
    out = dict(data)
    for name, value in data.items():
        step = fn if name in names else others if is_array(value) else None
        if step is not None:
            array, restore = as_numpy(value, f"{what}: member {name!r}")
            out[name] = restore(step(array))
    return out


def z_size(data: Any, keys: Sequence[str] | None) -> int:
    """The most z sections of the data (or of its members ``keys``)."""
    if not isinstance(data, Mapping):
        return int(data.shape[-1])
    names = list(keys) if keys else [k for k, v in data.items() if is_array(v)]
    return max(int(data[k].shape[-1]) for k in names)
