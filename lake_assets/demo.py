"""`lake-assets demo`: land the shop's history (once), sync the lake, show gold and quality.

The history starts at the catalog's start_date and its simulated days fill the time from there
up to now (see lake_assets.sources.shop.simulator), so the daily partitions the UI shows begin
where the data does; a second demo on the same lake only syncs again."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pyarrow as pa

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
        path.write_text(
            "load_from:\n  - python_module:\n"
            "      module_name: lake_assets.definitions\n"
            "      location_name: lake_assets\n"
        )
    return str(path)


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in columns]
    head = "  ".join(c.rjust(w) for c, w in zip(columns, widths))
    body = ["  ".join(str(r[c]).rjust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join([head, "  ".join("-" * w for w in widths), *body])


def _daily_sales(spark, settings: Settings, source: str, say) -> None:
    from lake_assets.keys import table_path
    from lake_assets.lib import delta

    path = table_path(settings.lake_root, "gold", source, "daily_sales")
    if not delta.exists(path):
        return
    rows = [r.asDict() for r in delta.read(spark, path).orderBy("order_date").collect()]
    say(f"\ngold/{source}/daily_sales (last 14 of {len(rows)} days):")
    say(_table(rows[-14:], ["order_date", "orders", "items", "gross_revenue", "customers"]))
    total = sum(r["gross_revenue"] for r in rows)
    say(f"total: {sum(r['orders'] for r in rows):,} orders, {total:,.2f} gross revenue")


def _top_products(spark, settings: Settings, source: str, say) -> None:
    from lake_assets.keys import table_path
    from lake_assets.lib import delta

    path = table_path(settings.lake_root, "gold", source, "product_daily_sales")
    if not delta.exists(path):
        return
    top = (
        delta.read(spark, path)
        .groupBy("product_id", "name", "category")
        .agg({"units": "sum", "gross_revenue": "sum"})
        .withColumnRenamed("sum(units)", "units")
        .withColumnRenamed("sum(gross_revenue)", "revenue")
    )
    rows = [r.asDict() for r in top.orderBy(top.revenue.desc()).limit(5).collect()]
    say(f"\ngold/{source}/product_daily_sales, top 5 products by revenue:")
    say(_table(rows, ["product_id", "name", "category", "units", "revenue"]))


def _revenue_by_country(spark, settings: Settings, source: str, say) -> None:
    from lake_assets.keys import table_path
    from lake_assets.lib import delta

    path = table_path(settings.lake_root, "gold", source, "revenue_by_country_at_order")
    if not delta.exists(path):
        return
    frame = delta.read(spark, path)
    rows = [r.asDict() for r in frame.orderBy(frame.gross_revenue.desc()).limit(5).collect()]
    say(
        f"\ngold/{source}/revenue_by_country_at_order, top 5 countries (the customer's country "
        "when the order was placed, and by where customers live now):"
    )
    columns = ["country", "orders", "customers", "gross_revenue"]
    say(_table(rows, columns + ["gross_revenue_by_current_country"]))


def _quality(settings: Settings, source, say) -> dict[str, dict[str, int]]:
    """Print the rows quarantined per table and rule; return {table: {rule: rows}}."""
    from lake_assets.lib import quality

    tables = quality.of_source(settings.lake_root, source)
    say("\n" + "\n".join(quality.lines(source.name, tables)))
    return {t.table: t.by_rule for t in tables}


def report(settings: Settings, say) -> None:
    """Print gold KPIs and quality results, read back from the lake."""
    from lake_assets.catalog import load_catalog
    from lake_assets.lib.engine import local_spark
    from lake_assets.lib.models import models_of
    from lake_assets.sources.shop.simulator import SimulationError, history

    spark = local_spark()
    catalog = load_catalog(settings.sources)
    for source in catalog.sources:
        gold = {m.name for m in models_of(source) if m.layer == "gold"}
        if "daily_sales" in gold:
            _daily_sales(spark, settings, source.name, say)
        if "product_daily_sales" in gold:
            _top_products(spark, settings, source.name, say)
        if "revenue_by_country_at_order" in gold:
            _revenue_by_country(spark, settings, source.name, say)
        quarantined = _quality(settings, source, say)
        try:
            landed = history(settings.landing, source.name)
        except SimulationError:
            landed = None
        if landed is not None:
            explain_defects(spark, settings, source, landed.dirty_rows, quarantined, say)


# What each defect the simulator injects breaks (table, column, the rule that catches it) and
# what silver's standardization must do to repair it before the rules run (() if nothing can).
_DEFECTS = {
    "email_no_at": ("customers", "email", "email_is_valid", ()),
    "email_space": ("customers", "email", "email_is_valid", ()),
    "email_upper_spaces": ("customers", "email", "email_is_valid", ("trim", "lower")),
    "country_unknown": ("customers", "country", "country_is_iso3166", ()),
    "country_uk": ("customers", "country", "country_is_iso3166", ()),
    "country_lower": ("customers", "country", "country_is_iso3166", ("upper",)),
    "country_padded": ("customers", "country", "country_is_iso3166", ("trim", "upper")),
    "negative_quantity": ("order_items", "quantity", "quantity_positive", ()),
    "orphan_order": ("orders", "customer_id", "customer_exists", ()),
}


def _repairs(table, column: str, needs: tuple[str, ...]) -> bool:
    done = {
        "trim": table.trim_strings,
        "lower": column in table.lower,
        "upper": column in table.upper,
    }
    return bool(needs) and all(done[n] for n in needs)


def _caught_first_elsewhere(spark, settings: Settings, table, rule: str) -> int:
    """Quarantined rows that break `rule` but were rejected by an earlier drop rule."""
    from pyspark.sql import functions as F

    from lake_assets.keys import table_path
    from lake_assets.lib import delta
    from lake_assets.lib.silver import with_rule_flags

    qpath = table_path(settings.lake_root, "silver", table.source, f"{table.name}_quarantine")
    if not delta.exists(qpath):
        return 0
    refs = {}
    for r in table.rules:
        if r.references:
            rpath = table_path(settings.lake_root, "bronze", table.source, r.references[0])
            refs[r.references[0]] = delta.read(spark, rpath) if delta.exists(rpath) else None
    flagged = with_rule_flags(delta.read(spark, qpath), table, refs)
    return flagged.where((F.col("_rule") != rule) & ~F.col(f"_ok_{rule}")).count()


def explain_defects(
    spark,
    settings: Settings,
    source,
    injected: dict[str, int],
    quarantined: dict[str, dict[str, int]],
    say,
) -> None:
    """Say how the defects the simulator injected add up to the rows silver quarantines."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for kind, (table, column, rule, _) in _DEFECTS.items():
        if injected.get(kind):
            groups.setdefault((table, column, rule), []).append(kind)
    known = {t.name: t for t in source.tables}
    lines = []
    for (table_name, column, rule), kinds in groups.items():
        table = known.get(table_name)
        if table is None or rule not in {r.name for r in table.rules}:
            continue
        lines.append(
            _defect_line(
                spark,
                settings,
                table,
                column,
                rule,
                kinds,
                injected,
                quarantined.get(table_name, {}).get(rule, 0),
            )
        )
    if not lines:
        return
    say(
        "\ninjected defects -> rows quarantined (bronze, and so silver, holds each row's latest "
        "version only):"
    )
    for line in lines:
        say(f"  {line}")


