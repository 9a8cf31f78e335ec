"""Several threads and a spawned process writing one table at once (moto's server on
loopback, which every process reaches)."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import dynamodb_support as raw
import numpy as np
import pytest
from lamina_dynamodb import DynamoDBBackend, build_dynamodb_layer

from lamina.keyvalue.index import DBIndex
from lamina.testing import assert_values_equal

SHARED = [f"shared-{i:02d}" for i in range(20)]
ROWS = 60


def _write_rows(backend: DynamoDBBackend, who: str, barrier: Any = None) -> None:
    """Whole rows of one's own, then a column of one's own in every shared row."""
    if barrier is not None:
        barrier.wait(60)
    keys = [f"{who}-{i:03d}" for i in range(ROWS)]
    for start in range(0, ROWS, 20):  # several calls, so the writers interleave
        part = keys[start : start + 20]
        backend.write(
            DBIndex(dict.fromkeys(part, ("value",))),
            [{"value": i, "who": who, "arr": np.full(2, i)} for i in range(start, start + 20)],
        )
    idx = DBIndex(dict.fromkeys(SHARED, (who,)), col_keys=(who,))
    backend.write(idx, [{who: i} for i in range(len(SHARED))])


def _child(spec: dict[str, Any], barrier: Any) -> None:
    _write_rows(DynamoDBBackend(**spec), "proc", barrier)


@pytest.mark.parametrize("threads", [4])
def test_threads_and_a_spawned_process_write_at_once(moto_server: str, threads: int) -> None:
    layer = build_dynamodb_layer(
        raw.unique_table(), region=raw.REGION, endpoint_url=moto_server, create=True
    )
    backend = layer.backend
    assert isinstance(backend, DynamoDBBackend)
    # The shared rows exist before the column updates start: moto creates an item for an
    # UpdateItem of an absent row in two steps, so two concurrent creations can lose one
    # update there (DynamoDB's UpdateItem is atomic either way).
    layer[SHARED] = ["initial"] * len(SHARED)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work(who: str) -> None:
        try:
            _write_rows(backend, who, barrier)
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    process = ctx.Process(target=_child, args=(backend.spec, barrier))
    process.start()
    workers = [threading.Thread(target=work, args=(f"t{j}",)) for j in range(threads - 1)]
    for worker in workers:
        worker.start()
    work("main-thread")  # the test thread takes part too
    for worker in workers:
        worker.join(120)
    process.join(120)
    assert not errors, errors
    assert process.exitcode == 0

    writers = ["proc", "main-thread", *(f"t{j}" for j in range(threads - 1))]
    stored = raw.raw_row_keys(moto_server, backend.table)
    assert len(stored) == len(writers) * ROWS + len(SHARED)
    for who in writers:
        keys = [f"{who}-{i:03d}" for i in range(ROWS)]
        expected = [{"value": i, "who": who, "arr": np.full(2, i)} for i in range(ROWS)]
        assert_values_equal(backend.read(DBIndex(dict.fromkeys(keys, ("value",)))), expected)
    # column updates are atomic per row: no writer's column was lost
    shared = backend.read(DBIndex(dict.fromkeys(SHARED, ("value",))))
    assert shared == [{"value": "initial", **dict.fromkeys(writers, i)} for i in range(len(SHARED))]
    assert len(layer) == len(stored)
