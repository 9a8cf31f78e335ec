"""The three processor kinds a layer applies on the way to and from its backend.

* an **index processor** is any callable ``idx -> idx``;
* a **data processor** is any callable ``data -> data`` (plain lambdas work);
* a **joint index-data processor** changes the index going in *and* the data coming
  out (or going in, on a write), and is applied with probability ``prob``.

Unlike the reference system, a joint processor keeps no state on itself between its
two steps (the reference's stashed it on ``self``, so two threads sharing a layer raced):
``process_index`` returns the new index *and* a per-call state object, and the layer
hands that state back to ``process_data`` of the same call. One processor (and so one
layer) can therefore serve many threads at once.
Porting a reference processor means returning what it stashed on ``self`` instead.

Data reaching a write processor may be read-only: a scalar write arrives as a
zero-stride ``np.broadcast_to`` view of the region (no memory per voxel). A processor
that changes data in place should copy first (``data = data.copy()``) or return new data.
"""

from __future__ import annotations

import abc
import random
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

__all__ = [
    "DataProcessor",
    "IndexProcessor",
    "JointIndexDataProcessor",
    "Mode",
    "draw",
]

Mode = Literal["read", "write"]

IndexT = TypeVar("IndexT")
DataT = TypeVar("DataT")
IndexT_contra = TypeVar("IndexT_contra", contravariant=True)


class IndexProcessor(Protocol[IndexT]):
    """Any callable from a standard index to a standard index."""

    def __call__(self, idx: IndexT, /) -> IndexT: ...


class DataProcessor(Protocol[DataT]):
    """Any callable from data to data (a plain function or lambda is one)."""

    def __call__(self, data: DataT, /) -> DataT: ...


class JointIndexDataProcessor(abc.ABC, Generic[DataT, IndexT]):
    """A processor that rewrites the index and then the data of one read or write.

    Subclasses implement both steps. ``prob`` (default 1.0) is the chance that the
    processor applies to a call; when it does not, neither step runs for that call.

    ``process_index`` returns ``(new_index, state)``; ``state`` is whatever the data
    step needs to know about this call (a scale factor, sub-slices, ``None``) and is
    passed back unchanged to ``process_data``. Never store it on ``self``.
    """

    prob: float = 1.0
    #: ``True`` for a processor that flips its own ``prob`` coin inside ``process_index``
    #: (from a seeded generator, say: lamina-augment's), so the layer does not draw one.
    draws_own_coin: ClassVar[bool] = False

    @abc.abstractmethod
    def process_index(self, idx: IndexT, mode: Mode) -> tuple[IndexT, Any]:
        """Return the index to use for this call and the state its data step needs."""

    @abc.abstractmethod
    def process_data(self, data: DataT, mode: Mode, state: Any) -> DataT:
        """Return the data for this call, given the state its index step returned."""


def draw(prob: float) -> bool:
    """Whether a processor with probability ``prob`` applies to one call.

    ``prob >= 1`` always applies and ``prob <= 0`` never does; in between, a fresh
    uniform draw per call and per processor, as in the reference system.
    """
    if prob >= 1.0:
        return True
    if prob <= 0.0:
        return False
    return random.random() < prob
