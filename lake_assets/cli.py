"""lake-assets demo | simulate | sync: the same definitions the UI loads."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default; an option whose default depends on the environment or on
    the landed history (None here) says it in its own words instead of "(default: None)"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lake-root",
        metavar="PATH",
        help="where the Delta tables live: a path, file://… or s3://bucket/prefix "
        "(default: $LAKE_ROOT, else ./.lake)",
    )
    p.add_argument(
        "--landing",
        metavar="PATH",
        help="where the CDC files land (default: $LAKE_LANDING, else $LAKE_ROOT/landing)",
    )
    p.add_argument(
        "--sources",
        metavar="YAML",
        help="the source catalog (default: $LAKE_SOURCES, else the packaged catalog of "
        "the demo source shop)",
    )
    p.add_argument(
        "--deployment",
        choices=["local", "databricks", "connect", "classic"],
        help="where the Spark code runs: local (an embedded engine, no services), "
        "databricks, connect (the Spark Connect server at $LAKE_SPARK_REMOTE) or classic "
        "(local JVM Spark with Delta from Maven Central) (default: $LAKE_DEPLOYMENT, else local)",
    )


def _command(sub, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand with the options every command takes."""
    p = sub.add_parser(name, help=summary, description=description, formatter_class=_Help)
    _common(p)
    return p


def _history_options(p: argparse.ArgumentParser, new: bool) -> None:
    """The simulator's options. `new`: the command starts a history (demo), so they have the
    new history's defaults; else they default to the landed history's own."""
    landed = "" if new else "the landed history's, else "
    p.add_argument(
        "--seed",
        type=int,
        default=7 if new else None,
        help="random seed of a new history; a landed history keeps its own"
        + ("" if new else " (default: the landed history's, else 7)"),
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0 if new else None,
        help="volume multiplier: 1 is ~300 orders and ~3,000 customers a simulated day"
        + ("" if new else f" (default: {landed}1.0)"),
    )
    p.add_argument(
        "--format",
        dest="landing_format",
        choices=["dms", "debezium", "fivetran", "snapshot", "parquet", "csv"],
        default=None,
        help="whose files land: dms (AWS DMS), debezium (Debezium JSON lines through the Kafka "
        "Connect S3 sink), fivetran (Fivetran's rows in DMS's layout) or snapshot (the whole "
        "table at each flush, as a full extract lands it); parquet and csv are "
        "dms with that file type; a landed history keeps its own"
        f" (default: {landed}dms)",
    )
    p.add_argument(
        "--file-type",
        dest="fmt",
        choices=["parquet", "csv"],
        default=None,
        help="file type of dms, fivetran and snapshot files (debezium's are JSON lines); a landed "
        f"history keeps its own (default: {landed}parquet)",
    )
    # One default for demo and simulate: dirty, so the quality checks have something to catch.
    p.add_argument(
        "--dirty",
        dest="dirty",
        action="store_true",
        default=argparse.SUPPRESS,
        help="inject realistic bad data: malformed e-mails and country codes, negative "
        f"quantities, orders of unknown customers (default: {landed}dirty)",
    )
    p.add_argument(
        "--clean",
        dest="dirty",
        action="store_false",
        default=argparse.SUPPRESS,
        help="land clean data only (default: --dirty)",
    )
    p.set_defaults(dirty=True if new else None)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lake-assets", description=__doc__, formatter_class=_Help)
    sub = p.add_subparsers(dest="command", required=True)
    _command(
        sub,
        "sync",
        "process everything landed and not yet in the lake",
        "Process everything landed and not yet in the lake: raw partitions, then bronze, "
        "silver, gold, with every asset check.",
    )
    simulators = (
        (
            "simulate",
            "land N more days of demo shop CDC files",
            "Land N more simulated days of the demo source shop as AWS DMS files (or Debezium's, "
            "Fivetran's or snapshots: --format), going on with "
            "the landed history (a new one if there is none). The new days fill the time from "
            "the history's end up to now, however short: no file is ever dated in the future.",
            1,
            "simulated days to land (any number, any time)",
        ),
        (
            "demo",
            "land the shop's history, sync the lake, show gold",
            "On a landing zone with no history: land the demo source shop's history from the "
            "catalog's start_date up to now. Then (also when history has landed) sync the lake and "
            "show the gold KPIs, the quality results and the `dagster dev` command.",
            21,
            "simulated days of a new history, spread from the catalog's start_date up to now; "
            "ignored once history has landed",
        ),
    )
    for name, summary, description, days, days_help in simulators:
        s = _command(sub, name, summary, description)
        s.add_argument("--days", type=_positive, default=days, metavar="N", help=days_help)
        _history_options(s, new=name == "demo")
        if name == "demo":
            s.add_argument(
                "--source",
                choices=["dms", "postgres"],
                default="dms",
                help="dms: the shop's history landed as AWS DMS files; postgres: run it against "
                "the PostgreSQL database in APP_PG_DSN and sync it through logical replication",
            )
    return p


