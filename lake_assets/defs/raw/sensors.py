"""landing_files_sensor_<source>: new landed files -> runs of the raw partitions they belong to.

"New" is lib/plan.py's rule, the one `sync` follows: landed files raw does not hold. The
cursor remembers what the sensor last requested, so a tick before those runs have written
raw does not ask again; a day whose new files change (one more, one replaced) is asked again.
"""

import hashlib
import json

import dagster as dg

from lake_assets.catalog import Source
from lake_assets.keys import asset_key
from lake_assets.lib import plan
from lake_assets.resources.lake import LakeResource, LandingResource

from ..automation import SENSOR_INTERVAL_SECONDS

Digests = dict[str, dict[str, str]]  # {table: {raw day: digest of its new files}}


def _digest(parts) -> str:
    return hashlib.sha1("\n".join(sorted(parts)).encode()).hexdigest()[:16]


def pending_digests(pending: plan.Pending) -> Digests:
    return {
        t: {day.isoformat(): _digest(ids) for day, ids in days.items()}
        for t, days in pending.items()
    }


def to_request(old: Digests, new: Digests) -> dict[str, list[str]]:
    """{raw day: [tables whose new files of that day are not what the cursor last requested]}."""
    days: dict[str, list[str]] = {}
    for table in sorted(new):
        for day, digest in sorted(new[table].items()):
            if old.get(table, {}).get(day) != digest:
                days.setdefault(day, []).append(table)
    return days


def run_requests(source: Source, new: Digests, days: dict[str, list[str]]):
    for day, tables in sorted(days.items()):
        # Deterministic: a tick evaluated again (a crash before the cursor moved) asks the same.
        stamp = hashlib.sha1(json.dumps({t: new[t][day] for t in tables}).encode()).hexdigest()[:12]
        yield dg.RunRequest(
            run_key=f"{source.name}:{day}:{stamp}",
            partition_key=day,
            asset_selection=[asset_key("raw", source.name, t) for t in tables],
            tags={"lake/trigger": "landing_files_sensor"},
        )


def landing_sensor(source: Source) -> dg.SensorDefinition:
    raw_keys = [asset_key("raw", source.name, t.name) for t in source.tables]

    @dg.sensor(
        name=f"landing_files_sensor_{source.name}",
        target=raw_keys,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests raw partitions of {source.name} for landed files raw lacks.",
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingResource, lake: LakeResource):
        new = pending_digests(plan.pending(landing.root, lake.root, source))
        old = json.loads(context.cursor) if context.cursor else {}
        yield from run_requests(source, new, to_request(old, new))
        # The cursor moves only after the requests are yielded; a crashed tick re-evaluates.
        context.update_cursor(json.dumps(new, sort_keys=True))

    return _sensor


def build(catalog) -> list[dg.SensorDefinition]:
    return [landing_sensor(s) for s in catalog.sources]
