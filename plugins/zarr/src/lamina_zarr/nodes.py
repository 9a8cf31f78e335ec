"""The metadata files of a Zarr v2, Zarr v3 or N5 hierarchy: where they are, reading and
writing them, and what an array's metadata says (shape, dtype, chunks, shards,
compression, dimension names).

Local hierarchies are read and written with the file system (metadata written to a
temporary file renamed into place); ``s3://`` and ``gs://`` ones through TensorStore's
key-value stores (:mod:`lamina.tensorstore_engine`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs
import numpy as np

from lamina import tensorstore_engine
from lamina.errors import LaminaError
from lamina_zarr.paths import PREFIXES, REMOTE

__all__ = [
    "ArrayMeta",
    "MetaStore",
    "Node",
    "ZarrFormat",
    "ZarrNotFoundError",
    "normalize_path",
    "read_node",
]

ZarrFormat = Literal[2, 3, "n5"]


class ZarrNotFoundError(LaminaError, FileNotFoundError):
    """No Zarr or N5 array or group is stored at the path."""


def normalize_path(path: str | os.PathLike[str]) -> str:
    """The hierarchy's root: an absolute local path (``file://``, ``~`` and this
    plugin's prefixes removed) or an ``s3://`` / ``gs://`` URL, without a trailing slash."""
    text = os.fspath(path)
    for prefix in PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if text.startswith(REMOTE):
        return text.rstrip("/")
    if text.startswith("file://"):
        text = text[len("file://") :]
    if "://" in text:
        raise ValueError(
            f"path must be a local path, file://, s3:// or gs:// (optionally after zarr://, "
            f"zarr2://, zarr3:// or n5://); got {os.fspath(path)!r}"
        )
    return os.path.abspath(os.path.expanduser(text)).rstrip("/") or "/"


def join(root: str, key: str) -> str:
    """``root/key`` (``key`` may be empty)."""
    return f"{root}/{key}" if key else root


class MetaStore:
    """The metadata (JSON) files under one hierarchy root."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.remote = root.startswith(REMOTE)
        self._kvstore: Any = None

    def __repr__(self) -> str:
        return f"MetaStore({self.root!r})"

    def _kv(self) -> Any:
        if self._kvstore is None:
            import tensorstore as ts

            spec = tensorstore_engine.kvstore_spec(self.root)
            self._kvstore = ts.KvStore.open(spec, context=tensorstore_engine.context(0)).result()
        return self._kvstore

    def read_bytes(self, key: str) -> bytes | None:
        """The file ``key`` (relative to the root), ``None`` when absent."""
        if not self.remote:
            try:
                with open(join(self.root, key), "rb") as file:
                    return file.read()
            except (FileNotFoundError, NotADirectoryError):
                return None
        try:
            found = self._kv().read(key).result()
        except ValueError as exc:
            raise tensorstore_engine.fault(exc, join(self.root, key)) from exc
        return bytes(found.value) if found.state == "value" else None

    def read_json(self, key: str) -> dict[str, Any] | None:
        """The JSON object in ``key``, ``None`` when absent; anything else is an error
        naming the file."""
        raw = self.read_bytes(key)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"{join(self.root, key)} is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError(
                f"{join(self.root, key)} must hold a JSON object; got {type(value).__name__}"
            )
        return value

    def write_json(self, key: str, value: Mapping[str, Any]) -> None:
        """Write ``value`` as ``key`` (whole: a reader never sees half a file)."""
        body = json.dumps(value, indent=2).encode()
        if self.remote:
            try:
                self._kv().write(key, body).result()
            except ValueError as exc:
                raise tensorstore_engine.fault(exc, join(self.root, key)) from exc
            return
        target = join(self.root, key)
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=directory, prefix=".lamina-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(body)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise

    def delete_file(self, key: str) -> None:
        """Remove the file ``key`` (absent is fine)."""
        if self.remote:
            import tensorstore as ts

            try:
                self._kv().delete_range(ts.KvStore.KeyRange(key, key + "\0")).result()
            except ValueError as exc:
                raise tensorstore_engine.fault(exc, join(self.root, key)) from exc
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(join(self.root, key))

    def delete_tree(self, key: str) -> None:
        """Remove everything under ``key`` (an array's directory)."""
        if self.remote:
            try:
                self._kv().delete_range(
                    _prefix_range(key.rstrip("/") + "/" if key else "")
                ).result()
            except ValueError as exc:
                raise tensorstore_engine.fault(exc, join(self.root, key)) from exc
            return
        shutil.rmtree(join(self.root, key), ignore_errors=True)


def _prefix_range(prefix: str) -> Any:
    import tensorstore as ts

    if not prefix:
        return ts.KvStore.KeyRange()  # every key
    return ts.KvStore.KeyRange(prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))


