"""Raw access for tests of code built on lamina-precomputed (the contract suite's hooks
reach storage past the backend's own ``read`` and ``write``)."""

from __future__ import annotations

from typing import Any

from lamina.volumetric.index import VolumetricIndex

__all__ = ["damage_chunk"]


def damage_chunk(backend: Any, idx: VolumetricIndex) -> bool:
    """Cut short, through cloud-files (not the backend), the chunk file of a
    :class:`~lamina_precomputed.CVBackend` holding ``idx``'s first voxel, keeping its
    compression label: the chunk is present but no longer decodes. Returns ``True``
    (the volumetric suite's ``damage_stored_chunk`` hook); raises when no such chunk is
    stored."""
    from cloudfiles import CloudFiles

    scale = next(
        s for s in backend.info["scales"] if tuple(map(float, s["resolution"])) == idx.resolution
    )
    files = CloudFiles(backend.name)
    start = idx.start
    for name in files.list(prefix=scale["key"] + "/"):
        stem = name.split(".")[0]
        bounds = [tuple(int(v) for v in part.split("-")) for part in stem.split("/")[-1].split("_")]
        if all(bounds[d][0] <= start[d] < bounds[d][1] for d in range(3)):
            (found,) = files.get([stem], raw=True)
            body = found["content"]
            files.put(stem, body[: len(body) // 2], raw=True, compress=found["compress"])
            return True
    raise AssertionError(f"no chunk of {backend.name} holds {tuple(start)}")
