"""<layer>/<source>/<model>: a table computed by a model's Spark SQL from the lake's tables."""

import datetime as dt
from typing import Any

import dagster as dg
from pyspark.sql import functions as F

from lake_assets.catalog import Source
from lake_assets.keys import asset_key
from lake_assets.lib import charts, delta, fingerprint, models
from lake_assets.resources.io_manager import PARTITION_COLUMN, WRITE_MODE
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

from ..automation import EAGER_AFTER_CHECKS
from ..planners import MODEL
from ..raw.assets import partitions_for
from ..specs import column_metadata

# Gold is due daily by 06:00 UTC with the previous day complete.
GOLD_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 6 * * *", lower_bound_delta=dt.timedelta(hours=24)
)
SILVER_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=26))
PREVIEW_ROWS = 10
CHART_DAYS = 31
CHART_ROWS = 400


def deps_of(model) -> list[dg.AssetKey]:
    return [asset_key(r.layer, r.source, r.table) for r in models.refs_in(model.sql, model.source)]


def _description(model) -> str:
    text = (model.description or f"The rows of the SQL model {model.source}.{model.name}.").rstrip()
    if model.primary_key:
        text += f" Unique on ({', '.join(model.primary_key)})."
    if model.partitioned_by:
        text += f" Partitioned daily by {model.partitioned_by}."
    return text


def model_asset(source: Source, model) -> dg.AssetsDefinition:
    partitioned = model.partitioned_by is not None
    metadata = {
        **column_metadata(model),
        WRITE_MODE: "replace_partitions" if partitioned else "overwrite",
        MODEL: f"{model.source}/{model.name}",
        "lake/sql": dg.MetadataValue.md(f"```sql\n{model.sql.strip()}\n```"),
    }
    if partitioned:
        metadata[PARTITION_COLUMN] = model.partitioned_by

    @dg.asset(
        key=asset_key(model.layer, model.source, model.name),
        group_name=model.layer,
        deps=deps_of(model),
        partitions_def=partitions_for(source) if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        kinds={"spark", "delta"},
        tags={"layer": model.layer, "source": model.source},
        metadata=metadata,
        freshness_policy=GOLD_FRESHNESS if model.layer == "gold" else SILVER_FRESHNESS,
        # Partitioned models follow their sensor, which knows which dates' rows changed.
        automation_condition=None if partitioned else EAGER_AFTER_CHECKS,
        output_required=False,
        description=_description(model),
    )
    def _model(
        context: dg.AssetExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        step_launcher: dg.ResourceParam[Any],
    ):
        session = spark.session()
        if partitioned:
            tw = context.partition_time_window
            yield from _partitions(
                context,
                session,
                lake,
                model,
                tw.start.date(),
                (tw.end - dt.timedelta(days=1)).date(),
            )
        else:
            yield from _whole(context, session, lake, model)

    return _model


def _partitions(context, session, lake: LakeResource, model, first: dt.date, last: dt.date):
    try:
        df = models.frame(session, lake.root, model, first, last)
    except models.MissingInput as e:
        raise dg.Failure(
            f"model {model.source}.{model.name}: {e} has no table yet; sync it first"
        ) from None
    # Each partition its own figures (a run of several dates writes them all at once).
    for day, figures in _figures_by_date(df, model.partitioned_by, first, last).items():
        context.add_asset_metadata(figures, partition_key=day.isoformat())
    meta = _preview(df, model, f"{first}..{last}")
    if model.chart:
        # The run's dates in the context of the month before them.
        recent = models.frame(
            session, lake.root, model, last - dt.timedelta(days=CHART_DAYS - 1), last
        )
        meta["chart"] = _chart(recent, model)
    yield dg.Output(df, metadata=meta)


def _whole(context, session, lake: LakeResource, model):
    """The whole table, unless no input (nor the SQL) changed since the last run."""
    own = lake.table(model.layer, model.source, model.name)
    mark_path = lake.state(model.source, model.name, f"{model.layer}_inputs")
    mark = fingerprint.of(models.inputs(model, lake.root) + [own], settings=model.sql)
    if fingerprint.stored(session, mark_path) == mark and delta.exists(own):
        context.log.info("inputs unchanged since the last run: nothing to recompute")
        return
    try:
        df = models.frame(session, lake.root, model)
    except models.MissingInput as e:
        context.log.info(f"{e} has no table yet: nothing to compute")
        return
    meta = _preview(df, model, "all")
    if model.chart:
        meta["chart"] = _chart(df, model)
    yield dg.Output(df, metadata=meta)
    fingerprint.store(
        session,
        mark_path,
        fingerprint.of(models.inputs(model, lake.root) + [own], settings=model.sql),
    )


def _preview(df, model, dates: str) -> dict:
    """The first rows (by key) as a markdown table: what the run wrote, for the UI."""
    order = list(model.primary_key) or (
        [model.partitioned_by] if model.partitioned_by else df.columns[:1]
    )
    rows = df.orderBy(*order).limit(PREVIEW_ROWS).collect()
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return {"dates": dates, "preview": dg.MetadataValue.md("\n".join(lines))}


def _figures_by_date(df, column: str, first: dt.date, last: dt.date) -> dict[dt.date, dict]:
    """Per date of the run: its rows, and the sum of each numeric column over them (zeros for
    a date whose rows vanished)."""
    numeric = [
        f.name
        for f in df.schema.fields
        if f.name != column
        and f.dataType.typeName() in ("integer", "long", "short", "decimal", "double", "float")
    ]
    aggregates = [
        F.count(F.lit(1)).alias("__rows"),
        *[F.sum(F.col(f"`{c}`")).alias(c) for c in numeric],
    ]
    found = {r[column]: r for r in df.groupBy(column).agg(*aggregates).collect()}
    out = {}
    for i in range((last - first).days + 1):
        day = first + dt.timedelta(days=i)
        row = found.get(day)
        rows = int(row["__rows"]) if row else 0
        # The partition's rows, not the table's (the IO manager counts the whole table).
        figures = {"rows_written": rows, "dagster/row_count": rows}
        for c in numeric:
            value = row[c] if row else None
            figures[f"sum_{c}"] = (
                0 if value is None else value if isinstance(value, int) else float(value)
            )
        out[day] = figures
    return out


def _chart(df, model) -> dg.MetadataValue:
    chart = model.chart
    rows = [r.asDict() for r in df.orderBy(chart.x).limit(CHART_ROWS).collect()]
    if not rows:
        return dg.MetadataValue.md("_no rows to chart_")
    title = f"{model.name}, {rows[0][chart.x]}..{rows[-1][chart.x]}"
    image = charts.png(rows, chart.x, chart.y, chart.kind, title)
    return dg.MetadataValue.md(charts.markdown_image(image, title))


def build(catalog) -> list[dg.AssetsDefinition]:
    return [model_asset(s, m) for s in catalog.sources for m in models.models_of(s)]
