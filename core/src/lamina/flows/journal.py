"""The journal of a flow run: which chunks are finished, on disk, for ``resume=True``.

One small text file per run, named after a hash of what the run does (the flow, its
destination, region, resolution and task size, and its other parameters), so that
running the same command again finds it. The first line is a JSON header with that
description and the number of chunks; each later line is the number of one finished
chunk, appended (and flushed) by the process that runs the flow as soon as the chunk's
write has returned. A run killed at any moment therefore leaves a journal that lists
only chunks whose data is stored; ``resume=True`` skips exactly those.

Journals live in ``journal_dir`` (default: ``$LAMINA_JOURNAL_DIR``, else
``.lamina/journals`` in the current directory). A run without ``resume`` starts its
journal afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["Journal", "default_journal_dir"]


def default_journal_dir() -> Path:
    """``$LAMINA_JOURNAL_DIR``, else ``.lamina/journals`` in the current directory."""
    return Path(os.environ.get("LAMINA_JOURNAL_DIR") or Path.cwd() / ".lamina" / "journals")


class Journal:
    """The finished chunks of one run (see the module docstring)."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header

    @classmethod
    def for_run(cls, description: dict[str, Any], journal_dir: str | Path | None) -> Journal:
        """The journal of the run ``description`` (JSON-able) in ``journal_dir``."""
        text = json.dumps(description, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        root = Path(journal_dir) if journal_dir is not None else default_journal_dir()
        name = f"{description.get('flow', 'run')}-{digest}.jsonl"
        return cls(root / name, json.loads(text))

    def finished(self, total: int) -> set[int]:
        """The chunks recorded as finished (empty when there is no journal yet).

        Raises ``ValueError`` when the journal belongs to a run of another size (it
        should not happen: the name is a hash of the run).
        """
        if not self.path.exists():
            return set()
        lines = self.path.read_text().splitlines()
        if not lines:
            return set()
        header = json.loads(lines[0])
        if header.get("chunks") != total:
            raise ValueError(
                f"the journal {self.path} is of a run of {header.get('chunks')} chunks, not "
                f"{total}; delete it to start afresh"
            )
        done = set()
        for line in lines[1:]:
            line = line.strip()
            if line.isdigit():  # a line cut short by a kill is ignored
                done.add(int(line))
        return {n for n in done if n < total}

    def start(self, total: int, resume: bool) -> set[int]:
        """Open the journal for this run: keep it (``resume``) or start afresh. Returns
        the chunks to skip."""
        done = self.finished(total) if resume else set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not done:
            header = {**self.header, "chunks": total}
            self.path.write_text(json.dumps(header, sort_keys=True) + "\n")
        self._file = self.path.open("a")
        return done

    def record(self, chunk: int) -> None:
        """Note that ``chunk`` is finished (appended and flushed at once)."""
        self._file.write(f"{chunk}\n")
        self._file.flush()

    def close(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
