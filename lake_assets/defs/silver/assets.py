"""silver/<source>/<table>: bronze cleaned, typed and checked; rejects in <table>_quarantine."""

import datetime as dt
from typing import Any

import dagster as dg

from lake_assets.catalog import Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta, fingerprint, silver
from lake_assets.resources.io_manager import WRITE_MODE
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

from ..automation import EAGER_AFTER_CHECKS
from ..specs import column_metadata, describe


def quarantine_name(table: str) -> str:
    return f"{table}_quarantine"


def _grain(table: Table) -> str:
    return ", ".join(table.primary_key)


def silver_asset(source: Source, table: Table) -> dg.AssetsDefinition:
    key = asset_key("silver", source.name, table.name)
    qkey = asset_key("silver", source.name, quarantine_name(table.name))
    refs = sorted({r.references[0] for r in table.rules if r.references})
    # A referential rule asks whether the referenced row exists at the source, so it reads the
    # referenced table's bronze: an order of a customer whose e-mail silver rejects still counts.
    deps = [
        asset_key("bronze", source.name, t)
        for t in [table.name] + [r for r in refs if r != table.name]
    ]
    rules_text = "; ".join(f"{r.name} ({r.action})" for r in table.rules) or "none"
    freshness = dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=table.freshness_hours)
    )
    common = dict(
        group_name="silver",
        kinds={"spark", "delta"},
        tags={"layer": "silver", "source": source.name},
        metadata={WRITE_MODE: "overwrite", **column_metadata(table)},
        freshness_policy=freshness,
    )

    standardized = table.trim_strings or table.lower or table.upper
    desc = describe(
        table,
        f"{source.name}.{table.name} cleaned for analysis: one row per {_grain(table)} live at "
        f"the source, types enforced{', strings standardized' if standardized else ''}, rows "
        f"rejected by a drop rule moved to {quarantine_name(table.name)}. Rules: {rules_text}.",
    )
    qdesc = (
        f"Rows of {source.name}.{table.name} that a drop rule rejected: one row per "
        f"{_grain(table)} currently rejected, with `_rule` (the rule) and `_quarantined_at` (when "
        f"first rejected). A row fixed at the source leaves it on the next run."
    )

    @dg.multi_asset(
        name=f"silver__{source.name}__{table.name}",
        outs={
            k.to_python_identifier(): dg.AssetOut(
                key=k,
                description=d,
                automation_condition=EAGER_AFTER_CHECKS,
                is_required=False,
                **common,
            )
            for k, d in ((key, desc), (qkey, qdesc))
        },
        deps=deps,
        can_subset=False,
    )
    def _silver(
        context: dg.AssetExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        step_launcher: dg.ResourceParam[Any],
    ):
        session = spark.session()
        bpath = lake.table("bronze", source.name, table.name)
        if not delta.exists(bpath):
            # Nothing landed for this table yet: a valid state, and nothing to write.
            context.log.info(
                f"bronze/{source.name}/{table.name} does not exist yet: nothing landed for it"
            )
            yield dg.Output(
                None,
                output_name=key.to_python_identifier(),
                metadata={"skipped": "nothing landed yet"},
            )
            yield dg.Output(
                None,
                output_name=qkey.to_python_identifier(),
                metadata={"skipped": "nothing landed yet"},
            )
            return
        # Silver is a function of these bronze versions and the table's rules: when none of
        # them changed, it writes nothing (and nothing downstream runs for it).
        inputs = [bpath] + [lake.table("bronze", source.name, r) for r in refs]
        mark_path = lake.state(source.name, table.name, "silver_inputs")
        mark = fingerprint.of(
            inputs
            + [
                lake.table("silver", source.name, table.name),
                lake.table("silver", source.name, quarantine_name(table.name)),
            ],
            table,
        )
        if fingerprint.stored(session, mark_path) == mark:
            context.log.info(
                f"silver/{source.name}/{table.name}: bronze and rules unchanged since the last run"
            )
            # Outputs of None: the IO manager writes nothing, but the outputs exist, so Dagster
            # does not skip a downstream step of this run that also reads a silver table that
            # did change (customer_lifetime_value after a late order change).
            yield dg.Output(
                None, output_name=key.to_python_identifier(), metadata={"unchanged": True}
            )
            yield dg.Output(
                None, output_name=qkey.to_python_identifier(), metadata={"unchanged": True}
            )
            return
        frame = silver.standardize(silver.enforce_types(delta.read(session, bpath), table), table)
        references = {}
        for r in refs:
            rpath = lake.table("bronze", source.name, r)
            # Nothing landed yet for the referenced table: no row can match it.
            references[r] = delta.read(session, rpath) if delta.exists(rpath) else None
        qpath = lake.table("silver", source.name, quarantine_name(table.name))
        previous = delta.read(session, qpath) if delta.exists(qpath) else None
        started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        now_sql = f"CAST('{started:%Y-%m-%d %H:%M:%S}' AS TIMESTAMP)"
        try:
            kept, bad, results = silver.apply_rules(frame, table, references, previous, now_sql)
        except silver.RuleFailure as e:
            raise dg.Failure(description=str(e)) from None
        meta = results.metadata()
        yield dg.Output(
            kept, output_name=key.to_python_identifier(), metadata={**meta, "rules": rules_text}
        )
        yield dg.Output(
            bad, output_name=qkey.to_python_identifier(), metadata={"rows_in": results.total}
        )
        # Both tables are written once the outputs are handled: only now is this state true.
        fingerprint.store(
            session,
            mark_path,
            fingerprint.of(
                inputs
                + [
                    lake.table("silver", source.name, table.name),
                    lake.table("silver", source.name, quarantine_name(table.name)),
                ],
                table,
            ),
        )

    return _silver


def build(catalog) -> list[dg.AssetsDefinition]:
    return [silver_asset(s, t) for s in catalog.sources for t in s.tables]
