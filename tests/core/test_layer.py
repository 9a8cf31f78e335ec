"""The layer: the reference's processor order, readonly, copies, thread safety."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from lamina import (
    JointIndexDataProcessor,
    Layer,
    MemoryBackend,
    ReadonlyLayerError,
    UnsupportedOperationError,
    build_layer,
    build_memory_layer,
)
from lamina.backend import Backend, Capabilities


class RecordingBackend(MemoryBackend):
    """A memory backend that records the index of every read and write."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        object.__setattr__(self, "log", log)

    def read(self, idx: Any) -> Any:
        self.log.append(("backend.read", idx))
        return super().read(idx)

    def write(self, idx: Any, data: Any) -> None:
        self.log.append(("backend.write", idx, data))
        super().write(idx, data)


class Tag(JointIndexDataProcessor[Any, Any]):
    """Appends its tag to the index and to the data, logging each step with its state."""

    def __init__(self, tag: str, log: list[Any], prob: float = 1.0) -> None:
        self.tag, self.log, self.prob = tag, log, prob

    def process_index(self, idx: Any, mode: str) -> tuple[Any, Any]:
        self.log.append((f"{self.tag}.index", mode))
        return f"{idx}+{self.tag}", f"state-{self.tag}"

    def process_data(self, data: Any, mode: str, state: Any) -> Any:
        self.log.append((f"{self.tag}.data", mode, state))
        return f"{data}|{self.tag}"


def plain(tag: str, log: list[Any]) -> Any:
    def proc(x: Any) -> Any:
        log.append((f"{tag}.plain",))
        return f"{x}|{tag}"

    return proc


def test_read_order_matches_reference() -> None:
    log: list[Any] = []
    backend = RecordingBackend(log)
    backend._store["k+i+B+A"] = "d"
    layer = Layer(
        backend=backend,
        index_procs=[lambda i: f"{i}+i"],
        read_procs=[Tag("A", log), plain("p", log), Tag("B", log)],
    )
    assert layer["k"] == "d|A|p|B"
    # Joint index steps from the last read processor to the first; data steps first to last.
    assert log == [
        ("B.index", "read"),
        ("A.index", "read"),
        ("backend.read", "k+i+B+A"),
        ("A.data", "read", "state-A"),
        ("p.plain",),
        ("B.data", "read", "state-B"),
    ]


def test_write_order_matches_reference() -> None:
    log: list[Any] = []
    backend = RecordingBackend(log)
    layer = Layer(
        backend=backend,
        index_procs=[lambda i: f"{i}+i"],
        write_procs=[Tag("A", log), plain("p", log), Tag("B", log)],
    )
    layer["k"] = "d"
    assert log == [
        ("A.index", "write"),
        ("B.index", "write"),
        ("A.data", "write", "state-A"),
        ("p.plain",),
        ("B.data", "write", "state-B"),
        ("backend.write", "k+i+A+B", "d|A|p|B"),
    ]


def test_joint_processor_with_prob_zero_runs_neither_step() -> None:
    log: list[Any] = []
    backend = RecordingBackend(log)
    backend._store["k"] = "d"
    layer = Layer(backend=backend, read_procs=[Tag("A", log, prob=0.0)])
    assert layer["k"] == "d"
    assert log == [("backend.read", "k")]


def test_joint_processor_probability_is_drawn_per_call() -> None:
    log: list[Any] = []
    backend = MemoryBackend()
    backend.write("k", "d")
    backend.write("k+A", "dA")
    layer = Layer(backend=backend, read_procs=[Tag("A", log, prob=0.5)])
    results = {layer["k"] for _ in range(200)}
    # Applied: index k+A and data "dA|A"; skipped: plain "d". Both happen in 200 draws.
    assert results == {"d", "dA|A"}


def test_index_and_data_of_one_call_stay_paired_across_threads() -> None:
    """Per-call state travels with the call, not on the shared processor (no races)."""

    class Scale(JointIndexDataProcessor[Any, Any]):
        def process_index(self, idx: Any, mode: str) -> tuple[Any, Any]:
            return idx, idx  # the state is this call's own index

        def process_data(self, data: Any, mode: str, state: Any) -> Any:
            return (data, state)

    backend = MemoryBackend()
    for i in range(64):
        backend.write(i, i * 10)
    layer = Layer(backend=backend, read_procs=[Scale()])
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def work(offset: int) -> None:
        barrier.wait(timeout=10)
        for _ in range(200):
            for i in range(offset, 64, 8):
                data, state = layer[i]
                if state != i or data != i * 10:
                    errors.append(f"read {i} got data {data} with state {state}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []


def test_readonly_write_raises_before_any_processor_runs() -> None:
    log: list[Any] = []
    layer = Layer(
        backend=RecordingBackend(log),
        readonly=True,
        index_procs=[lambda i: log.append("index") or i],
        write_procs=[Tag("A", log), plain("p", log)],
    )
    with pytest.raises(IOError, match="readonly"):
        layer["k"] = "d"
    with pytest.raises(ReadonlyLayerError):
        layer.write_with_procs("k", "d")
    assert log == []


def test_backend_that_cannot_write_is_refused_before_processors() -> None:
    class ReadOnlyStore(MemoryBackend):
        capabilities = Capabilities(writable=False, shared_across_processes=False)

    log: list[Any] = []
    layer = Layer(backend=ReadOnlyStore(), write_procs=[plain("p", log)])
    with pytest.raises(UnsupportedOperationError, match="writable"):
        layer["k"] = "d"
    assert log == []


def test_with_procs_replaces_only_the_lists_given() -> None:
    a, b, c = (lambda x: x), (lambda x: x), (lambda x: x)
    layer = build_memory_layer(index_procs=[a], read_procs=[b], write_procs=[c])
    changed = layer.with_procs(read_procs=[c, b])
    assert changed.index_procs == (a,)
    assert changed.read_procs == (c, b)
    assert changed.write_procs == (c,)
    assert layer.read_procs == (b,)  # the original is untouched
    cleared = layer.with_procs(index_procs=[])
    assert cleared.index_procs == ()
    assert cleared.read_procs == (b,)


def test_with_changes_evolves_fields_and_refuses_unknown_ones() -> None:
    layer = build_memory_layer()
    ro = layer.with_changes(readonly=True)
    assert ro.readonly
    assert not layer.readonly
    assert ro.backend is layer.backend
    with pytest.raises(TypeError, match="readonlyy"):
        layer.with_changes(readonlyy=True)


def test_name_and_delete_proxy_the_backend() -> None:
    layer = build_memory_layer(name="mem://here")
    assert layer.name == "mem://here"
    layer["a"] = 1
    layer.delete()
    with pytest.raises(KeyError, match="'a'"):
        layer["a"]


def test_processors_must_be_callables_in_a_sequence() -> None:
    with pytest.raises(TypeError, match="sequence"):
        build_memory_layer(read_procs=lambda x: x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        build_memory_layer(read_procs=[42])


def test_layers_are_frozen_values() -> None:
    backend = MemoryBackend()
    first = build_layer(backend)
    assert first == build_layer(backend)
    with pytest.raises(AttributeError):
        first.readonly = True  # type: ignore[misc]


def test_backend_protocol_requires_every_method() -> None:
    class Incomplete(Backend[Any, Any]):
        @property
        def name(self) -> str:
            return "x"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]
