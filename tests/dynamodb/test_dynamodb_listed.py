"""lamina-dynamodb is found through its entry point, and discovery stays light."""

from __future__ import annotations

import subprocess
import sys

from lamina.testing import plugin_listing


def test_listed_by_lamina_plugins() -> None:
    record = plugin_listing()["lamina-dynamodb"]
    assert record["error"] is None
    assert record["entry_point"] == "dynamodb = lamina_dynamodb.hooks"
    assert record["names"]["names"] == ["build_dynamodb_layer", "DynamoDBBackend"]


def test_discovery_imports_no_boto3() -> None:
    code = (
        "import sys, lamina, lamina_dynamodb.hooks; lamina.registered_names(); "
        "print(sorted(m for m in sys.modules if m.startswith('lamina_dynamodb'))); "
        "print('boto3' in sys.modules or 'botocore' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules, heavy = out.stdout.strip().splitlines()
    assert modules == "['lamina_dynamodb', 'lamina_dynamodb.hooks']"
    # (another installed plugin may import boto3 itself; ours does not)
    hooks_only = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, lamina_dynamodb.hooks; print('boto3' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert hooks_only.stdout.strip() == "False"
    assert heavy in ("True", "False")
