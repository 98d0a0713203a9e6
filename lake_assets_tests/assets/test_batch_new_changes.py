"""Bronze's batch is the changes new since its last apply, not the raw partitions they sit in.

Raw rewrites a day's partition whole when a file is added to it, so a file landed on the
full-load day comes back with every change of the full load; the batch leaves out the changes
of the files raw held at the version bronze consumed. Late files and tombstones stay exact.
"""

from __future__ import annotations

import pytest

from lake_assets.lib import plan
from lake_assets.resources.spark import LocalSparkResource

from ._lake import SRC, assert_ok, bronze, catalog, cdc, load, r


def _bronze_changes(lake) -> int:
    """The `changes` of bronze's latest materialization: the batch it applied."""
    import dagster as dg

    ev = lake.instance.get_latest_materialization_event(dg.AssetKey(["bronze", SRC, "a"]))
    return ev.asset_materialization.metadata["changes"].value


@pytest.fixture(params=["arrow_and_delta_rs", "engine"])
def full_load(request, lake, monkeypatch):
    if request.param == "engine":
        monkeypatch.setattr(LocalSparkResource, "embedded", lambda self: False)
    lake.write_catalog(catalog("a"))
    load(lake, "a", 1, [r("I", "2024-01-01 00:00:00", i, f"v{i}") for i in range(1, 41)])
    cdc(lake, "a", "2024-01-01 10:00:00.000", [r("D", "2024-01-01 10:00:00", 7)])
    assert_ok(lake.sync())
    assert _bronze_changes(lake) == 41
    return lake


def test_a_file_on_the_full_load_day_is_a_batch_of_its_own_changes(full_load):
    lake = full_load
    cdc(
        lake,
        "a",
        "2024-01-01 12:00:00.000",
        [r("U", "2024-01-01 12:00:00", 1, "new"), r("I", "2024-01-01 12:00:01", 41, "v41")],
    )
    mark = plan.bronze_consumed(str(lake.root), SRC, "a")
    assert_ok(lake.sync())
    batch = plan.batch_since(plan.table_path(str(lake.root), "raw", SRC, "a"), mark)
    assert batch.days == ("2024-01-01",)
    assert set(batch.applied) == {"LOAD00000001.parquet", "20240101-100000000.parquet"}
    assert _bronze_changes(lake) == 2
    rows = {row["id"]: row["v"] for row in bronze(lake, "a")}
    assert rows[1] == "new" and rows[41] == "v41" and 7 not in rows and len(rows) == 40


def test_late_files_on_the_full_load_day_stay_exact(full_load):
    """A late file older than what bronze holds neither overwrites a newer row nor brings back
    a key deleted after it; its new key and a change newer than the row it meets apply."""
    lake = full_load
    cdc(lake, "a", "2024-01-02 09:00:00.000", [r("U", "2024-01-02 09:00:00", 2, "newer")])
    assert_ok(lake.sync())
    assert _bronze_changes(lake) == 1
    cdc(
        lake,
        "a",
        "2024-01-01 08:00:00.000",
        [
            r("U", "2024-01-01 08:00:00", 2, "older"),  # older than 2's row: loses
            r("U", "2024-01-01 08:00:01", 7, "before-delete"),  # 7 deleted at 10:00: stays gone
            r("U", "2024-01-01 08:00:02", 3, "late"),  # newer than the full load: wins
            r("I", "2024-01-01 08:00:03", 50, "v50"),
        ],
    )
    assert_ok(lake.sync())
    assert _bronze_changes(lake) == 4
    rows = {row["id"]: row["v"] for row in bronze(lake, "a")}
    assert rows[2] == "newer" and rows[3] == "late" and rows[50] == "v50" and 7 not in rows


def test_a_vacuumed_raw_version_applies_the_partitions_whole(full_load):
    """The files of the version bronze consumed are gone: the batch is the changed partitions
    whole (re-applying is a no-op), and bronze is still right."""
    from deltalake import DeltaTable

    lake = full_load
    cdc(lake, "a", "2024-01-01 12:00:00.000", [r("U", "2024-01-01 12:00:00", 1, "new")])
    raw = plan.table_path(str(lake.root), "raw", SRC, "a")
    # Raw's partition rewritten without bronze: the version bronze consumed loses its files.
    bronze_mark = plan.bronze_consumed(str(lake.root), SRC, "a")
    from lake_assets.lib.engine import local_spark
    from lake_assets_tests.conftest import read_delta

    spark = local_spark()
    spark.read.format("delta").load(raw).write.format("delta").mode("overwrite").option(
        "replaceWhere", "true"
    ).save(raw)
    DeltaTable(raw).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert plan.held_names(raw, bronze_mark, ["2024-01-01"]) == ()
    assert_ok(lake.sync())
    assert _bronze_changes(lake) == 42  # the 41 of before and the new one
    rows = {row["id"]: row["v"] for row in bronze(lake, "a")}
    assert rows[1] == "new" and 7 not in rows and len(rows) == 39
    assert len(read_delta(raw)) == 42
