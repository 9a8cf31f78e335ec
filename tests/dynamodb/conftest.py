"""Fixtures of the lamina-dynamodb tests: fake AWS credentials, moto in-process
(``mock_aws``) and moto's server on loopback (in a process of its own)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from dynamodb_support import AWS_TEST_ENV, AWS_UNSET_ENV, MotoServerProcess

# Set before anything creates a boto3 client (and inherited by spawned processes): no
# test ever looks for real credentials or reaches AWS.
for _name in AWS_UNSET_ENV:
    os.environ.pop(_name, None)
os.environ.update(AWS_TEST_ENV)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint of moto's ``ThreadedMotoServer`` on 127.0.0.1, for the session."""
    server = MotoServerProcess()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="class")
def moto_in_process() -> Iterator[None]:
    """moto in this process (``mock_aws``) for one test class: endpoint ``None``."""
    from moto import mock_aws

    with mock_aws():
        yield None


@pytest.fixture
def mocked() -> Iterator[None]:
    """moto in this process for one test."""
    from moto import mock_aws

    with mock_aws():
        yield None
