"""Open or create any dataset by path, in whichever installed format it is.

Plugins register *path openers* (``lamina.PathOpener``) under a format name through the
path-opener hook; :func:`open_path` asks each whether it recognises a path
(``precomputed://…``, ``s3://…``, ``file.h5:/dataset``) and opens it with the one that
does, so every command accepts every installed format. ``format=`` (``--format``)
names the format instead of guessing it. A path nothing recognises gets an error listing
the known forms and, where the form belongs to a lamina plugin, the ``pip install`` that
adds it; a path two formats claim alike gets an error naming both.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from lamina.errors import AmbiguousPathError, PathNotFoundError, UnknownNameError
from lamina.plugins.contributions import PathOpener, VolumeTemplate

__all__ = [
    "add_format_argument",
    "destination_exists",
    "open_or_create_path",
    "open_path",
    "template_of",
]


def _openers() -> list[tuple[str, PathOpener]]:
    from lamina.plugins.manager import get_host

    return [(e.name, e.obj) for e in get_host().registry.entries("path_openers")]


def _named(format: str) -> PathOpener:
    """The opener registered as ``format`` (``format=`` / ``--format``)."""
    from lamina.plugins.manager import get_host

    opener: PathOpener = get_host().lookup("path_openers", format)
    return opener


def _engine_options(opener: PathOpener, engine: str | None) -> dict[str, Any]:
    """``{"engine": engine}`` for an opener that offers ``engine``; nothing when no
    engine is asked for or the format has a single one (``--engine`` does not apply)."""
    if engine is None or not opener.engines:
        return {}
    if engine not in opener.engines:
        forms = ", ".join(opener.forms[:1]) or "this format"
        raise ValueError(
            f"engine must be one of {', '.join(map(repr, opener.engines))} for {forms}; "
            f"got {engine!r}"
        )
    return {"engine": engine}


def _create(path: str, opener: PathOpener, like: VolumeTemplate, engine: str | None) -> Any:
    """``opener.create(path, like)``; a template with a shard size is refused, naming the
    path, by a format that does not shard."""
    assert opener.create is not None
    if like.shard_size is not None and not opener.shards:
        raise ValueError(
            f"{path}: its format stores no shards; leave out the shard size "
            f"(--dst-shard-size), or write a format that shards (precomputed)"
        )
    return opener.create(path, like, **_engine_options(opener, engine))


def _choose(path: str, candidates: list[tuple[str, PathOpener]], doing: str) -> PathOpener:
    """The candidate of highest priority; two of the same are an error listing both."""
    top = max(opener.priority for _, opener in candidates)
    best = [(name, opener) for name, opener in candidates if opener.priority == top]
    if len(best) > 1:
        names = ", ".join(name for name, _ in best)
        raise AmbiguousPathError(
            f"{path!r} could be {doing} by several formats ({names}): name one with "
            f"format= (--format {best[0][0]}, say)"
        )
    return best[0][1]


def open_path(
    path: str, format: str | None = None, *, engine: str | None = None, **options: Any
) -> Any:
    """Open ``path`` as a layer with the format that recognises it, or with ``format``
    (a registered path opener's name: ``"precomputed"``, ``"hdf5"``…), on ``engine``
    where the format has several (``None``: its default; ignored by formats that have
    one)."""
    from lamina.plugins.known import distribution_for_path, install_hint

    if format is not None:
        opener = _named(format)
        return opener.open(path, **_engine_options(opener, engine), **options)
    openers = _openers()
    candidates = [(name, opener) for name, opener in openers if opener.recognises(path)]
    if candidates:
        opener = _choose(path, candidates, "opened")
        return opener.open(path, **_engine_options(opener, engine), **options)
    forms = [form for _, opener in openers for form in opener.forms]
    hint = ""
    dist = distribution_for_path(path)
    local = os.path.expanduser(path.split(":/", 1)[0])
    if dist is None and "://" not in path and not os.path.exists(local):
        raise PathNotFoundError(f"{path}: no such file or directory")
    if dist is not None:
        hint = f" Paths like this are opened by {dist}: {install_hint(dist)}."
    raise UnknownNameError(
        f"no installed path opener recognises {path!r}.{hint} Recognised forms: "
        f"{', '.join(forms) if forms else '(no path opener is installed)'}; or name the "
        "format with format= (--format)."
    )


def _creators(path: str) -> list[tuple[str, PathOpener]]:
    """The openers that create volumes at paths like ``path``."""
    return [
        (name, opener)
        for name, opener in _openers()
        if opener.create is not None and (opener.can_create or opener.recognises)(path)
    ]


def destination_exists(path: str, format: str | None = None) -> bool:
    """Whether :func:`open_or_create_path` would open a volume stored at ``path`` (True)
    or create one (False), found without creating anything: a command checks its
    arguments against the new volume's geometry before it creates it. Raises
    :class:`~lamina.errors.UnknownNameError` when it could do neither."""
    if format is not None:
        opener = _named(format)
        return opener.exists is not None and opener.exists(path)
    creators = _creators(path)
    if any(opener.exists is not None and opener.exists(path) for _, opener in creators):
        return True
    if creators:
        return False
    if any(opener.recognises(path) for _, opener in _openers()):
        return True
    forms = [f for _, opener in _openers() if opener.create is not None for f in opener.forms]
    raise UnknownNameError(
        f"nothing is stored at {path!r} and no installed plugin creates volumes at paths "
        f"like it. Paths new volumes can be made at: {', '.join(forms) or '(none)'}; or "
        "name the format with format= (--format)."
    )


def open_or_create_path(
    path: str,
    like: VolumeTemplate,
    format: str | None = None,
    *,
    engine: str | None = None,
    **options: Any,
) -> Any:
    """The volume at ``path`` opened for writing, or, when nothing is stored there yet, a
    new one made like ``like`` by the format that creates such paths (or ``format``), on
    ``engine`` where the format has several.

    A caller that must not leave a volume behind on bad arguments checks them first,
    against ``like`` when :func:`destination_exists` says the volume is new."""
    writable = {"readonly": False, **options}
    if format is not None:
        opener = _named(format)
        if opener.exists is not None and opener.exists(path):
            return opener.open(path, **_engine_options(opener, engine), **writable)
        if opener.create is None:
            raise UnknownNameError(f"the format {format!r} cannot create volumes")
        return _create(path, opener, like, engine)
    creators = _creators(path)
    stored = [(n, o) for n, o in creators if o.exists is not None and o.exists(path)]
    if stored:
        opener = _choose(path, stored, "opened")
        return opener.open(path, **_engine_options(opener, engine), **writable)
    if creators:
        return _create(path, _choose(path, creators, "created"), like, engine)
    destination_exists(path)  # raises, naming the forms new volumes can be made at
    return open_path(path, engine=engine, **writable)


def template_of(
    layer: Any,
    resolutions: Sequence[Any] | None = None,
    chunk_size: Sequence[int] | None = None,
    shard_size: Sequence[int] | None = None,
) -> VolumeTemplate:
    """A :class:`VolumeTemplate` of a volumetric layer's volume (its finest scale's box
    and chunking), with other ``resolutions`` or ``chunk_size`` if given, and
    ``shard_size`` (unsharded by default)."""
    from lamina.volumetric.backend import VolumetricBackend

    backend = getattr(layer, "backend", layer)
    if not isinstance(backend, VolumetricBackend):
        raise TypeError(f"a volumetric layer is needed; got {type(layer).__name__}")
    finest = backend.resolutions[0]
    bounds = backend.get_bounds(finest).bbox
    chunk = backend.get_chunk_size(finest) if chunk_size is None else chunk_size
    encoding = None
    own = getattr(backend, "describe", None)
    if callable(own):
        scales = own().get("scales") or [{}]
        encoding = scales[0].get("encoding")
    res = backend.resolutions if resolutions is None else resolutions
    return VolumeTemplate(
        data_type=str(backend.dtype),
        num_channels=backend.num_channels,
        volume_type=backend.volume_type,
        resolutions=tuple(tuple(float(v) for v in r) for r in res),  # type: ignore[misc]
        bbox_start=tuple(float(v) for v in bounds.start),  # type: ignore[arg-type]
        bbox_end=tuple(float(v) for v in bounds.end),  # type: ignore[arg-type]
        chunk_size=tuple(int(v) for v in chunk),  # type: ignore[arg-type]
        encoding=encoding,
        shard_size=None if shard_size is None else tuple(int(v) for v in shard_size),  # type: ignore[arg-type]
    )


def add_format_argument(parser: argparse.ArgumentParser, of: str = "PATH") -> None:
    """``--format NAME`` for a command that opens or creates paths: the format of ``of``
    instead of the one its path looks like (``lamina plugins`` lists the formats); and
    ``--engine NAME``, the engine of every path whose format has several."""
    parser.add_argument(
        "--engine",
        metavar="NAME",
        help="the engine reading and writing the paths whose format has several "
        "(precomputed: auto, tensorstore or cloudvolume); by default the format's choice",
    )
    parser.add_argument(
        "--format",
        metavar="NAME",
        help=f"the format of {of} (precomputed, hdf5…: `lamina plugins` lists the path "
        "openers); by default the one that recognises the path",
    )
