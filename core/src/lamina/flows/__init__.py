"""Chunked processing of volumes: ``copy``, ``downsample`` and ``apply``.

Each flow cuts its region into tasks on the destination's chunk grid
(:mod:`lamina.flows.grid`) and runs them on an executor registered by name —
``serial``, ``threads`` and ``processes`` in the core (:mod:`lamina.flows.executors`),
``dask`` in lamina-dask — with bounded retries, a resumable journal and a progress bar
(:mod:`lamina.flows.engine`), and stops within about a second on Ctrl-C
(:class:`~lamina.flows.engine.FlowInterrupted`: the finished tasks are journaled);
``with reuse_workers():`` keeps the workers from one run
to the next (:mod:`lamina.flows.reuse`). Every flow checks all of its arguments before
it changes anything (:mod:`lamina.flows.checks`), and a run is known by what it does,
the same in every process (:mod:`lamina.flows.identity`), so ``resume=True`` finds its
journal from anywhere. The flows are registered by name for specs
(``{"@type": "copy", "src": {...}, "dst": {...}}``) and behind the ``lamina copy``,
``lamina downsample`` and ``lamina run`` commands (:mod:`lamina.flows.cli`).
"""

from __future__ import annotations

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "copy": "lamina.flows.copying",
    "downsample": "lamina.flows.pyramid",
    "apply": "lamina.flows.blockwise",
    "run_chunks": "lamina.flows.engine",
    "RunSummary": "lamina.flows.engine",
    "ChunkFailure": "lamina.flows.engine",
    "ChunksFailedError": "lamina.flows.engine",
    "FlowInterrupted": "lamina.flows.engine",
    "StorageChunks": "lamina.flows.engine",
    "RunOptions": "lamina.flows.options",
    "FlowArgumentError": "lamina.flows.checks",
    "FlowKeywordError": "lamina.flows.checks",
    "task_grid": "lamina.flows.grid",
    "reuse_workers": "lamina.flows.reuse",
}

__all__ = sorted(_LAZY)

__getattr__ = module_getattr(__name__, _LAZY, globals())
