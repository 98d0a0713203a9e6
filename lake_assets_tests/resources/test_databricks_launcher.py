"""LAKE_DEPLOYMENT=databricks end to end, without Databricks: `dagster asset materialize` (a
Dagster deployment's own way to run assets, a fresh process with only environment variables)
sends every Spark step through dagster-databricks' step launcher to the Databricks REST
emulator on loopback, whose "cluster" runs it on the embedded engine against a moto S3 server.

The Dagster side holds no AWS credentials: the cluster's steps get them from the workspace's
secret scope. Raw, bronze and a model are materialized; their Delta tables are read back from S3
with delta-rs; the events and logs of the cluster's steps are in the Dagster instance; a step
that fails on the cluster fails the Dagster run with the cluster's traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import dagster as dg
import pyarrow as pa
import pytest

from lake_assets_tests.assets._lake import ROW, catalog, r, ts, write_cdc, write_load
from lake_assets_tests.databricks_emulator import DatabricksEmulator
from lake_assets_tests.resources.conftest import CREDENTIALS, new_bucket, set_aws_env

pytestmark = pytest.mark.slow

WORKTREE = Path(__file__).resolve().parents[2]
TOKEN = "dapi-emulated-0123456789"
IN_PROCESS = ("--config-json", '{"execution": {"config": {"in_process": {}}}}')
SCOPE = "lake"
MODEL = """\
models:
  - name: value_counts
    layer: gold
    description: One row per value of v in bronze, with its number of keys.
    sql: SELECT v, COUNT(*) AS n FROM {{ bronze.items }} GROUP BY v
