"""Application transactions (Delta's `txn` action): which writer records one, and whether it
survives the other writer's commits. Bronze keeps its watermark that way (lib/cdc.py)."""

from __future__ import annotations

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction

from lake_assets.lib import cdc, delta

from ._delta import rows, version

APP = "conformance.app"


def _table(spark, p):
    spark.createDataFrame([(1, "a")], "k bigint, v string").write.format("delta").save(p)


def _txn(p, app=APP):
    return DeltaTable(p).transaction_version(app)


def test_the_engine_ignores_the_idempotent_write_options(spark, tmp_path):
    """Surprise: Sail takes `txnAppId`/`txnVersion` and writes as if they were not there: no
    txn action, and a second write with the same version is not skipped."""
    p = str(tmp_path / "t")
    _table(spark, p)
    for _ in range(2):
        writer = spark.createDataFrame([(2, "b")], "k bigint, v string").write.format("delta")
        writer.mode("append").option("txnAppId", APP).option("txnVersion", "5").save(p)
    assert _txn(p) is None
    assert version(p) == 2 and len(rows(p)) == 3


def test_the_engine_ignores_the_idempotent_write_session_confs_on_merge(spark, tmp_path, view_name):
    p = str(tmp_path / "t")
    _table(spark, p)
    view = view_name()
    spark.createDataFrame([(3, "c")], "k bigint, v string").createOrReplaceTempView(view)
    spark.conf.set(cdc.TXN_APP_ID_CONF, APP)
    spark.conf.set(cdc.TXN_VERSION_CONF, "7")
    try:
        spark.sql(
            f"MERGE INTO delta.`{p}` t USING {view} s ON t.k = s.k WHEN NOT MATCHED THEN INSERT *"
        ).collect()
    finally:
        spark.conf.unset(cdc.TXN_APP_ID_CONF)
        spark.conf.unset(cdc.TXN_VERSION_CONF)
    assert version(p) == 1 and len(rows(p)) == 2
    assert _txn(p) is None


def test_delta_rs_records_one_in_a_merge_and_in_a_commit_of_no_data(spark, tmp_path):
    p = str(tmp_path / "t")
    _table(spark, p)
    new = pa.table({"k": pa.array([4], pa.int64()), "v": ["d"]})

    def merge(txn_version: int) -> None:
        props = CommitProperties(app_transactions=[Transaction(APP, txn_version)])
        DeltaTable(p).merge(
            new, "t.k = s.k", source_alias="s", target_alias="t", commit_properties=props
        ).when_not_matched_insert_all().execute()

    merge(42)
    assert (version(p), _txn(p)) == (1, 42)
    # Surprise: a MERGE that changes nothing makes no commit, so its txn is not recorded.
    merge(43)
    assert (version(p), _txn(p)) == (1, 42)
    delta.record_transaction(p, APP, 43)
    assert (version(p), _txn(p), len(rows(p))) == (2, 43, 2)
    assert _txn(p, "another.app") is None


def test_it_survives_the_engines_commits_and_checkpoints(spark, tmp_path):
    p = str(tmp_path / "t")
    _table(spark, p)
    delta.record_transaction(p, APP, 7)
    for i in range(21):  # the engine writes a checkpoint every 10 commits
        row = spark.createDataFrame([(10 + i, "z")], "k bigint, v string")
        row.write.format("delta").mode("append").save(p)
    assert sorted(f.name for f in (tmp_path / "t" / "_delta_log").glob("*.checkpoint.parquet")) == [
        "00000000000000000010.checkpoint.parquet",
        "00000000000000000020.checkpoint.parquet",
    ]
    assert _txn(p) == 7
    # A restore (of the rows) keeps it too: the txn is table state, not data.
    delta.restore(p, 0)
    assert (_txn(p), len(rows(p))) == (7, 1)
