"""Benchmark: how long a landed day takes to reach gold in the Dagster UI, with no click.

    python bench/ui_latency.py [--runs 3] [--max-concurrent-runs 1] [--timeout 600]

Each repetition, in a fresh temp dir (LAKE_ROOT, LAKE_LANDING and DAGSTER_HOME under it):
`lake-assets demo` lands ~3 weeks of the shop and syncs them into the instance it writes
itself ($LAKE_ROOT/_dagster: one run at a time, the queue looked at every second; the bench
keeps that unless --max-concurrent-runs); `dagster dev` starts on 127.0.0.1 and a free port
with the demo's workspace file; once the code location is loaded and
every sensor is running and has ticked, `lake-assets simulate --days 1` lands one more day
(t0 = when it returns). The landing sensor, declarative automation and the gold partitions
sensor then carry it to gold. GraphQL is polled until the chain is quiet: every table with new
files has raw and silver materialized after t0, no run is queued or running, and the gold
partitions sensor has finished a tick after the last silver materialization.

"Touched" is decided outside Dagster: the gold dates whose rows differ, read with delta-rs
before the simulate and after the chain (and they must be dates of orders or order lines in
the new landed files). Every touched date must have a gold materialization after t0.

The figures are Dagster's event timestamps minus t0 (not the polling's), per layer the last
materialization after t0 (gold: of the touched partitions); last line of a repetition:
    ui_latency seconds=<s> runs=<n> raw=<s> bronze=<s> silver=<s> gold=<s> load=<1-min avg>
and, with several repetitions, the medians. Every process started here is stopped (its
process group), on failure and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import requests

GOLD_PARTITIONED = ("daily_sales", "product_daily_sales")
PENDING = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
GOLD_SENSOR = "gold_partitions_sensor_shop"
PLAN_TAG = "lake/plan_stamp"  # lake_assets.defs.models.sensors.PLAN_STAMP_TAG
RUNS_YAML = "concurrency:\n  runs:\n    max_concurrent_runs: {n}\n"


class ChainError(RuntimeError):
    """The day did not reach gold, or the UI did not come up: the message says where it stood."""


WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on RepositoryLocation { name repositories { name } }
  ... on PythonError { message } } } } } }"""

SENSORS = """query($repo: RepositorySelector!) { sensorsOrError(repositorySelector: $repo) {
  ... on Sensors { results { name sensorState { status ticks(limit: 5) {
    status timestamp endTimestamp skipReason runIds error { message } } } } } } }"""

RUNS = """query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
  runId status creationTime startTime endTime assetSelection { path } tags { key value } } } } }"""

MATERIALIZATIONS = """query($key: AssetKeyInput!, $after: String) { assetOrError(assetKey: $key) {
  ... on Asset { assetMaterializations(afterTimestampMillis: $after) {
    timestamp partition runId } } } }"""


@dataclass
class DagsterDev:
    """`dagster dev` in its own process group, spoken to over GraphQL only."""

    url: str
    proc: subprocess.Popen
    log: Path
    repo: dict = field(default_factory=dict)

    @classmethod
    def start(cls, workspace: Path, env: dict, cwd: Path) -> DagsterDev:
        port = free_port()
        log = cwd / "dagster_dev.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dagster",
                    "dev",
                    "-w",
                    str(workspace),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                ],
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # one group: stop() reaches the daemon and run workers
            )
        return cls(f"http://127.0.0.1:{port}", proc, log)

    def gql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        resp = requests.post(
            f"{self.url}/graphql",
            timeout=timeout,
            json={"query": query, "variables": variables or {}},
        )
        resp.raise_for_status()
        body = resp.json()
        if body.get("errors"):
            raise ChainError(f"GraphQL errors: {json.dumps(body['errors'])[:2000]}")
        return body["data"]

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self) -> None:
        stop_group(self.proc)

    def sensors(self) -> dict[str, dict]:
        data = self.gql(SENSORS, {"repo": self.repo})["sensorsOrError"]
        return {s["name"]: s["sensorState"] for s in data.get("results") or []}

    def runs(self, **filt) -> list[dict]:
        return self.gql(RUNS, {"filter": filt})["runsOrError"]["results"]

    def materializations(self, key: list[str], after: float) -> list[dict]:
        variables = {"key": {"path": key}, "after": str(int(after * 1000))}
        asset = self.gql(MATERIALIZATIONS, variables)["assetOrError"]
        return asset.get("assetMaterializations") or []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL what is left (run workers included)."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = proc.pid  # the leader has exited; its group may still hold run workers
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)