"""


def _land(folder: Path) -> None:
    write_load(
        folder,
        "s",
        "public",
        "items",
        1,
        [r(None, "2024-01-01 00:00:00", i, "a") for i in (1, 2, 3)],
        ROW,
    )
    write_cdc(
        folder,
        "s",
        "public",
        "items",
        ts("2024-01-02 10:00:00"),
        [
            r("U", "2024-01-02 10:00:00", 2, "b"),
            r("D", "2024-01-02 10:00:01", 3),
            r("I", "2024-01-02 10:00:02", 4, "b"),
        ],
        ROW,
    )
    broken = folder / "s" / "public" / "broken" / "LOAD00000001.parquet"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PAR1 this is not a parquet file")


def _upload(endpoint: str, folder: Path, bucket: str, prefix: str) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_REGION"],
    )
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder)}")


def _materialize(env: dict, select: str, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "lake_assets.definitions",
            "--select",
            select,
            *more,
        ],
        env=env,
        cwd=env["DAGSTER_HOME"],
        capture_output=True,
        text=True,
        timeout=300,
    )


class Workspace:
    def __init__(self, emulator, bucket, home, runs):
        self.emulator, self.bucket, self.home, self.runs = emulator, bucket, home, runs

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))


@pytest.fixture(scope="module")
def workspace(moto_endpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("databricks")
    bucket = new_bucket(moto_endpoint)
    _land(tmp / "landed")
    _upload(moto_endpoint, tmp / "landed", bucket, "landing")
    (tmp / "catalog.yaml").write_text(catalog("items", "broken", extra=MODEL))
    home = tmp / "dagster_home"
    home.mkdir()
    # The cluster's own S3 configuration: its engine reaches an http:// endpoint.
    with DatabricksEmulator(tmp / "workspace", TOKEN, cluster_env={"AWS_ALLOW_HTTP": "true"}) as ws:
        from databricks.sdk import WorkspaceClient

        client = WorkspaceClient(host=ws.host, token=TOKEN)
        client.secrets.create_scope(SCOPE)
        client.secrets.put_secret(
            SCOPE, "aws_access_key_id", string_value=CREDENTIALS["AWS_ACCESS_KEY_ID"]
        )
        client.secrets.put_secret(
            SCOPE, "aws_secret_access_key", string_value=CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "LAKE_", "DATABRICKS_", "DAGSTER_"))
        }
        env.update(
            {
                "PYTHONPATH": str(WORKTREE),
                "DAGSTER_HOME": str(home),
                "LAKE_DEPLOYMENT": "databricks",
                "LAKE_ROOT": f"s3://{bucket}/lake",
                "LAKE_LANDING": f"s3://{bucket}/landing",
                "LAKE_SOURCES": str(tmp / "catalog.yaml"),
                "DATABRICKS_HOST": ws.host,
                "DATABRICKS_TOKEN": TOKEN,
                "DATABRICKS_CLUSTER_ID": ws.cluster_id,
                "DATABRICKS_SECRET_SCOPE": SCOPE,
                "DATABRICKS_POLL_INTERVAL_SECONDS": "0.5",
                # Where the lake's S3 is, not who may use it.
                "AWS_ENDPOINT_URL": moto_endpoint,
                "AWS_REGION": CREDENTIALS["AWS_REGION"],
            }
        )
        days = ("--partition-range", "2024-01-01...2024-01-02")
        runs = {
            # One step after the other (the default executor would start a process per step
            # here before it launches the step: seconds each on this machine, for nothing).
            "raw": _materialize(env, "raw/s/items,raw/s/broken", *days, *IN_PROCESS),
            "bronze_and_model": _materialize(
                env, "bronze/s/items,gold/s/value_counts", *IN_PROCESS
            ),
        }
        yield Workspace(ws, bucket, home, runs)


def _rows(uri: str, order_by: str) -> list[dict]:
    from deltalake import DeltaTable, QueryBuilder

    from lake_assets.lib import storage

    table = DeltaTable(uri, storage_options=storage.storage_options(uri))
    result = (
        QueryBuilder()
        .register("t", table)
        .execute(f"SELECT * FROM t ORDER BY {order_by}")
        .read_all()
    )
    return pa.table(result).to_pylist()


def test_the_steps_write_the_lake_on_s3(workspace, moto_endpoint, monkeypatch):
    run = workspace.runs["bronze_and_model"]
    assert run.returncode == 0, run.stderr[-3000:]
    set_aws_env(monkeypatch, moto_endpoint)
    root = f"s3://{workspace.bucket}/lake"
    raw = _rows(f"{root}/raw/s/items", "_seq")
    assert [(x["_op"], x["id"], x["v"]) for x in raw] == [
        ("I", 1, "a"),
        ("I", 2, "a"),
        ("I", 3, "a"),
        ("U", 2, "b"),
        ("D", 3, None),
        ("I", 4, "b"),
    ]
    bronze = _rows(f"{root}/bronze/s/items", "id")
    assert [(x["id"], x["v"]) for x in bronze] == [(1, "a"), (2, "b"), (4, "b")]
    gold = _rows(f"{root}/gold/s/value_counts", "v")
    assert [(x["v"], x["n"]) for x in gold] == [("a", 1), ("b", 2)]


def test_every_step_ran_on_the_cluster(workspace):
    ws = workspace.emulator
    # Every endpoint the launcher, the SDK and the cluster's dbutils called (the test's own
    # setup made the scope and its secrets): the emulator implements exactly these and more.
    assert set(ws.calls) == {
        ("POST", "/api/2.0/secrets/scopes/create"),
        ("POST", "/api/2.0/secrets/put"),
        ("POST", "/api/2.0/dbfs/create"),
        ("POST", "/api/2.0/dbfs/add-block"),
        ("POST", "/api/2.0/dbfs/close"),
        ("GET", "/api/2.0/dbfs/read"),
        ("POST", "/api/2.2/jobs/runs/submit"),
        ("GET", "/api/2.2/jobs/runs/get"),
        ("GET", "/api/2.0/secrets/get"),
    }, sorted(set(ws.calls))
    instance = workspace.instance()
    records = instance.get_run_records()
    assert len(records) == 2
    steps = {
        e.dagster_event.step_key
        for rec in records
        for e in instance.all_logs(rec.dagster_run.run_id)
        if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_START
    }
    # One Databricks run per step: the assets and the checks that read tables with Spark.
    assert len(ws.runs) == len(steps) >= 6
    assert {r.result_state for r in ws.runs.values()} == {"SUCCESS"}
    libraries = {
        lib["pypi"]["package"].split("==")[0] for r in ws.runs.values() for lib in r.libraries
    }
    assert {"deltalake", "dagster", "dagster-databricks", "databricks-sdk"} <= libraries


def _raw_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    (run,) = [
        rec.dagster_run
        for rec in instance.get_run_records()
        if rec.dagster_run.asset_selection
        == {dg.AssetKey(["raw", "s", "items"]), dg.AssetKey(["raw", "s", "broken"])}
    ]
    return run


def test_the_cluster_events_and_logs_reach_dagster(workspace):
    instance = workspace.instance()
    raw_run = _raw_run(instance)
    logs = instance.all_logs(raw_run.run_id)
    materialized = [e for e in logs if e.dagster_event and e.dagster_event.is_step_materialization]
    assert {tuple(e.dagster_event.asset_key.path) for e in materialized} == {("raw", "s", "items")}
    meta = materialized[0].dagster_event.step_materialization_data.materialization.metadata
    assert meta["changes"].value == 6
    messages = [e.user_message for e in logs]
    # Logged by the asset on the cluster, streamed back through DBFS:
    assert any("2 new landed file(s) of s.items for 2024-01-01..2024-01-02" in m for m in messages)
    assert any(m.startswith("Waiting for Databricks run") for m in messages)
    assert any(m.startswith("Captured stdout for step") for m in messages)
    assert any("Running dagster job" in m for m in messages)  # the cluster's stdout


def test_a_failure_on_the_cluster_fails_the_run_with_its_traceback(workspace):
    assert workspace.runs["raw"].returncode != 0
    instance = workspace.instance()
    raw_run = _raw_run(instance)
    assert raw_run.status == dg.DagsterRunStatus.FAILURE
    (failure,) = [
        e.dagster_event
        for e in instance.all_logs(raw_run.run_id)
        if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_FAILURE
    ]
    assert failure.step_key == "raw__s__broken"
    error = failure.step_failure_data.error
    assert "LOAD00000001.parquet" in error.message
    stack = "".join(error.stack)
    # The frames are the cluster's: the code the launcher shipped, unzipped there.
    assert "lake_assets/defs/raw/assets.py" in stack
    assert str(WORKTREE) not in stack
    assert "/dbfs/" not in stack and "lake_assets-code-" not in stack