def _defect_line(
    spark,
    settings: Settings,
    table,
    column: str,
    rule: str,
    kinds: list[str],
    injected: dict[str, int],
    quarantined: int,
) -> str:
    total = sum(injected[k] for k in kinds)
    repaired = sum(injected[k] for k in kinds if _repairs(table, column, _DEFECTS[k][3]))
    first_drop = next((r.name for r in table.rules if r.action == "drop"), None)
    elsewhere = 0 if rule == first_drop else _caught_first_elsewhere(spark, settings, table, rule)
    gone = total - quarantined - repaired - elsewhere
    parts = [f"{quarantined} quarantined by {rule}"]
    if repaired:
        parts.append(
            f"{repaired} repaired by silver's standardization before the rules "
            f"(upper/lower case, spaces)"
        )
    if elsewhere:
        parts.append(
            f"{elsewhere} on rows an earlier drop rule quarantined (a row's first "
            f"violated drop rule names it)"
        )
    if gone > 0:
        parts.append(
            f"{gone} no longer current (a later update replaced the value, or the row was deleted)"
        )
    kinds_text = ", ".join(f"{k}={injected[k]}" for k in kinds)
    line = f"{table.name}.{column}: {total} injected ({kinds_text}) = " + " + ".join(parts)
    if gone < 0:
        line += f"; {-gone} more quarantined than injected"
    return line


