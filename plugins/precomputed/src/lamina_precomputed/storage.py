"""The files of a precomputed volume: chunk and shard files, each stored in exactly one form.

cloud-files (CloudVolume's storage layer) keeps a gzip-compressed object under its own
name on S3 and GCS (``Content-Encoding: gzip``) but as ``<name>.gz`` on local disk and
in ``mem://`` (``.br``, ``.zstd``, ``.xz``, ``.bz2`` likewise), and reads whichever
form it finds first — in an order that changes as it goes. A write in another
compression than the stored one therefore left the old file beside the new one, and
later reads returned either. :class:`FileStore` writes one form and removes the
others, so every process reads what was written; where several forms exist already
(a volume written before), it reads the newest file on local disk and, in ``mem://``
(which keeps no times), the form cloud-files itself would read.

Local files are read and written directly (a write goes to a temporary file renamed
into place, so a reader never sees half a chunk); ``mem://`` goes to cloud-files'
in-process dictionary; everything else (``s3://``, ``gs://``, ``http(s)://``) through
cloud-files. A file that is present but does not decompress is a
:class:`~lamina_precomputed.codecs.DamagedChunkError` naming it; only an absent file
is ``None``.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, overload

from lamina.errors import LaminaError
from lamina.scratch import read_span, thread_buffer
from lamina_precomputed.codecs import DamagedChunkError
from lamina_precomputed.local_forms import FormIndex

__all__ = [
    "FORMS",
    "FileStore",
    "MissingCredentialsError",
    "RangeReader",
    "mem_restore",
    "mem_snapshot",
]


class MissingCredentialsError(LaminaError, PermissionError):
    """Object storage needs credentials that were not found; the message says which."""


#: A stored file's possible forms: suffix on local disk and in ``mem://``, and the
#: compression it stands for (cloud-files' names).
FORMS: tuple[tuple[str, str | None], ...] = (
    ("", None),
    (".gz", "gzip"),
    (".br", "br"),
    (".zstd", "zstd"),
    (".xz", "xz"),
    (".bz2", "bzip2"),
)
_SUFFIX = {compression: suffix for suffix, compression in FORMS}
_COMPRESSION = dict(FORMS)
_SUFFIXES = tuple(suffix for suffix, _ in FORMS)
#: Which forms of a local file exist, from directory listings (one stat instead of six).
_LOCAL_FORMS = FormIndex(_SUFFIXES)

#: Files up to this size are read into a thread's scratch buffer by ``get_transient``.
SCRATCH_LIMIT = 8 * 2**20

#: A part of a chunk file to read: (the whole file's expected size, first byte, end byte).
Span = tuple[int, int, int]


def _read_into_scratch(path: str, span: Span | None) -> bytes | memoryview:
    """The whole file at ``path`` as a view of this thread's scratch buffer when it fits
    :data:`SCRATCH_LIMIT`, else as new bytes. With ``span`` and a file of its expected
    size, only the span's bytes are read, at their own place in the view (the rest is
    stale); a file of another size is read whole. A short read returns what it got
    (the decoder calls the chunk damaged)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size  # of the version this descriptor opened
        if size > SCRATCH_LIMIT or size == 0:  # 0: perhaps a file system that cannot say
            with open(fd, "rb", buffering=0, closefd=False) as file:
                return bytes(file.readall())
        view = thread_buffer("precomputed-chunk", size)
        first, last = (span[1], span[2]) if span is not None and span[0] == size else (0, size)
        got = read_span(fd, view, first, last)
        return view if got == last - first else view[: first + got]
    finally:
        os.close(fd)


def compression_name(compress: Any) -> str | None:
    """cloud-files' name of a ``compress`` option: ``None`` for no compression."""
    if compress in (None, False, "", "raw"):
        return None
    if compress is True or compress in ("gzip", "gz"):
        return "gzip"
    if compress in ("bz2", "bzip2"):
        return "bzip2"
    if compress in ("xz", "lzma"):
        return "xz"
    if compress in ("br", "zstd"):
        return str(compress)
    raise ValueError(
        f"compress must be False, True/'gzip', 'br', 'zstd', 'xz' or 'bzip2'; got {compress!r}"
    )


