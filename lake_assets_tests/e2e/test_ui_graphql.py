"""The lake in the Dagster UI, end to end: `dagster dev` as a user starts it, driven over GraphQL.

One `dagster dev -w workspace.yaml` (webserver, daemon, code server) runs for the
module, on 127.0.0.1 and a free port, with DAGSTER_HOME, LAKE_ROOT and LAKE_LANDING under a
temporary directory where `lake-assets simulate --days 2` has landed demo CDC files (no sync).
The tests talk to it only through POST /graphql:

- every asset of every layer (raw, bronze, silver, gold) and every check is in the UI, exactly
  the keys of `build_definitions(Settings.load())` built in this process with the same env;
- the sensors are running, each has ticked with no failed tick, and `landing_files_sensor_shop`
  requests exactly the landed partitions (one run per day, the tables with files that day);
- a run of `raw/shop/customers` for one landed day, launched like the UI's "Materialize",
  succeeds and writes that day's changes to the Delta table (read back with delta-rs).

The test instance holds every run a sensor requests in the queue (a tag concurrency limit of
0 on `dagster/sensor_name`), so the sensor's and the automation's runs cannot write the lake
while the test's run does, and the run under test is the only one that executes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

pytestmark = pytest.mark.slow

SHOP_TABLES = {"customers", "products", "orders", "order_items"}
WORKSPACE_FILE = Path(__file__).resolve().parents[2] / "workspace.yaml"
STARTUP_TIMEOUT = 150  # s until the webserver answers and the code location has loaded
RUN_TIMEOUT = 300  # s until the launched run reaches a terminal status
SENSOR_TIMEOUT = 90  # s until the landing sensor has requested its runs
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

DAGSTER_YAML = """\
telemetry:
  enabled: false
run_queue:
  # Runs requested by sensors (landing files, gold partitions, declarative automation) stay
  # queued: the only run that executes is the one a test launches.
  tag_concurrency_limits:
    - key: dagster/sensor_name
      limit: 0
"""


class GraphQLError(AssertionError):
    pass


@dataclass
class DagsterUI:
    url: str
    proc: subprocess.Popen
    log: Path
    home: Path
    root: Path
    landing: Path

    def env(self) -> dict[str, str]:
        return {"DAGSTER_HOME": str(self.home), "LAKE_ROOT": str(self.root), "LAKE_LANDING": str(self.landing)}

    def gql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        resp = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout)
        if resp.status_code != 200:
            raise GraphQLError(f"HTTP {resp.status_code} from {self.url}/graphql: {resp.text[:2000]}")
        body = resp.json()
        if body.get("errors"):
            raise GraphQLError(f"GraphQL errors: {json.dumps(body['errors'])[:3000]}")
        return body["data"]

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def repository(self) -> tuple[str, str]:
        """(location name, repository name) of the one code location."""
        entries = self.gql(WORKSPACE)["workspaceOrError"]["locationEntries"]
        loaded = [
            (e["name"], r["name"])
            for e in entries
            if (e.get("locationOrLoadError") or {}).get("__typename") == "RepositoryLocation"
            for r in e["locationOrLoadError"]["repositories"]
        ]
        assert len(loaded) == 1, f"expected one loaded repository, got {json.dumps(entries)[:3000]}"
        return loaded[0]


WORKSPACE = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message stack }
  }
}
"""

ASSET_NODES = """
{
  assetNodes {
    assetKey { path }
    groupName
    isPartitioned
    isMaterializable
    assetChecksOrError { __typename ... on AssetChecks { checks { name } } }
  }
}
"""

SENSORS = """
query($repo: RepositorySelector!) {
  sensorsOrError(repositorySelector: $repo) {
    __typename
    ... on Sensors { results { name sensorState { status ticks(limit: 20) { status error { message } } } } }
    ... on PythonError { message stack }
  }
}
"""

RUNS = """
query($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status tags { key value } assetSelection { path } } }
    ... on PythonError { message }
  }
}
"""

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

