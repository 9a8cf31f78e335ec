"""Members are read and written concurrently, on bounded threads, and their errors are
never swallowed. Behaviour tests with generous bounds (timing belongs in bench/)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import numpy as np
import pytest
from lamina_layerset import DEFAULT_MAX_WORKERS, build_layer_set, build_volumetric_layer_set
from layerset_support import DenseBackend

import lamina
from lamina import VolumetricIndex
from lamina.testing import TestVolume

VOLUME = TestVolume()
RES = VOLUME.finest
IDX = VolumetricIndex.from_coords((32, 64, 4), (64, 96, 8), RES)
DELAY = 0.25


class Tracker:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.threads: set[str] = set()

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.threads.add(threading.current_thread().name)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


class Tracked(DenseBackend):
    """A user's backend whose reads take ``delay`` seconds and are counted."""

    tracker: Tracker | None = None

    def read(self, idx: VolumetricIndex) -> Any:
        assert self.tracker is not None
        with self.tracker:
            return super().read(idx)

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        assert self.tracker is not None
        with self.tracker:
            super().write(idx, data)


def slow_set(n: int, tracker: Tracker, delay: float = DELAY, **kwargs: Any) -> Any:
    members = {}
    for i in range(n):
        backend = Tracked(VOLUME, name=f"slow-{i}", delay=delay)
        backend.tracker = tracker
        members[f"m{i}"] = lamina.build_volumetric_layer(backend)
    return build_volumetric_layer_set(members, default_desired_resolution=RES, **kwargs)


def timed(func: Any) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def test_a_set_reads_in_about_the_time_of_its_slowest_member() -> None:
    tracker = Tracker()
    layer_set = slow_set(4, tracker)
    layer_set[IDX]  # warm the pool
    concurrent = timed(lambda: layer_set[IDX])
    one_by_one = slow_set(4, Tracker(), max_workers=1)
    sequential = timed(lambda: one_by_one[IDX])
    assert sequential >= 4 * DELAY * 0.95
    assert concurrent < 2.5 * DELAY, (concurrent, sequential)  # ~1 DELAY; the sum is 4
    assert tracker.peak == 4
    assert all(name.startswith("lamina-layerset") for name in tracker.threads)


def test_writes_run_concurrently_too() -> None:
    tracker = Tracker()
    layer_set = slow_set(4, tracker)
    data = {f"m{i}": i + 1 for i in range(4)}
    elapsed = timed(lambda: layer_set.__setitem__(IDX, data))
    assert elapsed < 2.5 * DELAY
    assert tracker.peak == 4
    assert [int(v.max()) for v in layer_set[IDX].values()] == [1, 2, 3, 4]


def test_max_workers_bounds_the_threads() -> None:
    two = Tracker()
    layer_set = slow_set(4, two, delay=0.1, max_workers=2)
    elapsed = timed(lambda: layer_set[IDX])
    assert two.peak == 2
    assert elapsed >= 2 * 0.1 * 0.95
    one = Tracker()
    slow_set(3, one, delay=0.05, max_workers=1)[IDX]
    assert one.peak == 1
    assert one.threads == {threading.current_thread().name}
    many = Tracker()
    wide = slow_set(DEFAULT_MAX_WORKERS + 4, many, delay=0.1)
    assert wide.backend.workers == DEFAULT_MAX_WORKERS
    wide[IDX]
    assert many.peak <= DEFAULT_MAX_WORKERS
    assert slow_set(3, Tracker()).backend.workers == 3


def test_many_callers_share_one_bounded_pool() -> None:
    tracker = Tracker()
    layer_set = slow_set(2, tracker, delay=0.02)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                out = layer_set[IDX]
                assert set(out) == {"m0", "m1"}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert tracker.peak <= 2
    assert len({n for n in tracker.threads if n.startswith("lamina-layerset")}) <= 2


# -- errors ---------------------------------------------------------------------------------------
def failing_set(**fails: Exception) -> Any:
    members = {
        key: lamina.build_volumetric_layer(DenseBackend(VOLUME, name=f"dense://{key}", fail=exc))
        for key, exc in {"img": None, **fails}.items()
    }
    return build_volumetric_layer_set(members, default_desired_resolution=RES)


