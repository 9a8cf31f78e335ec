"""What a run has done, as it goes and at its end: the progress bar, the tally of
finished tasks and the summary line.

Words: a *task* is one call of a flow's operation (one box of its task grid); a *chunk*
is a storage chunk of the destination. A task covers one or many chunks; the summary and
the progress bar count both (``4 tasks, 1,024 chunks, 86.0 MB in 0.5 s, 172 MB/s``) when
the flow says how many chunks a task writes (``chunks_per_task``, e.g.
:class:`StorageChunks`).

Each finished task is recorded once (:class:`_Tally`): in the journal first, then in the
counts and on the bar. The bar is tqdm's, with a lock and a set of bars of its own
(:func:`_bar_class`), so that an interrupt in the middle of drawing it cannot leave
tqdm's shared lock held, which the workers' storage libraries (cloud-files) take on
every download and upload.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs

from lamina.flows.journal import Journal
from lamina.volumetric.geometry import Vec3D
from lamina.volumetric.index import VolumetricIndex

__all__ = ["RunSummary", "StorageChunks"]


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _rate(written: int, seconds: float) -> str:
    """``2.6 MB/s``, ``172 MB/s``: one decimal below 100."""
    rate = written / seconds / 1e6 if seconds > 0 else 0.0
    return f"{rate:.0f} MB/s" if rate >= 100 else f"{rate:.1f} MB/s"


@attrs.frozen
class RunSummary:
    """What a run did: tasks run and skipped (resumed), the storage chunks its tasks
    wrote (``storage_chunks``; ``None`` when the flow does not count them), bytes
    written, seconds, the run's journal and, for a resumed run, whether that journal was
    found (``journal_found``; ``None`` when the run was not resumed).

    ``chunks`` is an alias of ``tasks`` (its old name: it counted tasks), kept for
    callers."""

    tasks: int
    skipped: int
    bytes: int
    seconds: float
    journal_found: bool | None = None
    journal: Path | None = None
    storage_chunks: int | None = None

    @property
    def chunks(self) -> int:
        """Alias of :attr:`tasks`, the tasks run (the name this count had before tasks
        and chunks were told apart; :attr:`storage_chunks` counts chunks)."""
        return self.tasks

    def line(self) -> str:
        """One summary line, e.g. ``4 tasks, 1,024 chunks, 86.0 MB in 0.5 s, 172 MB/s``;
        a resumed run says how many tasks were already done, or that it found no journal
        (every task ran)."""
        if self.journal_found is False:
            where = f" in {self.journal.parent}" if self.journal is not None else ""
            note = f" (resume: no journal of this run was found{where}, every task ran)"
        else:
            note = f" ({self.skipped:,} already done, skipped)" if self.skipped else ""
        counted = (
            "" if self.storage_chunks is None else f"{_plural(self.storage_chunks, 'chunk')}, "
        )
        return (
            f"{_plural(self.tasks, 'task')}, {counted}{_megabytes(self.bytes)} in "
            f"{self.seconds:.1f} s, {_rate(self.bytes, self.seconds)}{note}"
        )

    def __str__(self) -> str:
        return self.line()


@attrs.frozen
class StorageChunks:
    """``chunks_per_task`` for :func:`lamina.flows.engine.run_tasks`: how many storage
    chunks of ``backend`` a task's box covers at each of ``resolutions`` (the box taken at
    each resolution and cut to that scale's bounds), summed — the chunks a copy or an
    apply writes at its one resolution, or a pyramid task at every level. Counted in the
    process that runs the flow, from geometry alone."""

    backend: Any
    resolutions: tuple[Vec3D[float], ...]
    _grids: dict[Vec3D[float], tuple[VolumetricIndex, Vec3D[int], Vec3D[int]]] = attrs.field(
        factory=dict, init=False, eq=False, repr=False
    )

    def _grid(self, res: Vec3D[float]) -> tuple[VolumetricIndex, Vec3D[int], Vec3D[int]]:
        grid = self._grids.get(res)
        if grid is None:
            backend = self.backend
            grid = self._grids[res] = (
                backend.get_bounds(res),
                backend.get_voxel_offset(res),
                backend.get_chunk_size(res),
            )
        return grid

    def __call__(self, idx: VolumetricIndex) -> int:
        total = 0
        for res in self.resolutions:
            bounds, offset, size = self._grid(res)
            box = VolumetricIndex(resolution=res, bbox=idx.bbox).intersection(bounds)
            if box.bbox.is_empty:
                continue
            count = 1
            for d in range(3):
                first = (box.start[d] - offset[d]) // size[d]
                last = -(-(box.stop[d] - offset[d]) // size[d])
                count *= max(0, last - first)
            total += count
        return total


@functools.cache
def _bar_class() -> Any:
    """tqdm with a lock and a set of bars of its own (see the module docstring): the
    engine's bar never takes tqdm's class-wide lock, which an interrupt could leave held
    for the storage libraries that take it in worker threads."""
    from tqdm import tqdm

    class _ProgressBar(tqdm):  # type: ignore[type-arg]
        _instances: ClassVar[weakref.WeakSet[Any]] = weakref.WeakSet()

    _ProgressBar.set_lock(threading.RLock())
    return _ProgressBar


def _progress_bar(total: int, initial: int, enabled: bool | None, label: str, text: str) -> Any:
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    tqdm.monitor_interval = 0  # no monitor thread (the processes executor forks)
    bar_class = _bar_class()
    bar_class.monitor_interval = 0
    return bar_class(
        total=total,
        initial=initial,
        unit="task",
        desc=label,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        # a list: tqdm shows postfix[0] as it is (a string would get a ", " before it)
        postfix=[text],
        bar_format="{desc}: {n_fmt}/{total_fmt} tasks |{bar}| {postfix[0]} [{elapsed}<{remaining}]",
    )


class _Tally:
    """What a run has finished: each finished task recorded once, in the journal first,
    then in the counts and on the bar (:meth:`start_bar`)."""

    def __init__(
        self,
        journal: Journal,
        chunks_per_task: Callable[[VolumetricIndex], int] | None,
        start: float,
    ) -> None:
        self.journal = journal
        self.bar: Any = None  # set once the bar's first text is known
        self.chunks_per_task = chunks_per_task
        self.start = start
        self.recorded: set[int] = set()
        self.bytes = 0
        self.storage_chunks = 0

    def start_bar(self, flow: str, total: int, done: int, enabled: bool | None) -> None:
        """Show the bar (``enabled``; ``None``: when standard error is a terminal) of a
        run of ``total`` tasks, ``done`` of them finished by the runs it resumes."""
        self.bar = _progress_bar(total, done, enabled, flow, self.text())

    def text(self) -> str:
        """The bar's right-hand text: chunks written (when counted) and throughput."""
        rate = _rate(self.bytes, time.perf_counter() - self.start)
        if self.chunks_per_task is None:
            return rate
        return f"{_plural(self.storage_chunks, 'chunk')}, {rate}"

    def finish(self, n: int, idx: VolumetricIndex, written: int) -> None:
        """Task ``n`` (box ``idx``) finished, having written ``written`` bytes."""
        if n in self.recorded:
            return
        self.journal.record(n)
        self.recorded.add(n)
        self.bytes += written
        if self.chunks_per_task is not None:
            self.storage_chunks += int(self.chunks_per_task(idx))
        if self.bar is not None and not self.bar.disable:
            self.bar.postfix = [self.text()]
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.journal.close()
