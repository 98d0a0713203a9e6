"""Table maintenance: the `maintenance` job (daily by `maintenance_schedule`, or launched on
demand) compacts raw's daily files and bronze's after many MERGEs, VACUUMs every lake table with
its source's `vacuum_retention_hours` (default 7 days) and writes a checkpoint (lib/maintenance.py).

Compaction rewrites files under writers that see it: raw's under raw's write lock (the lock its
engine writes take), bronze's and its tombstones' where delta-rs MERGEs them (a local lake on
the embedded engine: delta-rs detects the conflict and bronze's apply is retried). Tables the
engine overwrites without such a check (silver, gold, history) are VACUUMed and checkpointed,
not compacted.
"""

import dagster as dg
import pyarrow.fs as pafs

from lake_assets.catalog import Catalog, Source
from lake_assets.lib import cdc, delta, storage
from lake_assets.lib import maintenance as lib
from lake_assets.resources.io_manager import writers_one_at_a_time
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

LAYERS = ("raw", "bronze", "silver", "gold")
STATE_TABLES = ("tombstones", "truncates", "empty_files")


def lake_tables(lake: LakeResource, source: Source) -> list[tuple[str, str, str]]:
    """(layer or '_state', table, path) of every Delta table the lake holds for the source."""
    out = []
    for layer in LAYERS:
        for name in _folders(f"{lake.root.rstrip('/')}/{layer}/{source.name}"):
            out.append((layer, name, lake.table(layer, source.name, name)))
    for table in source.tables:
        for name in STATE_TABLES:
            out.append(
                ("_state", f"{table.name}/{name}", lake.state(source.name, table.name, name))
            )
    return [t for t in out if delta.exists(t[2])]


def _folders(uri: str) -> list[str]:
    fs, base = storage.filesystem(uri)
    infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def maintain_source(
    lake: LakeResource, source: Source, embedded: bool, log=None
) -> list[lib.Maintained]:
    done = []
    tables = {t.name for t in source.tables}
    for layer, name, path in lake_tables(lake, source):
        exclusive = None
        if layer == "raw":
            exclusive = writers_one_at_a_time(lake.state(source.name, name, "raw.write-lock"))
        merged_by_delta_rs = layer == "bronze" and name in tables
        merged_by_delta_rs |= layer == "_state" and name.endswith("/tombstones")
        compact = layer == "raw" or (merged_by_delta_rs and cdc.merges_in_process(embedded, path))
        got = lib.maintain(
            path, source.vacuum_retention_hours, compact=compact, exclusive=exclusive
        )
        if log:
            log.info(
                f"{layer}/{source.name}/{name}: {got.files_before} -> {got.files_after} files"
                f"{' (compacted)' if compact else ''}, {got.files_removed} removed by VACUUM "
                f"(retention {source.vacuum_retention_hours} h), checkpoint at {got.version}"
            )
        done.append(got)
    return done


def definitions(ctx) -> dg.Definitions:
    catalog: Catalog = ctx.catalog

    @dg.op(description="Compact, VACUUM and checkpoint every table of the lake.")
    def maintain_lake(
        context: dg.OpExecutionContext, lake: LakeResource, spark: SparkResource
    ) -> dg.Output:
        done = [
            m
            for source in catalog.sources
            for m in maintain_source(lake, source, spark.embedded(), context.log)
        ]
        return dg.Output(
            None,
            metadata={
                "tables": len(done),
                "files_before": sum(m.files_before for m in done),
                "files_after": sum(m.files_after for m in done),
                "files_removed_by_vacuum": sum(m.files_removed for m in done),
            },
        )

    @dg.job(description="Table maintenance: compaction, VACUUM, checkpoints (defs/maintenance.py).")
    def maintenance():
        maintain_lake()

    schedule = dg.ScheduleDefinition(
        name="maintenance_schedule",
        job=maintenance,
        cron_schedule="0 2 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    return dg.Definitions(jobs=[maintenance], schedules=[schedule])
