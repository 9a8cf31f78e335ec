"""Which engine reads and writes a precomputed scale: TensorStore or lamina's own chunk IO.

Two engines read and write the same files:

* ``"tensorstore"``: TensorStore's C++ ``neuroglancer_precomputed`` driver
  (:mod:`lamina_precomputed.tensorstore_io`): chunk IO, decoding and sharding off the
  GIL.
* ``"cloudvolume"``: lamina's CloudVolume-compatible chunk IO on cloud-files,
  CloudVolume's storage layer (:mod:`lamina_precomputed.scale_io`); it reads and writes
  everything CloudVolume does, including its local gzip chunks (``key.gz``), compresso
  and crackle, ``mem://`` and the options TensorStore has no equivalent for.

``engine="auto"`` (the default) takes the faster engine where both serve a scale
exactly, as measured by ``bench/bench_precomputed.py`` and recorded in bench/README.md:
TensorStore on S3 and GCS (its C++ HTTP client and shard-index caching: 2x the
CloudVolume engine's remote reads, far more on sharded scales), the CloudVolume engine
on local files (whole-volume reads 2x TensorStore's, writes 1.5x, 1-voxel reads 20 µs
less, small reads in ``DataLoader`` workers 1.4x). ``engine="tensorstore"`` takes
TensorStore wherever it serves a scale exactly and is refused, naming the reasons
(:func:`tensorstore_obstacles`, :func:`scale_obstacles`), where it cannot;
``$LAMINA_PRECOMPUTED_ENGINE=tensorstore`` is the same preference for every volume opened
without ``engine=``, falling back to the CloudVolume engine where TensorStore cannot go.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final, Literal

from lamina_precomputed.options import compression_for
from lamina_precomputed.storage import FORMS, compression_name

__all__ = [
    "ENGINES",
    "ENGINE_VARIABLE",
    "PREFER_TENSORSTORE",
    "EngineName",
    "check_engine",
    "choose_engine",
    "choose_scale_engine",
    "compressed_chunks_written",
    "note_compressed_chunks",
    "scale_obstacles",
    "tensorstore_obstacles",
]

EngineName = Literal["tensorstore", "cloudvolume"]
#: The engines, and ``"auto"``: what ``engine=`` accepts.
ENGINES: Final = ("auto", "tensorstore", "cloudvolume")
#: The request ``$LAMINA_PRECOMPUTED_ENGINE=tensorstore`` stands for: TensorStore wherever
#: it serves a scale exactly, the CloudVolume engine elsewhere (never an error).
PREFER_TENSORSTORE: Final = "tensorstore, where it serves exactly"

_TS_ENCODINGS: Final = frozenset({"raw", "jpeg", "png", "compressed_segmentation"})
#: The suffixes of CloudVolume's compressed local chunks, which TensorStore reads as absent.
_COMPRESSED_SUFFIXES: Final = tuple(suffix for suffix, _ in FORMS if suffix)
#: A scale directory is searched for compressed chunks among this many entries at most.
_SCAN_LIMIT: Final = 100_000


#: The environment variable naming the engine of volumes opened without ``engine=``.
ENGINE_VARIABLE: Final = "LAMINA_PRECOMPUTED_ENGINE"


def check_engine(engine: str | None) -> str:
    """The engine request of ``engine``, one of :data:`ENGINES` (``None``:
    ``$LAMINA_PRECOMPUTED_ENGINE``, where ``tensorstore`` is :data:`PREFER_TENSORSTORE`;
    else ``"auto"``); anything else is a ``ValueError`` naming them."""
    if engine is None:
        engine = os.environ.get(ENGINE_VARIABLE) or "auto"
        if engine not in ENGINES:
            raise ValueError(
                f"${ENGINE_VARIABLE} must be one of {', '.join(ENGINES)}; got {engine!r}"
            )
        return PREFER_TENSORSTORE if engine == "tensorstore" else engine
    if engine == PREFER_TENSORSTORE:
        return engine  # a backend's own request, carried through pickles and changes
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}; got {engine!r}")
    return engine


def tensorstore_obstacles(path: str, kwargs: Mapping[str, Any]) -> list[str]:
    """Why TensorStore cannot serve the volume at ``path`` with the options ``kwargs``
    exactly as the CloudVolume engine would (empty: it can)."""
    reasons = []
    if not tensorstore_installed():
        reasons.append("tensorstore is not installed (pip install tensorstore)")
    protocol = path.split("://", 1)[0]
    if protocol not in ("file", "s3", "gs"):
        reasons.append(f"TensorStore does not reach {protocol}:// paths")
    if not kwargs["fill_missing"]:
        reasons.append("fill_missing=False: TensorStore reads a missing chunk as zeros")
    if kwargs.get("background_color", 0) != 0:
        reasons.append("a background_color other than 0")
    if kwargs["cache"]:
        reasons.append("the disk cache (cache=True)")
    if kwargs["overwrite_partial_chunks"]:
        reasons.append("overwrite_partial_chunks=True")
    if kwargs.get("cdn_cache") not in (None, True):
        reasons.append("cdn_cache (TensorStore sets no Cache-Control)")
    if kwargs.get("secrets") is not None:
        reasons.append("secrets given in cv_kwargs (TensorStore takes its own credentials)")
    if protocol == "s3" and not _aws_credentials_for_tensorstore():
        reasons.append("no AWS credentials TensorStore reads (AWS_ACCESS_KEY_ID, ~/.aws)")
    if protocol == "gs" and not _gcs_credentials_for_tensorstore():
        reasons.append(
            "no Google credentials TensorStore reads (GOOGLE_APPLICATION_CREDENTIALS, "
            "gcloud's application default credentials)"
        )
    return reasons


def scale_obstacles(
    path: str, info: Mapping[str, Any], scale: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> list[str]:
    """Why TensorStore cannot serve one scale of the volume at ``path``, with the options
    ``kwargs``, exactly (empty: it can)."""
    reasons = []
    encoding = str(scale.get("encoding", "raw"))
    compress = compression_name(compression_for(kwargs["compress"], encoding))
    if compress is not None:
        reasons.append(f"{compress} compression of its chunk files (TensorStore writes none)")
    if encoding not in _TS_ENCODINGS:
        reasons.append(f"TensorStore has no {encoding} encoding")
    if path.startswith("file://") and not scale.get("sharding"):
        found = _compressed_chunk(os.path.join(path[len("file://") :], str(scale["key"])))
        if found:
            reasons.append(
                f"its chunks are stored compressed ({found}), which TensorStore reads as absent"
            )
    return reasons


#: Local volumes this process wrote compressed chunk files into (``key.gz``...).
_compressed_local: set[str] = set()


def note_compressed_chunks(cloudpath: str) -> None:
    """Record that compressed chunk files were written under the local ``cloudpath``:
    TensorStore would read them as absent, so this process's TensorStore readers of the
    volume hand their reads to the CloudVolume engine from now on."""
    _compressed_local.add(cloudpath)


def compressed_chunks_written(cloudpath: str) -> bool:
    """Whether :func:`note_compressed_chunks` was called for ``cloudpath``."""
    return cloudpath in _compressed_local


def choose_engine(requested: str, where: str, reasons: list[str]) -> EngineName:
    """The engine for ``requested`` (see :func:`check_engine`) at ``where`` (a cloud path,
    or a path and a scale), given what stands in TensorStore's way; an explicit
    ``"tensorstore"`` that cannot be honoured is a ``ValueError`` naming every reason."""
    if requested == "cloudvolume":
        return "cloudvolume"
    if reasons:
        if requested == "tensorstore":
            raise ValueError(
                f"engine='tensorstore' cannot serve {where} exactly: {'; '.join(reasons)}. "
                "Use engine='cloudvolume' (or 'auto', which picks it where TensorStore "
                "cannot go)."
            )
        return "cloudvolume"
    if requested == "auto" and where.startswith("file://"):
        return "cloudvolume"  # the faster on local files (see the module)
    return "tensorstore"


def choose_scale_engine(
    requested: str,
    volume_engine: str,
    path: str,
    info: Mapping[str, Any],
    scale: Mapping[str, Any],
    kwargs: Mapping[str, Any],
) -> EngineName:
    """The engine of one scale of a volume whose engine is ``volume_engine``: the
    CloudVolume engine where the volume's is, else :func:`choose_engine` given the
    scale's own obstacles (a ``ValueError`` for an explicit ``"tensorstore"`` it stops)."""
    if volume_engine == "cloudvolume":
        return "cloudvolume"
    reasons = scale_obstacles(path, info, scale, kwargs)
    return choose_engine(requested, f"{path} (scale {scale['key']})", reasons)


def tensorstore_installed() -> bool:
    try:
        import tensorstore  # noqa: F401
    except ImportError:
        return False
    return True


def _compressed_chunk(directory: str) -> str | None:
    """The name of a compressed chunk file in ``directory``, among its first entries."""
    try:
        with os.scandir(directory) as entries:
            for count, entry in enumerate(entries):
                if entry.name.endswith(_COMPRESSED_SUFFIXES):
                    return entry.name
                if count >= _SCAN_LIMIT:
                    break
    except (FileNotFoundError, NotADirectoryError):
        return None
    return None


def _aws_credentials_for_tensorstore() -> bool:
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return True
    files = (
        os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.expanduser("~/.aws/credentials"),
    )
    return any(os.path.exists(f) for f in files)


def _gcs_credentials_for_tensorstore() -> bool:
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return True
    config = os.environ.get("CLOUDSDK_CONFIG") or os.path.expanduser("~/.config/gcloud")
    return os.path.exists(os.path.join(config, "application_default_credentials.json"))
