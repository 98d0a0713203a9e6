"""`lake-assets demo`: land a few weeks of the shop's history, sync the lake, show gold and quality."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from lake_assets.settings import Settings, packaged_catalog


# One run at a time: runs the sensors request write the same tables, and a laptop has few
# cores; the lake's writes also retry on commit conflicts, so more is safe. The queue looks
# every second, not Dagster's 5: a landed day queues ~10 short runs behind each other.
INSTANCE_YAML = """\
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""


def _dagster_home(settings: Settings) -> str:
    """The instance the demo's runs go into, so `dagster dev` shows them."""
    if os.environ.get("DAGSTER_HOME"):
        return os.environ["DAGSTER_HOME"]
    if settings.lake_root.startswith("s3://"):
        home = Path(".dagster_home").resolve()
    else:
        home = Path(settings.lake_root) / "_dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return str(home)


WORKSPACE = "lake_assets_workspace.yaml"


def workspace_file(home: str) -> str:
    """A workspace file that names the code location `lake_assets`, however the UI is started
    (`dagster dev -m lake_assets.definitions` would name it after the module)."""
    path = Path(home) / WORKSPACE
    if not path.exists():
        path.write_text("load_from:\n  - python_module:\n      module_name: lake_assets.definitions\n"
                        "      location_name: lake_assets\n")
    return str(path)


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in columns]
    head = "  ".join(c.rjust(w) for c, w in zip(columns, widths))
    body = ["  ".join(str(r[c]).rjust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join([head, "  ".join("-" * w for w in widths), *body])


def report(settings: Settings, say) -> None:
    """Print gold KPIs and quality results, read back from the lake."""
    from lake_assets.catalog import load_catalog
    from lake_assets.keys import table_path
    from lake_assets.lib import delta
    from lake_assets.lib.engine import local_spark
    from lake_assets.lib.models import models_of

    spark = local_spark()
    catalog = load_catalog(settings.sources)
    for source in catalog.sources:
        gold = {m.name for m in models_of(source) if m.layer == "gold"}
        if "daily_sales" in gold:
            path = table_path(settings.lake_root, "gold", source.name, "daily_sales")
            if delta.exists(path):
                rows = [r.asDict() for r in delta.read(spark, path).orderBy("order_date").collect()]
                say(f"\ngold/{source.name}/daily_sales (last 14 of {len(rows)} days):")
                say(_table(rows[-14:], ["order_date", "orders", "items", "gross_revenue", "customers"]))
                total = sum(r["gross_revenue"] for r in rows)
                say(f"total: {sum(r['orders'] for r in rows):,} orders, {total:,.2f} gross revenue")
        if "product_daily_sales" in gold:
            path = table_path(settings.lake_root, "gold", source.name, "product_daily_sales")
            if delta.exists(path):
                top = delta.read(spark, path).groupBy("product_id", "name", "category").agg(
                    {"units": "sum", "gross_revenue": "sum"}
                ).withColumnRenamed("sum(units)", "units").withColumnRenamed("sum(gross_revenue)", "revenue")
                rows = [r.asDict() for r in top.orderBy(top.revenue.desc()).limit(5).collect()]
                say(f"\ngold/{source.name}/product_daily_sales, top 5 products by revenue:")
                say(_table(rows, ["product_id", "name", "category", "units", "revenue"]))
        say(f"\nquality of silver/{source.name} (rows quarantined by rule):")
        lines = []
        for table in source.tables:
            qpath = table_path(settings.lake_root, "silver", source.name, f"{table.name}_quarantine")
            spath = table_path(settings.lake_root, "silver", source.name, table.name)
            if not delta.exists(spath):
                continue
            kept = delta.read(spark, spath).count()
            by_rule = {}
            if delta.exists(qpath):
                by_rule = {r[0]: r[1] for r in delta.read(spark, qpath).groupBy("_rule").count().collect()}
            total = kept + sum(by_rule.values())
            rate = sum(by_rule.values()) / total if total else 0.0
            lines.append({"table": table.name, "rows": total, "quarantined": sum(by_rule.values()),
                          "rate": f"{rate:.2%}", "by rule": ", ".join(f"{k}={v}" for k, v in sorted(by_rule.items())) or "-"})
        say(_table(lines, ["table", "rows", "quarantined", "rate", "by rule"]))


def demo(settings: Settings, args, say) -> int:
    from lake_assets.catalog import load_catalog
    from lake_assets.definitions import build_definitions
    from lake_assets.sources.shop.simulator import SimulationError, simulate
    from lake_assets.sync import sync

    import dagster as dg

    home = _dagster_home(settings)
    say(f"lake: {settings.lake_root}\nlanding: {settings.landing}\ndagster instance: {home}")
    try:
        summary = simulate(settings.landing, args.days, seed=args.seed, scale=args.scale, fmt=args.fmt,
                           dirty=not args.clean, progress=say)
        say(summary.describe())
    except SimulationError as e:
        say(f"not landing more history: {e}")
    defs = build_definitions(settings)
    with dg.DagsterInstance.get() as instance:
        result = sync(settings, defs, load_catalog(settings.sources), instance, say)
    report(settings, say)
    for f in result.failures:
        print(f"FAILED {f}", file=sys.stderr, flush=True)
    env = [f"DAGSTER_HOME={shlex.quote(home)}", f"LAKE_ROOT={shlex.quote(settings.lake_root)}",
           f"LAKE_LANDING={shlex.quote(settings.landing)}"]
    if settings.sources != packaged_catalog():
        env.append(f"LAKE_SOURCES={shlex.quote(settings.sources)}")
    say("\nOpen the same lake in the Dagster UI (then run `lake-assets simulate --days 1` in another terminal"
        " and watch the sensor and automation carry it to gold):")
    say(f"  {' '.join(env)} dagster dev -w {shlex.quote(workspace_file(home))}")
    return 0 if result.ok else 1
