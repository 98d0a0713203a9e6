"""Checks of SQL models: a declared key is unique; a model's own SQL checks return no rows;
yesterday's partition of a partitioned gold model exists by 06:00 UTC."""

import datetime as dt
from typing import Any

import dagster as dg

from lake_assets.catalog import Source
from lake_assets.defs.checks import key_unique_check, no_table_yet
from lake_assets.keys import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    asset_key,
)
from lake_assets.lib import delta, models
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

SAMPLE_ROWS = 5
MAX_COUNTED = 1000


def run_window(tags: dict[str, str], source: Source) -> tuple[dt.date, dt.date]:
    """The dates a check covers: the run's partition(s) when the run is partitioned (a sensor
    runs a few dates at a time, so the table is whole only after its last run), else all."""
    first, last = source.start_date, dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)
    if PARTITION_TAG in tags:
        first = last = dt.date.fromisoformat(tags[PARTITION_TAG])
    elif PARTITION_RANGE_START_TAG in tags and PARTITION_RANGE_END_TAG in tags:
        first = dt.date.fromisoformat(tags[PARTITION_RANGE_START_TAG])
        last = dt.date.fromisoformat(tags[PARTITION_RANGE_END_TAG])
    return first, last


def sql_check(source: Source, model, check) -> dg.AssetChecksDefinition:
    key = asset_key(model.layer, model.source, model.name)

    @dg.asset_check(
        asset=key,
        name=check.name,
        blocking=check.blocking,
        description=check.description or f"This query returns no rows:\n{check.sql.strip()}",
    )
    def _check(
        context: dg.AssetCheckExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        step_launcher: dg.ResourceParam[Any],
    ) -> dg.AssetCheckResult:
        session = spark.session()
        path = lake.table(model.layer, model.source, model.name)
        if not delta.exists(path):
            return no_table_yet(path)
        first, last = run_window(context.run.tags, source)
        variables = models.check_variables(model, first, last)
        delta.read(session, path).createOrReplaceTempView(variables["this"])
        try:
            sql = models.bind(session, lake.root, check.sql, model.source, variables)
        except models.MissingInput as e:
            return dg.AssetCheckResult(passed=True, metadata={"note": f"{e} has no table yet"})
        failing = session.sql(sql).limit(MAX_COUNTED + 1).collect()
        count = len(failing)
        sample = [{k: str(v) for k, v in r.asDict().items()} for r in failing[:SAMPLE_ROWS]]
        return dg.AssetCheckResult(
            passed=count == 0,
            severity=dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN,
            metadata={
                "failing_rows": count if count <= MAX_COUNTED else f"more than {MAX_COUNTED}",
                "first_date": str(first),
                "last_date": str(last),
                **({"sample": dg.MetadataValue.json(sample)} if sample else {}),
            },
        )

    return _check


def yesterday_partition_exists(model) -> dg.AssetChecksDefinition:
    key = asset_key(model.layer, model.source, model.name)

    @dg.asset_check(
        asset=key,
        name="yesterday_partition_exists",
        blocking=False,
        description=f"By 06:00 UTC, yesterday's partition of {model.name} has been materialized.",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        now = dt.datetime.now(dt.timezone.utc)
        yesterday = (now - dt.timedelta(days=1)).date().isoformat()
        deadline = now.replace(hour=6, minute=0, second=0, microsecond=0)
        done = yesterday in context.instance.get_materialized_partitions(key)
        return dg.AssetCheckResult(
            passed=done or now < deadline,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "partition": yesterday,
                "materialized": done,
                "deadline": deadline.isoformat(),
            },
        )

    return _check


def model_checks(source: Source, model) -> list[dg.AssetChecksDefinition]:
    out = [key_unique_check(model.layer, source, model)] if model.primary_key else []
    out += [sql_check(source, model, c) for c in model.checks]
    if model.partitioned_by and model.layer == "gold":
        out.append(yesterday_partition_exists(model))
    return out


def build(catalog) -> list[dg.AssetChecksDefinition]:
    return [c for s in catalog.sources for m in models.models_of(s) for c in model_checks(s, m)]
