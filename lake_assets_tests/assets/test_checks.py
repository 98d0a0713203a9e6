"""The asset checks of raw, bronze and silver pass on a right lake and fail on a broken one;
in a sync they look at the sync's own changes, in the full_checks job at whole tables."""

import dagster as dg
import pytest

from lake_assets.lib import delta
from lake_assets.lib.cdc import WATERMARK_APP_ID

from ._lake import catalog, cdc, load, r


class _Evaluations(dict):
    """{'layer/table:name': the check's evaluation}, from one run of checks only."""


def _evaluate(lake, full: bool = False) -> _Evaluations:
    """Every asset check of the lake's definitions, in one run: the full_checks job (its tag
    makes them check whole tables), or a run of the same checks without the tag, as in a sync."""
    defs = lake.defs()
    if full:
        job = defs.resolve_job_def("full_checks")
    else:
        only = dg.define_asset_job("checks_only", selection=dg.AssetSelection.all_asset_checks())
        job = dg.Definitions.merge(defs, dg.Definitions(jobs=[only])).resolve_job_def("checks_only")
    result = job.execute_in_process(instance=lake.instance, raise_on_error=False)
    out = _Evaluations()
    for ev in result.get_asset_check_evaluations():
        out[f"{ev.asset_key.path[0]}/{ev.asset_key.path[2]}:{ev.check_name}"] = ev
    return out


def _run(name: str, lake, full: bool = False):
    return _evaluate(lake, full)[name]


@pytest.fixture
def synced(lake, spark):
    lake.write_catalog(catalog("a"))
    load(lake, "a", 1, [r("I", "2024-01-01 00:00:00", i, f"v{i}") for i in range(1, 6)])
    assert lake.sync().ok
    return lake


def test_checks_pass_on_a_synced_lake(synced):
    checks = _evaluate(synced)
    for name in (
        "raw/a:no_change_held_twice",
        "bronze/a:primary_key_unique",
        "bronze/a:primary_key_not_null",
        "bronze/a:live_keys_match_raw",
        "silver/a:primary_key_unique",
        "silver/a:quarantine_rate_below_threshold",
    ):
        assert checks[name].passed, name


def test_raw_check_fails_when_a_change_is_held_twice(synced, spark):
    path = str(synced.path("raw", "s", "a"))
    delta.read(spark, path).limit(1).write.format("delta").mode("append").save(path)
    result = _run("raw/a:no_change_held_twice", synced)
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
    checks = _evaluate(synced)
    unique = checks["bronze/a:primary_key_unique"]
    assert not unique.passed and unique.metadata["duplicate_keys"].value == 1
    not_null = checks["bronze/a:primary_key_not_null"]
    assert not not_null.passed and not_null.metadata["null_key_rows"].value == 1
    recon = checks["bronze/a:live_keys_match_raw"]
    assert not recon.passed
    assert recon.metadata["keys_missing_from_bronze"].value == 1  # id 5
    assert recon.metadata["keys_not_live_in_raw"].value == 2  # the second id 1, and the null key


@pytest.fixture
def two_syncs(synced):
    """A second sync, whose batch touches keys 1 (an update) and 6 (an insert) only."""
    cdc(
        synced,
        "a",
        "2024-01-02 10:00:00.000",
        [r("U", "2024-01-02 10:00:00", 1, "new"), r("I", "2024-01-02 10:00:01", 6, "v6")],
    )
    assert synced.sync().ok
    return synced


def test_a_syncs_bronze_checks_look_at_its_batch_and_the_full_job_at_the_table(two_syncs, spark):
    path = str(two_syncs.path("bronze", "s", "a"))
    bronze = delta.read(spark, path)
    bronze.where("id = 1").write.format("delta").mode("append").save(path)  # a key of the batch
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 5").collect()  # a key of no batch
    batch = _evaluate(two_syncs)
    assert batch["bronze/a:primary_key_unique"].metadata["scope"].value == "batch"
    assert not batch["bronze/a:primary_key_unique"].passed
    recon = batch["bronze/a:live_keys_match_raw"]
    assert recon.metadata["scope"].value == "batch" and not recon.passed
    assert recon.metadata["keys_not_live_in_raw"].value == 1  # the second id 1
    assert recon.metadata["keys_missing_from_bronze"].value == 0  # id 5 is not the batch's
    full = _evaluate(two_syncs, full=True)
    recon = full["bronze/a:live_keys_match_raw"]
    assert recon.metadata["scope"].value == "table"
    assert recon.metadata["keys_not_live_in_raw"].value == 1
    assert recon.metadata["keys_missing_from_bronze"].value == 1  # id 5
    assert full["bronze/a:primary_key_unique"].metadata["duplicate_keys"].value == 1


def test_a_syncs_raw_check_looks_at_the_partitions_bronze_has_not_applied(two_syncs, spark):
    raw = str(two_syncs.path("raw", "s", "a"))
    day1 = delta.read(spark, raw).where("_file_date = DATE'2024-01-01'").limit(1)
    day1.write.format("delta").mode("append").save(raw)  # a change of day 1 held twice
    pending = _evaluate(two_syncs)["raw/a:no_change_held_twice"]
    assert not pending.passed and pending.metadata["scope"].value == "partitions 2024-01-01"
    # Once bronze holds raw's version (as if it had applied it), day 1 is no sync's to check.
    bronze = str(two_syncs.path("bronze", "s", "a"))
    delta.record_transaction(bronze, WATERMARK_APP_ID, delta.version(raw))
    assert _evaluate(two_syncs)["raw/a:no_change_held_twice"].passed
    full = _evaluate(two_syncs, full=True)["raw/a:no_change_held_twice"]
    assert not full.passed and full.metadata["changes_held_more_than_once"].value == 1


def test_a_check_that_passed_on_the_same_table_versions_is_not_read_again(synced, monkeypatch):
    """A check is a function of the tables it reads (and its scope): once it passed on their
    versions (noted by the sync's own evaluation), it passes again without reading them; a new
    version of any of them makes it read them again."""
    names = (
        "raw/a:no_change_held_twice",
        "bronze/a:primary_key_unique",
        "bronze/a:primary_key_not_null",
        "bronze/a:live_keys_match_raw",
    )
    raw, bronze = str(synced.path("raw", "s", "a")), str(synced.path("bronze", "s", "a"))
    read, original = [], delta.read

    def counted(spark, path, *args, **kwargs):
        read.append(str(path))
        return original(spark, path, *args, **kwargs)

    monkeypatch.setattr(delta, "read", counted)
    # After the sync, raw's check has another scope (no partition left for bronze to apply):
    # this evaluation notes its pass; the next one reads nothing.
    assert all(c.passed for c in _evaluate(synced).values())
    read.clear()
    held = _evaluate(synced)
    for name in names:
        assert held[name].passed, name
        assert "unchanged" in held[name].metadata, name
    assert not {raw, bronze} & set(read), read
    # A commit to raw (no rows: only its version changes) makes the checks that read raw run.
    delta.record_transaction(raw, "test", 1)
    again = _evaluate(synced)
    assert raw in read
    for name in ("raw/a:no_change_held_twice", "bronze/a:live_keys_match_raw"):
        assert again[name].passed and "unchanged" not in again[name].metadata, name
    assert "unchanged" in again["bronze/a:primary_key_unique"].metadata
