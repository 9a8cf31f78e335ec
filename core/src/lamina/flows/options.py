"""The keywords every flow takes to say how it runs (the command line's run flags)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypedDict

from lamina.volumetric.backend import VolumetricBackend

__all__ = ["RunOptions", "check_executor_reaches", "mode_for"]


class RunOptions(TypedDict, total=False):
    """How a flow runs: see :func:`lamina.flows.engine.run_tasks`.

    ``executor`` (``"serial"``, ``"threads"``, ``"processes"``, ``"dask"``, …),
    ``workers``, ``resume``, ``scheduler`` (a Dask scheduler's address), ``retries``
    (3), ``progress`` (a progress bar; ``None``: when standard error is a terminal),
    ``journal_dir`` (where journals are kept; default: a per-user state directory, see
    :func:`lamina.flows.journal.default_journal_dir`) and ``run_id`` (a name for the
    run: its journal is named after it, so ``resume=True`` finds it whatever the run's
    function is; default: the run is known by what it does).
    """

    executor: str
    workers: int | None
    resume: bool
    scheduler: str | None
    retries: int
    progress: bool | None
    journal_dir: str | Path | None
    run_id: str | None


def check_executor_reaches(options: RunOptions, *backends: VolumetricBackend) -> None:
    """Refuse running in other processes when a backend's data stays in this one (an
    in-memory volume would be written in each worker's copy and lost)."""
    from lamina.flows.checks import FlowArgumentError

    executor = options.get("executor", "serial")
    if executor in ("serial", "threads"):
        return
    for backend in backends:
        if not backend.capabilities.shared_across_processes:
            raise FlowArgumentError(
                f"executor={executor!r} runs tasks in other processes, but {backend.name} "
                f"({type(backend).__name__}) keeps its data in this process: what workers "
                "write would be lost. Use executor='threads' or 'serial', or a volume on "
                "storage (precomputed, HDF5)"
            )


def mode_for(backend: VolumetricBackend) -> Literal["img", "segmentation"]:
    """The resampling mode a volume's type implies: ``segmentation`` for label volumes,
    ``img`` for everything else."""
    return "segmentation" if backend.volume_type == "segmentation" else "img"
