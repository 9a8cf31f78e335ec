"""lamina-precomputed: Neuroglancer precomputed volumes as lamina layers.

``build_cv_layer(path, ...)`` builds a :class:`lamina.VolumetricLayer` over a volume on
local disk, ``file://``, ``gs://``, ``s3://`` or ``mem://``, and ``build_ts_layer`` the
same on the TensorStore engine; ``CVBackend`` is their backend, reading and writing
through TensorStore or lamina's CloudVolume-compatible chunk IO
(:mod:`lamina_precomputed.engine`); ``lamina info PATH`` describes a volume. Names are
imported on first use, so ``import lamina_precomputed`` imports neither CloudVolume nor
TensorStore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "build_cv_layer": "lamina_precomputed.builder",
    "build_ts_layer": "lamina_precomputed.builder",
    "CVBackend": "lamina_precomputed.backend",
    "DEFAULT_CV_KWARGS": "lamina_precomputed.backend",
    "InfoSpec": "lamina_precomputed.info",
    "InfoMismatchError": "lamina_precomputed.info",
    "InfoNotFoundError": "lamina_precomputed.info",
    "normalize_path": "lamina_precomputed.info",
    "read_info": "lamina_precomputed.info",
    "update_info": "lamina_precomputed.info",
}

__all__ = [
    "DEFAULT_CV_KWARGS",
    "CVBackend",
    "InfoMismatchError",
    "InfoNotFoundError",
    "InfoSpec",
    "build_cv_layer",
    "build_ts_layer",
    "normalize_path",
    "read_info",
    "update_info",
]

if TYPE_CHECKING:
    from lamina_precomputed.backend import DEFAULT_CV_KWARGS, CVBackend
    from lamina_precomputed.builder import build_cv_layer, build_ts_layer
    from lamina_precomputed.info import (
        InfoMismatchError,
        InfoNotFoundError,
        InfoSpec,
        normalize_path,
        read_info,
        update_info,
    )


__getattr__ = module_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
