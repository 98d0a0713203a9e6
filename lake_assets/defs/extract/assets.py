"""extract/<source>: one extraction from a PostgreSQL source into the landing zone.

In `logical` mode, every change committed since the slot's confirmed position, landed and then
confirmed; in `snapshot` mode, every table as of one consistent snapshot. The materialization
shows the changes extracted and the slot's lag; the check `slot_lag_within_limit` (WARN) fails
when the slot retains more WAL than the catalog's `max_slot_lag_mb`.
"""

import time

import dagster as dg

from lake_assets.catalog import Source
from lake_assets.keys import extract_key
from lake_assets.lib import postgres
from lake_assets.resources.lake import LandingResource

SLOT_LAG_CHECK = "slot_lag_within_limit"
EXTRACTED_FORMATS = ("postgres",)


def extracted_sources(catalog) -> list[Source]:
    return [s for s in catalog.sources if s.format in EXTRACTED_FORMATS]


def extract_asset(source: Source) -> dg.AssetsDefinition:
    key = extract_key(source.name)
    checks = []
    if source.mode == "logical":
        checks.append(
            dg.AssetCheckSpec(
                SLOT_LAG_CHECK,
                asset=key,
                description=f"The slot retains at most max_slot_lag_mb ({source.max_slot_lag_mb:g}"
                " MB) of WAL at the source: past it, the server's disk fills for the lake.",
            )
        )

    @dg.asset(
        key=key,
        group_name="extract",
        kinds={"postgres", "parquet"},
        tags={"layer": "extract", "source": source.name},
        check_specs=checks,
        description=(
            f"What {source.name} (PostgreSQL, mode {source.mode}) has new, landed as files under "
            f"the landing zone's {source.name}/ before raw reads them: one materialization per "
            "extraction, with the changes it landed."
        ),
    )
    def _extract(context: dg.AssetExecutionContext, landing: LandingResource):
        started = time.monotonic()
        try:
            out = postgres.extract(source, landing.root, context.log.info)
        except postgres.PostgresError as e:
            raise dg.Failure(description=str(e)) from None
        metadata = {
            "changes": out.changes,
            "loaded_rows": out.loaded_rows,
            "files": out.files,
            "seconds": round(time.monotonic() - started, 2),
            **{f"changes/{t}": n for t, n in sorted(out.per_table.items())},
        }
        check_results = []
        if source.mode == "logical":
            limit = int(source.max_slot_lag_mb * 1024 * 1024)
            metadata.update(
                slot=postgres.slot_name(source),
                slot_lag_bytes=out.lag_bytes,
                slot_retained_wal_bytes=out.retained_bytes,
                confirmed_lsn=out.confirmed_lsn or "-",
            )
            check_results.append(
                dg.AssetCheckResult(
                    check_name=SLOT_LAG_CHECK,
                    passed=out.retained_bytes <= limit,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"retained_wal_bytes": out.retained_bytes, "limit_bytes": limit},
                )
            )
        return dg.MaterializeResult(metadata=metadata, check_results=check_results)

    return _extract


def build(catalog) -> list[dg.AssetsDefinition]:
    return [extract_asset(s) for s in extracted_sources(catalog)]
