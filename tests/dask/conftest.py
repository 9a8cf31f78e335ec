"""Fixtures for the lamina-dask tests: one dask LocalCluster of 2 worker processes on
loopback for the session (the tests that pass ``scheduler=`` use it; the others let the
executor start its own), journals in each test's tmp_path."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# CloudVolume reads this when it is imported: keep its disk cache out of the user's home
# directory (worker processes inherit it).
os.environ.setdefault("CLOUD_VOLUME_CACHE_DIR", tempfile.mkdtemp(prefix="lamina-cv-cache-"))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """A LocalCluster of 2 single-threaded worker processes on 127.0.0.1, running for the
    whole session: the "existing cluster" the tests reach with ``scheduler=``.

    ``worker-saturation`` 1.0: a worker holds only the task it runs, so a worker killed
    on purpose takes no bystander task with it (dask counts those as suspicious too).
    ``lost-worker-timeout`` 1 h: a plain LocalCluster closes the nanny of a worker not
    back 15 s after it died (lamina-dask's own local cluster never does), and a restart
    can take that long on a loaded machine.
    """
    import dask
    from distributed import LocalCluster

    session = dask.config.set({"distributed.deploy.lost-worker-timeout": "1h"})
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        local = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not on 8787
            silence_logs=logging.CRITICAL,
        )
    try:
        yield local
    finally:
        local.close()
        session.__exit__(None, None, None)


@pytest.fixture(scope="session")
def client(cluster: Any) -> Iterator[Any]:
    from distributed import Client

    with Client(cluster, set_as_default=False) as connected:
        yield connected


@pytest.fixture
def address(cluster: Any, client: Any) -> str:
    """The session cluster's scheduler address, with both workers up."""
    client.wait_for_workers(2, timeout=120)
    return str(cluster.scheduler_address)


@pytest.fixture(autouse=True)
def _journals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_JOURNAL_DIR", str(tmp_path / "journals"))
