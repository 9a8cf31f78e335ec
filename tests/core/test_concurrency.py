"""``lamina.concurrency``: shared pools, per-process state and run_all, across fork."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import threading
import time
from typing import Any

import pytest

from lamina.concurrency import (
    ProcessLocal,
    ThreadPool,
    in_pool,
    run_all,
    share_with_helper,
    shared_pool,
)

needs_fork = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)


def test_one_pool_per_name_named_and_grown_on_demand() -> None:
    pool = shared_pool("test-grow", 2)
    assert shared_pool("test-grow", 1) is pool  # fewer threads: the same pool
    assert shared_pool("test-other", 2) is not pool
    name = pool.submit(lambda: threading.current_thread().name).result()
    assert name.startswith("lamina-test-grow")
    assert pool.submit(in_pool, "test-grow").result()
    assert not in_pool("test-grow")
    bigger = shared_pool("test-grow", 4)
    assert bigger is not pool
    assert bigger._max_workers == 4
    assert shared_pool("test-grow", 3) is bigger
    assert pool.submit(lambda: 1).result() == 1  # the smaller one still runs what it is given
    with pytest.raises(ValueError, match="at least 1"):
        shared_pool("test-grow", 0)


def test_a_pool_copied_or_unpickled_has_no_threads() -> None:
    pool = ThreadPool("test-copy")
    assert not pool.started
    pool.executor(1).submit(lambda: None).result()
    assert pool.started
    for clone in (pickle.loads(pickle.dumps(pool)), copy.copy(pool), copy.deepcopy(pool)):
        assert clone.name == "test-copy"
        assert not clone.started


def test_process_local_makes_its_value_once() -> None:
    made: list[int] = []

    def factory() -> dict[str, int]:
        made.append(1)
        time.sleep(0.01)
        return {}

    local: ProcessLocal[dict[str, int]] = ProcessLocal(factory)
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(local.get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1
    assert all(v is seen[0] for v in seen)


def test_run_all_returns_results_in_order() -> None:
    pool = shared_pool("test-run", 4)
    tasks = [lambda i=i: (time.sleep(0.01 * (4 - i)), i)[1] for i in range(4)]
    assert run_all(tasks, pool) == [0, 1, 2, 3]
    assert run_all(tasks, pool, caller_takes_first=True) == [0, 1, 2, 3]
    assert run_all(tasks, None) == [0, 1, 2, 3]


@pytest.mark.parametrize("caller_takes_first", [False, True])
def test_run_all_waits_for_every_task_then_raises_the_first_error(
    caller_takes_first: bool,
) -> None:
    ended: list[int] = []

    def task(i: int) -> int:
        if i == 0:
            raise KeyError("first")
        time.sleep(0.05)
        ended.append(i)
        if i == 2:
            raise ValueError("second")
        return i

    tasks = [lambda i=i: task(i) for i in range(4)]
    with pytest.raises(KeyError, match="first"):
        run_all(tasks, shared_pool("test-errors", 4), caller_takes_first=caller_takes_first)
    assert sorted(ended) == [1, 2, 3]


def test_the_calling_thread_takes_the_first_task() -> None:
    names = run_all(
        [lambda: threading.current_thread().name] * 3,
        shared_pool("test-first", 2),
        caller_takes_first=True,
    )
    assert names[0] == threading.current_thread().name
    assert all(n.startswith("lamina-test-first") for n in names[1:])


def test_run_all_tasks_see_the_callers_context() -> None:
    import contextvars

    var = contextvars.ContextVar("var", default="unset")
    var.set("caller")
    assert run_all([var.get, var.get], shared_pool("test-context", 2)) == ["caller"] * 2


def _in_child(out: Any, pool: Any, local: Any, hold: ProcessLocal[dict[str, int]]) -> None:
    with hold.lock:  # held by another thread of the parent at the fork: not here
        pass
    child_pool = shared_pool("test-fork", 2)
    inherited = local._inherited
    value = local.get()
    out.put(
        (
            child_pool is not pool,
            child_pool.submit(lambda: 7).result(),
            value,
            inherited,
        )
    )


@needs_fork
def test_a_forked_child_makes_its_own_pools_values_and_locks() -> None:
    pool = shared_pool("test-fork", 2)
    pool.submit(lambda: None).result()  # the parent's threads are running
    closed: list[Any] = []
    local: ProcessLocal[dict[str, int]] = ProcessLocal(
        lambda: {"made": len(closed)}, on_inherited=closed.append
    )
    local.get()["parent"] = 1
    hold: ProcessLocal[dict[str, int]] = ProcessLocal(dict)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with hold.lock:
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(30)
    try:
        ctx = multiprocessing.get_context("fork")
        out = ctx.SimpleQueue()
        child = ctx.Process(target=_in_child, args=(out, pool, local, hold))
        child.start()
        child.join(60)
    finally:
        release.set()
        thread.join()
    assert child.exitcode == 0
    is_new, result, value, inherited = out.get()
    assert is_new
    assert result == 7
    assert inherited == {"made": 0, "parent": 1}  # handed to on_inherited in the child
    assert value == {"made": 1}  # made afresh, after on_inherited ran
    assert local.get() == {"made": 0, "parent": 1}  # the parent's is untouched


def test_share_with_helper_runs_both_halves_and_takes_back_a_busy_helpers() -> None:
    from lamina.testing import StandInHelper

    ran: list[str] = []
    share_with_helper(
        shared_pool("test-helper", 1), lambda: ran.append("mine"), lambda: ran.append("theirs")
    )
    assert sorted(ran) == ["mine", "theirs"]
    ran.clear()
    busy = StandInHelper(runs=False)
    share_with_helper(busy, lambda: ran.append("mine"), lambda: ran.append("theirs"))  # type: ignore[arg-type]
    assert ran == ["mine", "theirs"]  # the caller ran both
    assert busy.submitted == 1


def test_share_with_helper_waits_for_the_helper_before_raising() -> None:
    started, finished = threading.Event(), threading.Event()

    def theirs() -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    def mine() -> None:
        started.wait(5)
        raise RuntimeError("mine failed")

    with pytest.raises(RuntimeError, match="mine failed"):
        share_with_helper(shared_pool("test-helper", 1), mine, theirs)
    assert finished.is_set()  # nothing of theirs runs on after the call