def land_days(settings: Settings, args, say, **more):
    """`args.days` simulated days of the shop, with the command line's history options (demo
    and simulate); `more` for the simulator's other options."""
    from lake_assets.sources.shop.simulator import SimulationError, simulate

    landing_format, fmt = getattr(args, "landing_format", None), args.fmt
    if landing_format in ("parquet", "csv"):  # the DMS file types, as --format spelled them
        if fmt not in (None, landing_format):
            raise SimulationError(f"--format {landing_format} is dms {landing_format}, not {fmt}")
        landing_format, fmt = "dms", landing_format
    return simulate(
        settings.landing,
        args.days,
        seed=args.seed,
        scale=args.scale,
        fmt=fmt,
        landing_format=landing_format,
        dirty=args.dirty,
        progress=say,
        **more,
    )


def _land(settings: Settings, args, say):
    """Land a new history unless one has landed; either way, say what it is (None: none)."""
    from lake_assets.sources.shop.simulator import SimulationError, history

    try:
        landed = history(settings.landing)
        if landed is not None:
            say(
                f"history already landed in {settings.landing}: {landed.describe()}; landing "
                "no more (`lake-assets simulate --days N` does), syncing what is there"
            )
            return landed
        # The history ends now and runs at about real speed: days as a shop has them.
        start = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=args.days)
        # No full load: it would belong to a catalog's first partition, which differs from one
        # catalog to another; dated CDC files land in the same partition under any catalog.
        say(land_days(settings, args, say, start=start, full_load=False).describe())
        return history(settings.landing)
    except SimulationError as e:
        say(f"not landing history: {e}")
        return None


OWN_CATALOG = "shop_catalog"


def own_catalog(home: str, first_day: dt.date, landing_format: str = "dms") -> str:
    """The packaged catalog with its start_date set to the history's first day (and its format
    to the history's), and the files it names (gold SQL) beside it: a YAML cannot compute a
    date, and a clone's demo history starts weeks before the day it is run, whenever that is."""
    from lake_assets.sources.shop.catalogs import write_catalog

    header = (
        f"# Written by `lake-assets demo`: {packaged_catalog()}\n# with start_date set to the "
        "first day of the demo's history, so the daily partitions begin where its data does"
        + (f",\n# and format {landing_format}" if landing_format != "dms" else "")
        + ".\n"
    )
    return write_catalog(Path(home) / OWN_CATALOG, landing_format, first_day, header)


