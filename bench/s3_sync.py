"""Benchmark: `lake-assets sync` with the lake and the landing zone on S3 against a local disk.

    python bench/s3_sync.py [--runs 3] [--days 21] [--scale 1.0]

The workload is the shop demo's default: 21 simulated days at scale 1 (dirty data, DMS
parquet, no full load, the packaged catalog with its start_date set to the history's first
day, as `lake-assets demo` makes it), landed once on each store (same seed, same files).

The S3 endpoint is a moto server (`python -m moto.server`) on 127.0.0.1, in its own process,
reached only through the standard AWS variables. Each repetition, side by side:
1. first sync, local disk: a fresh lake root, `python -m lake_assets.cli sync`;
2. first sync, S3: a fresh lake prefix in the same bucket;
3. no-op sync, local (nothing new landed);
4. no-op sync, S3.
Each sync is a fresh process, as a user runs it (an ephemeral Dagster instance); the seconds
are its wall clock, process start included. The requests each S3 sync made are counted at the
server, from moto's access log (one line per request), by type (LIST, GET, HEAD, PUT, DELETE,
POST) and by what they touch (the Delta logs, data files, the landing zone, the lake's
`_state`). Last lines: the medians, the ratios S3/local (first sync) and the difference S3 -
local (no-op sync), and the load average.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lake_assets_tests.resources.conftest import (  # noqa: E402
    CREDENTIALS,
    UNSET,
    _start_moto,
    new_bucket,
)

TODAY = dt.date(2024, 3, 1)
SEED = 7
REQUEST = re.compile(r"^REQ (\S+) (\S+) (\S+) (\S+) ([\d.]+)$", re.M)
SERVER = (str(Path(__file__).resolve().parent / "moto_access_log.py"),)


def client(agent: str) -> str:
    """The client a user agent's first word names."""
    agent = agent.lower()
    for name, marker in (
        ("pyarrow", "aws-sdk-cpp"),
        ("boto3", "boto"),
        ("delta-rs", "delta-rs"),
        ("engine", "sail"),
        ("object_store", "object_store"),
    ):
        if marker in agent:
            return name
    return agent


def land(landing: str, days: int, scale: float) -> dt.date:
    from lake_assets.sources.shop.simulator import simulate

    start = TODAY - dt.timedelta(days=days)
    simulate(
        landing,
        days,
        seed=SEED,
        scale=scale,
        dirty=True,
        start=start,
        full_load=False,
        now=dt.datetime.combine(TODAY, dt.time(), dt.timezone.utc),
    )
    return start


def kind(method: str, target: str) -> tuple[str, str]:
    """(request type, what it touches) of one access-log line's method and target."""
    path, _, query = target.partition("?")
    parts = path.lstrip("/").split("/", 1)
    key = parts[1] if len(parts) > 1 else ""
    if method == "GET" and not key:
        prefix = re.search(r"prefix=([^&]*)", query)
        key = prefix.group(1).replace("%2F", "/") if prefix else ""
        method = "LIST"
    elif method == "POST" and "delete" in query:
        method = "DELETE"
    if "_delta_log" in key:
        where = "delta_log"
    elif key.startswith("landing"):
        where = "landing"
    elif "/_state/" in key:
        where = "state"
    else:
        where = "data"
    return method, where


def count_requests(log_path: str, start: int, end: int) -> collections.Counter:
    with open(log_path, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode(errors="replace")
    counts: collections.Counter = collections.Counter()
    for m in REQUEST.finditer(text):
        method, where = kind(m.group(1), m.group(2))
        counts[method] += 1
        counts[f"{where}:{method}"] += 1
        counts[f"by:{client(m.group(4))}"] += 1
        counts["server_ms"] += round(float(m.group(5)) * 1000)
        counts["total"] += 1
    return counts


def sync(env: dict[str, str], root: str, landing: str, catalog: str) -> float:
    env = {**env, "LAKE_ROOT": root, "LAKE_LANDING": landing, "LAKE_SOURCES": catalog}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "lake_assets.cli", "sync"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(
            f"sync of {root} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--days", type=int, default=21)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--log", metavar="FILE", help="keep moto's access log there")
    args = p.parse_args()

    from lake_assets.demo import own_catalog

    with tempfile.TemporaryDirectory(prefix="s3_sync-") as tmp:
        log_path = os.path.join(tmp, "moto.log")
        log = open(log_path, "wb")
        proc, endpoint = _start_moto(log, SERVER)
        try:
            base = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("LAKE_", "DAGSTER_HOME")) and k not in UNSET
            }
            base.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint, RUST_LOG="error")
            os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint)
            bucket = new_bucket(endpoint, "bench")
            s3_landing, local_landing = f"s3://{bucket}/landing", f"{tmp}/landing"
            first = land(s3_landing, args.days, args.scale)
            land(local_landing, args.days, args.scale)
            catalog = own_catalog(tmp, first)
            print(
                f"workload: {args.days} days, scale {args.scale}, from {first}; "
                f"moto {endpoint}; cores {os.cpu_count()}",
                flush=True,
            )
            figures = collections.defaultdict(list)
            for run in range(args.runs):
                roots = {"local": f"{tmp}/lake-{run}", "s3": f"s3://{bucket}/lake-{run}"}
                landings = {"local": local_landing, "s3": s3_landing}
                for phase in ("first", "noop"):
                    for store in ("local", "s3"):
                        log.flush()
                        at = os.path.getsize(log_path)
                        load = open("/proc/loadavg").read().split()[0]
                        secs = sync(base, roots[store], landings[store], catalog)
                        log.flush()
                        time.sleep(0.2)  # the server writes its last lines
                        figures[(phase, store)].append(secs)
                        line = f"run {run + 1} {phase:5} {store:5} seconds={secs:.2f} load={load}"
                        if store == "s3":
                            counts = count_requests(log_path, at, os.path.getsize(log_path))
                            figures[(phase, "requests")].append(counts["total"])
                            line += " requests " + " ".join(
                                f"{k}={v}" for k, v in sorted(counts.items())
                            )
                        print(line, flush=True)
            med = {k: statistics.median(v) for k, v in figures.items()}
            print(
                f"first sync: local {med[('first', 'local')]:.2f} s, "
                f"s3 {med[('first', 's3')]:.2f} s, "
                f"ratio {med[('first', 's3')] / med[('first', 'local')]:.2f} (target <= 2), "
                f"requests {med[('first', 'requests')]:.0f}"
            )
            print(
                f"no-op sync: local {med[('noop', 'local')]:.2f} s, "
                f"s3 {med[('noop', 's3')]:.2f} s, "
                f"difference {med[('noop', 's3')] - med[('noop', 'local')]:+.2f} s (target <= 2), "
                f"requests {med[('noop', 'requests')]:.0f}"
            )
            print(f"load average: {open('/proc/loadavg').read().strip()}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()
            if args.log:
                shutil.copyfile(log_path, args.log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
