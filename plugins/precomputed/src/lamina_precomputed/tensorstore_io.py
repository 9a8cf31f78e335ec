"""Reading and writing one precomputed scale through TensorStore (the ``"tensorstore"``
engine; see :mod:`lamina_precomputed.engine` for when it is used).

* One TensorStore handle per scale and process, opened on first use from the info lamina
  already holds (no second read of the info), read and written in Fortran order
  ``(X, Y, Z, C)``: lamina's ``(C, X, Y, Z)`` is a transposed view of it, no copy, and
  TensorStore's default C order would cost a transpose several times the read.
* Chunks equal to the background are stored, as on the CloudVolume engine, unless
  ``delete_black_uploads``. Sharded scales are TensorStore's own: a write covering part
  of a shard is its read-modify-write, in one transaction per write (each shard read
  and written back once).
* Faults surface, never zeros: a chunk that does not decode is a
  :class:`~lamina.errors.DamagedChunkError` naming it; S3 and GCS requests are retried
  a bounded number of times, then raise ``OSError`` (:mod:`lamina.tensorstore_engine`,
  which every TensorStore-backed format shares).
* A local volume this process wrote compressed chunk files into (``key.gz``, through
  the CloudVolume engine with ``compress``) is read and written through the CloudVolume
  engine from then on: TensorStore would read those chunks as absent. (Another process
  that opened the volume before such a write does not know of it.)
* TensorStore aborts a process forked after its parent used it. A process forked from a
  parent that used TensorStore (a ``processes`` executor's worker, a forked
  ``DataLoader`` worker) therefore reads and writes through the CloudVolume engine,
  which stores the same bytes; spawned processes and processes forked before any use
  run TensorStore themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lamina import tensorstore_engine
from lamina_precomputed.codecs import DEFAULT_JPEG_QUALITY, DEFAULT_PNG_LEVEL
from lamina_precomputed.engine import compressed_chunks_written
from lamina_precomputed.scale_io import ScaleGrid, ScaleIO, forget_everywhere

__all__ = ["TensorStoreScaleIO"]


class TensorStoreScaleIO(ScaleGrid):
    """One scale read and written by TensorStore; the interface of
    :class:`~lamina_precomputed.scale_io.ScaleIO` (see the module)."""

    @property
    def engine(self) -> str:
        """``"tensorstore"``, or ``"cloudvolume"`` in a process forked after its parent
        used TensorStore (see the module)."""
        return "cloudvolume" if self._deferred() else "tensorstore"

    def __init__(
        self,
        cloudpath: str,
        info: Mapping[str, Any],
        scale: Mapping[str, Any],
        *,
        cache_bytes: int,
        delete_black_uploads: bool,
        fallback: Callable[[], ScaleIO],
    ) -> None:
        super().__init__(scale)
        self.cloudpath = cloudpath
        self.dtype = np.dtype(info["data_type"])
        self.num_channels = int(info["num_channels"])
        self._spec = {
            "driver": "neuroglancer_precomputed",
            "kvstore": tensorstore_engine.kvstore_spec(cloudpath),
            "multiscale_metadata": {
                "type": info.get("type", "image"),
                "data_type": str(info["data_type"]),
                "num_channels": self.num_channels,
            },
            "scale_metadata": _scale_metadata(scale),
            "store_data_equal_to_fill_value": not delete_black_uploads,
            "recheck_cached_data": "open",
        }
        self._cache_bytes = int(cache_bytes)
        self._fallback_factory = fallback
        self._fallback: ScaleIO | None = None
        self._handle: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TensorStoreScaleIO({self.cloudpath!r}, {self.key!r})"

    # -- the handle ----------------------------------------------------------------------------
    def handle(self) -> Any:
        """The TensorStore of this scale, opened once per process with the info lamina
        holds (``assume_metadata``: the info is not read again)."""
        handle = self._handle
        if handle is None:
            import tensorstore as ts

            with self._lock:
                handle = self._handle
                if handle is None:
                    handle = ts.open(
                        self._spec,
                        context=tensorstore_engine.context(self._cache_bytes),
                        read=True,
                        write=True,
                        assume_metadata=True,
                    ).result()
                    self._handle = handle
        return handle

    def _deferred(self) -> bool:
        """Whether this scale's IO goes to the CloudVolume engine in this process: forked
        after TensorStore was used, or compressed chunk files were written into it."""
        return tensorstore_engine.forked_after_use() or compressed_chunks_written(self.cloudpath)

    def cloudvolume_io(self) -> ScaleIO:
        """The CloudVolume engine's IO of the same scale: what a process forked after its
        parent used TensorStore reads and writes through."""
        if self._fallback is None:
            self._fallback = self._fallback_factory()
        return self._fallback

    # -- reading -------------------------------------------------------------------------------
    def read(self, lo: Sequence[int], hi: Sequence[int]) -> npt.NDArray[Any]:
        """The Fortran-ordered ``(X, Y, Z, C)`` array of ``lo:hi``; zeros outside the
        bounds and where no chunk is stored."""
        if self._deferred():
            return self.cloudvolume_io().read(lo, hi)
        if self.inside(lo, hi):
            return self._read_box(lo, hi)
        shape = (*(hi[d] - lo[d] for d in range(3)), self.num_channels)
        out = np.zeros(shape, self.dtype, order="F")
        self.read_into(out, lo, lo, hi)
        return out

    def read_whole(self, out: npt.NDArray[Any], lo: Sequence[int], hi: Sequence[int]) -> None:
        """Write every voxel of ``out`` (``(X, Y, Z, C)``, the box ``lo:hi``); zeros outside
        the bounds and where no chunk is stored."""
        if self._deferred():
            self.cloudvolume_io().read_whole(out, lo, hi)
        elif self.inside(lo, hi):
            self._read_box_into(out, lo, hi)
        else:
            out[...] = 0
            self.read_into(out, lo, lo, hi)

    def read_into(
        self, out: npt.NDArray[Any], origin: Sequence[int], lo: Sequence[int], hi: Sequence[int]
    ) -> None:
        """Paste the stored data of ``lo:hi`` (inside the bounds) into ``out``, whose first
        voxel is ``origin``; absent chunks paste zeros."""
        if self._deferred():
            self.cloudvolume_io().read_into(out, origin, lo, hi)
            return
        a = [max(lo[d], self.offset[d]) for d in range(3)]
        b = [min(hi[d], self.end[d]) for d in range(3)]
        if any(b[d] <= a[d] for d in range(3)):
            return
        self._read_box_into(
            out[tuple(slice(a[d] - origin[d], b[d] - origin[d]) for d in range(3))], a, b
        )

    def _read_box_into(self, out: npt.NDArray[Any], lo: Sequence[int], hi: Sequence[int]) -> None:
        """TensorStore's read of ``lo:hi`` (inside the bounds) written straight into
        ``out``'s memory (an array TensorStore wraps without a copy), no second copy."""
        import tensorstore as ts

        view = self.handle()[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].translate_to[0]
        try:
            ts.array(out, copy=False, write=True).write(view).result()
        except ValueError as exc:
            raise self._fault(exc) from exc

    def _read_box(self, lo: Sequence[int], hi: Sequence[int]) -> npt.NDArray[Any]:
        view = self.handle()[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        try:
            return view.read(order="F").result()  # type: ignore[no-any-return]
        except ValueError as exc:
            raise self._fault(exc) from exc

    # -- writing -------------------------------------------------------------------------------
    def write(
        self, xyzc: npt.NDArray[Any], start: Sequence[int], overwrite_partial_chunks: bool
    ) -> None:
        """Store ``xyzc`` (``(X, Y, Z, C)``, inside the bounds) at ``start``; a partial
        chunk or shard is TensorStore's read-modify-write."""
        if self._deferred():
            self.cloudvolume_io().write(xyzc, start, overwrite_partial_chunks)
            return
        if overwrite_partial_chunks:
            raise ValueError(
                "overwrite_partial_chunks=True is not honoured by the tensorstore engine; "
                "use engine='cloudvolume'"
            )
        stop = [start[d] + xyzc.shape[d] for d in range(3)]
        view = self.handle()[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]]
        partial = self.sharded is not None and not self.covers_write_cells(start, stop)
        try:
            tensorstore_engine.write(view, xyzc, part_of_shards=partial)
        except ValueError as exc:
            raise self._fault(exc) from exc
        # The CloudVolume engine's memory caches of this volume in this process forget
        # the chunks just replaced.
        forget_everywhere(self.cloudpath, [self.name(b) for b in self.chunk_boxes(start, stop)])

    # -- faults --------------------------------------------------------------------------------
    def _fault(self, exc: ValueError) -> Exception:
        return tensorstore_engine.fault(exc, f"{self.cloudpath} (scale {self.key})")


