"""Values given as numbers or as distributions: the reference system's ``uniform_distr``
and ``normal_distr`` (registered by those names), each sampled with the call's generator."""

from __future__ import annotations

import functools
from typing import Any, Protocol

import attrs
import numpy as np
import numpy.typing as npt

__all__ = [
    "Constant",
    "Distribution",
    "Normal",
    "Uniform",
    "normal_distr",
    "to_distribution",
    "uniform_distr",
]


class Distribution(Protocol):
    """Anything with ``sample(rng, size=None)``."""

    def sample(self, rng: np.random.Generator, size: Any = None) -> Any: ...


@attrs.frozen
class Constant:
    """Always ``value``: a number given where a distribution is accepted."""

    value: float

    def sample(self, rng: np.random.Generator, size: Any = None) -> Any:
        return self.value if size is None else np.full(size, self.value)


@attrs.frozen
class Uniform:
    """Uniform on ``[low, high)``."""

    low: float
    high: float

    def __attrs_post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(
                f"uniform_distr: low must be <= high; got low={self.low}, high={self.high}"
            )

    def sample(self, rng: np.random.Generator, size: Any = None) -> Any:
        return rng.uniform(self.low, self.high, size)


@attrs.frozen
class Normal:
    """Normal with mean ``loc`` and standard deviation ``scale``."""

    loc: float
    scale: float

    def __attrs_post_init__(self) -> None:
        if self.scale < 0:
            raise ValueError(f"normal_distr: scale must be >= 0; got {self.scale}")

    def sample(self, rng: np.random.Generator, size: Any = None) -> Any:
        return rng.normal(self.loc, self.scale, size)


def uniform_distr(low: float = 0.0, high: float = 1.0) -> Uniform:
    """The uniform distribution on ``[low, high)`` (the reference's ``uniform_distr``).

    Args:
        low: the lower bound.
        high: the upper bound.
    """
    return Uniform(float(low), float(high))


def normal_distr(loc: float = 0.0, scale: float = 1.0) -> Normal:
    """The normal distribution (the reference's ``normal_distr``).

    Args:
        loc: the mean.
        scale: the standard deviation.
    """
    return Normal(float(loc), float(scale))


@functools.lru_cache(maxsize=256)
def _constant(value: float) -> Constant:
    return Constant(value)


def to_distribution(value: Any, what: str) -> Distribution:
    """``value`` as a distribution: a number is a constant; a distribution is itself."""
    if type(value) in (int, float):  # the common case, on every call: a cached constant
        return _constant(float(value))
    if hasattr(value, "sample"):
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(
            f"{what} must be a number or a distribution (uniform_distr(low, high), "
            f"normal_distr(loc, scale)); got {type(value).__name__} {value!r}"
        )
    return Constant(float(value))


def sample_array(
    distribution: Distribution, rng: np.random.Generator, size: Any
) -> npt.NDArray[Any]:
    """``size`` draws of ``distribution`` as an array."""
    return np.asarray(distribution.sample(rng, size), dtype=np.float64)
