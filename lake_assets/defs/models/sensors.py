"""<layer>_partitions_sensor_<source>: after a model's inputs change, the runs of exactly the
partitions of its partitioned models whose rows change (a late refund touches an old date;
declarative automation would only see the newest partition).

Which dates change takes the engine (the models' SQL, fresh against their tables), and a sensor
runs in the code server, which starts no engine: the sensor requests a run of the planning job
(`<layer>_partitions_plan_<source>`, on the cluster in the databricks deployment), which writes
the dates under `_state/<source>/_models/`; the next tick reads them with pyarrow's filesystem
and requests the runs."""

import hashlib
import json
from typing import Any

import dagster as dg

from lake_assets.catalog import Source
from lake_assets.keys import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    asset_key,
    state_path,
)
from lake_assets.lib import models, plan, storage
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


PLAN_STAMP_TAG = "lake/plan_stamp"


def plan_path(lake_root: str, source: str, layer: str) -> str:
    return state_path(lake_root, source, "_models", f"{layer}_partitions_plan.json")


def read_plan(lake_root: str, source: str, layer: str) -> dict | None:
    """The plan a planning run wrote (pyarrow's filesystem: no engine), or None."""
    fs, path = storage.filesystem(plan_path(lake_root, source, layer))
    try:
        with fs.open_input_stream(path) as f:
            return json.loads(f.read())
    except (FileNotFoundError, OSError, ValueError):
        return None


def plan_job(source: Source, layer: str, parts: list, targets: list) -> dg.JobDefinition:
    """Computes which dates of the partitioned models change, on the engine (on the cluster in
    the databricks deployment), and writes them for the sensor to request."""

    @dg.op(
        name=f"plan_{layer}_partitions_{source.name}",
        description=f"Writes the dates of the {layer} models of {source.name} whose rows change.",
    )
    def _plan(
        context: dg.OpExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        step_launcher: dg.ResourceParam[Any],
    ) -> None:
        session = spark.session()
        by_range: dict[tuple, list[str]] = {}
        for model, key in zip(parts, targets):
            dates = models.dates_to_sync(session, lake.root, source, model)
            for first, last in plan.date_ranges(dates):
                by_range.setdefault((first.isoformat(), last.isoformat()), []).append(
                    "/".join(key.path)
                )
        ranges = [[first, last, keys] for (first, last), keys in sorted(by_range.items())]
        fs, path = storage.filesystem(plan_path(lake.root, source.name, layer))
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(path) as out:
            out.write(
                json.dumps({"stamp": context.run.tags[PLAN_STAMP_TAG], "ranges": ranges}).encode()
            )
        context.log.info(f"{len(ranges)} range(s) of dates to recompute: {ranges}")

    @dg.job(
        name=f"{layer}_partitions_plan_{source.name}", tags={"layer": layer, "source": source.name}
    )
    def _job():
        _plan()

    return _job


def partitions_sensor(source: Source, layer: str, parts: list) -> dg.SensorDefinition:
    watched = sorted({k for m in parts for k in deps_of(m)}, key=lambda k: k.path)
    targets = [asset_key(layer, source.name, m.name) for m in parts]
    planner = plan_job(source, layer, parts, targets)
    runs = dg.define_asset_job(f"{layer}_partitions_{source.name}", selection=targets)

    @dg.sensor(
        name=f"{layer}_partitions_sensor_{source.name}",
        jobs=[planner, runs],
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"After {', '.join('/'.join(k.path) for k in watched)} change, requests the "
            f"partitions of {', '.join('/'.join(k.path) for k in targets)} whose rows change: "
            f"a run of {planner.name} finds them on the engine, the next tick requests them."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        # No engine here (a code server has none to spare): the dates are the planning run's.
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
        found = read_plan(lake.root, source.name, layer)
        if found is None or found.get("stamp") != stamp:
            # The cursor stays: the next tick reads the plan this run writes.
            yield dg.RunRequest(
                run_key=f"plan:{stamp}",
                job_name=planner.name,
                tags={"lake/trigger": f"{layer}_partitions_sensor", PLAN_STAMP_TAG: stamp},
            )
            return
        for first, last, names in found["ranges"]:
            # One run per range of dates (a single-run backfill), with every model that range
            # touches: a run takes seconds to start, more than a model takes to write a range.
            keys = [dg.AssetKey(n.split("/")) for n in names]
            yield dg.RunRequest(
                run_key=f"{','.join(names)}:{first}..{last}:{stamp}",
                job_name=runs.name,
                asset_selection=keys,
                tags={
                    "lake/trigger": f"{layer}_partitions_sensor",
                    PARTITION_RANGE_START_TAG: first,
                    PARTITION_RANGE_END_TAG: last,
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