class FileStore:
    """The files under one cloud path (``file://``, ``mem://``, ``s3://``, ``gs://``, …)."""

    def __init__(self, cloudpath: str, secrets: Any = None, use_https: bool = False) -> None:
        self.cloudpath = cloudpath
        self.protocol = cloudpath.split("://", 1)[0]
        self._secrets = secrets
        self._use_https = use_https
        self._local_root = cloudpath[len("file://") :] if self.protocol == "file" else None
        self._remote: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileStore({self.cloudpath!r})"

    # -- reading ----------------------------------------------------------------------------
    def get(self, name: str) -> bytes | None:
        """The content of ``name``, decompressed; ``None`` when no form of it exists."""
        if self._local_root is not None:
            return self._get_local(name)
        if self.protocol == "mem":
            return self._get_mem(name)
        return self._get_remote(name)

    def get_transient(self, name: str, span: Span | None = None) -> bytes | memoryview | None:
        """As :meth:`get`, but an uncompressed local file of at most
        :data:`SCRATCH_LIMIT` bytes is read into this thread's scratch buffer and returned
        as a view of it, valid until this thread's next ``get_transient``: a read pastes
        its chunk and lets go. A fresh buffer per chunk costs page faults in processes
        where glibc serves each one from a new mapping (dask's workers set
        ``MALLOC_TRIM_THRESHOLD_``, which does that for anything over 128 KiB). With
        ``span`` (the file's expected size, first and end byte) a file of that size is
        read only there, at the bytes' own place in the view; the rest is stale."""
        if self._local_root is None:
            return self.get(name)
        return self._get_local(name, transient=True, span=span)

    def open_ranges(self, name: str) -> RangeReader | None:
        """A reader of byte ranges of ``name`` (a shard file), ``None`` when it does not
        exist. Every range a reader returns comes from one version of the file: a local
        file is read through one open handle (writes replace files by renaming, so the
        handle keeps the version it opened); a stored object with a compression label is
        fetched whole once, since its byte ranges are of the compressed form."""
        if self._local_root is not None:
            path = os.path.join(self._local_root, name)
            try:
                return _FileRanges(open(path, "rb"))  # closed by the reader
            except FileNotFoundError:
                content = self._get_local(name)  # a compressed form: read it whole
                return None if content is None else _BytesRanges(content)
        if self.protocol == "mem":
            content = self._get_mem(name)
            return None if content is None else _BytesRanges(content)
        return _RemoteRanges(self, name)

    def _get_range_remote(self, name: str, start: int, end: int) -> tuple[bytes | None, Any]:
        with self._remote_errors():
            (result,) = self._cloudfiles().get(
                [{"path": name, "start": start, "end": end}], raw=True
            )
        raw = result["content"]
        return (None if raw is None else bytes(raw)), result.get("compress")

    @overload
    def _get_local(
        self, name: str, *, listed: bool = ..., transient: Literal[False] = ..., span: None = ...
    ) -> bytes | None: ...

    @overload
    def _get_local(
        self, name: str, *, listed: bool = ..., transient: bool, span: Span | None = ...
    ) -> bytes | memoryview | None: ...

    def _get_local(
        self, name: str, *, listed: bool = True, transient: bool = False, span: Span | None = None
    ) -> bytes | memoryview | None:
        """The newest stored form of ``name``, decompressed; which forms exist comes from
        the directory's listing where it can be trusted (``listed``), else from a stat
        of each form. ``transient``: an uncompressed form is read into this thread's
        scratch buffer (:meth:`get_transient`)."""
        assert self._local_root is not None
        path = os.path.join(self._local_root, name)
        present = _LOCAL_FORMS.present(path) if listed else None
        if present is None or len(present) > 1:
            present = _newest_form(path, _SUFFIXES if present is None else present)
        if not present:
            return None
        suffix = present[0]
        try:
            if transient and not suffix:
                return _read_into_scratch(path, span)
            with open(path + suffix, "rb", buffering=0) as file:
                raw = file.readall()
        except FileNotFoundError:  # replaced since the listing or the stat
            return self._get_local(name, listed=False, transient=transient, span=span)
        return self._decompress(raw, _COMPRESSION[suffix], name + suffix)

    def _mem_data(self) -> tuple[dict[str, Any], str]:
        from cloudfiles.connectionpools import MEMORY_DATA

        rest = self.cloudpath[len("mem://") :]
        bucket, _, prefix = rest.partition("/")
        return MEMORY_DATA.setdefault(bucket, {}), prefix

    def _get_mem(self, name: str) -> bytes | None:
        data, prefix = self._mem_data()
        key = f"{prefix}/{name}" if prefix else name
        for suffix, compression in (*FORMS[1:], FORMS[0]):  # cloud-files' own order
            raw = data.get(key + suffix)
            if raw is None:
                continue
            if hasattr(raw, "tobytes"):  # CloudVolume keeps raw mem:// chunks as arrays
                return bytes(raw.tobytes(order="F"))
            return self._decompress(bytes(raw), compression, name + suffix)
        return None

    def _get_remote(self, name: str) -> bytes | None:
        with self._remote_errors():
            (result,) = self._cloudfiles().get([name], raw=True)
        raw = result["content"]
        if raw is None:
            return None
        return self._decompress(raw, result.get("compress"), name)

    @staticmethod
    def _decompress(raw: bytes, compression: str | None, name: str) -> bytes:
        if not compression:
            return raw
        from cloudfiles import compression as codecs

        try:
            content: bytes = codecs.decompress(raw, compression, filename=name)
        except Exception as exc:
            raise DamagedChunkError(
                f"{name} is stored ({len(raw)} bytes, {compression}) but does not "
                f"decompress: {type(exc).__name__}: {exc}"
            ) from exc
        return content

    # -- writing ----------------------------------------------------------------------------
    def put_many(
        self,
        files: Mapping[str, Any],
        compress: Any = None,
        compress_level: int | None = None,
        cache_control: str | None = None,
        content_type: str | None = None,
    ) -> None:
        """Store each file in one form (``compress``) and remove its other forms. A file
        is bytes, a list of byte parts written one after another (a shard), or in
        ``mem://`` an array, kept as it is."""
        compression = compression_name(compress)
        if not files:
            return
        if self._local_root is None:  # parts are joined except on local disk
            files = {
                name: b"".join(content) if isinstance(content, list) else content
                for name, content in files.items()
            }
        if self._local_root is not None or self.protocol == "mem":
            for name, content in files.items():
                body = self._compress(content, compression, compress_level)
                if self._local_root is not None:
                    self._put_local(name, body, compression)
                else:
                    self._put_mem(name, body, compression)
            return
        with self._remote_errors():
            self._put_remote(files, compression, compress_level, cache_control, content_type)

    def _put_remote(
        self,
        files: Mapping[str, Any],
        compression: str | None,
        compress_level: int | None,
        cache_control: str | None,
        content_type: str | None,
    ) -> None:
        self._cloudfiles().puts(
            [
                {
                    "path": name,
                    "content": self._compress(content, compression, compress_level),
                    "compress": compression,
                    "cache_control": cache_control,
                    "content_type": content_type or "application/octet-stream",
                }
                for name, content in files.items()
            ],
            raw=True,  # compressed here; cloud-files labels the Content-Encoding
            parallel=1,
        )

    @staticmethod
    def _compress(content: Any, compression: str | None, level: int | None) -> Any:
        if compression is None:
            return content
        if isinstance(content, list):
            content = b"".join(content)
        from cloudfiles import compression as codecs

        body: bytes = codecs.compress(content, method=compression, compress_level=level)
        return body

    def _put_local(self, name: str, body: Any, compression: str | None) -> None:
        assert self._local_root is not None
        path = os.path.join(self._local_root, name)
        target = path + _SUFFIX[compression]
        directory = os.path.dirname(target)
        try:
            handle, tmp = tempfile.mkstemp(dir=directory, prefix=".lamina-")
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=directory, prefix=".lamina-")
        try:
            with os.fdopen(handle, "wb") as file:
                if isinstance(body, list):
                    file.writelines(body)
                else:
                    file.write(body)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            _unlink(tmp)
            raise
        for suffix, _ in FORMS:
            if path + suffix != target:
                _unlink(path + suffix)

    def _put_mem(self, name: str, body: Any, compression: str | None) -> None:
        data, prefix = self._mem_data()
        key = f"{prefix}/{name}" if prefix else name
        target = key + _SUFFIX[compression]
        data[target] = body
        for suffix, _ in FORMS:
            if key + suffix != target:
                data.pop(key + suffix, None)

    def delete_many(self, names: Iterable[str]) -> None:
        """Remove every form of each file (absent ones are fine)."""
        names = list(names)
        if not names:
            return
        if self._local_root is not None:
            for name in names:
                path = os.path.join(self._local_root, name)
                for suffix, _ in FORMS:
                    _unlink(path + suffix)
            return
        if self.protocol == "mem":
            data, prefix = self._mem_data()
            for name in names:
                key = f"{prefix}/{name}" if prefix else name
                for suffix, _ in FORMS:
                    data.pop(key + suffix, None)
            return
        with self._remote_errors():
            self._cloudfiles().delete(names)

    def _cloudfiles(self) -> Any:
        with self._lock:
            if self._remote is None:
                self._remote = self._connect()
            return self._remote

    def _connect(self) -> Any:
        """cloud-files for this path, its credentials found (or refused) up front, in one
        line, instead of cloud-files' printed warnings and google-auth's page of text."""
        from cloudfiles import CloudFiles

        secrets = self._secrets
        if self.protocol == "s3" and secrets is None:
            _check_aws_environment(self.cloudpath)
        files = CloudFiles(self.cloudpath, secrets=secrets, use_https=self._use_https)
        if self.protocol == "gs" and not self._use_https:
            # cloud-files prints warnings while it looks for Google credentials
            with (
                self._remote_errors(),
                contextlib.redirect_stdout(io.StringIO()),
                files._get_connection(),
            ):
                pass
        return files

    @contextlib.contextmanager
    def _remote_errors(self) -> Iterator[None]:
        """Missing credentials as one :class:`MissingCredentialsError` saying which; a
        server fault (5xx, after cloud-files' retries) as an ``OSError`` naming the path."""
        try:
            yield
        except Exception as exc:
            kind = type(exc).__name__
            if kind == "DefaultCredentialsError":
                raise MissingCredentialsError(
                    f"{self.cloudpath}: no Google credentials were found. Set "
                    "GOOGLE_APPLICATION_CREDENTIALS to a service account's key file, run "
                    "`gcloud auth application-default login`, or put the key in "
                    "~/.cloudvolume/secrets/google-secret.json; a public bucket can be "
                    "read without them with cv_kwargs={'use_https': True}"
                ) from None
            if kind in ("NoCredentialsError", "PartialCredentialsError"):
                raise MissingCredentialsError(
                    f"{self.cloudpath}: no AWS credentials were found. Set "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL_S3 "
                    "for an S3-compatible server), or put them in "
                    "~/.cloudvolume/secrets/aws-secret.json or ~/.aws/credentials"
                ) from None
            if _server_fault(exc):
                raise OSError(f"storage fault reading or writing {self.cloudpath}: {exc}") from exc
            raise