def poll(what: str, timeout: float, probe, ui: DagsterDev | None = None, every: float = 1.0):
    """probe() until it returns something truthy; a ChainError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if ui is not None and ui.proc.poll() is not None:
            raise ChainError(f"dagster dev exited ({ui.proc.returncode}):\n{ui.log_tail()}")
        try:
            found = probe()
        except (requests.RequestException, KeyError, TypeError) as e:
            found, last = None, f"{type(e).__name__}: {e}"
        if found:
            return found
        time.sleep(every)
    tail = f"\n{ui.log_tail()}" if ui is not None else ""
    raise ChainError(f"{what} not within {timeout:.0f}s (last error: {last}){tail}")


def wait_until_ready(ui: DagsterDev, timeout: float) -> None:
    """The code location loaded, every sensor RUNNING and ticked once (the daemon is live)."""

    def loaded():
        entries = ui.gql(WORKSPACE, timeout=10)["workspaceOrError"]["locationEntries"]
        errors = [
            e["locationOrLoadError"]
            for e in entries
            if e["locationOrLoadError"]["__typename"] == "PythonError"
        ]
        if errors:
            raise ChainError(f"the code location failed to load: {errors[0]['message']}")
        repos = [
            {"repositoryLocationName": e["name"], "repositoryName": r["name"]}
            for e in entries
            if e["loadStatus"] == "LOADED"
            for r in e["locationOrLoadError"].get("repositories") or []
        ]
        return repos[0] if entries and len(repos) == len(entries) else None

    ui.repo = poll("the code location loaded", timeout, loaded, ui)

    def ticking():
        states = ui.sensors()
        return states and all(s["status"] == "RUNNING" and s["ticks"] for s in states.values())

    poll("every sensor running and ticked", timeout, ticking, ui)


def lake_cli(args: list[str], env: dict, cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lake_assets.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise ChainError(
            f"lake-assets {' '.join(args)} exited {done.returncode}:\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return done.stdout


def landed_files(landing: Path) -> set[Path]:
    return {p for p in landing.rglob("*") if p.is_file() and p.suffix in (".parquet", ".csv")}


def gold_rows(root: Path) -> dict[str, dict[str, set]]:
    """{model: {date: set of its rows}} read with delta-rs, outside the engine and Dagster."""
    from deltalake import DeltaTable

    out: dict[str, dict[str, set]] = {}
    for name in GOLD_PARTITIONED:
        path = root / "gold" / "shop" / name
        by_date: dict[str, set] = {}
        if (path / "_delta_log").is_dir():
            for row in DeltaTable(str(path)).to_pyarrow_table().to_pylist():
                date = row["order_date"].isoformat()
                by_date.setdefault(date, set()).add(tuple(sorted(row.items())))
        out[name] = by_date
    return out


def touched_dates(before: dict, after: dict) -> set[str]:
    return {
        d
        for name in GOLD_PARTITIONED
        for d in set(before[name]) | set(after[name])
        if before[name].get(d) != after[name].get(d)
    }


def order_dates(landing: Path, new: set[Path]) -> set[str]:
    """UTC order dates of the orders and order lines in the new files (a superset of what the
    day can touch in gold), from the landed parquet alone."""
    order_ts: dict[int, str] = {}
    for f in sorted((landing / "shop" / "public" / "orders").rglob("*.parquet")):
        t = pq.read_table(f, columns=["order_id", "order_ts"])
        days = pc.strftime(t["order_ts"], format="%Y-%m-%d").to_pylist()
        order_ts.update(zip(t["order_id"].to_pylist(), days))
    ids: set[int] = set()
    for f in new:
        if table_of(landing, f) in ("orders", "order_items"):
            ids.update(pq.read_table(f, columns=["order_id"])["order_id"].to_pylist())
    return {order_ts[i] for i in ids if i in order_ts and order_ts[i]}


def table_of(landing: Path, f: Path) -> str:
    return f.relative_to(landing / "shop").parts[1]  # shop/<schema>/<table>/...


@dataclass
class Chain:
    """What GraphQL says of the landed day since t0."""

    t0: float
    tables: set[str]
    mats: dict[str, list[dict]] = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)

    def read(self, ui: DagsterDev) -> Chain:
        keys = [f"{layer}/shop/{t}" for layer in ("raw", "bronze", "silver") for t in self.tables]
        keys += [f"gold/shop/{m}" for m in GOLD_PARTITIONED]
        self.mats = {k: ui.materializations(k.split("/"), self.t0) for k in keys}
        self.runs = ui.runs(createdAfter=self.t0)
        return self

    def last(self, layer: str, partitions: set[str] | None = None) -> float | None:
        stamps = [
            int(m["timestamp"]) / 1000
            for k, ms in self.mats.items()
            if k.startswith(f"{layer}/")
            for m in ms
            if partitions is None or m["partition"] in partitions
        ]
        return max(stamps) if stamps else None

    def gold_partitions(self) -> set[str]:
        return {m["partition"] for k in self.mats if k.startswith("gold/") for m in self.mats[k]}

    def quiet(self, ui: DagsterDev) -> bool:
        """Raw and silver of every table with new files written, no run pending, and a
        finished gold sensor tick after silver's last write (its runs done too)."""

        def written(layer):
            return all(self.mats[f"{layer}/shop/{t}"] for t in self.tables)

        if not (written("raw") and written("silver")):
            return False
        if ui.runs(statuses=PENDING):
            return False
        silver = self.last("silver")
        ticks = ui.sensors()[GOLD_SENSOR]["ticks"]
        # A tick that asked for the planning run (or ticked while it ran) is not the last word:
        # the first tick after the planning run ended requests the dates it found.
        plans = [r for r in self.runs if any(t["key"] == PLAN_TAG for t in r["tags"] or [])]
        after = max([silver, *[float(r["endTime"] or 0) for r in plans]])
        planning = {r["runId"] for r in plans}
        return any(
            t["status"] in ("SUCCESS", "SKIPPED")
            and t["timestamp"] > after
            and not (t.get("skipReason") or "").startswith("waiting")
            and not set(t.get("runIds") or []) & planning
            for t in ticks
        )


