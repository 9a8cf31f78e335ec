"""S3 served by moto's server on loopback, for the tests of formats that reach S3.

``with moto_s3() as endpoint:`` starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1
and sets the variables boto3, cloud-files and TensorStore read (test credentials, the
region, ``AWS_ENDPOINT_URL_S3``), so plain ``s3://bucket/path`` paths go to it, in this
process and in the processes it starts; :func:`new_bucket` makes a bucket with a fresh
name. moto (``moto[server]``) and boto3 are the test environment's, not lamina's.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Final

__all__ = ["S3_TEST_ENV", "moto_s3", "new_bucket"]

#: The credentials and region the tests use (moto accepts any).
S3_TEST_ENV: Final = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 while the block runs; yields its endpoint URL. The
    environment variables it sets are restored afterwards."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    values = {**S3_TEST_ENV, "AWS_ENDPOINT_URL_S3": endpoint}
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield endpoint
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def new_bucket(endpoint: str, prefix: str = "lamina-test") -> str:
    """A new bucket with a fresh name on the S3 server at ``endpoint``: ``s3://NAME``."""
    import boto3

    bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}"
