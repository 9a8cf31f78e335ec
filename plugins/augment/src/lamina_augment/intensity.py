"""Intensity augmentations: data processors that change voxel values, each drawing its
parameters per call (numbers or distributions) and applying with probability ``prob``.

The reference system's ``brightness_aug`` and ``clamp_values_aug`` under their names and
parameters, and ``gamma_aug``, ``contrast_aug``, ``gaussian_noise_aug`` and
``normalize_intensity``. Each takes ``(C, X, Y, Z)`` numpy or torch data and returns the
type and dtype it was given (integers rounded and clipped to their range).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina_augment.calls import mask_of, run_augmentation
from lamina_augment.distributions import Distribution, to_distribution

__all__ = [
    "brightness_aug",
    "clamp_values_aug",
    "contrast_aug",
    "gamma_aug",
    "gaussian_noise_aug",
    "normalize_intensity",
]


def brightness_aug(
    data: Any,
    value_distr: Distribution | float,
    mask_fn: Callable[[Any], Any] | None = None,
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """Add one drawn value to the data: ``data + value * mask`` (the reference's
    ``brightness_aug``).

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor.
        value_distr: the value added (a number or a distribution), drawn once per call.
        mask_fn: ``mask_fn(data)``: where (booleans) or how much (weights) it applies.
        prob: the chance that a call applies.
        seed: makes the sequence of calls reproducible.
    """
    value = to_distribution(value_distr, "brightness_aug: value_distr")

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        drawn = a.dtype.type(value.sample(rng))
        if mask_fn is None:
            a += drawn
            return a
        masked: npt.NDArray[Any] = a + drawn * mask_of(mask_fn, a)
        return masked

    return run_augmentation("brightness_aug", data, prob, seed, body)


def clamp_values_aug(
    data: Any,
    low_distr: Distribution | float | None = None,
    high_distr: Distribution | float | None = None,
    mask_fn: Callable[[Any], Any] | None = None,
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """Clamp the data to drawn bounds where ``mask_fn`` says: the high bound first, then
    the low one (the reference's order: low wins where they cross).

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor.
        low_distr: the low bound (a number or a distribution); ``None``: no low bound.
        high_distr: the high bound; ``None``: no high bound.
        mask_fn: ``mask_fn(data)``: where it applies (booleans).
        prob: the chance that a call applies.
        seed: makes the sequence of calls reproducible.
    """
    low = None if low_distr is None else to_distribution(low_distr, "clamp_values_aug: low_distr")
    high = (
        None if high_distr is None else to_distribution(high_distr, "clamp_values_aug: high_distr")
    )

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        h = None if high is None else a.dtype.type(high.sample(rng))
        lo = None if low is None else a.dtype.type(low.sample(rng))
        if mask_fn is None:  # everywhere, in place; two-sided clip is numpy's fast one
            top = h if h is not None else a.dtype.type(np.inf)
            bottom = lo if lo is not None else a.dtype.type(-np.inf)
            if bottom > top:  # high first, then low: low wins where they cross
                a[...] = bottom
            else:
                np.clip(a, bottom, top, out=a)
            return a
        where = mask_of(mask_fn, a) > 0
        if h is not None:
            a = np.where(where & (a > h), h, a)
        if lo is not None:
            a = np.where(where & (a < lo), lo, a)
        return a

    return run_augmentation("clamp_values_aug", data, prob, seed, body)


def gamma_aug(
    data: Any,
    gamma_distr: Distribution | float,
    max_value: float | None = None,
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """Gamma correction: ``max_value * (data / max_value) ** gamma`` (data >= 0).

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor, values >= 0.
        gamma_distr: the exponent (a number or a distribution), drawn once per call.
        max_value: the value that stays fixed (default: the dtype's maximum for integers,
            1.0 for floats).
        prob: the chance that a call applies.
        seed: makes the sequence of calls reproducible.
    """
    gamma = to_distribution(gamma_distr, "gamma_aug: gamma_distr")

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        top = a.dtype.type(max_value if max_value is not None else _top(data))
        np.clip(a, a.dtype.type(0), a.dtype.type(np.inf), out=a)  # two-sided: the fast one
        a /= top
        np.power(a, a.dtype.type(gamma.sample(rng)), out=a)
        a *= top
        return a

    return run_augmentation("gamma_aug", data, prob, seed, body)


def contrast_aug(
    data: Any,
    factor_distr: Distribution | float,
    center: float | None = None,
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """Contrast: ``center + factor * (data - center)``.

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor.
        factor_distr: the factor (a number or a distribution), drawn once per call.
        center: the value that stays fixed (default: the data's mean).
        prob: the chance that a call applies.
        seed: makes the sequence of calls reproducible.
    """
    factor = to_distribution(factor_distr, "contrast_aug: factor_distr")

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        c = a.dtype.type(a.mean() if center is None else center)
        a -= c
        a *= a.dtype.type(factor.sample(rng))
        a += c
        return a

    return run_augmentation("contrast_aug", data, prob, seed, body)


def gaussian_noise_aug(
    data: Any,
    std_distr: Distribution | float,
    mean: float = 0.0,
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """Add Gaussian noise of a drawn standard deviation to every voxel.

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor.
        std_distr: the noise's standard deviation (a number or a distribution), drawn
            once per call.
        mean: the noise's mean.
        prob: the chance that a call applies.
        seed: makes the sequence of calls reproducible.
    """
    std = to_distribution(std_distr, "gaussian_noise_aug: std_distr")

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        sigma = float(std.sample(rng))
        a += rng.normal(mean, sigma, a.shape).astype(a.dtype, copy=False)
        return a

    return run_augmentation("gaussian_noise_aug", data, prob, seed, body)


def normalize_intensity(
    data: Any,
    mean: float = 0.0,
    std: float = 1.0,
    per_section: bool = False,
    *,
    prob: float = 1.0,
    seed: int | None = None,
) -> Any:
    """Shift and scale the data to ``mean`` and ``std`` (over the whole block, or each z
    section on its own); a constant block becomes ``mean``.

    Args:
        data: ``(C, X, Y, Z)`` numpy array or torch tensor (a float dtype keeps the result).
        mean: the mean after normalisation.
        std: the standard deviation after normalisation.
        per_section: normalise each z section separately.
        prob: the chance that a call applies.
        seed: unused (nothing is drawn); accepted like every augmentation's.
    """

    def body(a: npt.NDArray[Any], rng: np.random.Generator) -> npt.NDArray[Any]:
        axes = (0, 1, 2) if per_section else None
        m = a.mean(axis=axes, keepdims=True)
        s = a.std(axis=axes, keepdims=True)
        normalized: npt.NDArray[Any] = mean + std * (a - m) / np.where(s > 0, s, 1.0)
        return normalized

    return run_augmentation("normalize_intensity", data, prob, seed, body)


def _top(data: Any) -> float:
    dtype = np.dtype(str(data.dtype).removeprefix("torch."))
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0
