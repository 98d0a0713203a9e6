"""`simulate` after the demo, as a user runs them: any number of days, any number of times.

One small demo, then `simulate --days N` for N = 1, 2, 7 and 1 again, each right after the
last (the new days fill the seconds in between), `sync` with the packaged catalog, and a
second demo. The demo's own catalog starts the daily partitions at the history's first day.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

pytestmark = pytest.mark.slow

TABLES = ("customers", "products", "orders", "order_items")
CDC_NAME = re.compile(r"^\d{8}-\d{9}\.parquet$")


def _run(args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "DAGSTER_HOME"))}
    proc = subprocess.run(
        [sys.executable, "-m", "lake_assets.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _names(landing: Path) -> dict[str, set[str]]:
    return {
        t: {p.name for p in (landing / "shop" / "public" / t).rglob("*.parquet")} for t in TABLES
    }


def _raw_rows(lake: Path) -> int:
    return sum(
        len(DeltaTable(str(lake / "raw" / "shop" / t)).to_pyarrow_table(columns=["_op"]))
        for t in TABLES
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("simulate_after_demo")
    out = _run(["demo", "--days", "3", "--scale", "0.2"], cwd)
    return cwd, cwd / ".lake", out


def test_the_demos_partitions_start_where_its_data_starts(demo):
    cwd, lake, out = demo
    from lake_assets.catalog import load_catalog

    catalog = lake / "_dagster" / "shop_catalog" / "catalog.yaml"
    assert f"LAKE_SOURCES={catalog}" in out
    start = load_catalog(str(catalog)).source("shop").start_date
    assert start == dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=3)
    names = _names(lake / "landing")
    assert all(n and all(CDC_NAME.match(f) for f in n) for n in names.values())  # no LOAD
    for t in TABLES:
        days = DeltaTable(str(lake / "raw" / "shop" / t)).to_pyarrow_table(columns=["_file_date"])
        assert min(days["_file_date"].to_pylist()) == start, t
    sales = DeltaTable(str(lake / "gold" / "shop" / "daily_sales")).to_pyarrow_table()
    assert min(sales["order_date"].to_pylist()) == start


def test_simulate_after_the_demo_any_days_any_times(demo):
    cwd, lake, _ = demo
    landing = lake / "landing"
    before, raw_before = _names(landing), _raw_rows(lake)
    for days in (1, 2, 7, 1):
        out = _run(["simulate", "--days", str(days)], cwd)
        assert f"simulated {days} day(s)" in out
        after = _names(landing)
        for t in ("orders", "order_items"):
            new = after[t] - before[t]
            assert new and min(new) > max(before[t]), (days, t)  # the history goes on in order
        before = after
    out = _run(["sync"], cwd)  # the packaged catalog places every dated file the same way
    assert "sync finished" in out and "0 failure(s)" in out
    assert _raw_rows(lake) > raw_before


def test_a_second_demo_only_syncs(demo):
    cwd, lake, _ = demo
    names = _names(lake / "landing")
    out = _run(["demo"], cwd)
    assert "history already landed" in out and "14 simulated day(s)" in out
    assert "gold/shop/daily_sales" in out
    assert _names(lake / "landing") == names


def test_the_demo_adds_injected_defects_up_to_the_quarantine(demo):
    _, _, out = demo
    quality = out.split("quality of silver/shop", 1)[1]
    lines = quality.split("injected defects", 1)[1].strip().splitlines()[1:]
    lines = [ln.strip() for ln in lines if " injected (" in ln]
    assert {ln.split(":", 1)[0] for ln in lines} >= {"customers.email", "orders.customer_id"}
    for line in lines:
        total = int(line.split(": ", 1)[1].split(" ", 1)[0])
        parts = line.split(" = ", 1)[1].split(" + ")
        assert sum(int(p.split(" ", 1)[0]) for p in parts) == total, line
        rule = parts[0].split("quarantined by ", 1)[1]
        assert f"{rule}={parts[0].split(' ', 1)[0]}" in quality, line
