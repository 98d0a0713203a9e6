"""silver/<source>/<table>_history: the bronze history of a table that keeps one, typed,
standardized and checked by the same silver rules as silver/<source>/<table>.

A version that a `drop` rule rejects is kept out (and counted); unlike silver's current rows it
goes to no quarantine: silver/<source>/<table>_quarantine lists what is rejected now, and an
old version is not something to fix at the source. `warn` counts, `fail` stops the run before
anything is written, as in silver. Referential rules look the key up in the referenced table's
bronze (its current rows), as silver's do.
"""

import datetime as dt
from typing import Any

import dagster as dg

from lake_assets.catalog import HISTORY_SUFFIX, Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta, fingerprint, silver
from lake_assets.resources.io_manager import PRIMARY_KEY, WRITE_MODE
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

from ..automation import EAGER_AFTER_CHECKS
from ..checks import blocking_check, no_table_yet
from ..specs import column_metadata, describe


def history_name(table: Table) -> str:
    return table.name + HISTORY_SUFFIX


def silver_history_asset(source: Source, table: Table) -> dg.AssetsDefinition:
    name = history_name(table)
    refs = sorted({r.references[0] for r in table.rules if r.references})
    deps = [asset_key("bronze", source.name, name)] + [
        asset_key("bronze", source.name, r) for r in refs
    ]
    rules_text = "; ".join(f"{r.name} ({r.action})" for r in table.rules) or "none"

    @dg.asset(
        key=asset_key("silver", source.name, name),
        group_name="silver",
        deps=deps,
        kinds={"spark", "delta"},
        tags={"layer": "silver", "source": source.name},
        metadata={
            WRITE_MODE: "overwrite",
            PRIMARY_KEY: [*table.primary_key, "_valid_from"],
            **column_metadata(table),
        },
        automation_condition=EAGER_AFTER_CHECKS,
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(hours=table.freshness_hours)
        ),
        description=describe(
            table,
            f"Every version of {source.name}.{table.name} (bronze/{source.name}/{name}) cleaned "
            f"as silver/{source.name}/{table.name} is: one row per "
            f"{', '.join(table.primary_key)} and `_valid_from`, with `_valid_to` and "
            f"`_is_current`; versions a drop rule rejects are left out. Rules: {rules_text}.",
        ),
    )
    def _silver_history(
        context: dg.AssetExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        step_launcher: dg.ResourceParam[Any],
    ):
        session = spark.session()
        hpath = lake.table("bronze", source.name, name)
        if not delta.exists(hpath):
            context.log.info(f"bronze/{source.name}/{name} does not exist yet: nothing landed")
            yield dg.Output(None, metadata={"skipped": "nothing landed yet"})
            return
        inputs = [hpath] + [lake.table("bronze", source.name, r) for r in refs]
        own = lake.table("silver", source.name, name)
        mark_path = lake.state(source.name, table.name, "silver_history_inputs")
        if fingerprint.stored(session, mark_path) == fingerprint.of(inputs + [own], table):
            context.log.info(f"silver/{source.name}/{name}: its inputs are unchanged")
            yield dg.Output(None, metadata={"unchanged": True})
            return
        frame = silver.standardize(silver.enforce_types(delta.read(session, hpath), table), table)
        references = {}
        for r in refs:
            rpath = lake.table("bronze", source.name, r)
            references[r] = delta.read(session, rpath) if delta.exists(rpath) else None
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        try:
            kept, _, results = silver.apply_rules(
                frame, table, references, None, f"CAST('{now:%Y-%m-%d %H:%M:%S}' AS TIMESTAMP)"
            )
        except silver.RuleFailure as e:
            raise dg.Failure(description=str(e).replace("silver ", "silver history ", 1)) from None
        yield dg.Output(kept, metadata={**results.metadata(), "rules": rules_text})
        # Written once the output is handled: only now does the mark describe the table.
        fingerprint.store(session, mark_path, fingerprint.of(inputs + [own], table))

    return _silver_history


def silver_history_checks(source: Source, table: Table) -> list[dg.AssetChecksDefinition]:
    name = history_name(table)
    keys = [*table.primary_key, "_valid_from"]

    @blocking_check(
        asset_key("silver", source.name, name),
        "version_key_unique",
        f"No two versions share ({', '.join(keys)}).",
    )
    def version_key_unique(
        spark: SparkResource, lake: LakeResource, step_launcher: dg.ResourceParam[Any]
    ) -> dg.AssetCheckResult:
        path = lake.table("silver", source.name, name)
        if not delta.exists(path):
            return no_table_yet(path)
        frame = delta.read(spark.session(), path)
        dups = frame.groupBy(*[delta.quote(k) for k in keys]).count().where("count > 1").count()
        return dg.AssetCheckResult(passed=dups == 0, metadata={"duplicate_versions": dups})

    return [version_key_unique]


def _with_history(catalog) -> list[tuple[Source, Table]]:
    return [(s, t) for s in catalog.sources for t in s.tables if t.history is not None]


def build(catalog) -> list[dg.AssetsDefinition]:
    return [silver_history_asset(s, t) for s, t in _with_history(catalog)]


def build_checks(catalog) -> list[dg.AssetChecksDefinition]:
    return [c for s, t in _with_history(catalog) for c in silver_history_checks(s, t)]