RUN_STATUS = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status tags { key value } }
    ... on PythonError { message }
  }
}
"""

RUN_LOGS = """
query($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message stepKey level }
        ... on ExecutionStepFailureEvent { error { message stack } }
        ... on RunFailureEvent { error { message } }
        ... on AssetCheckEvaluationEvent { evaluation { checkName success assetKey { path } } }
        ... on MaterializationEvent { partition assetKey { path } }
      }
    }
    ... on PythonError { message }
  }
}
"""

MATERIALIZATIONS = """
query($key: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset { assetMaterializations(partitions: $partitions) { partition runId } }
  }
}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the whole process group (webserver, daemon, code servers, run workers), then SIGKILL it."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = proc.pid  # the leader has exited; its group may still hold run workers
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(pgid, signal.SIGKILL)  # whatever did not exit, run workers included
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass


def _wait_until_up(ui: DagsterUI) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer yet"
    while time.monotonic() < deadline:
        if ui.proc.poll() is not None:
            pytest.fail(f"dagster dev exited with {ui.proc.returncode} before answering:\n{ui.log_tail()}")
        try:
            entries = ui.gql(WORKSPACE, timeout=10)["workspaceOrError"]["locationEntries"]
            states = [(e["loadStatus"], (e.get("locationOrLoadError") or {}).get("__typename")) for e in entries]
            errors = [e["locationOrLoadError"] for e in entries if (e.get("locationOrLoadError") or {}).get("__typename") == "PythonError"]
            if errors:
                pytest.fail(f"the code location failed to load in the UI: {errors[0]['message']}\n{errors[0]['stack']}")
            if entries and all(s == ("LOADED", "RepositoryLocation") for s in states):
                return
            last = f"locations: {states}"
        except (requests.RequestException, GraphQLError, KeyError, TypeError) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(1)
    pytest.fail(f"the webserver did not answer within {STARTUP_TIMEOUT}s ({last}):\n{ui.log_tail()}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> DagsterUI:
    tmp = tmp_path_factory.mktemp("ui")
    home, root, landing = tmp / "dagster_home", tmp / "lake", tmp / "landing"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {k: v for k, v in os.environ.items() if k not in ("LAKE_SOURCES", "LAKE_DEPLOYMENT")}
    env.update(DAGSTER_HOME=str(home), LAKE_ROOT=str(root), LAKE_LANDING=str(landing), PYTHONUNBUFFERED="1")
    landed = subprocess.run(
        [sys.executable, "-m", "lake_assets.cli", "simulate", "--days", "2", "--lake-root", str(root)],
        env=env, cwd=tmp, capture_output=True, text=True, timeout=300,
    )
    assert landed.returncode == 0, f"lake-assets simulate failed ({landed.returncode}):\n{landed.stdout}\n{landed.stderr}"
    port = _free_port()
    log = tmp / "dagster_dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", str(WORKSPACE_FILE), "-h", "127.0.0.1", "-p", str(port)],
            env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: teardown kills it and every child
        )
    server = DagsterUI(f"http://127.0.0.1:{port}", proc, log, home, root, landing)
    try:
        _wait_until_up(server)
        yield server
    finally:
        _stop(proc)


@pytest.fixture
def lake_env(ui, monkeypatch):
    """This process's environment as the server's, for building the definitions in-process."""
    for var in ("LAKE_SOURCES", "LAKE_DEPLOYMENT"):
        monkeypatch.delenv(var, raising=False)
    for k, v in ui.env().items():
        monkeypatch.setenv(k, v)


def _landed_days(landing: Path, source) -> dict[str, dict[dt.date, list[Path]]]:
    """{table: {partition day: files}} from the landing zone's names (LOAD* belongs to the first day)."""
    out: dict[str, dict[dt.date, list[Path]]] = {}
    for table in source.tables:
        for f in sorted((landing / source.name / table.schema / table.name).rglob("*.parquet")):
            day = source.start_date if f.name.startswith("LOAD") else dt.datetime.strptime(f.name[:8], "%Y%m%d").date()
            out.setdefault(table.name, {}).setdefault(day, []).append(f)
    return out


def _shop_source():
    from lake_assets.catalog import load_catalog
    from lake_assets.settings import Settings

    (source,) = [s for s in load_catalog(Settings.load().sources).sources if s.name == "shop"]
    return source


