"""Check builders every layer shares: a table not written yet, a key that must be unique, a
check that passed on the same table versions before."""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from lake_assets.catalog import Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta, storage
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource


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


def key_unique_check(layer: str, source: Source, table: Table) -> dg.AssetChecksDefinition:
    keys = table.primary_key

    @blocking_check(
        asset_key(layer, source.name, table.name),
        "primary_key_unique",
        f"No two rows share ({', '.join(keys)}).",
    )
    def primary_key_unique(spark: SparkResource, lake: LakeResource) -> dg.AssetCheckResult:
        path = lake.table(layer, source.name, table.name)
        if not delta.exists(path):
            return no_table_yet(path)

        def run() -> dg.AssetCheckResult:
            df = delta.read(spark.session(), path)
            dups = df.groupBy(*keys).count().where("count > 1").count()
            return dg.AssetCheckResult(passed=dups == 0, metadata={"duplicate_keys": dups})

        return passed_before_or(
            lake, source.name, table.name, f"{layer}.primary_key_unique", [path], keys, run
        )

    return primary_key_unique
