"""The ``dask`` executor: the tasks of lamina's flows on a ``dask.distributed`` cluster.

:func:`dask_executor` is the factory registered under ``"dask"``; the flows' engine
(:func:`lamina.flows.engine.run_tasks`) calls it as ``dask_executor(workers=N)`` or
``dask_executor(workers=N, scheduler="tcp://HOST:PORT")`` and gets a
:class:`DaskExecutor`, a ``concurrent.futures.Executor``:

* without ``scheduler`` it starts a :class:`distributed.LocalCluster` for the run —
  ``workers`` worker processes (default: the usable CPUs) of one thread each, on
  loopback, no dashboard, each resampling in one thread (``LAMINA_RESAMPLE_THREADS=1``),
  each restarted by its nanny whenever it dies — and closes it at ``shutdown()``. Its
  workers keep the memory they free for their next task: they start without dask's
  default ``MALLOC_TRIM_THRESHOLD_=65536`` (:func:`lamina_worker_config`), and a worker
  plugin applies lamina's allocator settings in each (:func:`lamina_worker_plugin`,
  :mod:`lamina.flows.allocator`). dask's setting hands freed memory back to the system
  after each task, and lamina's tasks, which allocate and free tens of MB each, then
  fault it in again on the next one, which makes them markedly slower (bench/README.md,
  "lamina-dask").
  Its scheduler and workers run without the diagnostics that only a dashboard would
  show (:data:`QUIET_DIAGNOSTICS`: the workers' profiler, the 20 ms tick);
* with ``scheduler`` it uses that running cluster and leaves it running at
  ``shutdown()``: through this process's default ``distributed.Client`` when that one is
  connected to the same scheduler (as dask's own collections do; it stays open), else
  through a client of its own, connected within ``$LAMINA_DASK_CONNECT_TIMEOUT`` seconds
  (10 by default) and closed at ``shutdown()``. Connecting and closing cost a noticeable
  part of a small run (bench/README.md, "lamina-dask"). ``workers`` then only sets how many
  tasks the engine keeps in flight (twice ``workers``; give it the cluster's number of
  worker threads).

Every ``submit`` is a new dask task with a key of its own (``pure=False``): the engine
submits the same call again to retry a task, and dask must run it again rather than
hand back a cached result. Its result comes back as a ``concurrent.futures.Future``,
so the engine's ``concurrent.futures.wait`` works on it. Once submitted, a task is the
cluster's, which may start it at any moment, so that future refuses ``cancel()`` as a
running task's does (an interrupted run waits for it through its grace); ``shutdown``
and ``abort`` cancel what is left.

Faults: a worker process that dies (SIGKILL, out of memory) is restarted by its nanny
and dask runs the tasks it held elsewhere; a task that keeps killing workers ends in
dask's ``KilledWorker`` (after ``distributed.scheduler.allowed-failures`` deaths), an
ordinary task error that the engine retries and, in the end, lists in
``TasksFailedError``. A task dask cancels while the client is connected is an ordinary
error too (:class:`TaskCancelledError`); when the client has lost its scheduler, the
task fails with :class:`SchedulerLostError`, a ``concurrent.futures.BrokenExecutor``,
so the engine starts a new executor (a new local cluster, or a new connection to the
scheduler) and runs the unfinished tasks again.

Interrupts: the workers of a local cluster never take the terminal's Ctrl-C (SIGINT
reaches every process of the foreground group, and a dask worker would die of it,
printing its traceback): they start with SIGINT blocked — it is blocked in the thread
that starts the cluster, so the cluster's event-loop thread and every worker process it
spawns, restarted ones too, inherit the block — and the worker plugin ignores it.
The process that runs the flow decides: after an interrupt the flows' engine gives the
running tasks a short grace, then calls :meth:`DaskExecutor.abort`, which cancels the
run's tasks and, for a local cluster, kills its worker processes (its nannies told not
to restart them) before closing it, instead of waiting seconds for tasks to end.

Logs are quiet: the client, and a local cluster's scheduler, nannies and workers, log
nothing below ``CRITICAL`` while the executor runs — a task's error, a worker that died,
are the engine's to report (it retries, then lists the tasks that still failed).
``LAMINA_DASK_LOG_LEVEL`` (e.g. ``warning``, ``info``) shows dask's own logs.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import BrokenExecutor, Executor, Future, InvalidStateError
from types import MappingProxyType
from typing import Any, TypeVar

from lamina.errors import LaminaError

__all__ = [
    "CONNECT_TIMEOUT_ENV",
    "LOG_LEVEL_ENV",
    "QUIET_DIAGNOSTICS",
    "WORKER_ENVIRONMENT",
    "DaskExecutor",
    "DaskNotInstalledError",
    "SchedulerLostError",
    "SchedulerUnreachableError",
    "TaskCancelledError",
    "dask_executor",
    "lamina_worker_config",
    "lamina_worker_plugin",
]

T = TypeVar("T")

#: Seconds to wait for an existing scheduler to answer (default 10).
CONNECT_TIMEOUT_ENV = "LAMINA_DASK_CONNECT_TIMEOUT"
#: The log level of a local cluster (default ``critical``).
LOG_LEVEL_ENV = "LAMINA_DASK_LOG_LEVEL"
#: Environment of a local cluster's worker processes: the processes are the
#: parallelism, so each resamples in one thread.
WORKER_ENVIRONMENT = {"LAMINA_RESAMPLE_THREADS": "1"}

_DEFAULT_CONNECT_TIMEOUT_S = 10.0
_CLOSE_TIMEOUT_S = 30.0
#: How long :meth:`DaskExecutor.abort` lets the client and a local cluster take to
#: close once the workers are stopped.
_ABORT_CLOSE_TIMEOUT_S = 2.0

logger = logging.getLogger(__name__)


class DaskNotInstalledError(LaminaError, ImportError):
    """dask.distributed cannot be imported."""


class SchedulerUnreachableError(LaminaError, OSError):
    """The scheduler at the given address did not answer in time."""


class TaskCancelledError(LaminaError, RuntimeError):
    """Dask cancelled a task while the client was still connected (the engine retries it)."""


class SchedulerLostError(LaminaError, BrokenExecutor):
    """The client lost its scheduler: every task in flight is lost, a new executor is
    needed (the engine starts one and runs them again)."""


def import_distributed() -> Any:
    """``distributed``, or :class:`DaskNotInstalledError` naming what to install."""
    try:
        import distributed
    except ImportError as exc:
        raise DaskNotInstalledError(
            f"the 'dask' executor needs dask.distributed, which cannot be imported ({exc}): "
            "pip install lamina-dask (it installs dask[distributed])"
        ) from exc
    return distributed


def _check_workers(workers: int | None) -> int | None:
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int or None; got {workers!r}")
    return workers


def _connect_timeout() -> float:
    text = os.environ.get(CONNECT_TIMEOUT_ENV, "").strip()
    if not text:
        return _DEFAULT_CONNECT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{CONNECT_TIMEOUT_ENV} must be a number of seconds > 0; got {text!r}")
    return value


def _log_level() -> int:
    text = os.environ.get(LOG_LEVEL_ENV, "").strip() or "critical"
    level = logging.getLevelName(text.upper())
    if not isinstance(level, int):
        raise ValueError(
            f"{LOG_LEVEL_ENV} must be a logging level (debug, info, warning, error, critical); "
            f"got {text!r}"
        )
    return level


class _QuietLogs:
    """Raise the level of the stream handlers dask gives the ``distributed`` loggers of
    this process (the client's, a local cluster's scheduler's and nannies') to ``level``
    until :meth:`restore`."""

    def __init__(self, level: int) -> None:
        self._saved: list[tuple[logging.Handler, int]] = []
        names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "distributed"]
        for name in sorted(names):
            for handler in logging.getLogger(name).handlers:
                if isinstance(handler, logging.StreamHandler) and handler.level < level:
                    self._saved.append((handler, handler.level))
                    handler.setLevel(level)

    def restore(self) -> None:
        for handler, level in self._saved:
            handler.setLevel(level)
        self._saved.clear()


class _TaskFuture(Future[T]):
    """The future of one dask task (see the module docstring): ``cancel()`` refuses,
    as for a running task; the executor cancels it when it stops."""

    def cancel(self) -> bool:
        return False

    def drop(self) -> None:
        """The executor stops: cancelled, unless it has its outcome already."""
        if super().cancel():
            self.set_running_or_notify_cancel()


class DaskExecutor(Executor):
    """A ``concurrent.futures.Executor`` over a ``distributed.Client``.

    Args:
        client: the connected client.
        cluster: the cluster started for this executor (closed at ``shutdown``), or
            ``None`` for a cluster someone else runs (left running).
        address: the scheduler's address, for messages.
        owns_client: close ``client`` at ``shutdown`` (``False`` for a client the
            caller connected, which stays open).
    """

    def __init__(
        self,
        client: Any,
        cluster: Any = None,
        *,
        address: str,
        quiet: _QuietLogs | None = None,
        owns_client: bool = True,
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.owns_client = owns_client
        self.address = address
        self._quiet = quiet
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Any, _TaskFuture[Any]]] = {}
        self._closed = False
        self._aborted = False

    @property
    def parallelism(self) -> int | None:
        """How many tasks the cluster runs at once (its worker threads), read by the
        flows' engine to keep every worker busy; ``None`` if the scheduler cannot say."""
        try:
            threads = self.client.nthreads()
        except Exception:  # the engine falls back to its own count
            return None
        total = sum(int(n) for n in threads.values())
        return total or None

    def __repr__(self) -> str:
        owner = "local cluster" if self.cluster is not None else "existing cluster"
        return f"DaskExecutor({self.address!r}, {owner})"

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` as a new dask task (never deduplicated)."""
        call: Callable[..., T] = functools.partial(fn, **kwargs) if kwargs else fn
        result: _TaskFuture[T] = _TaskFuture()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"cannot submit to {self!r} after shutdown()")
            task = self.client.submit(call, *args, pure=False)
            self._pending[task.key] = (task, result)
        task.add_done_callback(functools.partial(self._relay, result))
        return result

    def _relay(self, result: Future[Any], task: Any) -> None:
        """Hand a finished dask future's outcome to its ``concurrent.futures`` twin (in
        dask's callback thread)."""
        with self._lock:
            self._pending.pop(task.key, None)
        if result.done():  # cancelled by shutdown()
            return
        value: Any = None
        error: BaseException | None = None
        try:
            if task.status == "finished":
                value = task.result()
            elif task.status == "error":
                error = task.exception()
                if error is not None:
                    error = error.with_traceback(task.traceback())
            else:
                error = self._cancelled_error(task)
        except BaseException as exc:  # fetching the result failed: the task's error
            error = exc
        finally:
            task.release()
        try:
            if error is None:
                result.set_result(value)
            else:
                result.set_exception(error)
        except InvalidStateError:  # cancelled by shutdown() meanwhile
            pass

    def _cancelled_error(self, task: Any) -> BaseException:
        status = getattr(self.client, "status", "unknown")
        if status == "running":
            return TaskCancelledError(
                f"dask cancelled the task {task.key} (status {task.status!r}) on the "
                f"scheduler at {self.address}"
            )
        return SchedulerLostError(
            f"lost the dask scheduler at {self.address} (client {status!r}); task "
            f"{task.key} did not finish"
        )

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop: wait for the tasks in flight (``wait`` and not ``cancel_futures``) or
        cancel them, disconnect, and close the cluster if this executor started it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = list(self._pending.values())
        try:
            if wait and not cancel_futures and pending:
                from concurrent.futures import wait as wait_for

                wait_for([result for _, result in pending])
            else:
                for _, result in pending:
                    result.drop()
                if pending:
                    try:
                        self.client.cancel([task for task, _ in pending])
                    except Exception as exc:  # a client dask closed: nothing left to cancel
                        logger.warning("cancelling tasks on %s failed: %s", self.address, exc)
        finally:
            self._close()

    def abort(self) -> None:
        """Stop at once, without waiting for a task (the flows' engine calls it after
        an interrupt's grace): cancel the tasks in flight; for a local cluster, kill its
        worker processes (SIGTERM, then SIGKILL), their nannies told not to restart
        them, then close it; for a cluster someone else runs, cancel the tasks on its
        scheduler (its workers finish the running ones) and disconnect."""
        with self._lock:
            if self._aborted:
                return
            self._aborted = self._closed = True
            pending = list(self._pending.values())
        for _, result in pending:
            result.drop()
        try:
            if self.cluster is not None:
                _stop_local_workers(self.cluster)
            elif pending:
                self.client.cancel([task for task, _ in pending], force=True)
        except Exception as exc:  # closing below still stops what can be stopped
            logger.warning("stopping the tasks on %s failed: %s", self.address, exc)
        finally:
            self._close(_ABORT_CLOSE_TIMEOUT_S)

    def _close(self, timeout: float = _CLOSE_TIMEOUT_S) -> None:
        try:
            if self.owns_client:
                self.client.close(timeout=timeout)
        except Exception as exc:  # never hide the error that stopped the run
            logger.warning("closing the dask client of %s failed: %s", self.address, exc)
        if self.cluster is not None:
            try:
                self.cluster.close(timeout=timeout)
            except Exception as exc:
                logger.warning("closing the local dask cluster %s failed: %s", self.address, exc)
        if self._quiet is not None:
            self._quiet.restore()


def _stop_local_workers(cluster: Any) -> None:
    """Kill the worker processes of a local cluster (this process's children), telling
    each nanny first that its worker is going for good (no restart)."""
    from lamina.flows.executors import stop_processes

    processes = []
    for nanny in list(getattr(cluster, "workers", {}).values()):
        close_gracefully = getattr(nanny, "close_gracefully", None)
        if callable(close_gracefully):
            close_gracefully()
        # Nanny.process: distributed's WorkerProcess; its .process: an AsyncProcess
        # around the multiprocessing.Process
        asynchronous = getattr(getattr(nanny, "process", None), "process", None)
        process = getattr(asynchronous, "_process", None)
        if process is not None:
            processes.append(process)
    stop_processes(processes)


def dask_executor(
    workers: int | None = None, scheduler: str | None = None, **options: Any
) -> DaskExecutor:
    """The ``dask`` executor factory (see the module docstring).

    Args:
        workers: worker processes of the local cluster (default: the usable CPUs); with
            ``scheduler``, only how many tasks the engine keeps in flight.
        scheduler: the address of a running scheduler (``tcp://HOST:PORT``); ``None``
            starts a local cluster for the run.
    """
    if options:
        raise ValueError(
            f"the 'dask' executor takes workers= and scheduler=, not {sorted(options)}"
        )
    workers = _check_workers(workers)
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ValueError(
            f"scheduler must be a dask scheduler's address such as 'tcp://10.0.0.5:8786'; "
            f"got {scheduler!r}"
        )
    distributed = import_distributed()
    if scheduler is None:
        return _local(distributed, workers)
    return _connect(distributed, scheduler.strip())


#: What lamina's local cluster turns off: diagnostics nobody sees there (it serves no
#: dashboard and shows dask's logs only at ``CRITICAL``) that take CPU from the tasks
#: on a small machine — each worker's profiler stopping the task's thread every 10 ms to
#: sample its stack, and every server's 20 ms tick measuring event-loop latency for a
#: warning. Without them a downsample run on a small machine is faster (bench/README.md,
#: "lamina-dask").
QUIET_DIAGNOSTICS: Mapping[str, Any] = MappingProxyType(
    {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s"}
)


def lamina_worker_config() -> dict[str, Any]:
    """The dask configuration lamina's local cluster starts with: dask's
    ``distributed.nanny.pre-spawn-environ`` without ``MALLOC_TRIM_THRESHOLD_`` (see the
    module docstring; a value in the environment still reaches the workers, as dask
    gives the environment precedence), and :data:`QUIET_DIAGNOSTICS`. For a cluster of
    your own: ``with dask.config.set(lamina_worker_config()):`` around
    ``LocalCluster(...)``, then ``client.register_plugin(lamina_worker_plugin())``."""
    import dask

    import_distributed()  # its defaults join dask's configuration on import
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {"distributed.nanny.pre-spawn-environ": environ, **QUIET_DIAGNOSTICS}


def lamina_worker_plugin() -> Any:
    """The worker plugin lamina's local cluster registers: it applies lamina's allocator
    settings for task workers in every worker, restarted ones too
    (:class:`lamina_dask.worker_setup.LaminaWorkerSetup`)."""
    import_distributed()
    from lamina_dask.worker_setup import LaminaWorkerSetup

    return LaminaWorkerSetup()


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, in this thread, if it is not running.

    Whichever thread starts it ends with SIGINT unblocked (``ensure_running`` unblocks
    it unconditionally after spawning the tracker); started by the cluster's event-loop
    thread, that would undo the block its worker processes should inherit."""
    try:
        from multiprocessing import resource_tracker
    except ImportError:  # pragma: no cover - Windows
        return
    resource_tracker.ensure_running()


def _local_worker_plugin() -> Any:
    """:func:`lamina_worker_plugin` for lamina's own local cluster: its workers also
    ignore SIGINT (the terminal's Ctrl-C is the flow's process's to act on)."""
    import_distributed()
    from lamina_dask.worker_setup import LaminaWorkerSetup

    return LaminaWorkerSetup(ignore_interrupts=True)


@functools.cache
def _cluster_class(distributed: Any) -> Any:
    """``distributed.LocalCluster``, except that it never closes a nanny whose worker died.

    The nanny restarts its worker; but dask's ``SpecCluster`` closes the nanny for good
    (and forgets the worker) when no worker of that name is back within
    ``distributed.deploy.lost-worker-timeout`` (15 s) — on a loaded machine, or for a
    worker killed again and again by a task too big for its memory. A cluster whose
    workers are all gone leaves a run waiting forever; this one keeps its workers.
    """
    from distributed.deploy import cluster

    plain: Any = cluster.Cluster  # its bookkeeping, without SpecCluster's closing

    class LaminaLocalCluster(distributed.LocalCluster):  # type: ignore[misc]
        def _update_worker_status(self, op: str, msg: Any) -> None:
            if op == "remove":  # bookkeeping only: the nanny brings the worker back
                plain._update_worker_status(self, op, msg)
            else:
                super()._update_worker_status(op, msg)

    return LaminaLocalCluster


def _local(distributed: Any, workers: int | None) -> DaskExecutor:
    import dask

    from lamina.flows.executors import default_workers, sigint_blocked

    level = _log_level()
    quiet = _QuietLogs(level)
    _start_resource_tracker()
    try:
        # read by each nanny as it starts; SIGINT blocked: the cluster's event-loop
        # thread, started here, and the worker processes it spawns inherit the block
        with dask.config.set(lamina_worker_config()), sigint_blocked():
            cluster = _cluster_class(distributed)(
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # the scheduler's HTTP endpoints (health, metrics) on a free loopback
                # port, not on 8787, where another cluster may be
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=level,
                env=dict(WORKER_ENVIRONMENT),
            )
        try:
            client = distributed.Client(cluster, set_as_default=False)
            client.register_plugin(_local_worker_plugin())
        except BaseException:
            cluster.close()
            raise
    except BaseException:
        quiet.restore()
        raise
    return DaskExecutor(client, cluster, address=str(cluster.scheduler_address), quiet=quiet)


def _default_client_of(distributed: Any, address: str) -> Any:
    """This process's default client when it is a running, synchronous client of the
    scheduler at ``address``, else ``None``."""
    try:
        client = distributed.default_client()
    except ValueError:  # no default client
        return None
    if getattr(client, "status", None) != "running" or client.scheduler is None:
        return None
    if getattr(client, "asynchronous", False):  # its calls return coroutines
        return None
    from distributed.comm.addressing import normalize_address

    try:
        same = normalize_address(client.scheduler.address) == normalize_address(address)
    except ValueError:  # an address dask cannot parse: connecting will say so
        return None
    return client if same else None


def _connect(distributed: Any, address: str) -> DaskExecutor:
    timeout = _connect_timeout()
    quiet = _QuietLogs(_log_level())
    borrowed = _default_client_of(distributed, address)
    if borrowed is not None:
        return DaskExecutor(borrowed, None, address=address, quiet=quiet, owns_client=False)
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        quiet.restore()
        raise SchedulerUnreachableError(
            f"cannot reach the dask scheduler at {address!r} within {timeout:g} s ({exc}). "
            f"Is it running (dask scheduler; dask worker {address})? Leave the scheduler "
            f"unset to start a local cluster; {CONNECT_TIMEOUT_ENV} sets the timeout"
        ) from exc
    except BaseException:
        quiet.restore()
        raise
    return DaskExecutor(client, None, address=address, quiet=quiet)
