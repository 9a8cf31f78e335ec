"""The backend: one ``KEY.json`` file per key in a directory."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from lamina import Backend, Capabilities, Layer
from lamina.backend import check_change_keys

_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


@attrs.frozen
class JsonDirBackend(Backend[str, Any]):
    """Keys are file names (letters, digits, ``_.-``); values anything JSON can hold."""

    capabilities = Capabilities(non_aligned_writes=True)

    path: Path = attrs.field(converter=lambda p: Path(p).expanduser().absolute())

    @property
    def name(self) -> str:
        return str(self.path)

    def _file(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"index must be a str of letters, digits and '_.-'; got {key!r}")
        return self.path / f"{key}.json"

    def read(self, idx: str) -> Any:
        file = self._file(idx)
        try:
            return json.loads(file.read_text())
        except FileNotFoundError:
            raise KeyError(f"{idx!r} is not stored in {self.name}") from None

    def write(self, idx: str, data: Any) -> None:
        file = self._file(idx)
        file.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data)  # fails before anything is written
        # Write beside the target and rename: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, file)

    def with_changes(self, **changes: Any) -> JsonDirBackend:
        check_change_keys(self, changes, {"name"})
        return JsonDirBackend(changes.get("name", self.path))

    def delete(self) -> None:
        for file in self.path.glob("*.json"):
            file.unlink()


def build_jsondir_layer(
    path: str | os.PathLike[str],
    readonly: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> Layer[str, Any]:
    """A layer over the JSON files in ``path`` (created on first write).

    ``layer["key"] = value`` stores ``value`` as ``path/key.json``; ``layer["key"]``
    reads it back. Keys are strs of letters, digits and ``_.-`` (anything else is a
    ``ValueError``), and a key never written reads as a ``KeyError``; values are anything
    JSON can hold (anything else fails in ``json.dumps``, before a file is touched). A
    write goes to a file beside the target that is then renamed over it, so readers
    never see half a file.

    Args:
        path: the directory (``~`` expanded, made absolute); it and its parents are
            created on the first write.
        readonly: refuse writes and ``delete()`` with a ``ReadonlyLayerError`` (an
            ``IOError``), raised before any processor runs; default ``False``.
        index_procs: callables ``key -> key`` applied in list order before every read
            and write (e.g. to prefix the keys).
        read_procs: data processors (value in, value out) and joint processors of reads,
            in the order of :func:`lamina.build_layer` (``read_procs[0]`` closest to the
            files).
        write_procs: the same for writes (``write_procs[0]`` closest to the user).

    Returns:
        The :class:`lamina.Layer`.
    """
    return Layer(
        backend=JsonDirBackend(path),
        readonly=readonly,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