def _settings(args, reach: bool = True):
    from lake_assets.settings import Settings

    settings = Settings.load(args.lake_root, args.landing, args.sources, args.deployment)
    if reach:
        _reach(settings)
    return settings


def _reach(settings) -> None:
    """An object store that does not answer fails here, in one line naming the setting."""
    from lake_assets.lib import storage

    storage.check_reachable(settings.landing, "LAKE_LANDING")
    if settings.lake_root != settings.landing:
        storage.check_reachable(settings.lake_root, "LAKE_ROOT")


def _instance():
    import dagster as dg

    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def say(line: str) -> None:
    print(line, flush=True)


def cmd_sync(args) -> int:
    from lake_assets.catalog import load_catalog
    from lake_assets.definitions import build_definitions
    from lake_assets.sync import sync

    settings = _settings(args, reach=False)  # a refused deployment need not reach the store
    catalog = load_catalog(settings.sources)
    defs = build_definitions(settings)
    if settings.deployment == "databricks":
        from lake_assets.settings import SettingsError

        # A run executed in this process is not reconstructable: the step launcher cannot
        # ship its steps to a cluster (it pickles a reference to the job, to load it there).
        raise SettingsError(
            "LAKE_DEPLOYMENT=databricks: `lake-assets sync` runs its steps in this process, "
            "which the Databricks step launcher cannot send to a cluster; materialize from "
            "Dagster instead (dagster dev, a Dagster deployment, or `dagster asset materialize "
            "-m lake_assets.definitions --select ...`, docs/deploy-databricks.md)"
        )
    _reach(settings)
    say(f"syncing {settings.landing} -> {settings.lake_root} ({settings.deployment})")
    with _instance() as instance:
        result = sync(settings, defs, catalog, instance, say)
    for f in result.failures:
        print(f"FAILED {f}", file=sys.stderr, flush=True)
    return 0 if result.ok else 1


def cmd_simulate(args) -> int:
    from lake_assets.demo import land_days
    from lake_assets.sources.shop.simulator import SimulationError

    try:
        summary = land_days(_settings(args), args, say)
    except SimulationError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    say(summary.describe())
    if summary.landing_format != "dms":
        say(_catalog_hint(_settings(args), summary))
    return 0


def _catalog_hint(settings, summary) -> str:
    """Where the shop's catalog for a non-DMS history is (written beside the simulator's state,
    on a local landing zone): the packaged one is DMS's."""
    from lake_assets.lib import storage
    from lake_assets.sources.shop.catalogs import write_catalog

    fmt = summary.landing_format
    if storage.is_s3(settings.landing):
        return (
            f"sync these {fmt} files with a catalog of format {fmt}: the packaged one (DMS's) "
            "with `format: " + fmt + "` and no timestamp_column, as LAKE_SOURCES"
        )
    folder = Path(storage.filesystem(settings.landing)[1]) / summary.source / "_simulator"
    folder = folder / "catalog"
    path = write_catalog(
        folder,
        fmt,
        header=f"# Written by `lake-assets simulate`: the shop's catalog, format {fmt}.\n",
    )
    return f"sync with the shop's catalog for format {fmt}: LAKE_SOURCES={shlex.quote(path)}"


def cmd_demo(args) -> int:
    from lake_assets.demo import demo

    return demo(_settings(args), args, say)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    from lake_assets.catalog import CatalogError
    from lake_assets.lib.storage import StoreUnreachableError
    from lake_assets.settings import SettingsError

    try:
        code = {"sync": cmd_sync, "simulate": cmd_simulate, "demo": cmd_demo}[args.command](args)
    except (CatalogError, SettingsError, StoreUnreachableError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    from lake_assets.lib import engine

    engine.shutdown()
    # Exit with the real outcome: native threads of pyarrow/delta-rs can abort a normal
    # interpreter shutdown (exit 134) after the work is done.
    os._exit(code)


if __name__ == "__main__":
    main()
