"""Fixtures for the lamina-precomputed tests: S3 served by moto on loopback, helpers."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

import pytest

from lamina.testing.s3 import moto_s3, new_bucket

# CloudVolume reads this when it is imported: keep its disk cache (allow_cache=True)
# out of the user's home directory.
os.environ.setdefault("CLOUD_VOLUME_CACHE_DIR", tempfile.mkdtemp(prefix="lamina-cv-cache-"))


@pytest.fixture(scope="session", autouse=True, params=["tensorstore", "cloudvolume"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs on both engines, as the default of every volume opened without
    ``engine=`` (``$LAMINA_PRECOMPUTED_ENGINE``, inherited by worker processes):
    TensorStore wherever it serves a volume exactly (local files and S3), then the
    CloudVolume engine everywhere."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAMINA_PRECOMPUTED_ENGINE", request.param)
        yield request.param


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cloudvolume_engine`` or ``explicit_engine`` run once, with the
    CloudVolume engine as the default: the ``tensorstore`` copy of each is deselected."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_tensorstore = callspec is not None and callspec.params.get("engine") == "tensorstore"
        once = item.get_closest_marker("cloudvolume_engine") or item.get_closest_marker(
            "explicit_engine"
        )
        (drop if on_tensorstore and once else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 for one test module; ``s3://`` paths go to it
    (cloud-files and TensorStore read ``AWS_ENDPOINT_URL_S3``; spawned worker processes
    inherit the variables)."""
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def s3_root(s3_endpoint: str) -> str:
    """A fresh bucket (a new name per module, so cloud-files' per-bucket connection
    pools never point at a stopped server): ``s3://lamina-test-…``."""
    return new_bucket(s3_endpoint)


@pytest.fixture
def mem_root() -> str:
    """A fresh ``mem://`` prefix."""
    return f"mem://lamina-test/{uuid.uuid4().hex[:12]}"