def _server_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a storage server's 5xx answer (botocore's or google's)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return isinstance(status, int) and status >= 500
    code = getattr(exc, "code", None)
    return isinstance(code, int) and code >= 500


def _check_aws_environment(cloudpath: str) -> None:
    """What cloud-files would trip over in the environment's AWS credentials, said first:
    it reads AWS_SESSION_TOKEN whenever the key pair is set (a KeyError without it), and
    passes empty values on as credentials."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key is None and secret is None:
        return  # boto3 looks further: ~/.aws/credentials, instance roles
    if not (key and secret):
        empty = [
            n for n, v in (("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", secret)) if not v
        ]
        raise MissingCredentialsError(
            f"{cloudpath}: no AWS credentials: {' and '.join(empty)} "
            f"{'is' if len(empty) == 1 else 'are'} empty or unset. Set both, or unset both "
            "to use ~/.aws/credentials or ~/.cloudvolume/secrets/aws-secret.json"
        )
    if "AWS_SESSION_TOKEN" not in os.environ:
        raise MissingCredentialsError(
            f"{cloudpath}: AWS_ACCESS_KEY_ID is set but AWS_SESSION_TOKEN is not, and "
            "cloud-files needs it whenever the key is set: set AWS_SESSION_TOKEN too (an "
            "empty value when your credentials have no session token)"
        )


def _newest_form(path: str, suffixes: Iterable[str]) -> tuple[str, ...]:
    """The suffix of the newest existing ``path + suffix`` (a 1-tuple), or ``()``."""
    found: list[tuple[int, str]] = []
    for suffix in suffixes:
        try:
            found.append((os.stat(path + suffix).st_mtime_ns, suffix))
        except FileNotFoundError:
            continue
    return (max(found)[1],) if found else ()


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class RangeReader:
    """Byte ranges of one version of one stored file (see ``FileStore.open_ranges``)."""

    def read(self, start: int, end: int) -> bytes | None:
        """Bytes ``start:end`` (fewer at the end of the file); ``None`` when the file
        is gone."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handle, if any."""