def measure(ui: DagsterDev, env: dict, tmp: Path, timeout: float) -> dict:
    root, landing = Path(env["LAKE_ROOT"]), Path(env["LAKE_LANDING"])
    files, before = landed_files(landing), gold_rows(root)
    lake_cli(["simulate", "--days", "1"], env, tmp)
    t0 = time.time()
    new = landed_files(landing) - files
    chain = Chain(t0, {table_of(landing, f) for f in new})
    poll("the landed day in gold", timeout, lambda: chain.read(ui).quiet(ui), ui, every=2.0)
    touched = touched_dates(before, gold_rows(root))
    candidates = order_dates(landing, new)
    if not touched or touched - candidates:
        raise ChainError(
            f"touched gold dates {sorted(touched)} are empty or not dates of the "
            f"new orders {sorted(candidates)}"
        )
    missing = touched - chain.gold_partitions()
    if missing:
        raise ChainError(f"touched gold dates never materialized: {sorted(missing)}")
    layers = {layer: chain.last(layer) - t0 for layer in ("raw", "bronze", "silver")}
    layers["gold"] = chain.last("gold", touched) - t0
    print(timeline(chain), flush=True)
    return {
        "seconds": layers["gold"],
        "runs": len(chain.runs),
        **layers,
        "touched": len(touched),
        "load": os.getloadavg()[0],
    }


