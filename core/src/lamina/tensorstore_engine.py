"""TensorStore as the engine under lamina's formats: what every format plugin that reads
and writes through TensorStore shares (lamina-precomputed, lamina-zarr).

* One ``tensorstore.Context`` per process and cache size (:func:`context`), so that every
  handle of a volume sees the others' writes; S3 and GCS requests retried
  :data:`STORAGE_RETRIES` times (``$LAMINA_STORAGE_RETRIES``) with at most
  :data:`MAX_RETRY_DELAY` seconds between tries, a request that receives nothing for
  :data:`STALL_SECONDS` failing: TensorStore's own defaults ride out a storm of 503s for
  many minutes, and set no time-out. Local files are not fsynced one by one
  (``file_io_sync: false``): TensorStore still writes each whole under a temporary name
  and renames it, as lamina's own writers do, and like them (and CloudVolume and
  zarr-python) leaves flushing to the operating system. Its default fsync made a Zarr
  volume's write take 2-3.5x as long (docs/behaviour.md, "No silent data loss").
* fork(): TensorStore aborts a process forked after its parent used it.
  :func:`forked_after_use` tells a format to take its other engine in such a process.
* :func:`kvstore_spec`: TensorStore's key-value store of a directory (``file://``,
  ``s3://`` with boto3's environment, ``gs://``).
* :func:`fault`: lamina's error for TensorStore's (damaged data, storage faults,
  permissions).

tensorstore itself is imported on first use: importing this module costs nothing.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Final

from lamina.concurrency import at_fork_in_child
from lamina.errors import DamagedChunkError

__all__ = [
    "MAX_RETRY_DELAY",
    "STALL_SECONDS",
    "STORAGE_RETRIES",
    "context",
    "fault",
    "forked_after_use",
    "kvstore_spec",
    "storage_retries",
    "write",
]

#: Tries after the first of a failed S3 or GCS request (``$LAMINA_STORAGE_RETRIES``
#: overrides): TensorStore's own default rides out a storm of 503s for many minutes.
STORAGE_RETRIES: Final = 4
#: Seconds between two tries at most (the delay doubles from 0.1 s).
MAX_RETRY_DELAY: Final = 2.0
#: A request that receives no byte for this many seconds fails (and is retried):
#: TensorStore sets no time-out of its own. ``$TENSORSTORE_CURL_LOW_SPEED_TIME_SECONDS``
#: overrides it.
STALL_SECONDS: Final = 30

# -- TensorStore and fork() -------------------------------------------------------------------
_used_in_pid: int | None = None  # the process that started TensorStore's threads
_inherited_use = False  # this process was forked after its parent used TensorStore


def _after_fork_in_child() -> None:
    global _inherited_use
    if _used_in_pid is not None:
        _inherited_use = True


at_fork_in_child(_after_fork_in_child)


def forked_after_use() -> bool:
    """Whether this process was forked after its parent used TensorStore (through
    :func:`context`): TensorStore would abort it, so its IO must go another way."""
    return _inherited_use


# -- contexts: one per process and cache size ----------------------------------------------
_contexts: dict[int, Any] = {}
_contexts_lock = threading.Lock()


def storage_retries() -> int:
    """``$LAMINA_STORAGE_RETRIES`` (an int >= 0), else :data:`STORAGE_RETRIES`."""
    text = os.environ.get("LAMINA_STORAGE_RETRIES")
    if text is None:
        return STORAGE_RETRIES
    try:
        retries = int(text)
    except ValueError:
        raise ValueError(f"LAMINA_STORAGE_RETRIES must be an integer >= 0; got {text!r}") from None
    if retries < 0:
        raise ValueError(f"LAMINA_STORAGE_RETRIES must be an integer >= 0; got {text!r}")
    return retries


def context(cache_bytes: int) -> Any:
    """The process's TensorStore context for a cache of ``cache_bytes`` (handles opened
    in one context share their cache, so every layer of a volume sees its writes)."""
    global _used_in_pid
    if _inherited_use:
        raise RuntimeError(
            "TensorStore cannot run in this process: it was forked after its parent used "
            "TensorStore, which aborts it. Start worker processes with the 'spawn' method "
            "(DataLoader(multiprocessing_context='spawn'), multiprocessing.get_context('spawn'))"
        )
    import tensorstore as ts

    with _contexts_lock:
        found = _contexts.get(cache_bytes)
        if found is None:
            # read by TensorStore's HTTP transport when it starts: a stalled request fails
            os.environ.setdefault("TENSORSTORE_CURL_LOW_SPEED_TIME_SECONDS", str(STALL_SECONDS))
            os.environ.setdefault("TENSORSTORE_CURL_LOW_SPEED_LIMIT_BYTES", "1")
            retries = {
                "max_retries": storage_retries(),
                "initial_delay": "0.1s",
                "max_delay": f"{MAX_RETRY_DELAY}s",
            }
            found = _contexts[cache_bytes] = ts.Context(
                {
                    "cache_pool": {"total_bytes_limit": int(cache_bytes)},
                    "file_io_sync": False,
                    "s3_request_retries": retries,
                    "gcs_request_retries": retries,
                }
            )
        _used_in_pid = os.getpid()
        return found


def kvstore_spec(cloudpath: str) -> dict[str, Any]:
    """TensorStore's key-value store of a directory (``file://`` or a plain local path,
    ``s3://``, ``gs://``); S3's endpoint and region come from the environment as for
    boto3."""
    protocol, _, rest = cloudpath.partition("://") if "://" in cloudpath else ("file", "", "")
    if protocol == "file":
        local = rest if "://" in cloudpath else cloudpath
        return {"driver": "file", "path": local.rstrip("/") + "/"}
    bucket, _, prefix = rest.partition("/")
    path = prefix.rstrip("/") + "/" if prefix else ""
    if protocol == "gs":
        return {"driver": "gcs", "bucket": bucket, "path": path}
    if protocol == "s3":
        spec: dict[str, Any] = {"driver": "s3", "bucket": bucket, "path": path}
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        spec["aws_region"] = region or "us-east-1"
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            spec["endpoint"] = endpoint
        return spec
    raise ValueError(f"TensorStore does not reach {protocol}:// paths ({cloudpath})")


def write(view: Any, data: Any, *, part_of_shards: bool) -> None:
    """Write ``data`` into the TensorStore ``view`` and wait. ``part_of_shards``: the
    write covers part of one or more shards, so it is one transaction, each shard read,
    changed and written back once (outside a transaction TensorStore 0.1.86 took 11x as
    long to write 64 chunks into part of a shard: it rewrote the shard for every chunk).
    TensorStore's ``ValueError`` is raised as it is (see :func:`fault`)."""
    if not part_of_shards:
        view.write(data).result()
        return
    import tensorstore as ts

    with ts.Transaction() as txn:
        view.with_transaction(txn).write(data).result()


def fault(exc: ValueError, where: str) -> Exception:
    """lamina's error for TensorStore's ``exc`` about ``where`` (a volume and its part): a
    chunk that does not decode is a :class:`~lamina.errors.DamagedChunkError`; a storage
    fault an ``OSError``; a refused permission a ``PermissionError``; anything else is
    TensorStore's own error."""
    text = str(exc)
    code = text.split(":", 1)[0]
    if code in ("DATA_LOSS", "FAILED_PRECONDITION") or "decod" in text.lower():
        return DamagedChunkError(f"a stored chunk of {where} does not decode: {text}")
    if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "RESOURCE_EXHAUSTED"):
        return OSError(f"storage fault reading or writing {where}: {text}")
    if code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
        return PermissionError(f"{where}: {text}")
    return exc