def _run_problems(ui: DagsterUI, run_id: str) -> str:
    events = ui.gql(RUN_LOGS, {"runId": run_id})["logsForRun"].get("events") or []
    lines = []
    for e in events:
        if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent"):
            err = e.get("error") or {}
            lines.append(f"{e['__typename']} {e.get('stepKey')}: {e.get('message')}\n{err.get('message', '')}{err.get('stack', '') and ''.join(err['stack'])[-3000:]}")
    return "\n".join(lines) or "\n".join(f"{e['__typename']}: {e.get('message')}" for e in events[-30:])


def test_every_layer_of_every_table_is_in_the_ui(ui, lake_env):
    import dagster as dg

    from lake_assets.definitions import build_definitions
    from lake_assets.lib.models import models_of
    from lake_assets.settings import Settings

    defs = build_definitions(Settings.load())
    graph = defs.resolve_asset_graph()
    expected = {tuple(k.path) for k in graph.get_all_asset_keys()}
    expected_checks = {tuple(k.path): {c.name for c in graph.get(k).check_keys} for k in graph.get_all_asset_keys()}

    nodes = ui.gql(ASSET_NODES)["assetNodes"]
    in_ui = {tuple(n["assetKey"]["path"]): n for n in nodes}
    assert set(in_ui) == expected, (
        f"only in the UI: {sorted(set(in_ui) - expected)}; missing from the UI: {sorted(expected - set(in_ui))}"
    )

    source = _shop_source()
    assert {t.name for t in source.tables} == SHOP_TABLES
    for table in SHOP_TABLES:
        for layer in ("raw", "bronze", "silver"):
            assert (layer, "shop", table) in in_ui, f"{layer}/shop/{table} is not in the UI"
        assert in_ui[("raw", "shop", table)]["isPartitioned"], f"raw/shop/{table} is not partitioned in the UI"
    gold = [m.name for m in models_of(source) if m.layer == "gold"]
    assert gold, "the shop catalog defines no gold tables"
    for name in gold:
        assert ("gold", "shop", name) in in_ui, f"gold/shop/{name} is not in the UI"
    assert {k[0] for k in in_ui} == {"raw", "bronze", "silver", "gold"}

    for key, node in in_ui.items():
        checks = node["assetChecksOrError"]
        assert checks["__typename"] == "AssetChecks", f"{'/'.join(key)}: {checks}"
        assert {c["name"] for c in checks["checks"]} == expected_checks[key], f"checks of {'/'.join(key)}"
        assert node["isMaterializable"] == graph.get(dg.AssetKey(list(key))).is_materializable


def test_sensors_run_and_request_the_landed_partitions(ui, lake_env):
    from lake_assets.definitions import build_definitions
    from lake_assets.settings import Settings

    location, repo = ui.repository()
    assert location == "lake_assets"  # as with the demo's workspace file and `dagster dev` in the repo
    result = ui.gql(SENSORS, {"repo": {"repositoryLocationName": location, "repositoryName": repo}})["sensorsOrError"]
    assert result["__typename"] == "Sensors", result
    status = {s["name"]: s["sensorState"]["status"] for s in result["results"]}
    expected = {s.name for s in build_definitions(Settings.load()).sensors}
    assert set(status) == expected
    assert "landing_files_sensor_shop" in status
    assert all(v == "RUNNING" for v in status.values()), status

    # Every sensor ticks, and no tick fails (e.g. on a lake whose silver does not exist yet).
    repo_selector = {"repo": {"repositoryLocationName": location, "repositoryName": repo}}
    deadline = time.monotonic() + SENSOR_TIMEOUT
    while True:
        ticks = {s["name"]: s["sensorState"]["ticks"] for s in ui.gql(SENSORS, repo_selector)["sensorsOrError"]["results"]}
        if all(ticks.values()) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert all(ticks.values()), f"sensors with no tick after {SENSOR_TIMEOUT}s: {sorted(n for n, t in ticks.items() if not t)}"
    failed = {n: t["error"]["message"] if t.get("error") else "" for n, ts in ticks.items() for t in ts if t["status"] == "FAILURE"}
    assert not failed, f"sensor ticks failed: {failed}"

    # The landing sensor requests every day with landed files (held in the queue by the test instance).
    landed = _landed_days(ui.landing, _shop_source())
    days = {d.isoformat() for by_day in landed.values() for d in by_day}
    tag = {"key": "dagster/sensor_name", "value": "landing_files_sensor_shop"}
    deadline = time.monotonic() + SENSOR_TIMEOUT
    requested: dict[str, set[str]] = {}
    while time.monotonic() < deadline:
        runs = ui.gql(RUNS, {"filter": {"tags": [tag]}})["runsOrError"]["results"]
        requested = {}
        for r in runs:
            tags = {t["key"]: t["value"] for t in r["tags"]}
            requested.setdefault(tags.get("dagster/partition"), set()).update("/".join(a["path"]) for a in r["assetSelection"] or [])
        if set(requested) >= days:
            break
        time.sleep(2)
    assert set(requested) == days, f"the landing sensor requested {sorted(requested)}, landed days are {sorted(days)}"
    for day in days:
        tables = {t for t, by_day in landed.items() if dt.date.fromisoformat(day) in by_day}
        assert requested[day] == {f"raw/shop/{t}" for t in tables}, day


