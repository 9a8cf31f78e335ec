"""Volumetric write data: recognise it, check it, convert it without losing anything.

Writes accept numpy arrays shaped ``(C, X, Y, Z)``, torch tensors (recognised by their
type's module, so torch is never imported here) and scalars. A scalar is a *fill*: it
becomes a zero-stride ``np.broadcast_to`` view of the whole region, which costs no
memory, passes through processors and resampling as an ordinary array, and lets a
backend store it as a fill. Dtype conversions are done only when no value changes
(the reference system checked no dtype); anything else is refused before a byte is
written, with the offending range in the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "as_fill",
    "cast_rounded",
    "check_volume_data",
    "convert_dtype",
    "fill_value",
    "is_torch_tensor",
    "new_volume_array",
    "to_numpy",
]


def is_torch_tensor(data: Any) -> bool:
    """Whether ``data`` is a torch tensor, decided without importing torch."""
    module = type(data).__module__
    return (module == "torch" or module.startswith("torch.")) and hasattr(data, "detach")


def to_numpy(data: Any) -> Any:
    """A torch tensor as a numpy array (detached, on the CPU, dtype kept); else ``data``."""
    if is_torch_tensor(data):
        return data.detach().cpu().numpy()
    return data


def fill_value(data: npt.NDArray[Any]) -> Any | None:
    """The value of a fill (an array whose every stride is 0), else ``None``."""
    if data.size and all(s == 0 for s in data.strides):
        return data.flat[0]
    return None


def as_fill(value: Any, shape: Sequence[int], dtype: Any = None) -> npt.NDArray[Any]:
    """A read-only zero-stride view of ``value`` over ``shape``."""
    return np.broadcast_to(np.asarray(value, dtype=dtype), tuple(shape))


def _scalar_like(data: Any) -> bool:
    if isinstance(data, bool | int | float | np.generic):
        return True
    return isinstance(data, np.ndarray) and (data.ndim == 0 or (data.ndim == 1 and data.size == 1))


def check_volume_data(
    data: Any,
    shape: Sequence[int],
    num_channels: int | None,
    *,
    what: str = "data",
) -> npt.NDArray[Any]:
    """``data`` as a ``(C, X, Y, Z)`` numpy array matching ``shape`` (X, Y, Z) and channels.

    Scalars (and, as in the reference system, 0-d and size-1 1-D arrays) become fills
    over the region. A shape or channel mismatch raises ``ValueError`` naming both.
    """
    data = to_numpy(data)
    spatial = tuple(int(s) for s in shape)
    if _scalar_like(data):
        value = np.asarray(data).reshape(())
        channels = 1 if num_channels is None else num_channels
        return as_fill(value, (channels, *spatial))
    if not isinstance(data, np.ndarray):
        if isinstance(data, list | tuple):
            data = np.asarray(data)
        else:
            raise TypeError(
                f"{what} must be a numpy array, a torch tensor or a scalar; "
                f"got {type(data).__name__}"
            )
    if data.ndim != 4:
        raise ValueError(
            f"{what} must be 4-D (C, X, Y, Z) or a scalar; got {data.ndim}-D with shape "
            f"{tuple(data.shape)}"
        )
    if tuple(data.shape[1:]) != spatial:
        raise ValueError(
            f"{what} has spatial shape (X, Y, Z) {tuple(data.shape[1:])} but the index "
            f"covers {spatial} voxels; full shape given {tuple(data.shape)}"
        )
    if num_channels is not None and data.shape[0] != num_channels:
        raise ValueError(
            f"{what} has {data.shape[0]} channel(s) (shape {tuple(data.shape)}) but the "
            f"volume has {num_channels}"
        )
    checked: npt.NDArray[Any] = data
    return checked


def _range_text(lo: Any, hi: Any) -> str:
    return f"{lo}..{hi}"


def convert_dtype(data: npt.NDArray[Any], dtype: Any, *, what: str = "data") -> npt.NDArray[Any]:
    """``data`` in ``dtype`` if no value changes; ``ValueError`` saying why otherwise.

    Safe casts (uint8 → uint16, int → wider float…) are done. Other casts are done
    only when every value survives: integers in range, floats integral and in range
    for integer targets. float → narrower float rounds to nearest (as every EM tool
    does) but refuses values outside the target's range. Fills convert their one value.
    """
    target = np.dtype(dtype)
    source = data.dtype
    if source == target:
        return data
    value = fill_value(data)
    if value is not None:
        converted = convert_dtype(np.asarray(value).reshape(1), target, what=what)
        return as_fill(converted[0], data.shape)
    if np.can_cast(source, target, "safe"):
        return data.astype(target)
    if data.size == 0:
        return data.astype(target)
    problem: str | None = None
    if target.kind in "iu":
        info = np.iinfo(target)
        if source.kind == "f":
            if not np.isfinite(data).all():
                problem = "it holds NaN or infinite values"
            elif not np.array_equal(np.trunc(data), data):
                problem = "it holds values with a fractional part"
        if problem is None and source.kind in "iuf":
            lo, hi = data.min(), data.max()
            if source.kind == "f":
                # Compare in floats against exact powers of two: iinfo.max itself rounds
                # up to 2**bits as a float, so ``hi > info.max`` would let 2**64 through.
                bits = 8 * target.itemsize
                top = 2.0**bits if target.kind == "u" else 2.0 ** (bits - 1)
                bottom = 0.0 if target.kind == "u" else -(2.0 ** (bits - 1))
                out_of_range = bool(lo < bottom or hi >= top)
            else:
                out_of_range = bool(lo < info.min or hi > info.max)
            if out_of_range:
                problem = (
                    f"its values {_range_text(lo, hi)} are outside {target}'s range "
                    f"{_range_text(info.min, info.max)}"
                )
        elif problem is None and source.kind == "b":
            problem = None
        elif problem is None:
            problem = f"{source} is not a numeric dtype"
    elif target.kind == "f":
        if source.kind == "f":
            finfo = np.finfo(target)
            finite = data[np.isfinite(data)]
            if finite.size and (finite.min() < finfo.min or finite.max() > finfo.max):
                problem = f"its values {_range_text(finite.min(), finite.max())} overflow {target}"
        elif source.kind in "iu":
            converted = data.astype(target)
            if not np.array_equal(converted.astype(source), data):
                problem = f"some integers are not exactly representable in {target}"
            else:
                return converted
        else:
            problem = f"{source} is not a numeric dtype"
    elif target.kind == "b":
        if not np.isin(data, (0, 1)).all():
            problem = "it holds values other than 0 and 1"
    else:
        problem = f"lamina does not convert to {target}"
    if problem is not None:
        raise ValueError(
            f"{what} of dtype {source} cannot be written to a {target} volume without "
            f"losing data: {problem}. Convert it yourself (e.g. np.clip(...).astype("
            f"{target.name!r})) if that loss is intended."
        )
    return data.astype(target)


def new_volume_array(
    shape: Sequence[int], dtype: Any, order: str = "C", fill: Any = None
) -> npt.NDArray[Any]:
    """A new ``(C, X, Y, Z)`` array in a backend's memory order (``"C"``, or ``"F"``: a
    transposed view of a Fortran-ordered ``(X, Y, Z, C)`` array, as precomputed reads
    are; see ``VolumetricBackend.memory_order``), so that reads pasted into it copy
    memory in order rather than transposing it; ``fill`` everywhere (``None``:
    uninitialised, for a caller that writes every voxel)."""
    target = (*shape[1:], shape[0]) if order == "F" else tuple(shape)
    layout: Literal["C", "F"] = "F" if order == "F" else "C"
    base: npt.NDArray[Any]
    if fill is None:
        base = np.empty(target, dtype, order=layout)
    elif fill == 0:  # fresh zeroed pages are cheaper to fill than faulted ones
        base = np.zeros(target, dtype, order=layout)
    else:
        base = np.full(target, fill, dtype, order=layout)
    return base.transpose(3, 0, 1, 2) if order == "F" else base


def cast_rounded(
    values: npt.NDArray[Any], dtype: Any, *, in_place: bool = False
) -> npt.NDArray[Any]:
    """A computed float result as ``dtype``: integers rounded to the nearest and clipped
    to the dtype's range (never wrapped), booleans true above 0.5, floats converted.
    ``in_place`` rounds and clips ``values`` itself (a caller's own scratch array),
    with numpy's fast two-sided clip."""
    target = np.dtype(dtype)
    if values.dtype == target:
        return values
    out: npt.NDArray[Any]
    if target.kind in "iu":
        work = values if in_place else values.copy()
        np.rint(work, out=work)
        info = np.iinfo(target)
        np.clip(work, work.dtype.type(info.min), work.dtype.type(info.max), out=work)
        out = work.astype(target)
    elif target.kind == "b":
        out = values > 0.5
    else:
        out = values.astype(target)
    return out
