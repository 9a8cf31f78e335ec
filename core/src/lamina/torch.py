"""Layers as PyTorch sample sources (the core's ``torch`` extra: ``pip install 'lamina[torch]'``).

:class:`VolumetricStridedIndexer` cuts a box into training windows — ``chunk_size``
voxels every ``stride`` voxels at one resolution — and :class:`LayerDataset` reads
window ``i`` from any layer (a volumetric layer, a layer set, a range map, …) and
hands it to PyTorch as tensors (a layer set's ``{name: array}`` becomes
``{name: tensor}``, which ``DataLoader``'s default collation batches per key)::

    indexer = VolumetricStridedIndexer(bbox, (8, 8, 40), chunk_size=(128, 128, 16),
                                       stride=(64, 64, 8))
    loader = torch.utils.data.DataLoader(LayerDataset(layer, indexer), batch_size=4,
                                         num_workers=2)

Workers: under ``spawn`` (and ``forkserver``) each DataLoader worker unpickles the
dataset, so its layer is rebuilt from the layer's spec (backends pickle by spec and
open their own handles and clients); under ``fork`` the worker inherits the layer and
every lamina backend drops handles that belong to its parent on first use. Nothing is
read until a worker asks for a window.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from lamina.concurrency import run_all, shared_pool
from lamina.volumetric.converters import to_vec3
from lamina.volumetric.geometry import BBox3D, BBoxStrider, RawVec3D, StriderMode, Vec3D
from lamina.volumetric.index import VolumetricIndex

try:
    import torch
    import torch.utils.data
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "lamina.torch needs PyTorch: pip install 'lamina[torch]' (it pins torch==2.13.0)"
    ) from exc

__all__ = ["BATCH_READ_THREADS", "LayerDataset", "VolumetricStridedIndexer", "to_tensors"]

#: At most this many samples of a batch are read at once (remote storage only).
BATCH_READ_THREADS = 16


def _to_resolution(value: RawVec3D) -> Vec3D[float]:
    return Vec3D.from_seq(value, "resolution").float()


@attrs.frozen
class VolumetricStridedIndexer:
    """Windows of ``chunk_size`` voxels every ``stride`` voxels over ``bbox``, at
    ``resolution`` (nm, x, y, z).

    ``len(indexer)`` is the number of windows; ``indexer(i)`` is window ``i`` (x
    fastest, then y, then z) as a :class:`~lamina.volumetric.index.VolumetricIndex`.
    ``mode`` is the strider's (:class:`~lamina.volumetric.geometry.BBoxStrider`):
    ``"expand"`` covers the whole box (the last windows may reach past its end),
    ``"shrink"`` keeps only windows lying inside it, ``"exact"`` crops the edge windows
    to the box (needs ``stride == chunk_size``; edge windows are then smaller).
    """

    bbox: BBox3D
    resolution: Vec3D[float] = attrs.field(converter=_to_resolution)
    chunk_size: Vec3D[int] = attrs.field(converter=to_vec3)
    stride: Vec3D[int] = attrs.field(converter=to_vec3)
    mode: StriderMode = "expand"
    _strider: BBoxStrider = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        strider = BBoxStrider(
            bbox=self.bbox,
            resolution=self.resolution,
            chunk_size=self.chunk_size,
            stride=self.stride,
            mode=self.mode,
        )
        object.__setattr__(self, "_strider", strider)

    def __len__(self) -> int:
        return self._strider.num_chunks

    def __call__(self, i: int) -> VolumetricIndex:
        """Window ``i`` (negative ``i`` counts from the end, as for a sequence)."""
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"window number must be an int; got {type(i).__name__} {i!r}")
        n = len(self)
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"window {i} out of range: this indexer has {n} window(s)")
        return VolumetricIndex(resolution=self.resolution, bbox=self._strider.get_nth_chunk_bbox(j))


def to_tensors(data: Any) -> Any:
    """``data`` with every numpy array replaced by a torch tensor (dicts, lists and
    tuples are walked). Arrays torch can share are shared (no copy); read-only arrays
    and arrays with negative strides are copied first, since torch needs writable,
    positively strided memory."""
    if isinstance(data, np.ndarray):
        array = data
        if not array.flags.writeable or any(s < 0 for s in array.strides):
            array = np.array(array, copy=True)
        return torch.from_numpy(array)
    if isinstance(data, dict):
        return {key: to_tensors(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(to_tensors(value) for value in data)
    return data


class LayerDataset(torch.utils.data.Dataset[Any]):
    """A map-style dataset: item ``i`` is ``layer[indexer(i)]`` as torch tensors.

    Args:
        layer: any layer; a volumetric layer gives ``(C, X, Y, Z)`` tensors, a layer
            set ``{name: tensor}`` dicts.
        indexer: a callable ``i -> index`` with ``len`` (e.g.
            :class:`VolumetricStridedIndexer`).
        transform: applied to the data as read (numpy), before the conversion to
            tensors — augmentations, normalisation.
    """

    def __init__(
        self,
        layer: Any,
        indexer: Any,
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        if not callable(indexer) or not hasattr(indexer, "__len__"):
            raise TypeError(
                "indexer must be callable with a length (i -> index, len(indexer)), e.g. "
                f"lamina.torch.VolumetricStridedIndexer; got {type(indexer).__name__}"
            )
        self.layer = layer
        self.indexer = indexer
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indexer)

    def __getitem__(self, i: int) -> Any:
        data = self.layer[self.indexer(i)]
        if self.transform is not None:
            data = self.transform(data)
        return to_tensors(data)

    def __getitems__(self, indices: list[int]) -> list[Any]:
        """The samples of a batch (``DataLoader`` with a ``batch_size`` asks for them at
        once): read on lamina's shared threads, so that their storage IO is in flight
        together, when the layer's storage is remote and thread-safe; one after another
        otherwise (local reads are memory copies that threads only slow down)."""
        backend = getattr(self.layer, "backend", None)
        capabilities = getattr(backend, "capabilities", None)
        remote = not getattr(backend, "is_local", True)
        if len(indices) < 2 or not remote or not getattr(capabilities, "thread_safe", False):
            return [self[i] for i in indices]
        pool = shared_pool("dataset-read", min(len(indices), BATCH_READ_THREADS))
        return run_all([functools.partial(self.__getitem__, i) for i in indices], pool)