def timeline(chain: Chain) -> str:
    """One line per run since t0: created, started, ended (s after t0) and what it ran."""

    def at(stamp):
        return f"{stamp - chain.t0:6.1f}" if stamp else "     -"

    rows = []
    for r in sorted(chain.runs, key=lambda r: r["creationTime"]):
        assets = ",".join("/".join(a["path"][::2]) for a in r["assetSelection"] or [])
        tags = {t["key"]: t["value"] for t in r["tags"]}
        part = tags.get("dagster/partition") or "..".join(tags[k] for k in RANGE_TAGS if k in tags)
        rows.append(
            f"  run created={at(r['creationTime'])} started={at(r['startTime'])} "
            f"ended={at(r['endTime'])} {r['status']:<7} {assets} {part}"
        )
    return "\n".join(rows)


def demo_lake(tmp: Path, max_runs: int | None) -> dict:
    """A fresh demo lake under tmp, with the instance config the demo writes (DAGSTER_HOME
    unset: it then picks $LAKE_ROOT/_dagster), and the env its commands and the UI share."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LAKE_SOURCES", "LAKE_DEPLOYMENT", "DAGSTER_HOME")
    }
    env.update(LAKE_ROOT=str(tmp / "lake"), LAKE_LANDING=str(tmp / "landing"), PYTHONUNBUFFERED="1")
    lake_cli(["demo"], env, tmp)
    env["DAGSTER_HOME"] = str(tmp / "lake" / "_dagster")
    if max_runs is not None:
        config = Path(env["DAGSTER_HOME"]) / "dagster.yaml"
        text = config.read_text().replace(RUNS_YAML.format(n=1), RUNS_YAML.format(n=max_runs))
        config.write_text(text)
    return env


def one_run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="ui_latency_") as name:
        tmp = Path(name)
        if args.keep:
            tmp = Path(tempfile.mkdtemp(prefix="ui_latency_kept_"))
            print(f"keeping {tmp}", flush=True)
        env = demo_lake(tmp, args.max_concurrent_runs)
        ui = DagsterDev.start(Path(env["DAGSTER_HOME"]) / "lake_assets_workspace.yaml", env, tmp)
        try:
            wait_until_ready(ui, args.startup_timeout)
            return measure(ui, env, tmp, args.timeout)
        finally:
            ui.stop()


def line(r: dict, prefix: str = "ui_latency") -> str:
    return (
        f"{prefix} seconds={r['seconds']:.1f} runs={r['runs']:g} raw={r['raw']:.1f} "
        f"bronze={r['bronze']:.1f} silver={r['silver']:.1f} gold={r['gold']:.1f} "
        f"touched={r['touched']:g} load={r['load']:.2f}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3, help="repetitions, each on a fresh lake")
    p.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=None,
        help="the instance's run concurrency instead of the demo's 1",
    )
    p.add_argument("--keep", action="store_true", help="keep each lake and instance (a new dir)")
    p.add_argument("--timeout", type=float, default=600, help="s from the simulate to gold")
    p.add_argument("--startup-timeout", type=float, default=180, help="s until the UI is ready")
    args = p.parse_args()
    # Ctrl-C as an exception, so the finally blocks stop dagster dev; SIGTERM likewise.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results = []
    try:
        for i in range(args.runs):
            results.append(one_run(args))
            print(
                line(results[-1], f"run {i + 1}:"), f"at {dt.datetime.now():%H:%M:%S}", flush=True
            )
    except ChainError as e:
        print(f"ui_latency FAILED: {e}", file=sys.stderr)
        return 1
    medians = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(line(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