def _scale_metadata(scale: Mapping[str, Any]) -> dict[str, Any]:
    """TensorStore's ``scale_metadata`` of an info scale (its own names and fields)."""
    meta: dict[str, Any] = {
        "key": str(scale["key"]),
        "resolution": [float(v) for v in scale["resolution"]],
        "voxel_offset": [int(v) for v in scale["voxel_offset"]],
        "size": [int(v) for v in scale["size"]],
        "chunk_size": [int(v) for v in scale["chunk_sizes"][0]],
        "encoding": str(scale["encoding"]),
    }
    if scale.get("compressed_segmentation_block_size") is not None:
        meta["compressed_segmentation_block_size"] = [
            int(v) for v in scale["compressed_segmentation_block_size"]
        ]
    # the CloudVolume engine's defaults where the info names none: both engines encode alike
    if scale["encoding"] == "jpeg":
        quality = scale.get("jpeg_quality")
        meta["jpeg_quality"] = DEFAULT_JPEG_QUALITY if quality is None else int(quality)
    if scale["encoding"] == "png":
        level = scale.get("png_level")
        meta["png_level"] = DEFAULT_PNG_LEVEL if level is None else int(level)
    if scale.get("sharding"):
        meta["sharding"] = dict(scale["sharding"])
    return meta
