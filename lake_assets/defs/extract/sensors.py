"""extract_sensor_<source>: an extraction run every tick, unless one is still going; the
landing sensor then finds what it landed, as for files any other tool lands."""

import dagster as dg

from lake_assets.catalog import Source
from lake_assets.keys import extract_key

from ..automation import SENSOR_INTERVAL_SECONDS
from .assets import extracted_sources

_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def extract_sensor(source: Source) -> dg.SensorDefinition:
    key = extract_key(source.name)

    @dg.sensor(
        name=f"extract_sensor_{source.name}",
        target=[key],
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Extracts what {source.name} has new, every tick, one run at a time.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        tag = {"lake/extract": source.name}
        going = context.instance.get_runs(
            filters=dg.RunsFilter(tags=tag, statuses=_ACTIVE), limit=1
        )
        if going:
            return dg.SkipReason(f"an extraction of {source.name} is still running")
        return dg.RunRequest(asset_selection=[key], tags={**tag, "lake/trigger": "extract_sensor"})

    return _sensor


def build(catalog) -> list[dg.SensorDefinition]:
    return [extract_sensor(s) for s in extracted_sources(catalog)]