def test_an_error_keeps_its_type_names_the_member_and_chains_the_original() -> None:
    original = FileNotFoundError("chunk 0-32_0-32_0-4 is missing")
    with pytest.raises(FileNotFoundError) as info:
        failing_set(seg=original)[IDX]
    assert str(info.value) == (
        "reading member 'seg' (dense://seg) of VolumetricSet[img, seg]: "
        "chunk 0-32_0-32_0-4 is missing"
    )
    assert info.value.__cause__ is original


def test_several_failures_are_all_reported() -> None:
    with pytest.raises(TimeoutError) as info:
        failing_set(a=TimeoutError("slow disk"), b=PermissionError("no access"))[IDX]
    text = str(info.value)
    assert "reading member 'a'" in text
    assert "slow disk" in text
    assert "also failed: 'b': PermissionError: no access" in text


def test_an_error_type_needing_more_arguments_is_reraised_with_a_note() -> None:
    odd = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    with pytest.raises(UnicodeDecodeError) as info:
        failing_set(meta=odd)[IDX]
    assert info.value is odd
    assert any("reading member 'meta'" in note for note in info.value.__notes__)


def test_base_exceptions_are_not_wrapped() -> None:
    class Stop(BaseException):
        pass

    with pytest.raises(Stop):
        failing_set(seg=Stop())[IDX]  # type: ignore[arg-type]


def test_one_by_one_stops_at_the_first_failure() -> None:
    members = {
        "a": DenseBackend(VOLUME, fail=RuntimeError("a broke")),
        "b": DenseBackend(VOLUME),
    }
    layer_set = build_volumetric_layer_set(
        {k: lamina.build_volumetric_layer(b) for k, b in members.items()},
        default_desired_resolution=RES,
        max_workers=1,
    )
    with pytest.raises(RuntimeError, match="a broke"):
        layer_set[IDX]
    assert members["b"].reads == 0


def test_generic_sets_are_concurrent_too() -> None:
    tracker = Tracker()
    backends = []
    for i in range(3):
        b = Tracked(VOLUME, name=f"g{i}", delay=0.2)
        b.tracker = tracker
        backends.append(b)
    layer_set = build_layer_set(
        {f"m{i}": lamina.build_volumetric_layer(b) for i, b in enumerate(backends)}
    )
    elapsed = timed(lambda: layer_set[IDX])
    assert tracker.peak == 3
    assert elapsed < 0.5


# -- processes ---------------------------------------------------------------------------------
def _read_in_child(layer_set: Any, queue: Any) -> None:
    out = layer_set[IDX]
    queue.put({k: int(v.max()) for k, v in out.items()})


def test_a_forked_child_gets_fresh_threads() -> None:
    """Threads do not survive fork; a pool started in the parent must not hang the child."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    layer_set = slow_set(3, Tracker(), delay=0.0)
    layer_set[IDX] = {"m0": 1, "m1": 2, "m2": 3}
    layer_set[IDX]  # the parent's pool is running
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(layer_set, queue))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == {"m0": 1, "m1": 2, "m2": 3}


def test_the_pool_is_not_pickled() -> None:
    import pickle

    layer_set = failing_set(seg=None)  # type: ignore[arg-type]
    layer_set[IDX]
    assert layer_set.backend._pool.started
    clone = pickle.loads(pickle.dumps(layer_set.backend))
    assert not clone._pool.started
    assert np.array_equal(clone.read(IDX)["seg"], layer_set[IDX]["seg"])


def test_members_run_in_the_callers_context() -> None:
    import contextvars

    request = contextvars.ContextVar("request", default="none")
    seen: list[str] = []

    def note(data: Any) -> Any:
        seen.append(request.get())
        return data

    members = {
        k: lamina.build_volumetric_layer(DenseBackend(VOLUME), read_procs=[note]) for k in "abc"
    }
    layer_set = build_volumetric_layer_set(members, default_desired_resolution=RES)
    request.set("sample-17")
    layer_set[IDX]
    assert seen == ["sample-17"] * 3