# -- what a node's metadata says ---------------------------------------------------------------
@attrs.frozen
class ArrayMeta:
    """An array's metadata, in its storage order: ``shape``, ``dtype`` (native byte
    order), ``chunks`` (what one read decodes), ``write_chunks`` (a shard's shape in a
    sharded Zarr v3 array, else the chunks), the compression's name (``raw``, ``blosc``,
    ``zstd``, ``gzip``, …) and the dimension names the file gives (``None`` when it gives
    none); and how a chunk is stored, for lamina's own chunk reader
    (:mod:`lamina_zarr.chunks`): the byte order and element order of its values, its
    bytes-to-bytes codecs in the order they were applied, whether a ``transpose`` codec
    reorders it, a sharded array's index (at the end, crc32c-checked), the chunk keys'
    prefix and separator, and the fill value."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    chunks: tuple[int, ...]
    write_chunks: tuple[int, ...]
    encoding: str
    dimension_names: tuple[str, ...] | None = None
    byte_order: str = "<"
    order: str = "C"
    codecs: tuple[str, ...] = ()
    transposed: bool = False
    shard_index: tuple[bool, bool] | None = None
    chunk_key: tuple[str, str] = ("", ".")
    fill_value: Any = 0

    @property
    def sharded(self) -> bool:
        return self.write_chunks != self.chunks


@attrs.frozen
class Node:
    """One node of a hierarchy: its format, whether it is an array (with ``array``
    metadata) or a group, and its user attributes."""

    format: ZarrFormat
    attributes: dict[str, Any]
    array: ArrayMeta | None = None


def read_node(store: MetaStore, key: str = "") -> Node | None:
    """The node at ``key`` (Zarr v3 ``zarr.json``, Zarr v2 ``.zarray``/``.zgroup`` with
    ``.zattrs``, N5 ``attributes.json``), ``None`` when there is none."""
    where = join(store.root, key)
    found = store.read_json(join_key(key, "zarr.json"))
    if found is not None:
        attributes = dict(found.get("attributes") or {})
        if found.get("node_type") == "array":
            return Node(3, attributes, _v3_array(found, where))
        return Node(3, attributes)
    attributes = store.read_json(join_key(key, ".zattrs")) or {}
    zarray = store.read_json(join_key(key, ".zarray"))
    if zarray is not None:
        return Node(2, attributes, _v2_array(zarray, where))
    if store.read_json(join_key(key, ".zgroup")) is not None:
        return Node(2, attributes)
    n5 = store.read_json(join_key(key, "attributes.json"))
    if n5 is not None:
        if "dimensions" in n5:
            return Node("n5", n5, _n5_array(n5, where))
        return Node("n5", n5)
    return None


def join_key(key: str, name: str) -> str:
    return f"{key}/{name}" if key else name


def _ints(value: Any, what: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(type(v) is int and v >= 0 for v in value):
        raise ValueError(f"{where}: {what} must be a list of whole numbers >= 0; got {value!r}")
    return tuple(value)


_V3_COMPRESSORS: Final = {"blosc", "zstd", "gzip"}
#: The codecs of Zarr v3 arrays lamina reads and writes (TensorStore's ``zarr3`` driver).
V3_CODECS: Final = frozenset({"bytes", "transpose", "blosc", "gzip", "zstd", "crc32c"})
#: The compressors of Zarr v2 arrays lamina reads and writes (TensorStore's ``zarr``).
V2_COMPRESSORS: Final = frozenset({"blosc", "zlib", "gzip", "bz2", "zstd"})


def _refuse_codecs(names: list[Any], known: frozenset[str], where: str, what: str) -> None:
    """An array whose codecs lamina cannot decode is refused when it is opened, not at
    its first read."""
    unknown = [str(n) for n in names if n not in known]
    if unknown:
        reads = f"it reads {', '.join(sorted(known))}" if known else "it reads none"
        raise ValueError(
            f"{where}: {what} {', '.join(unknown)} cannot be read or written by lamina "
            f"(TensorStore's Zarr drivers); {reads}"
        )


def _v3_array(meta: Mapping[str, Any], where: str) -> ArrayMeta:
    try:
        shape = _ints(meta["shape"], "shape", where)
        dtype = np.dtype(meta["data_type"])
        grid = meta["chunk_grid"]
        if grid.get("name") != "regular":
            raise ValueError(f"chunk grid {grid.get('name')!r} (lamina reads regular grids)")
        outer = _ints(grid["configuration"]["chunk_shape"], "chunk_shape", where)
        codecs = list(meta.get("codecs") or [])
        inner = outer
        shard_index = None
        if codecs and codecs[0].get("name") == "sharding_indexed":
            config = codecs[0]["configuration"]
            inner = _ints(config["chunk_shape"], "the shards' chunk_shape", where)
            codecs = list(config.get("codecs") or [])
            index = [c.get("name") for c in config.get("index_codecs") or []]
            if index not in (["bytes"], ["bytes", "crc32c"]):
                raise ValueError(f"shard index codecs {index} (lamina reads bytes, crc32c)")
            shard_index = (config.get("index_location", "end") == "end", "crc32c" in index)
        names = [c.get("name") for c in codecs]
        _refuse_codecs(names, V3_CODECS, where, "the codec")
        encoding = next((n for n in names if n in _V3_COMPRESSORS), None) or "raw"
        endian = next(
            ((c.get("configuration") or {}).get("endian") for c in codecs if c["name"] == "bytes"),
            "little",
        )
        dims = meta.get("dimension_names")
        dimension_names = (
            tuple(str(d) for d in dims) if dims and all(d is not None for d in dims) else None
        )
        key = meta.get("chunk_key_encoding") or {"name": "default"}
        default = key["name"] == "default"
        separator = (key.get("configuration") or {}).get("separator", "/" if default else ".")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(
            f"{where}/zarr.json is not Zarr v3 array metadata lamina reads: {exc}"
        ) from None
    return ArrayMeta(
        shape,
        dtype.newbyteorder("="),
        inner,
        outer,
        encoding,
        dimension_names,
        byte_order=">" if endian == "big" else "<",
        codecs=tuple(n for n in names if n not in ("bytes", "transpose")),
        transposed="transpose" in names,
        shard_index=shard_index,
        chunk_key=("c" + separator if default else "", separator),
        fill_value=meta.get("fill_value", 0),
    )


def _v2_array(meta: Mapping[str, Any], where: str) -> ArrayMeta:
    try:
        shape = _ints(meta["shape"], "shape", where)
        chunks = _ints(meta["chunks"], "chunks", where)
        stored = np.dtype(meta["dtype"])
        compressor = meta.get("compressor")
        encoding = "raw" if compressor is None else str(compressor["id"])
        if encoding != "raw":
            _refuse_codecs([encoding], V2_COMPRESSORS, where, "the compressor")
        if meta.get("filters"):
            ids = [f.get("id") for f in meta["filters"]]
            _refuse_codecs(ids, frozenset(), where, "the filter")
        separator = str(meta.get("dimension_separator") or ".")
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{where}/.zarray is not Zarr v2 array metadata lamina reads: {exc}"
        ) from None
    fill = meta.get("fill_value")
    return ArrayMeta(
        shape,
        stored.newbyteorder("="),  # the byte order is the file's business
        chunks,
        chunks,
        encoding,
        byte_order=">" if stored.byteorder == ">" else "<",
        order=str(meta.get("order", "C")),
        codecs=() if encoding == "raw" else (encoding,),
        chunk_key=("", separator),
        fill_value=0 if fill is None else fill,
    )


def _n5_array(meta: Mapping[str, Any], where: str) -> ArrayMeta:
    try:
        shape = _ints(meta["dimensions"], "dimensions", where)
        chunks = _ints(meta["blockSize"], "blockSize", where)
        dtype = np.dtype(meta["dataType"]).newbyteorder("=")
        compression = meta.get("compression") or {"type": "raw"}
        encoding = str(compression.get("type", "raw"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}/attributes.json is not N5 dataset metadata: {exc}") from None
    return ArrayMeta(shape, dtype, chunks, chunks, encoding)
