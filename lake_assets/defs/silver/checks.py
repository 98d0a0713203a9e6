"""Checks of silver: keys unique; the share of quarantined rows under the table's threshold."""

from typing import Any

import dagster as dg

from lake_assets.catalog import Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

from ..checks import blocking_check, key_unique_check, no_table_yet
from .assets import quarantine_name


def silver_checks(source: Source, table: Table) -> list[dg.AssetChecksDefinition]:
    key = asset_key("silver", source.name, table.name)

    primary_key_unique = key_unique_check("silver", source, table)

    @blocking_check(
        key,
        "quarantine_rate_below_threshold",
        f"At most {table.max_quarantine_rate:.1%} of the rows are quarantined.",
    )
    def quarantine_rate_below_threshold(
        spark: SparkResource, lake: LakeResource, step_launcher: dg.ResourceParam[Any]
    ) -> dg.AssetCheckResult:
        session = spark.session()
        path = lake.table("silver", source.name, table.name)
        qpath = lake.table("silver", source.name, quarantine_name(table.name))
        if not delta.exists(path):
            return no_table_yet(path)
        kept = delta.read(session, path).count()
        quarantined = delta.read(session, qpath).count() if delta.exists(qpath) else 0
        total = kept + quarantined
        rate = quarantined / total if total else 0.0
        return dg.AssetCheckResult(
            passed=rate <= table.max_quarantine_rate,
            metadata={
                "quarantined": quarantined,
                "rows": total,
                "rate": round(rate, 6),
                "threshold": table.max_quarantine_rate,
            },
        )

    return [primary_key_unique, quarantine_rate_below_threshold]


def build(catalog) -> list[dg.AssetChecksDefinition]:
    return [c for s in catalog.sources for t in s.tables for c in silver_checks(s, t)]
