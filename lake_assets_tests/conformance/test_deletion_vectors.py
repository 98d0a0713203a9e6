"""Deletion vectors on the embedded engine (Sail 0.7.2) and delta-rs (deltalake 1.6.6): a table
written with `delta.enableDeletionVectors=true`, changed by Sail's DELETE and MERGE, read back by
delta-rs's QueryBuilder; time travel, compaction and VACUUM by delta-rs (lib/maintenance.py)."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable
from deltalake.exceptions import DeltaProtocolError

from lake_assets.lib import maintenance

from ._delta import rows

ROWS = [(i, None if i % 3 == 0 else f"v{i}") for i in range(10)]


@pytest.fixture
def dv_table(spark, tmp_path):
    path = str(tmp_path / "t")
    df = spark.createDataFrame(ROWS, "id bigint, v string")
    df.write.format("delta").option("delta.enableDeletionVectors", "true").save(path)
    return path


def _rows(path, version=None):
    return [(r["id"], r["v"]) for r in rows(path, "select id, v from t order by id", version)]


def _sail(spark, path):
    return sorted((r.id, r.v) for r in spark.read.format("delta").load(path).collect())


def _dv_files(path) -> list:
    """Deletion-vector files: Sail writes them in two-character folders beside the data."""
    from pathlib import Path

    return [p for p in Path(path).glob("*/*.bin")]


def test_the_table_has_the_reader_feature_and_only_delta_rs_querybuilder_reads_it(dv_table):
    protocol = DeltaTable(dv_table).protocol()
    assert protocol.min_reader_version == 3 and "deletionVectors" in protocol.reader_features
    with pytest.raises(DeltaProtocolError, match="deletionVectors"):
        DeltaTable(dv_table).to_pyarrow_table()
    assert _rows(dv_table) == ROWS


def test_delete_writes_a_deletion_vector_and_keeps_rows_whose_condition_is_null(spark, dv_table):
    files = DeltaTable(dv_table).file_uris()
    spark.sql(f"DELETE FROM delta.`{dv_table}` WHERE v = 'v1' OR v = 'v4'").collect()
    want = [r for r in ROWS if r[1] not in ("v1", "v4")]  # the null v rows stay
    assert _rows(dv_table) == want and _sail(spark, dv_table) == want
    assert DeltaTable(dv_table).file_uris() == files  # no file rewritten
    assert len(_dv_files(dv_table)) == 1


def test_merge_with_deletion_vectors_and_null_conditions(spark, dv_table, view_name):
    view = view_name("s")
    spark.createDataFrame(
        [(2, "new", "U"), (3, "n3", "U"), (5, None, "D"), (20, "ins", "I")],
        "id bigint, v string, op string",
    ).createOrReplaceTempView(view)
    spark.sql(
        f"""MERGE INTO delta.`{dv_table}` t USING {view} s ON t.id = s.id
        WHEN MATCHED AND s.op = 'D' THEN DELETE
        WHEN MATCHED AND t.v <> 'zzz' THEN UPDATE SET t.v = s.v
        WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)"""
    ).collect()
    # 3's v is null: `t.v <> 'zzz'` is null, so 3 is neither updated nor deleted.
    want = sorted([(i, v) for i, v in ROWS if i not in (2, 5)] + [(2, "new"), (20, "ins")])
    assert _rows(dv_table) == want and _sail(spark, dv_table) == want
    assert _dv_files(dv_table)  # the old rows of 2 and 5 are marked, not rewritten


def test_time_travel_compaction_and_vacuum_of_a_deletion_vector_table(spark, dv_table):
    spark.sql(f"DELETE FROM delta.`{dv_table}` WHERE id < 3").collect()
    want = [r for r in ROWS if r[0] >= 3]
    assert spark.read.format("delta").option("versionAsOf", 0).load(dv_table).count() == 10
    assert _rows(dv_table, 0) == ROWS
    got = maintenance.maintain(dv_table, 168)
    # delta-rs's compaction applies the deletion vectors: one file without the deleted rows.
    assert got.files_after == 1
    assert _rows(dv_table) == want and _sail(spark, dv_table) == want
    assert _rows(dv_table, 0) == ROWS  # inside the retention
    got = maintenance.maintain(dv_table, 0, compact=False)
    assert _rows(dv_table) == want and _sail(spark, dv_table) == want
    # Surprise: VACUUM (delta-rs 1.6.6) leaves the deletion-vector files no version uses.
    assert len(_dv_files(dv_table)) == 1
