"""Each layer through `dg.materialize` of its own assets (and their checks), with the lake's
resources, as a user materializes them from code: raw at a partition, then bronze, then silver."""

from __future__ import annotations

import dagster as dg

from ._lake import SRC, bronze, catalog, cdc, load, r


def _materialize(defs, key: dg.AssetKey, instance, partition_key: str | None = None):
    asset = defs.get_assets_def(key)
    checks = [c for c in defs.asset_checks if any(k.asset_key in asset.keys for k in c.check_keys)]
    result = dg.materialize(
        [asset, *checks], resources=defs.resources, instance=instance, partition_key=partition_key
    )
    assert result.success
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_raw_bronze_and_silver_materialize_one_by_one(lake, dagster_instance):
    lake.write_catalog(catalog("t"))
    load(
        lake, "t", 1, [r("I", "2024-01-01 00:00:00", 1, "a"), r("I", "2024-01-01 00:00:00", 2, "b")]
    )
    cdc(lake, "t", "2024-01-02 09:00:00", [r("U", "2024-01-02 09:00:00", 1, "a2")])
    defs = lake.defs()
    raw_key, bronze_key, silver_key = (
        dg.AssetKey([layer, SRC, "t"]) for layer in ("raw", "bronze", "silver")
    )

    assert _materialize(defs, raw_key, dagster_instance, "2024-01-01") == {
        "no_change_held_twice": True
    }
    assert [x["_op"] for x in lake.rows("raw", SRC, "t", "_seq")] == [
        "I",
        "I",
    ]  # only that day's file
    assert _materialize(defs, raw_key, dagster_instance, "2024-01-02") == {
        "no_change_held_twice": True
    }
    assert len(lake.rows("raw", SRC, "t")) == 3

    assert _materialize(defs, bronze_key, dagster_instance) == {
        "primary_key_unique": True,
        "primary_key_not_null": True,
        "live_keys_match_raw": True,
    }
    assert bronze(lake, "t") == [{"id": 1, "v": "a2"}, {"id": 2, "v": "b"}]

    # silver is a multi-asset (the table and its quarantine): its node materializes both
    assert _materialize(defs, silver_key, dagster_instance) == {
        "primary_key_unique": True,
        "quarantine_rate_below_threshold": True,
    }
    assert [x["v"] for x in lake.rows("silver", SRC, "t", "id")] == ["a2", "b"]
