"""<layer>_partitions_sensor_<source>: after a model's inputs change, the runs of exactly the
partitions of its partitioned models whose rows change (a late refund touches an old date;
declarative automation would only see the newest partition)."""

import hashlib
import json

import dagster as dg

from lake_assets.catalog import Source
from lake_assets.keys import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG, asset_key
from lake_assets.lib import models, plan
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

from ..automation import SENSOR_INTERVAL_SECONDS
from .assets import deps_of

_PASSED = "SUCCEEDED"  # AssetCheckExecutionRecordStatus's value for a check that passed


def _unchecked(context: dg.SensorEvaluationContext, keys: list[dg.AssetKey]) -> list[str]:
    """The inputs whose latest materialization has a blocking check that has not passed (yet):
    a model reads its inputs only after their verdict, as a run would have it."""
    graph = context.repository_def.asset_graph
    out = []
    for key in keys:
        for check_key in graph.get(key).check_keys:
            if not graph.get(check_key).blocking:
                continue
            record = context.instance.get_latest_asset_check_evaluation_record(check_key)
            if record is not None and getattr(record.status, "value", record.status) != _PASSED:
                out.append(f"{'/'.join(key.path)}:{check_key.name}")
    return out


def partitions_sensor(source: Source, layer: str, parts: list) -> dg.SensorDefinition:
    watched = sorted({k for m in parts for k in deps_of(m)}, key=lambda k: k.path)
    targets = [asset_key(layer, source.name, m.name) for m in parts]

    @dg.sensor(
        name=f"{layer}_partitions_sensor_{source.name}",
        target=targets,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"After {', '.join('/'.join(k.path) for k in watched)} change, requests the "
            f"partitions of {', '.join('/'.join(k.path) for k in targets)} whose rows change."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, spark: SparkResource, lake: LakeResource):
        marks = {}
        for k in watched:
            recs = context.instance.fetch_materializations(k, limit=1).records
            marks["/".join(k.path)] = recs[0].storage_id if recs else None
        if context.cursor and json.loads(context.cursor) == marks:
            return dg.SkipReason("no input of these models changed since the last tick")
        waiting = _unchecked(context, watched)
        if waiting:
            # The cursor stays: the next tick looks again, once the verdict is in.
            return dg.SkipReason(f"waiting for the blocking checks of {', '.join(waiting)} to pass")
        stamp = hashlib.sha1(json.dumps(marks, sort_keys=True).encode()).hexdigest()[:12]
        session = spark.session()
        by_range: dict[tuple, list[dg.AssetKey]] = {}
        for model, key in zip(parts, targets):
            for dates in plan.date_ranges(models.dates_to_sync(session, lake.root, source, model)):
                by_range.setdefault(dates, []).append(key)
        for (first, last), keys in sorted(by_range.items()):
            # One run per range of dates (a single-run backfill), with every model that range
            # touches: a run takes seconds to start, more than a model takes to write a range.
            names = ",".join("/".join(k.path) for k in keys)
            yield dg.RunRequest(
                run_key=f"{names}:{first}..{last}:{stamp}",
                asset_selection=keys,
                tags={
                    "lake/trigger": f"{layer}_partitions_sensor",
                    PARTITION_RANGE_START_TAG: first.isoformat(),
                    PARTITION_RANGE_END_TAG: last.isoformat(),
                },
            )
        context.update_cursor(json.dumps(marks))

    return _sensor


def build(catalog) -> list[dg.SensorDefinition]:
    out = []
    for source in catalog.sources:
        for layer in ("silver", "gold"):
            parts = [m for m in models.models_of(source) if m.layer == layer and m.partitioned_by]
            if parts:
                out.append(partitions_sensor(source, layer, parts))
    return out
