"""Reading and writing one scale's stored array as lamina's ``(X, Y, Z, C)``, on three
engines:

* ``"lamina"``: lamina's own reader of local chunk files (:mod:`lamina_zarr.chunks`),
  in the calling thread (and a helper thread on big reads); the default for reads of
  local Zarr v2 and v3 arrays.
* ``"tensorstore"``: TensorStore's ``zarr``, ``zarr3`` and ``n5`` drivers, chunk IO and
  decoding off the GIL; the default for writes, for reads of 2 to 127 compressed
  chunks and for what lamina's reader does not read (object storage, N5). Reads ask for
  the stored axis order (a time axis fixed at ``time_index``) in the chunks' own memory
  order (C for Zarr's default, Fortran for N5 and Zarr v2 ``order: F``), so that
  TensorStore copies without transposing, and are transposed to ``(x, y, z, c)`` as a
  view: a stored C-ordered ``(c, z, y, x)`` array's bytes are already lamina's
  Fortran-ordered ``(X, Y, Z, C)``.
  A write covering part of a shard is one transaction (each shard read and written
  back once).
* ``"zarr-python"``: zarr-python 3 on local Zarr v2 and v3 arrays. A process forked
  after its parent used TensorStore (a forked ``DataLoader`` or ``processes`` worker)
  writes through it, since TensorStore would abort there
  (:mod:`lamina.tensorstore_engine`).

Coordinates here are the array's own voxels (lamina's minus the voxel offset), inside
its shape.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from lamina import tensorstore_engine
from lamina_zarr.axes import AxisOrder
from lamina_zarr.chunks import LocalChunkReader, local_reader
from lamina_zarr.nodes import ZarrFormat, join
from lamina_zarr.paths import REMOTE
from lamina_zarr.volume import ZarrScale

__all__ = ["ENGINES", "EngineName", "ScaleArray", "check_engine"]

EngineName = Literal["tensorstore", "zarr-python", "lamina"]
#: What ``engine=`` accepts.
ENGINES: Final = ("auto", "tensorstore", "zarr-python", "lamina")
_DRIVERS: Final = {2: "zarr", 3: "zarr3", "n5": "n5"}
#: With ``engine="auto"``, reads of compressed chunks spanning this many chunks (from, up
#: to but not including) go to TensorStore, which decodes them on its threads; every other
#: read of a local array goes to lamina's reader. Measured on 128 x 128 x 16 uint8 chunks
#: in bench/bench_zarr.py's quiet runs ("Zarr" in bench/README.md): on zstd chunks
#: lamina's one-thread reader took 1.3-1.45x TensorStore's time on cutouts of 4 to 18
#: chunks, but 0.5x on whole volumes (with its helper thread) and on single chunks
#: (TensorStore's handoff to its threads costs about 100 us a call); on uncompressed
#: chunks, which it reads in part, 0.3-0.7x at every size.
COMPRESSED_TENSORSTORE_SPAN: Final = (2, 128)


def check_engine(engine: str | None) -> str:
    """``engine`` checked (``None``: ``"auto"``)."""
    if engine is None:
        return "auto"
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}; got {engine!r}")
    return engine


class ScaleArray:
    """One scale's array; thread-safe (one TensorStore handle per process)."""

    def __init__(
        self,
        root: str,
        fmt: ZarrFormat,
        scale: ZarrScale,
        axes: AxisOrder,
        *,
        time_index: int | None,
        engine: str,
        cache_bytes: int,
    ) -> None:
        self.root = root
        self.format = fmt
        self.scale = scale
        self.axes = axes
        self.time_index = time_index
        self.requested_engine = engine
        self.cache_bytes = cache_bytes
        self.sharded = scale.write_grid != scale.chunk_size
        #: per stored axis but time, which of x, y, z it is (``None``: channels)
        self._stored_xyz = [
            "xyz".index(a) if a in "xyz" else None for a in axes.letters if a != "t"
        ]
        self._handle: Any = None
        self._read_order = "C"  # the stored chunks' memory order, found when the handle opens
        self._zarr: Any = None
        self._reader: LocalChunkReader | bool | None = False  # False: not looked for yet
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ScaleArray({join(self.root, self.scale.path)!r}, engine={self.engine!r})"

    @property
    def where(self) -> str:
        return join(self.root, self.scale.path)

    @property
    def engine(self) -> EngineName:
        """The engine this process reads the array with: ``"lamina"`` where its reader
        reads the array (with ``engine="auto"``, reads of 2 to 127 compressed chunks still
        go to TensorStore: :meth:`_reader_for`)."""
        if self.requested_engine in ("auto", "lamina") and self._local_reader() is not None:
            return "lamina"
        return self.write_engine

    @property
    def write_engine(self) -> EngineName:
        """The engine this process writes the array with."""
        if self.requested_engine == "zarr-python" or tensorstore_engine.forked_after_use():
            return "zarr-python"
        return "tensorstore"

    def _reader_for(self, lo: Sequence[int], hi: Sequence[int]) -> LocalChunkReader | None:
        """lamina's reader when it reads ``lo:hi``: always with ``engine="lamina"``; with
        ``"auto"``, unless the read spans :data:`COMPRESSED_TENSORSTORE_SPAN` compressed
        chunks, which TensorStore's threads decode faster than lamina's reader."""
        reader = self._local_reader() if self.requested_engine in ("auto", "lamina") else None
        if reader is None or self.requested_engine == "lamina":
            return reader
        if tensorstore_engine.forked_after_use():
            return reader  # TensorStore would abort this process
        if not reader.compressed:
            return reader
        low, high = COMPRESSED_TENSORSTORE_SPAN
        return None if low <= reader.count_chunks(lo, hi) < high else reader

    def _local_reader(self) -> LocalChunkReader | None:
        """lamina's own reader of the array's chunk files, where it reads them."""
        if self._reader is False:
            found = local_reader(self.where, self.format, self.axes, self.scale.meta)
            if isinstance(found, str):
                if self.requested_engine == "lamina":
                    raise ValueError(
                        f"{self.where}: engine='lamina' cannot read this array: {found}; "
                        "use engine='tensorstore'"
                    )
                self._reader = None
            else:
                self._reader = found
        return self._reader  # type: ignore[return-value]

    # -- TensorStore ---------------------------------------------------------------------------
    def handle(self) -> Any:
        """The array as TensorStore opens it, a time axis fixed at ``time_index``: the
        stored axis order (opened once per process)."""
        handle = self._handle
        if handle is None:
            with self._lock:
                if self._handle is None:
                    # the order first: a thread that sees the handle reads in that order
                    store, self._read_order = self._open()
                    self._handle = store
                handle = self._handle
        return handle

    def _open(self) -> tuple[Any, str]:
        """The TensorStore handle (stored axis order, a time axis fixed) and the memory
        order of its chunks (``"C"`` or ``"F"``), in which reads copy without transposing."""
        import tensorstore as ts

        spec = {
            "driver": _DRIVERS[self.format],
            "kvstore": tensorstore_engine.kvstore_spec(self.where),
        }
        try:
            store = ts.open(
                spec,
                context=tensorstore_engine.context(self.cache_bytes),
                read=True,
                write=True,
                open=True,
            ).result()
        except ValueError:
            store = ts.open(  # a read-only store (permissions) still reads
                spec, context=tensorstore_engine.context(self.cache_bytes), read=True, open=True
            ).result()
        if self.axes.has_time:
            store = store[ts.d[self.axes.index("t")][self.time_index]]
        inner = store.chunk_layout.inner_order
        fortran = inner is not None and list(inner) == list(range(store.rank))[::-1]
        return store, "F" if fortran and store.rank > 1 else "C"

    def _stored_box(self, lo: Sequence[int], hi: Sequence[int]) -> Any:
        """``lo:hi`` of the array in its stored axis order (a time axis fixed)."""
        every = slice(None)
        return self.handle()[
            tuple(every if i is None else slice(lo[i], hi[i]) for i in self._stored_xyz)
        ]

    # -- zarr-python ---------------------------------------------------------------------------
    def _zarr_array(self) -> Any:
        if self._zarr is None:
            if self.format == "n5" or self.root.startswith(REMOTE):
                raise RuntimeError(
                    f"{self.where}: the zarr-python engine reads local Zarr arrays only; this "
                    "process was forked after its parent used TensorStore, which would abort "
                    "it here. Start workers with the 'spawn' method (DataLoader("
                    "multiprocessing_context='spawn'), processes executors spawn by default)"
                )
            import zarr

            self._zarr = zarr.open_array(self.where, mode="r+", zarr_format=self.format)
        return self._zarr

    def _selection(self, lo: Sequence[int], hi: Sequence[int]) -> tuple[Any, ...]:
        spans = [slice(a, b) for a, b in zip(lo, hi, strict=True)]
        return tuple(self.axes.stored(spans, slice(None), self.time_index))

    def _as_xyzc(self, stored: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """A stored-order array (no time axis) as an ``(x, y, z, c)`` view."""
        if not self.axes.has_channels:
            stored = stored[..., np.newaxis]
        return stored.transpose(self.axes.to_xyzc())

    def _as_stored(self, xyzc: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """An ``(x, y, z, c)`` array as a view in the stored order (no time axis)."""
        stored = xyzc.transpose(np.argsort(self.axes.to_xyzc()))
        return stored if self.axes.has_channels else stored[..., 0]

    # -- IO ------------------------------------------------------------------------------------
    def read(self, lo: Sequence[int], hi: Sequence[int]) -> npt.NDArray[Any]:
        """The ``(X, Y, Z, C)`` data of ``lo:hi``, in the stored layout (Fortran order
        for OME's ``(c, z, y, x)``)."""
        reader = self._reader_for(lo, hi)
        if reader is not None:
            shape = [b - a for a, b in zip(lo, hi, strict=True)]
            channels = self.axes.channels(reader.shape)
            out = np.empty((*shape, channels), reader.dtype.newbyteorder("="), order="F")
            reader.read_into(out, lo, hi, self.time_index)
            return out
        if self.write_engine == "zarr-python":
            return self._as_xyzc(np.asarray(self._zarr_array()[self._selection(lo, hi)]))
        try:  # in the stored axis order and the chunks' own memory order: no transposing
            box = self._stored_box(lo, hi)
            return self._as_xyzc(box.read(order=self._read_order).result())
        except ValueError as exc:
            raise tensorstore_engine.fault(exc, self.where) from exc

    def read_into(self, out: npt.NDArray[Any], lo: Sequence[int], hi: Sequence[int]) -> None:
        """The data of ``lo:hi`` written into ``out`` (``(X, Y, Z, C)``, any layout)."""
        reader = self._reader_for(lo, hi)
        if reader is not None:
            reader.read_into(out, lo, hi, self.time_index)
            return
        if self.write_engine == "zarr-python":
            out[...] = self.read(lo, hi)
            return
        import tensorstore as ts

        try:
            target = ts.array(self._as_stored(out), copy=False, write=True)
            target.write(self._stored_box(lo, hi).translate_to[0]).result()
        except ValueError as exc:
            raise tensorstore_engine.fault(exc, self.where) from exc

    def write(self, xyzc: npt.NDArray[Any], lo: Sequence[int], whole_cells: bool) -> None:
        """Store ``xyzc`` at ``lo``; ``whole_cells``: it covers whole cells of the write
        grid (else a sharded array's shards are read, changed and written in one
        transaction)."""
        hi = [a + n for a, n in zip(lo, xyzc.shape[:3], strict=True)]
        stored = self._as_stored(xyzc)
        if self.write_engine == "zarr-python":
            self._zarr_array()[self._selection(lo, hi)] = stored
            return
        box = self._stored_box(lo, hi)
        try:
            tensorstore_engine.write(box, stored, part_of_shards=self.sharded and not whole_cells)
        except ValueError as exc:
            raise tensorstore_engine.fault(exc, self.where) from exc
