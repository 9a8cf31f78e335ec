"""Fixtures of the lamina-rangemap tests: fake AWS credentials, moto in-process and on
loopback, a CloudVolume cache directory out of the user's home."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest
from rangemap_support import AWS_TEST_ENV, AWS_UNSET_ENV, MotoServer

# Set before anything creates a boto3 client (and inherited by spawned processes): no
# test ever looks for real credentials or reaches AWS.
for _name in AWS_UNSET_ENV:
    os.environ.pop(_name, None)
os.environ.update(AWS_TEST_ENV)
os.environ.setdefault("CLOUD_VOLUME_CACHE_DIR", tempfile.mkdtemp(prefix="lamina-cv-cache-"))


@pytest.fixture
def mocked() -> Iterator[None]:
    """moto in this process (``mock_aws``) for one test."""
    from moto import mock_aws

    with mock_aws():
        yield None


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint of moto's server on 127.0.0.1, in a process of its own."""
    server = MotoServer()
    try:
        yield server.endpoint
    finally:
        server.stop()
