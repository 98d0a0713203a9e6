"""The asset checks of raw, bronze and silver pass on a right lake and fail on a broken one."""

import pytest

from lake_assets.lib import delta
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import LocalSparkResource

from ._lake import catalog, load, r


def _checks(lake):
    """Every asset check of the lake's definitions, by 'layer/table:name'."""
    out = {}
    for chk in lake.defs().asset_checks:
        for key in chk.check_keys:
            out[f"{key.asset_key.path[0]}/{key.asset_key.path[2]}:{key.name}"] = chk
    return out


def _run(check, lake):
    # No step launcher: the check runs here, as in the local deployment.
    return check(
        spark=LocalSparkResource(), lake=LakeResource(root=str(lake.root)), step_launcher=None
    )


@pytest.fixture
def synced(lake, spark):
    lake.write_catalog(catalog("a"))
    load(lake, "a", 1, [r("I", "2024-01-01 00:00:00", i, f"v{i}") for i in range(1, 6)])
    assert lake.sync().ok
    return lake


def test_checks_pass_on_a_synced_lake(synced):
    checks = _checks(synced)
    for name in (
        "raw/a:no_change_held_twice",
        "bronze/a:primary_key_unique",
        "bronze/a:primary_key_not_null",
        "bronze/a:live_keys_match_raw",
        "silver/a:primary_key_unique",
        "silver/a:quarantine_rate_below_threshold",
    ):
        assert _run(checks[name], synced).passed, name


def test_raw_check_fails_when_a_change_is_held_twice(synced, spark):
    path = str(synced.path("raw", "s", "a"))
    delta.read(spark, path).limit(1).write.format("delta").mode("append").save(path)
    result = _run(_checks(synced)["raw/a:no_change_held_twice"], synced)
    assert not result.passed and result.metadata["changes_held_more_than_once"].value == 1


def test_bronze_checks_fail_on_a_duplicate_a_null_key_and_a_missing_row(synced, spark):
    path = str(synced.path("bronze", "s", "a"))
    bronze = delta.read(spark, path)
    dup = bronze.where("id = 1")
    null_key = bronze.where("id = 2").selectExpr(
        *["CAST(NULL AS BIGINT) AS id" if c == "id" else c for c in bronze.columns]
    )
    dup.unionByName(null_key).write.format("delta").mode("append").save(path)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 5").collect()
    checks = _checks(synced)
    unique = _run(checks["bronze/a:primary_key_unique"], synced)
    assert not unique.passed and unique.metadata["duplicate_keys"].value == 1
    not_null = _run(checks["bronze/a:primary_key_not_null"], synced)
    assert not not_null.passed and not_null.metadata["null_key_rows"].value == 1
    recon = _run(checks["bronze/a:live_keys_match_raw"], synced)
    assert not recon.passed
    assert recon.metadata["keys_missing_from_bronze"].value == 1  # id 5
    assert recon.metadata["keys_not_live_in_raw"].value == 2  # the second id 1, and the null key
