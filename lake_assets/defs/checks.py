"""Check builders every layer shares: a table not written yet, a key that must be unique, a
check that passed on the same table versions before; and the run tag that makes the checks
that look at a sync's own changes look at whole tables."""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
from pyspark.sql import DataFrame

from lake_assets.catalog import Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta, storage
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

# A run tagged so (the full_checks job, its schedule, or a run launched with the tag) runs every
# check over whole tables; otherwise the checks of raw and bronze look at the changes of the
# sync they belong to (what bronze applies next, or applied last), whose cost is the batch's.
FULL_CHECKS_TAG = "lake/checks"
FULL = "full"


def is_full(context: dg.AssetCheckExecutionContext) -> bool:
    return context.run.tags.get(FULL_CHECKS_TAG) == FULL


def scope_metadata(scope: str) -> dict:
    return {"scope": scope}


def blocking_check(key: dg.AssetKey, name: str, description: str, **more):
    """A blocking check of `key`: what reads the table runs only once it passed."""
    return dg.asset_check(asset=key, name=name, blocking=True, description=description, **more)


def no_table_yet(path: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"note": f"no table at {path} yet"})


def _tables_at(paths: list[str]) -> dict[str, list]:
    """Each table's identity as a check read it: its id (new when a table is created again
    under the same path) and its latest version, from the log delta-rs holds."""
    out = {}
    for p in paths:
        table = delta.delta_table(p)
        out[p] = [table.metadata().id, table.version()]
    return out


def passed_before_or(
    lake: LakeResource,
    source: str,
    table: str,
    check: str,
    paths: list[str],
    settings: object,
    run: Callable[[], dg.AssetCheckResult],
) -> dg.AssetCheckResult:
    """`run()`, unless this check passed on exactly these tables (`paths`, each by its id and
    version) with these settings and this code before: a check is a function of what it
    reads, so it would pass again (on S3 a check of raw reads every data file of the table,
    which is most of what a sync with nothing new costs). The note of a pass is a small file
    beside the table's state; a failure is never noted, so a failed check runs again."""
    code = hashlib.sha256(Path(run.__code__.co_filename).read_bytes()).hexdigest()
    doc = {"tables": _tables_at(paths), "settings": repr(settings), "code": code}
    mark = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    fs, note = storage.filesystem(lake.state(source, table, f"checks/{check}.json"))
    try:
        with fs.open_input_stream(note) as f:
            held = json.loads(f.read())
    except (OSError, ValueError):
        held = None
    if isinstance(held, dict) and held.get("mark") == mark:
        return dg.AssetCheckResult(
            passed=True,
            metadata={
                **held.get("metadata", {}),
                "unchanged": "passed before on these table versions; not read again",
            },
        )
    result = run()
    if result.passed:
        values = {k: getattr(v, "value", v) for k, v in (result.metadata or {}).items()}
        metadata = {k: v for k, v in values.items() if _plain(v)}
        fs.create_dir(note.rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(note) as out:
            out.write(json.dumps({"mark": mark, "metadata": metadata}).encode())
    return result


def _plain(value) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


# (context, session, the table) -> (the rows to check, what they are: "table", "batch", ...)
Scope = Callable[[dg.AssetCheckExecutionContext, object, DataFrame], tuple[DataFrame, str]]


def key_unique_check(
    layer: str, source: Source, table: Table, scope: Scope | None = None
) -> dg.AssetChecksDefinition:
    """No two rows share the key; over the rows `scope` picks (all of them without one)."""
    keys = table.primary_key

    @blocking_check(
        asset_key(layer, source.name, table.name),
        "primary_key_unique",
        f"No two rows share ({', '.join(keys)}).",
    )
    def primary_key_unique(
        context: dg.AssetCheckExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        step_launcher: dg.ResourceParam[Any],
    ) -> dg.AssetCheckResult:
        path = lake.table(layer, source.name, table.name)
        if not delta.exists(path):
            return no_table_yet(path)

        def run() -> dg.AssetCheckResult:
            rows, what = delta.read(spark.session(), path), "table"
            if scope is not None:
                rows, what = scope(context, spark.session(), rows)
            dups = rows.groupBy(*keys).count().where("count > 1").count()
            return dg.AssetCheckResult(
                passed=dups == 0, metadata={"duplicate_keys": dups, **scope_metadata(what)}
            )

        # A scoped pass says nothing of the whole table: the scope is one of the settings.
        whole = scope is None or is_full(context)
        return passed_before_or(
            lake, source.name, table.name, f"{layer}.primary_key_unique", [path],
            (keys, whole), run,
        )  # fmt: skip

    return primary_key_unique
