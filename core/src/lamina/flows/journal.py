"""The journal of a flow run: which tasks are finished, on disk, for ``resume=True``.

One small text file per run. It is named after a hash of what the run does (the flow,
its volumes, region, resolution and task size, and its function by an identity that
is the same in every process: :mod:`lamina.flows.identity`), so that running the same
thing again — after the driver was killed, from another directory, on another machine
sharing the directory — finds it; or after the run's ``run_id`` when one is given. The
first line is a JSON header with that description and the number of tasks (``"tasks"``;
journals written before tasks were called tasks say ``"chunks"``, and are read alike);
each later line is the number of one finished task, appended (and flushed) by the
process that runs the flow as soon as the task's writes have returned. A run killed at
any moment therefore leaves a journal that lists only tasks whose data is stored;
``resume=True`` skips exactly those.

Journals live in ``journal_dir``, by default a per-user state directory
(:func:`default_journal_dir`), never the current one, so where a command is run from
does not matter. A run without ``resume`` starts its journal afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from lamina.flows.checks import FlowArgumentError

__all__ = ["Journal", "default_journal_dir"]

#: Keys of a run's description that may differ between runs sharing a ``run_id``: the
#: identity of the run's function (naming the run is saying it is the same one).
_IDENTITY_KEYS = frozenset({"fn"})
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: The header's count of tasks: ``"tasks"``, or ``"chunks"`` in a journal written before
#: tasks were called tasks.
_COUNT_KEYS = ("tasks", "chunks")


def default_journal_dir() -> Path:
    """Where journals are kept: ``$LAMINA_JOURNAL_DIR``; else
    ``$XDG_STATE_HOME/lamina/journals``; else ``~/.local/state/lamina/journals``.

    A per-user directory, not the current one, so that ``resume`` finds a run's journal
    from any working directory.
    """
    chosen = os.environ.get("LAMINA_JOURNAL_DIR")
    if chosen:
        return Path(chosen).expanduser()
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "lamina" / "journals"


def _file_name(description: dict[str, Any], text: str, run_id: str | None) -> str:
    if run_id is None:
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return f"{description.get('flow', 'run')}-{digest}.jsonl"
    if _SAFE_NAME.fullmatch(run_id):
        return f"{run_id}.jsonl"
    # a name with other characters: a safe spelling of it, plus a hash keeping it unique
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._-")[:80] or "run"
    return f"{safe}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}.jsonl"


class Journal:
    """The finished tasks of one run (see the module docstring).

    After :meth:`start`, ``found`` says whether a resumed run found its journal
    (``None`` when the run was not resumed).
    """

    def __init__(self, path: Path, header: dict[str, Any], run_id: str | None = None) -> None:
        self.path = path
        self.header = header
        self.run_id = run_id
        self.found: bool | None = None

    @classmethod
    def for_run(
        cls,
        description: dict[str, Any],
        journal_dir: str | os.PathLike[str] | None,
        run_id: str | None = None,
    ) -> Journal:
        """The journal of the run ``description`` (JSON-able) in ``journal_dir``
        (default: :func:`default_journal_dir`), named after ``run_id`` when given, else
        after a hash of the description."""
        text = json.dumps(description, sort_keys=True, default=str)
        root = Path(journal_dir).expanduser() if journal_dir is not None else default_journal_dir()
        header = json.loads(text)
        if run_id is not None:
            header["run_id"] = run_id
        return cls(root / _file_name(description, text, run_id), header, run_id)

    def finished(self, total: int) -> set[int] | None:
        """The tasks recorded as finished; ``None`` when there is no journal yet.

        Raises :class:`~lamina.flows.checks.FlowArgumentError` (a ``ValueError``) when
        the journal belongs to another run: one of another
        size, or (a journal named by ``run_id``) one that did something else.
        """
        if not self.path.exists():
            return None
        text = self.path.read_text()
        # only whole lines count: a line a kill cut short ("12" of "123") is no record
        lines = text.split("\n")[:-1]
        if not lines:
            return None
        header = json.loads(lines[0])
        self._check_same_run(header)
        theirs = next((header[k] for k in _COUNT_KEYS if k in header), None)
        if theirs != total:
            raise FlowArgumentError(
                f"the journal {self.path} is of a run of {theirs} tasks, not "
                f"{total}; it is another run's. Give this run another run_id, or run it "
                "without resume to start its journal afresh"
            )
        done = set()
        for line in lines[1:]:
            if line.isdigit():
                done.add(int(line))
        return {n for n in done if n < total}

    def _check_same_run(self, header: dict[str, Any]) -> None:
        """Refuse resuming from a journal whose run did something else (the same
        ``run_id`` given to two different runs): its task numbers are other boxes."""
        ignored = {*_COUNT_KEYS, "run_id", *_IDENTITY_KEYS}
        theirs = {k: v for k, v in header.items() if k not in ignored}
        ours = {k: v for k, v in self.header.items() if k not in ignored}
        if theirs == ours:
            return
        differ = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
        listed = "; ".join(
            f"{k}: {json.dumps(theirs.get(k))} there, {json.dumps(ours.get(k))} now" for k in differ
        )
        raise FlowArgumentError(
            f"the journal {self.path} is of another run ({listed}): resuming from it would "
            "skip tasks this run has not done. Give this run another run_id, or run it "
            "without resume to start its journal afresh. Nothing was changed."
        )

    def start(self, total: int, resume: bool) -> set[int]:
        """Open the journal for this run: keep it (``resume``) or start afresh. Returns
        the tasks to skip; sets ``found``."""
        done: set[int] = set()
        if resume:
            recorded = self.finished(total)
            self.found = recorded is not None
            done = recorded or set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not done:
            header = {**self.header, "tasks": total}
            self.path.write_text(json.dumps(header, sort_keys=True) + "\n")
        if done:  # drop a line a kill cut short: the next record must not extend it
            data = self.path.read_bytes()
            whole = data.rfind(b"\n") + 1
            if whole < len(data):
                os.truncate(self.path, whole)
        self._file = self.path.open("a")
        return done

    def record(self, task: int) -> None:
        """Note that task number ``task`` is finished (appended and flushed at once)."""
        self._file.write(f"{task}\n")
        self._file.flush()

    def close(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
