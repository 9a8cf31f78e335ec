"""Interpolation with torch, for the factors and modes numpy does not compute exactly.

torch is optional and heavy: it is imported on first use only, never when the package is
imported, and a missing torch raises :class:`TorchUnavailableError`, which says how to
install it and what works without it.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from lamina.volumetric.resample.arrays import NDArray, _cast_back
from lamina.volumetric.resample.plan import _Axis

__all__ = ["TorchUnavailableError"]


class TorchUnavailableError(ImportError):
    """torch is needed for the interpolation asked for, and it is not installed."""


def _import_torch() -> Any:
    """The torch module (imported here only, never when this module is imported)."""
    import torch

    return torch


def _require_torch(mode: str, factors: tuple[float, float, float]) -> Any:
    """torch, or a :class:`TorchUnavailableError` that says how to install it."""
    try:
        return _import_torch()
    except ImportError as exc:
        raise TorchUnavailableError(
            f"resample(mode={mode!r}, scale_factor={factors}) interpolates with torch, "
            "which is not installed; install it with `pip install lamina[torch]`. "
            "Without torch: whole-number factors in the img, area and field modes, "
            "halving in the linear modes, and the nearest, nearest-exact, segmentation "
            "and mask modes at any factor."
        ) from exc


def _resample_torch(
    data: NDArray,
    plans: tuple[_Axis, ...],
    mode: Literal["trilinear", "bicubic", "area"],
    asked: str,
    factors: tuple[float, float, float],
    field_scale: float | None,
) -> NDArray:
    """Interpolate with torch (``align_corners=False``) and cast back to ``data``'s dtype.

    Values are computed in float32, or float64 for 32/64-bit integers and float64 data
    (so integers up to 2**53 stay exact). The input is edge-padded at the end and the
    result cropped, so output sizes are ours (whole or rounded up) rather than torch's
    ``floor(n * f)``, while coordinates follow ``scale_factor`` exactly.
    """
    torch = _require_torch(asked, factors)
    functional = torch.nn.functional
    wide = data.dtype == np.float64 or (data.dtype.kind in "iu" and data.dtype.itemsize >= 4)
    work = data.astype(np.float64 if wide else np.float32)
    out_size = [p.n_out for p in plans]
    if mode == "area":
        src = torch.from_numpy(np.ascontiguousarray(work))[None]
        res = functional.interpolate(src, size=tuple(out_size), mode="area")[0]
    else:
        pad = [(0, 0)] + [
            (0, 0 if p.kind == "same" else math.ceil(1.0 / p.factor) + 1) for p in plans
        ]
        work = np.ascontiguousarray(np.pad(work, pad, mode="edge"))
        src = torch.from_numpy(work)
        if mode == "bicubic":
            res = functional.interpolate(
                src.permute(3, 0, 1, 2),
                scale_factor=(factors[0], factors[1]),
                mode="bicubic",
                align_corners=False,
                recompute_scale_factor=False,
            ).permute(1, 2, 3, 0)
        else:
            res = functional.interpolate(
                src[None],
                scale_factor=factors,
                mode="trilinear",
                align_corners=False,
                recompute_scale_factor=False,
            )[0]
        res = res[:, : out_size[0], : out_size[1], : out_size[2]]
    values: NDArray = res.contiguous().numpy()
    if tuple(values.shape[1:]) != tuple(out_size):  # pragma: no cover - torch contract
        raise RuntimeError(f"torch interpolation gave {values.shape}, expected {out_size}")
    if field_scale is not None:
        values = values * field_scale
    return _cast_back(values, data.dtype)
