"""The worker plugin that sets up each worker of lamina-dask's local cluster.

:class:`LaminaWorkerSetup` applies lamina's allocator settings for task workers
(:mod:`lamina.flows.allocator`) to a worker as it starts, and again to each worker a
nanny restarts; in lamina's own local cluster it also makes the worker ignore SIGINT.
The values are decided in the process that starts the cluster (its startup environment
wins) and travel with the plugin, so the environment dask's nannies leave behind does
not change them. Imported only with dask, when a cluster starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from lamina.flows.allocator import tune_worker_malloc, worker_malloc_settings
from lamina.flows.executors import ignore_terminal_interrupts

__all__ = ["LaminaWorkerSetup"]


class LaminaWorkerSetup(WorkerPlugin):
    """Applies ``malloc_settings`` (default: this process's
    :func:`~lamina.flows.allocator.worker_malloc_settings`) in every worker; with
    ``ignore_interrupts`` (lamina's own local cluster, whose workers share the
    terminal's process group), makes each worker ignore SIGINT, the terminal's Ctrl-C:
    the process that runs the flow decides what an interrupt stops. A cluster of your
    own keeps its workers' SIGINT handling (``dask worker`` closes on it)."""

    name = "lamina-worker-setup"

    def __init__(
        self, malloc_settings: Mapping[str, int] | None = None, ignore_interrupts: bool = False
    ) -> None:
        self.malloc_settings = dict(
            worker_malloc_settings() if malloc_settings is None else malloc_settings
        )
        self.ignore_interrupts = ignore_interrupts

    def setup(self, worker: Any) -> None:
        if getattr(self, "ignore_interrupts", False):
            ignore_terminal_interrupts()
        tune_worker_malloc(self.malloc_settings)
