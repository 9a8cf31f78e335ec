"""The flows: ``copy``, ``downsample``, ``apply`` and ``store`` (an array into a volume),
task by task.

Words: a flow's unit of work is a *task* (one box of its task grid); a *chunk* is a
storage chunk; a task covers one or many chunks. Each flow cuts its region into tasks on
the destination's write grid (:mod:`lamina.flows.grid`; their size is the flows'
``chunk_size`` argument, the name the reference system gives it) and runs them on an
executor registered by name — ``serial``, ``threads`` and ``processes`` in the core
(:mod:`lamina.flows.executors`), ``dask`` in lamina-dask — through the engine
(:func:`~lamina.flows.engine.run_tasks`): bounded retries
(:mod:`lamina.flows.failures`), a resumable journal (:mod:`lamina.flows.journal`), a
progress bar and summary (:mod:`lamina.flows.progress`), and a stop within about a
second on Ctrl-C (:mod:`lamina.flows.interrupts`: the finished tasks are journaled);
``with reuse_workers():`` keeps the workers from one run to the next
(:mod:`lamina.flows.reuse`). Every flow checks all of its arguments before it changes
anything (:mod:`lamina.flows.checks`), and a run is known by what it does, the same in
every process (:mod:`lamina.flows.identity`), so ``resume=True`` finds its journal from
anywhere. The flows are registered by name for specs
(``{"@type": "copy", "src": {...}, "dst": {...}}``) and behind the ``lamina copy``,
``lamina downsample`` and ``lamina run`` commands (:mod:`lamina.flows.cli`).
``run_chunks``, ``ChunkFailure``, ``ChunksFailedError`` and ``RunSummary.chunks`` are
the old names of ``run_tasks``, ``TaskFailure``, ``TasksFailedError`` and
``RunSummary.tasks``, kept as aliases.

Why the flows are part of the core, not a distribution of their own: what they add to
the core's promise — the ``lamina`` command line, flows as specs, runs that resume from
anywhere — is what a user of the core is told to expect, and a third party's executor
(a cluster of its own) plugs into the core's executor hook, which needs the engine
there to call it. Their two dependencies cost little: installed, tqdm and pyyaml are a
few MB beside the tens of MB of the core's numpy and tinybrain, and neither is imported
by ``import lamina`` (which imports no flow module), nor by the flows until used: tqdm
when a run draws its bar, yaml when ``lamina run`` reads a ``.yaml`` spec (sizes and
import times: bench/README.md, "Import costs"). A distribution of their own would save that
little and part the command line and the executor hook from the engine they drive.
"""

from __future__ import annotations

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "copy": "lamina.flows.copying",
    "downsample": "lamina.flows.pyramid",
    "apply": "lamina.flows.blockwise",
    "store": "lamina.flows.storing",
    "run_tasks": "lamina.flows.engine",
    "RunSummary": "lamina.flows.progress",
    "StorageChunks": "lamina.flows.progress",
    "TaskFailure": "lamina.flows.failures",
    "TasksFailedError": "lamina.flows.failures",
    "FlowInterrupted": "lamina.flows.interrupts",
    "RunOptions": "lamina.flows.options",
    "FlowArgumentError": "lamina.flows.checks",
    "FlowKeywordError": "lamina.flows.checks",
    "task_grid": "lamina.flows.grid",
    "reuse_workers": "lamina.flows.reuse",
    # the old names, aliases kept for callers: run_chunks of run_tasks, ChunkFailure of
    # TaskFailure, ChunksFailedError of TasksFailedError (the same classes)
    "run_chunks": "lamina.flows.engine",
    "ChunkFailure": "lamina.flows.failures",
    "ChunksFailedError": "lamina.flows.failures",
}

__all__ = sorted(_LAZY)

__getattr__ = module_getattr(__name__, _LAZY, globals())