class _FileRanges(RangeReader):
    def __init__(self, file: Any) -> None:
        self._file = file

    def read(self, start: int, end: int) -> bytes | None:
        self._file.seek(start)
        data: bytes = self._file.read(end - start)
        return data

    def close(self) -> None:
        self._file.close()


class _BytesRanges(RangeReader):
    def __init__(self, content: bytes) -> None:
        self._content = content

    def read(self, start: int, end: int) -> bytes | None:
        return self._content[start:end]


class _RemoteRanges(RangeReader):
    """Ranged requests; an object stored with a compression label is fetched whole on
    the first read (its ranges would be of the compressed bytes)."""

    def __init__(self, store: FileStore, name: str) -> None:
        self._store = store
        self._name = name
        self._whole: bytes | None = None

    def read(self, start: int, end: int) -> bytes | None:
        if self._whole is not None:
            return self._whole[start:end]
        data, compression = self._store._get_range_remote(self._name, start, end)
        if data is None or not compression:
            return data
        self._whole = self._store.get(self._name)
        return None if self._whole is None else self._whole[start:end]


# -- mem:// volumes travel by value ------------------------------------------------------------
def _mem_location(path: str) -> tuple[str, str]:
    rest = path[len("mem://") :]
    bucket, _, prefix = rest.partition("/")
    return bucket, (prefix + "/" if prefix else "")


def mem_snapshot(path: str) -> dict[str, Any]:
    """Every object stored under a ``mem://`` path (cloud-files' in-process store)."""
    from cloudfiles.connectionpools import MEMORY_DATA

    bucket, prefix = _mem_location(path)
    data = MEMORY_DATA.get(bucket, {})
    return {k: v for k, v in list(data.items()) if k.startswith(prefix)}


def mem_restore(path: str, objects: dict[str, Any]) -> None:
    """Put a snapshot back, unless this process already holds the volume."""
    from cloudfiles.connectionpools import MEMORY_DATA

    bucket, prefix = _mem_location(path)
    data = MEMORY_DATA.setdefault(bucket, {})
    if any(k.startswith(prefix) for k in data):
        return
    data.update(objects)
