"""A real S3 endpoint on loopback: moto in server mode, in its own process.

moto runs as a subprocess, not as ``moto.server.ThreadedMotoServer`` in this process: a
``deltalake`` call keeps the GIL while it waits on its HTTP request, so a moto thread of the
same interpreter cannot answer it (seen: ``DeltaTable.is_deltatable`` timed out after 180 s
and 5 retries, "error sending request ... operation timed out").

Clients are configured only through the standard AWS variables (:func:`aws_env`): boto3,
pyarrow's S3FileSystem (lake_assets.lib.storage.filesystem), delta-rs
(lake_assets.lib.storage.storage_options) and the embedded engine, Sail, whose Rust
object_store reads AWS_* when a bucket is first used. Sail keeps one store per bucket for the
server's life, so every test uses a bucket of its own (:func:`new_bucket`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}
# Variables that would send a client elsewhere or change how it signs: unset for the tests.
UNSET = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "AWS_ENDPOINT",
)


def aws_env(endpoint: str, allow_http: bool = True) -> dict[str, str]:
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
    if allow_http:
        env["AWS_ALLOW_HTTP"] = "true"
    return env


def set_aws_env(mp: pytest.MonkeyPatch, endpoint: str, allow_http: bool = True) -> None:
    for k in UNSET + ("AWS_ALLOW_HTTP",):
        # set, then delete: the MonkeyPatch records the old value (or its absence) and puts
        # it back at the end, also for a variable the engine completes later.
        mp.setenv(k, "")
        mp.delenv(k)
    for k, v in aws_env(endpoint, allow_http).items():
        mp.setenv(k, v)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_moto(
    log, server: tuple[str, ...] = ("-m", "moto.server")
) -> tuple[subprocess.Popen, str]:
    """A moto server (`server`: the Python arguments that start it) on a free port."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, *server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/reset", data=b"", timeout=2).close()
            return proc, endpoint
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"moto server did not start on {endpoint} (exit code {proc.returncode})")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """http://127.0.0.1:<port> of a moto S3 server, stopped after the session."""
    with tempfile.TemporaryFile() as log:
        for attempt in range(3):  # the free port may be taken between probe and bind
            try:
                proc, endpoint = _start_moto(log)
                break
            except RuntimeError:
                if attempt == 2:
                    log.seek(0)
                    raise RuntimeError(
                        "moto server did not start:\n" + log.read().decode(errors="replace")[-2000:]
                    )
        try:
            yield endpoint
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def new_bucket(endpoint: str, prefix: str = "lake") -> str:
    """A bucket of its own on the server (Sail caches one object store per bucket)."""
    import boto3

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        **{k.lower(): v for k, v in CREDENTIALS.items() if k != "AWS_REGION"},
        region_name=CREDENTIALS["AWS_REGION"],
    ).create_bucket(Bucket=name)
    return name


def s3_keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    """Every object key under prefix, listed with boto3 (an independent client)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


@pytest.fixture
def s3(moto_endpoint, monkeypatch) -> tuple[str, str]:
    """(endpoint, a fresh bucket) with the AWS variables pointing at the server."""
    set_aws_env(monkeypatch, moto_endpoint)
    return moto_endpoint, new_bucket(moto_endpoint)