def _catalog_for(settings: Settings, home: str, landed, say) -> Settings:
    """The settings to sync with: the demo's own catalog where the packaged one is in use."""
    if settings.sources != packaged_catalog() or landed is None:
        return settings
    packaged_start = _start_of(packaged_catalog())
    if landed.full_load or landed.warmup_days:  # a LOAD, or rows dated before the first day
        say(
            f"this history has a full load: it is in raw's first daily partition, "
            f"{packaged_start}, the catalog's start_date, as DMS names LOAD files without a date"
        )
        return settings
    path = Path(home) / OWN_CATALOG / Path(packaged_catalog()).name
    if not path.exists() or _shape_of(path) != (landed.first_day, landed.landing_format):
        path = Path(own_catalog(home, landed.first_day, landed.landing_format))  # another lake's
    say(
        f"catalog: {path}: the packaged one with start_date {landed.first_day}, the history's "
        "first day, so the daily partitions begin where its data does (the packaged "
        f"{packaged_start} is for a shop's whole past)."
    )
    if landed.landing_format != "dms":
        return dataclasses.replace(settings, sources=str(path))
    say(
        "The demo's DMS task has no full load: LOAD files carry no date, so the lake files them "
        "in a catalog's first partition, which differs from catalog to catalog. The shop's "
        f"existing customers and products are its first inserts, in partition {landed.first_day};"
        " every file is dated, so the packaged catalog places each in the same partition."
    )
    return dataclasses.replace(settings, sources=str(path))


def _start_of(path) -> dt.date:
    return _shape_of(path)[0]


def _shape_of(path) -> tuple[dt.date, str]:
    from lake_assets.catalog import load_catalog

    shop = load_catalog(str(path)).source("shop")
    return shop.start_date, shop.format


def demo(settings: Settings, args, say) -> int:
    import dagster as dg

    if getattr(args, "source", "dms") == "postgres":
        return demo_postgres(settings, args, say)

    from lake_assets.catalog import load_catalog
    from lake_assets.definitions import build_definitions
    from lake_assets.sync import sync

    home = _dagster_home(settings)
    say(f"lake: {settings.lake_root}\nlanding: {settings.landing}\ndagster instance: {home}")
    settings = _catalog_for(settings, home, _land(settings, args, say), say)
    defs = build_definitions(settings)
    with dg.DagsterInstance.get() as instance:
        result = sync(settings, defs, load_catalog(settings.sources), instance, say, quality=False)
    report(settings, say)
    for f in result.failures:
        print(f"FAILED {f}", file=sys.stderr, flush=True)
    env = [
        f"DAGSTER_HOME={shlex.quote(home)}",
        f"LAKE_ROOT={shlex.quote(settings.lake_root)}",
        f"LAKE_LANDING={shlex.quote(settings.landing)}",
    ]
    if settings.sources != packaged_catalog():
        env.append(f"LAKE_SOURCES={shlex.quote(settings.sources)}")
    say("\nOpen the same lake in the Dagster UI:")
    say(f"  {' '.join(env)} dagster dev -w {shlex.quote(workspace_file(home))}")
    say(
        "then land more in another terminal, and watch the sensor and automation carry it to "
        "gold (or sync it with `lake-assets sync`, the same variables set):"
    )
    say(f"  LAKE_LANDING={shlex.quote(settings.landing)} lake-assets simulate --days 1")
    return 0 if result.ok else 1


# -- the shop as a PostgreSQL database (`demo --source postgres`) ------------------------------
PG_DSN_ENV = "APP_PG_DSN"
PG_CATALOG = "shop_pg_catalog"


def postgres_catalog(home: str, first_day: dt.date) -> str:
    """The packaged catalog read as `format: postgres` from the database in APP_PG_DSN (start
    date: the history's first day); kept once written, so a later demo syncs the same lake."""
    from lake_assets.sources.shop.catalogs import write_catalog

    folder = Path(home) / PG_CATALOG
    path = folder / Path(packaged_catalog()).name
    if path.exists():
        return str(path)
    header = (
        f"# Written by `lake-assets demo --source postgres`: {packaged_catalog()}\n# read from "
        f"the PostgreSQL database in ${PG_DSN_ENV} through logical replication.\n"
    )
    text = Path(write_catalog(folder, "postgres", first_day, header)).read_text()
    text, n = re.subn(
        r"(?m)^([ \t]+)format:[ \t]*postgres[ \t]*$", rf"\g<0>\n\g<1>dsn_env: {PG_DSN_ENV}", text
    )
    if n != 1:
        raise ValueError(f"{path}: no format line to add dsn_env after")
    path.write_text(text)
    return str(path)


