"""The backend contract suites.

:class:`BackendContract` holds the tests every backend passes, whatever its index
scheme; one subclass per scheme (:class:`ObjectBackendTests` here, the volumetric and
key-value suites in their packages) supplies sample indices and data and the equality
check. A backend's own test module subclasses the suite of its scheme and provides:

* a ``backend`` fixture building a fresh, empty backend;
* ``raw_read(backend, idx)``, ``raw_write(backend, idx, data)`` and
  ``is_stored(backend, idx)``, which go to the storage *without* the methods under
  test, so a backend cannot pass by agreeing with itself.

Optional abilities follow ``backend.capabilities``: a test of an ability the backend
declares it lacks checks that the lack is real (a refused write, an unpicklable
backend) instead of being skipped silently.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Hashable
from typing import Any, ClassVar

import pytest

from lamina.backend import Backend, Capabilities
from lamina.errors import ReadonlyLayerError, UnsupportedOperationError
from lamina.layer import Layer

__all__ = ["BackendContract", "ObjectBackendTests"]


# -- run in a spawned child process (top level, so the child can import them) -------------
def _child_read(backend: Backend[Any, Any], idx: Any) -> Any:
    return backend.read(idx)


def _child_write(backend: Backend[Any, Any], idx: Any, data: Any) -> None:
    backend.write(idx, data)


def _in_spawned_process(func: Any, *args: Any) -> Any:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(func, args)


class BackendContract:
    """Tests every backend passes. Subclasses provide the fixture and the hooks below."""

    #: How many distinct samples ``sample`` can give (tests use the first few).
    num_samples: ClassVar[int] = 4

    # -- hooks for the scheme's suite ------------------------------------------------------
    def sample(self, i: int, backend: Backend[Any, Any]) -> tuple[Any, Any]:
        """The ``i``-th (index, data) pair; distinct indices and data for distinct ``i``."""
        raise NotImplementedError

    def assert_data_equal(self, actual: Any, expected: Any) -> None:
        assert actual == expected

    # -- hooks for the backend's own tests -------------------------------------------------
    @pytest.fixture
    def backend(self) -> Backend[Any, Any]:
        """A fresh, empty backend under test."""
        raise NotImplementedError("subclass the suite and define a `backend` fixture")

    def raw_read(self, backend: Backend[Any, Any], idx: Any) -> Any:
        """Read what is stored at ``idx`` without calling ``backend.read``."""
        raise NotImplementedError

    def raw_write(self, backend: Backend[Any, Any], idx: Any, data: Any) -> None:
        """Store ``data`` at ``idx`` without calling ``backend.write``."""
        raise NotImplementedError

    def is_stored(self, backend: Backend[Any, Any], idx: Any) -> bool:
        """Whether anything is stored at ``idx``, without the backend's methods."""
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def caps(backend: Backend[Any, Any]) -> Capabilities:
        return backend.capabilities

    def require_writable(self, backend: Backend[Any, Any]) -> None:
        if not backend.capabilities.writable:
            pytest.skip("backend declares capabilities.writable=False")

    # -- identity -----------------------------------------------------------------------------
    def test_name_is_a_nonempty_str(self, backend: Backend[Any, Any]) -> None:
        assert isinstance(backend.name, str)
        assert backend.name

    def test_capabilities_are_declared(self, backend: Backend[Any, Any]) -> None:
        assert isinstance(backend.capabilities, Capabilities)

    # -- reading and writing ------------------------------------------------------------------
    def test_raw_write_is_read_back(self, backend: Backend[Any, Any]) -> None:
        idx, data = self.sample(0, backend)
        self.raw_write(backend, idx, data)
        self.assert_data_equal(backend.read(idx), data)

    def test_write_is_stored_or_refused_as_declared(self, backend: Backend[Any, Any]) -> None:
        idx, data = self.sample(0, backend)
        assert not self.is_stored(backend, idx)
        if not backend.capabilities.writable:
            with pytest.raises(UnsupportedOperationError):
                Layer(backend=backend).write_with_procs(idx, data)
            assert not self.is_stored(backend, idx)
            return
        backend.write(idx, data)
        assert self.is_stored(backend, idx)
        self.assert_data_equal(self.raw_read(backend, idx), data)

    def test_round_trip_of_every_sample(self, backend: Backend[Any, Any]) -> None:
        self.require_writable(backend)
        samples = [self.sample(i, backend) for i in range(self.num_samples)]
        for idx, data in samples:
            backend.write(idx, data)
        for idx, data in samples:
            self.assert_data_equal(backend.read(idx), data)

    def test_overwrite_replaces(self, backend: Backend[Any, Any]) -> None:
        self.require_writable(backend)
        idx, first = self.sample(0, backend)
        _, second = self.sample(1, backend)
        backend.write(idx, first)
        backend.write(idx, second)
        self.assert_data_equal(backend.read(idx), second)

    # -- through a layer ------------------------------------------------------------------------
    def test_layer_round_trip_with_processors(self, backend: Backend[Any, Any]) -> None:
        self.require_writable(backend)
        idx, data = self.sample(0, backend)
        seen: list[str] = []

        def on_write(d: Any) -> Any:
            seen.append("write")
            return d

        def on_read(d: Any) -> Any:
            seen.append("read")
            return d

        layer: Layer[Any, Any] = Layer(
            backend=backend, read_procs=[on_read], write_procs=[on_write]
        )
        layer.write_with_procs(idx, data)
        self.assert_data_equal(layer.read_with_procs(idx), data)
        assert seen == ["write", "read"]

    def test_readonly_layer_refuses_write_and_delete(self, backend: Backend[Any, Any]) -> None:
        idx, data = self.sample(0, backend)
        layer: Layer[Any, Any] = Layer(backend=backend, readonly=True)
        with pytest.raises(ReadonlyLayerError):
            layer.write_with_procs(idx, data)
        with pytest.raises(ReadonlyLayerError):
            layer.delete()
        assert not self.is_stored(backend, idx)

    # -- changes ----------------------------------------------------------------------------------
    def test_with_changes_refuses_unknown_keys(self, backend: Backend[Any, Any]) -> None:
        with pytest.raises(KeyError, match="no_such_option"):
            backend.with_changes(no_such_option=1)

    def test_with_changes_of_nothing_is_equivalent(self, backend: Backend[Any, Any]) -> None:
        changed = backend.with_changes()
        assert type(changed) is type(backend)
        assert changed.name == backend.name

    # -- pickling and processes -----------------------------------------------------------------
    def test_pickle_round_trip(self, backend: Backend[Any, Any]) -> None:
        idx, data = self.sample(0, backend)
        if not backend.capabilities.picklable:
            with pytest.raises((TypeError, pickle.PicklingError)):
                pickle.dumps(backend)
            return
        self.raw_write(backend, idx, data)
        clone = pickle.loads(pickle.dumps(backend))
        assert clone.name == backend.name
        self.assert_data_equal(clone.read(idx), data)

    def test_spawned_process_reads(self, backend: Backend[Any, Any]) -> None:
        if not backend.capabilities.picklable:
            pytest.skip("backend declares capabilities.picklable=False")
        idx, data = self.sample(0, backend)
        self.raw_write(backend, idx, data)
        self.assert_data_equal(_in_spawned_process(_child_read, backend, idx), data)

    def test_spawned_process_write_visibility(self, backend: Backend[Any, Any]) -> None:
        if not backend.capabilities.picklable:
            pytest.skip("backend declares capabilities.picklable=False")
        self.require_writable(backend)
        idx, data = self.sample(0, backend)
        _in_spawned_process(_child_write, backend, idx, data)
        # The declaration is tested both ways: shared storage sees the child's write,
        # by-value storage does not.
        assert self.is_stored(backend, idx) == backend.capabilities.shared_across_processes

    # -- threads ----------------------------------------------------------------------------------
    def test_threads_write_and_read_at_once(self, backend: Backend[Any, Any]) -> None:
        if not backend.capabilities.thread_safe:
            pytest.skip("backend declares capabilities.thread_safe=False")
        self.require_writable(backend)
        samples = [self.sample(i, backend) for i in range(self.num_samples)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(samples))

        def work(idx: Any, data: Any) -> None:
            try:
                barrier.wait(timeout=30)
                for _ in range(5):
                    backend.write(idx, data)
                    self.assert_data_equal(backend.read(idx), data)
            except BaseException as exc:  # collected and re-raised in the test thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=s) for s in samples]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a thread did not finish in 60 s"
        assert not errors, errors

    # -- delete -----------------------------------------------------------------------------------
    def test_delete_removes_everything(self, backend: Backend[Any, Any]) -> None:
        samples = [self.sample(i, backend) for i in range(2)]
        for idx, data in samples:
            self.raw_write(backend, idx, data)
        if not backend.capabilities.deletable:
            with pytest.raises(UnsupportedOperationError):
                Layer(backend=backend).delete()
            return
        Layer(backend=backend).delete()
        for idx, _ in samples:
            assert not self.is_stored(backend, idx)


# Values of every common Python kind, for object stores.
_OBJECT_SAMPLES: tuple[tuple[Hashable, Any], ...] = (
    ("alpha", {"a": 1, "nested": [1.5, "x", None, True]}),
    (("tuple", 2), [1, 2, 3]),
    (3, "a string with unicode: µm ✓"),
    ("delta", 2.5),
)


class ObjectBackendTests(BackendContract):
    """Contract of backends whose index is a hashable key and whose data is any object.

    Override ``sample`` when the backend stores a narrower set of values (JSON only…).
    """

    num_samples = len(_OBJECT_SAMPLES)

    def sample(self, i: int, backend: Backend[Any, Any]) -> tuple[Any, Any]:
        return _OBJECT_SAMPLES[i]
