"""`LAKE_DEPLOYMENT=connect`: the lake's whole sync through a Spark Connect endpoint in another
process, here the embedded engine's own server (`sail spark server`) on loopback.

The sync runs as a user runs it (`python -m lake_assets.cli sync`, a fresh process); the same
days synced on the embedded engine in this process are the reference, table by table, read
back with delta-rs. That the work went to the server, not to an engine inside the sync's
process, is seen at the server: it is stopped before a second sync, which must then fail
with one line naming LAKE_SPARK_REMOTE.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from lake_assets_tests.resources.test_s3_lake import delta_tables_local, land, read_rows, run_cli

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sail_server(cwd: Path) -> tuple[subprocess.Popen, int]:
    """`sail spark server` on 127.0.0.1 and a free port, once it accepts connections."""
    port = _free_port()
    proc = subprocess.Popen(
        ["sail", "spark", "server", "--ip", "127.0.0.1", "--port", str(port), "-C", str(cwd)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "error"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"sail spark server did not start on port {port}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def connect_lake(tmp_path_factory):
    """Two days landed on a local disk and synced through a Sail server in another process;
    the server is stopped after the first sync, and a second sync is tried against it."""
    tmp = tmp_path_factory.mktemp("connect_lake")
    land(str(tmp / "landing"))
    proc, port = start_sail_server(tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "DAGSTER_HOME"))}
    env.update(
        LAKE_ROOT=str(tmp / "lake"),
        LAKE_LANDING=str(tmp / "landing"),
        LAKE_DEPLOYMENT="connect",
        LAKE_SPARK_REMOTE=f"sc://127.0.0.1:{port}",
        RUST_LOG="error",
    )
    try:
        first = run_cli("sync", env=env)
    finally:
        stop(proc)
    after_stop = run_cli("sync", env=env)
    return tmp / "lake", first, after_stop, port


@pytest.fixture(scope="module")
def reference_lake(tmp_path_factory) -> Path:
    import dagster as dg

    from lake_assets.catalog import load_catalog
    from lake_assets.definitions import build_definitions
    from lake_assets.settings import Settings
    from lake_assets.sync import sync

    tmp = tmp_path_factory.mktemp("reference_lake")
    land(str(tmp / "landing"))
    settings = Settings.load(str(tmp / "lake"), str(tmp / "landing"), None, "local")
    lines: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance:
        result = sync(
            settings,
            build_definitions(settings),
            load_catalog(settings.sources),
            instance,
            lines.append,
        )
    assert result.ok, "\n".join(result.failures + lines)
    return tmp / "lake"


def test_sync_through_spark_connect_builds_every_table(connect_lake, reference_lake):
    lake, first, _, _ = connect_lake
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    assert f"-> {lake} (connect)" in out
    assert "with 0 failure(s)" in out
    tables = sorted(delta_tables_local(reference_lake))
    assert {t.split("/")[0] for t in tables} == {"raw", "bronze", "silver", "gold"}
    assert sorted(delta_tables_local(lake)) == tables
    differ = [t for t in tables if read_rows(str(lake / t)) != read_rows(str(reference_lake / t))]
    assert not differ
    assert len(read_rows(str(lake / "bronze/shop/orders"))[1]) > 0


def test_a_sync_without_its_server_names_the_setting(connect_lake):
    _, _, after_stop, port = connect_lake
    assert after_stop.returncode == 2
    lines = after_stop.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: LAKE_SPARK_REMOTE=sc://127.0.0.1:{port}: no Spark Connect")
    assert "Traceback" not in after_stop.stderr
