"""landing_files_sensor_<source>: new landed files -> runs of the raw partitions they belong to."""


import datetime as dt
import hashlib
import json
from collections import defaultdict

import dagster as dg

from lake_assets.catalog import Source
from lake_assets.keys import asset_key
from lake_assets.lib import raw as rawlib


def landed_digests(landing_root: str, source: Source) -> dict[str, dict[str, str]]:
    """{table: {partition date: digest of the names and sizes of its files}}."""
    out: dict[str, dict[str, str]] = {}
    for table in source.tables:
        by_day: dict[str, list[str]] = defaultdict(list)
        for f in rawlib.landed_files(landing_root, source, table):
            by_day[f.partition_date.isoformat()].append(f"{f.name}:{f.size}")
        out[table.name] = {
            day: hashlib.sha1("\n".join(sorted(names)).encode()).hexdigest()[:16] for day, names in by_day.items()
        }
    return out


def changed_partitions(old: dict, new: dict) -> dict[str, list[str]]:
    """{partition date: [tables whose files of that day differ from the cursor]}.

    Compares every day, not only days after a high-water mark, so a late file whose name
    sorts before everything seen is still picked up; a removed file re-runs its day too.
    """
    days: dict[str, list[str]] = defaultdict(list)
    for table in sorted(set(old) | set(new)):
        o, n = old.get(table, {}), new.get(table, {})
        for day in sorted(set(o) | set(n)):
            if o.get(day) != n.get(day):
                days[day].append(table)
    return dict(days)


def bootstrap_cursor(landing_root: str, lake_root: str, source: Source, new: dict) -> dict:
    """The first tick's view: days raw already holds count as seen, so a sensor switched on
    over a synced lake requests only what is missing, not the whole history again."""
    pending = rawlib.pending_days(landing_root, lake_root, source)
    return {
        table: {day: digest for day, digest in days.items()
                if dt.date.fromisoformat(day) not in pending.get(table, set())}
        for table, days in new.items()
    }


def landing_sensor(source: Source, landing_root: str, lake_root: str) -> dg.SensorDefinition:
    raw_keys = [asset_key("raw", source.name, t.name) for t in source.tables]

    @dg.sensor(
        name=f"landing_files_sensor_{source.name}",
        target=raw_keys,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests raw partitions of {source.name} for files that landed since the last tick.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        new = landed_digests(landing_root, source)
        old = json.loads(context.cursor) if context.cursor else bootstrap_cursor(landing_root, lake_root, source, new)
        changed = changed_partitions(old, new)
        for day, tables in sorted(changed.items()):
            present = [t for t in tables if day in new.get(t, {})] or tables
            stamp = hashlib.sha1(json.dumps({t: new.get(t, {}).get(day) for t in present}).encode()).hexdigest()[:12]
            yield dg.RunRequest(
                run_key=f"{source.name}:{day}:{stamp}",
                partition_key=day,
                asset_selection=[asset_key("raw", source.name, t) for t in present],
                tags={"lake/trigger": "landing_files_sensor"},
            )
        # The cursor moves only after the requests are yielded; a crashed tick re-evaluates.
        context.update_cursor(json.dumps(new, sort_keys=True))

    return _sensor


def build(catalog, landing_root: str, lake_root: str) -> list[dg.SensorDefinition]:
    return [landing_sensor(s, landing_root, lake_root) for s in catalog.sources]
