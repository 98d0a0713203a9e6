"""lake-assets demo | simulate | sync: the same definitions the UI loads."""

from __future__ import annotations

import argparse
import os
import sys


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lake-root", help="where the Delta tables live (LAKE_ROOT; default ./.lake)")
    p.add_argument("--landing", help="where CDC files land (LAKE_LANDING; default $LAKE_ROOT/landing)")
    p.add_argument("--sources", help="source catalog YAML (LAKE_SOURCES; default: the demo source shop)")
    p.add_argument("--deployment", choices=["local", "databricks"], help="LAKE_DEPLOYMENT (default local)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lake-assets", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sync", help="process everything landed and not yet in the lake")
    _common(s)
    s = sub.add_parser("simulate", help="land N more days of demo shop CDC files")
    _common(s)
    s.add_argument("--days", type=int, required=True)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--scale", type=float, default=1.0)
    s.add_argument("--format", dest="fmt", choices=["parquet", "csv"], default="parquet")
    s.add_argument("--dirty", action="store_true", help="inject realistic bad data")
    s = sub.add_parser("demo", help="land a few weeks of shop history, sync the lake, show gold")
    _common(s)
    s.add_argument("--days", type=int, default=21)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--scale", type=float, default=1.0)
    s.add_argument("--format", dest="fmt", choices=["parquet", "csv"], default="parquet")
    s.add_argument("--clean", action="store_true", help="no injected bad data")
    return p


def _settings(args):
    from lake_assets.settings import Settings

    return Settings.load(args.lake_root, args.landing, args.sources, args.deployment)


def _instance():
    import dagster as dg

    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def say(line: str) -> None:
    print(line, flush=True)


def cmd_sync(args) -> int:
    from lake_assets.catalog import load_catalog
    from lake_assets.definitions import build_definitions
    from lake_assets.sync import sync

    settings = _settings(args)
    catalog = load_catalog(settings.sources)
    defs = build_definitions(settings)
    say(f"syncing {settings.landing} -> {settings.lake_root} ({settings.deployment})")
    with _instance() as instance:
        result = sync(settings, defs, catalog, instance, say)
    for f in result.failures:
        print(f"FAILED {f}", file=sys.stderr, flush=True)
    return 0 if result.ok else 1


def cmd_simulate(args) -> int:
    from lake_assets.sources.shop.simulator import SimulationError, simulate

    settings = _settings(args)
    try:
        summary = simulate(settings.landing, args.days, seed=args.seed, scale=args.scale, fmt=args.fmt,
                           dirty=args.dirty, progress=say)
    except SimulationError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    say(summary.describe())
    return 0


def cmd_demo(args) -> int:
    from lake_assets.demo import demo

    return demo(_settings(args), args, say)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    from lake_assets.catalog import CatalogError
    from lake_assets.settings import SettingsError

    try:
        code = {"sync": cmd_sync, "simulate": cmd_simulate, "demo": cmd_demo}[args.command](args)
    except (CatalogError, SettingsError) as e:
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