def test_materialize_a_raw_partition_from_the_ui(ui, lake_env):
    from deltalake import DeltaTable, QueryBuilder

    landed = _landed_days(ui.landing, _shop_source())["customers"]
    day = max(landed)  # the newest day with CDC files (the full load belongs to the first day)
    files = landed[day]
    expected_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    assert expected_rows > 0

    location, repo = ui.repository()
    key = ["raw", "shop", "customers"]
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repo,
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": key}],
        },
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day.isoformat()}]},
    }
    launched = ui.gql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + RUN_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        run = ui.gql(RUN_STATUS, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        status = run["status"]
        if status in TERMINAL:
            break
        time.sleep(2)
    assert status == "SUCCESS", (
        f"run {run_id} of raw/shop/customers[{day}] ended {status} (waited up to {RUN_TIMEOUT}s):\n"
        f"{_run_problems(ui, run_id)}\n--- dagster dev log ---\n{ui.log_tail()}"
    )

    events = ui.gql(RUN_LOGS, {"runId": run_id})["logsForRun"]["events"]
    mats = [e for e in events if e["__typename"] == "MaterializationEvent"]
    assert [(m["assetKey"]["path"], m["partition"]) for m in mats] == [(key, day.isoformat())]
    evaluations = {e["evaluation"]["checkName"]: e["evaluation"]["success"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"}
    node = [n for n in ui.gql(ASSET_NODES)["assetNodes"] if n["assetKey"]["path"] == key][0]
    checks = {c["name"] for c in node["assetChecksOrError"]["checks"]}
    assert checks and evaluations == {c: True for c in checks}, f"checks of raw/shop/customers in the run: {evaluations}"
    recorded = ui.gql(MATERIALIZATIONS, {"key": {"path": key}, "partitions": [day.isoformat()]})["assetOrError"]
    assert [(m["partition"], m["runId"]) for m in recorded["assetMaterializations"]] == [(day.isoformat(), run_id)]

    path = ui.root / "raw" / "shop" / "customers"
    assert (path / "_delta_log").is_dir(), f"no Delta table at {path}"
    result = QueryBuilder().register("t", DeltaTable(str(path))).execute(
        "SELECT CAST(_file_date AS VARCHAR) AS day, _op, _source_file, customer_id FROM t"
    ).read_all()
    rows = pa.table(result).to_pylist()
    assert rows, f"the Delta table at {path} has no rows"
    assert Counter(r["day"] for r in rows) == {day.isoformat(): expected_rows}, "raw holds exactly the run's day"
    assert {r["_source_file"].rsplit("/", 1)[-1] for r in rows} == {f.name for f in files}
    assert {r["_op"] for r in rows} <= {"I", "U", "D"}
    assert all(r["customer_id"] is not None for r in rows)