def demo_postgres(settings: Settings, args, say) -> int:
    """Create the shop's tables in the database of APP_PG_DSN, run its simulated history against
    them (its first day before the lake's slot exists, the rest after), sync the lake through
    logical replication, and check that bronze equals the database."""
    import dagster as dg

    from lake_assets.catalog import load_catalog
    from lake_assets.definitions import build_definitions
    from lake_assets.lib import postgres
    from lake_assets.sources.shop import to_postgres
    from lake_assets.sources.shop.simulator import simulate
    from lake_assets.sync import sync

    home = _dagster_home(settings)
    start = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=args.days)
    catalog_path = postgres_catalog(home, start)
    settings = dataclasses.replace(settings, sources=catalog_path)
    source = load_catalog(catalog_path).source("shop")
    say(f"lake: {settings.lake_root}\nlanding: {settings.landing}\ncatalog: {catalog_path}")
    try:
        with postgres.connect(source) as conn:
            created = to_postgres.create_schema(conn)
            say(f"database: tables created: {', '.join(created) or 'none (they exist)'}")
            if to_postgres.is_empty(conn):
                history = str(Path(home) / "shop_pg_history")  # the simulator's, not landed
                shutil.rmtree(history, ignore_errors=True)
                summary = simulate(
                    history, args.days, seed=args.seed, scale=args.scale, dirty=args.dirty,
                    start=start, full_load=False,
                )  # fmt: skip
                rows = to_postgres.changes(history)
                first = dt.datetime.combine(start + dt.timedelta(days=1), dt.time(), dt.UTC)
                before, after = to_postgres.split(rows, first)
                n, t = to_postgres.replay(conn, before)
                say(f"ran the history's first day: {n:,} changes in {t:,} transaction(s)")
                out = postgres.extract(source, settings.landing, say)
                say(f"slot created; initial load of {out.loaded_rows:,} rows landed")
                n, t = to_postgres.replay(conn, after)
                say(
                    f"ran the history's other {summary.days - 1} day(s): {n:,} changes in "
                    f"{t:,} transaction(s)"
                )
            else:
                say("the database already holds the shop: syncing what it has new")
    except postgres.PostgresError as e:
        print(f"FAILED {e}", file=sys.stderr, flush=True)
        return 1
    defs = build_definitions(settings)
    with dg.DagsterInstance.get() as instance:
        result = sync(settings, defs, load_catalog(catalog_path), instance, say, quality=False)
    report(settings, say)
    for f in result.failures:
        print(f"FAILED {f}", file=sys.stderr, flush=True)
    with postgres.connect(source) as conn:
        equal = bronze_equals_database(settings, source, conn, say)
    return 0 if result.ok and equal else 1


def bronze_equals_database(settings: Settings, source, conn, say) -> bool:
    """Each table's bronze against `SELECT *` of the database table, row by row (read with
    delta-rs, an engine independent of the one that wrote it)."""
    from deltalake import DeltaTable, QueryBuilder

    from lake_assets.keys import table_path

    ok = True
    for table in source.tables:
        key = list(table.primary_key)
        columns = [c for c, _ in table.columns]
        quoted = ", ".join(f'"{c}"' for c in columns)
        cur = conn.execute(f'SELECT {quoted} FROM "{table.schema}"."{table.name}"')
        db = {tuple(r[columns.index(k)] for k in key): tuple(r) for r in cur.fetchall()}
        path = table_path(settings.lake_root, "bronze", source.name, table.name)
        found = QueryBuilder().register("t", DeltaTable(path)).execute(f"SELECT {quoted} FROM t")
        lake = {
            tuple(r[c] for c in key): tuple(r[c] for c in columns)
            for r in pa.table(found.read_all()).to_pylist()
        }
        same = lake == db
        ok &= same
        verdict = "equals" if same else "DIFFERS FROM"
        say(
            f"bronze/{source.name}/{table.name} ({len(lake):,} rows) {verdict} the database's "
            f"{table.schema}.{table.name} ({len(db):,} rows)"
        )
    return ok
