"""MERGE INTO delta.`path` written as SQL: the CDC upsert the lake applies to silver."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.errors import AnalysisException

from ._delta import history, rows, version

SCHEMA = "k1 string, k2 int, v string, _seq string, _op string"
TARGET = [
    ("a", 1, "x1", "0001", "I"),
    ("a", 2, "x2", "0005", "I"),
    ("b", 1, "x3", "0003", "I"),
    ("c", 1, "x4", "0002", "I"),
]
SOURCE = [
    ("a", 1, "new1", "0002", "U"),  # newer update of a row -> updated
    ("a", 2, "new2", "0004", "U"),  # older update -> ignored
    ("b", 1, None, "0009", "D"),  # newer delete -> deleted
    ("c", 1, None, "0001", "D"),  # older delete -> ignored
    ("d", 1, "ins", "0001", "I"),  # new key -> inserted
    ("e", 1, None, "0001", "D"),  # delete of an unknown key -> nothing
    ("b", 2, "ins2", "10", "U"),  # update of an unknown key -> inserted
]
EXPECTED = [
    {"k1": "a", "k2": 1, "v": "new1", "_seq": "0002", "_op": "U"},
    {"k1": "a", "k2": 2, "v": "x2", "_seq": "0005", "_op": "I"},
    {"k1": "b", "k2": 2, "v": "ins2", "_seq": "10", "_op": "U"},
    {"k1": "c", "k2": 1, "v": "x4", "_seq": "0002", "_op": "I"},
    {"k1": "d", "k2": 1, "v": "ins", "_seq": "0001", "_op": "I"},
]


def cdc_merge(path: str, source: str) -> str:
    return f"""
        MERGE INTO delta.`{path}` t
        USING {source} s
        ON t.k1 = s.k1 AND t.k2 = s.k2
        WHEN MATCHED AND s._seq > t._seq AND s._op = 'D' THEN DELETE
        WHEN MATCHED AND s._seq > t._seq THEN UPDATE SET v = s.v, _seq = s._seq, _op = s._op
        WHEN NOT MATCHED AND s._op <> 'D' THEN INSERT (k1, k2, v, _seq, _op)
            VALUES (s.k1, s.k2, s.v, s._seq, s._op)
    """


def _target(spark, path):
    spark.createDataFrame(TARGET, SCHEMA).write.format("delta").save(path)
    assert version(path) == 0


def test_cdc_merge_from_dataframe_view(spark, tmp_path, view_name):
    p = str(tmp_path / "t")
    _target(spark, p)
    src = view_name("src")
    spark.createDataFrame(SOURCE, SCHEMA).createOrReplaceTempView(src)
    result = spark.sql(cdc_merge(p, src))
    # spark.sql runs the MERGE at once (before any action on its result) ...
    assert version(p) == 1  # ... as ONE commit
    assert rows(p, "select * from t order by k1, k2") == EXPECTED
    # surprise: the result is one column `count` = rows WRITTEN (2 copied + 1 updated +
    # 2 inserted), not Delta's num_affected_rows/num_updated_rows/... columns
    assert result.columns == ["count"]
    assert [tuple(r) for r in result.collect()] == [(5,)]
    assert version(p) == 1  # collecting the result does not run it again
    last = history(p)[0]
    assert last["operation"] == "MERGE"
    m = last["operationMetrics"]
    assert (
        m["numSourceRows"],
        m["numTargetRowsInserted"],
        m["numTargetRowsUpdated"],
        m["numTargetRowsDeleted"],
        m["numTargetRowsCopied"],
    ) == (7, 2, 1, 1, 2)
    # the engine reads back the same rows
    got = spark.read.format("delta").load(p).orderBy("k1", "k2").collect()
    assert [r.asDict() for r in got] == EXPECTED


def test_cdc_merge_from_parquet_view(spark, tmp_path, view_name):
    p = str(tmp_path / "t")
    _target(spark, p)
    pq = str(tmp_path / "src_parquet")
    spark.createDataFrame(SOURCE, SCHEMA).write.mode("overwrite").parquet(pq)
    src = view_name("src")
    spark.read.parquet(pq).createOrReplaceTempView(src)
    spark.sql(cdc_merge(p, src))
    assert version(p) == 1
    assert rows(p, "select * from t order by k1, k2") == EXPECTED


def test_temp_view_is_a_plan_not_a_snapshot(spark, tmp_path, view_name):
    """A view over a parquet read sees the files as they are when it is USED."""
    pq = str(tmp_path / "src_parquet")
    spark.createDataFrame([(1,)], "k bigint").write.parquet(pq)
    src = view_name("src")
    spark.read.parquet(pq).createOrReplaceTempView(src)
    spark.createDataFrame([(2,)], "k bigint").write.mode("overwrite").parquet(pq)
    assert [r.k for r in spark.sql(f"select k from {src}").collect()] == [2]


def test_seq_is_compared_as_string(spark, tmp_path, view_name):
    """`_seq` is a string: '10' < '9'. Sequence numbers must be fixed-width (lpad)."""
    p = str(tmp_path / "t")
    spark.createDataFrame([("a", "9"), ("b", "09")], "k string, _seq string").write.format(
        "delta"
    ).save(p)
    src = view_name("src")
    spark.createDataFrame(
        [("a", "10"), ("b", "10")], "k string, _seq string"
    ).createOrReplaceTempView(src)
    spark.sql(
        f"MERGE INTO delta.`{p}` t USING {src} s ON t.k = s.k "
        "WHEN MATCHED AND s._seq > t._seq THEN UPDATE SET _seq = s._seq"
    )
    assert rows(p, "select * from t order by k") == [
        {"k": "a", "_seq": "9"},
        {"k": "b", "_seq": "10"},
    ]
    assert version(p) == 1


def test_merge_that_changes_nothing_makes_no_commit(spark, tmp_path, view_name):
    p = str(tmp_path / "t")
    _target(spark, p)
    src = view_name("src")
    spark.createDataFrame([("a", 1, "old", "0000", "U")], SCHEMA).createOrReplaceTempView(src)
    assert [tuple(r) for r in spark.sql(cdc_merge(p, src)).collect()] == [(0,)]
    assert version(p) == 0
    empty = view_name("empty")
    spark.createDataFrame([], SCHEMA).createOrReplaceTempView(empty)
    spark.sql(cdc_merge(p, empty))
    assert version(p) == 0


def test_duplicate_source_rows(spark, tmp_path, view_name):
    """Two source rows for one target row: UPDATE fails (MERGE_CARDINALITY_VIOLATION),
    an unconditional DELETE does not, and two new rows with one key are BOTH inserted.
    So the source must be deduplicated (row_number over key order by _seq desc) first."""
    p = str(tmp_path / "t")
    spark.createDataFrame([(1, "a"), (2, "b")], "k bigint, v string").write.format("delta").save(p)
    dup = view_name("dup")
    spark.createDataFrame([(1, "x"), (1, "y")], "k bigint, v string").createOrReplaceTempView(dup)
    with pytest.raises(AnalysisException, match="MERGE_CARDINALITY_VIOLATION"):
        spark.sql(
            f"MERGE INTO delta.`{p}` t USING {dup} s ON t.k = s.k "
            "WHEN MATCHED THEN UPDATE SET v = s.v"
        )
    assert version(p) == 0
    assert rows(p, "select * from t order by k") == [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}]

    spark.sql(f"MERGE INTO delta.`{p}` t USING {dup} s ON t.k = s.k WHEN MATCHED THEN DELETE")
    assert version(p) == 1
    assert rows(p, "select * from t order by k") == [{"k": 2, "v": "b"}]

    new = view_name("new")
    spark.createDataFrame([(3, "x"), (3, "y")], "k bigint, v string").createOrReplaceTempView(new)
    spark.sql(
        f"MERGE INTO delta.`{p}` t USING {new} s ON t.k = s.k "
        "WHEN MATCHED THEN UPDATE SET v = s.v "
        "WHEN NOT MATCHED THEN INSERT (k, v) VALUES (s.k, s.v)"
    )
    assert version(p) == 2
    assert rows(p, "select * from t order by k, v") == [
        {"k": 2, "v": "b"},
        {"k": 3, "v": "x"},
        {"k": 3, "v": "y"},
    ]


def test_merge_has_no_schema_evolution(spark, tmp_path, view_name):
    """A source column the target lacks: SET col = … fails, UPDATE SET * / INSERT * silently
    drop it, even with spark.databricks.delta.schema.autoMerge.enabled. Evolve the schema
    first (empty append with mergeSchema), then MERGE."""
    p = str(tmp_path / "t")
    spark.createDataFrame([(1, "a")], "k bigint, v string").write.format("delta").save(p)
    src = view_name("src")
    source = spark.createDataFrame([(1, "b", 9), (2, "c", 8)], "k bigint, v string, n int")
    source.createOrReplaceTempView(src)
    with pytest.raises(AnalysisException, match="cannot resolve attribute"):
        spark.sql(
            f"MERGE INTO delta.`{p}` t USING {src} s ON t.k = s.k "
            "WHEN MATCHED THEN UPDATE SET v = s.v, n = s.n"
        )
    assert version(p) == 0
    star = (
        f"MERGE INTO delta.`{p}` t USING {src} s ON t.k = s.k "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    spark.conf.set("spark.databricks.delta.schema.autoMerge.enabled", "true")
    try:
        spark.sql(star)
    finally:
        spark.conf.unset("spark.databricks.delta.schema.autoMerge.enabled")
    assert version(p) == 1
    assert rows(p, "select * from t order by k") == [{"k": 1, "v": "b"}, {"k": 2, "v": "c"}]

    # the way that works: add the column with an empty mergeSchema append, then MERGE
    source.limit(0).write.format("delta").mode("append").option("mergeSchema", "true").save(p)
    assert version(p) == 2
    spark.sql(
        f"MERGE INTO delta.`{p}` t USING {src} s ON t.k = s.k "
        "WHEN MATCHED THEN UPDATE SET v = s.v, n = s.n"
    )
    assert version(p) == 3
    assert rows(p, "select * from t order by k") == [
        {"k": 1, "v": "b", "n": 9},
        {"k": 2, "v": "c", "n": 8},
    ]


def test_merge_insert_of_a_subset_of_columns(spark, tmp_path, view_name):
    p = str(tmp_path / "t")
    spark.createDataFrame([(1, "a", "x")], "k bigint, v string, z string").write.format(
        "delta"
    ).save(p)
    src = view_name("src")
    spark.createDataFrame([(1, "b"), (2, "c")], "k bigint, v string").createOrReplaceTempView(src)
    spark.sql(
        f"MERGE INTO delta.`{p}` t USING {src} s ON t.k = s.k "
        "WHEN MATCHED THEN UPDATE SET v = s.v "
        "WHEN NOT MATCHED THEN INSERT (k, v) VALUES (s.k, s.v)"
    )
    assert rows(p, "select * from t order by k") == [
        {"k": 1, "v": "b", "z": "x"},
        {"k": 2, "v": "c", "z": None},
    ]


def test_merge_into_partitioned_table_rewrites_only_touched_partitions(spark, tmp_path, view_name):
    p = str(tmp_path / "t")
    d1, d2, d3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
    spark.createDataFrame([(1, d1, "a"), (2, d2, "b")], "k bigint, d date, v string").write.format(
        "delta"
    ).partitionBy("d").save(p)
    src = view_name("src")
    spark.createDataFrame(
        [(2, d2, "B"), (3, d3, "c")], "k bigint, d date, v string"
    ).createOrReplaceTempView(src)
    spark.sql(
        f"MERGE INTO delta.`{p}` t USING {src} s ON t.k = s.k AND t.d = s.d "
        "WHEN MATCHED THEN UPDATE SET v = s.v "
        "WHEN NOT MATCHED THEN INSERT (k, d, v) VALUES (s.k, s.d, s.v)"
    )
    assert version(p) == 1
    m = history(p)[0]["operationMetrics"]
    assert (m["numTargetFilesRemoved"], m["numTargetFilesAdded"]) == (1, 2)
    assert rows(p, "select k, d, v from t order by k") == [
        {"k": 1, "d": d1, "v": "a"},
        {"k": 2, "d": d2, "v": "B"},
        {"k": 3, "d": d3, "v": "c"},
    ]
    assert sorted(x.name for x in (tmp_path / "t").iterdir()) == [
        "_delta_log",
        "d=2024-01-01",
        "d=2024-01-02",
        "d=2024-01-03",
    ]


def test_sql_update_and_delete(spark, tmp_path):
    """UPDATE / DELETE on delta.`path` work, each one commit; like MERGE they return one
    `count` column = rows rewritten (not rows affected); a no-op makes no commit."""
    p = str(tmp_path / "t")
    spark.createDataFrame([(i, f"v{i}") for i in range(4)], "k bigint, v string").write.format(
        "delta"
    ).save(p)
    r = spark.sql(f"UPDATE delta.`{p}` SET v = 'u' WHERE k = 1")
    assert version(p) == 1
    assert [tuple(x) for x in r.collect()] == [(4,)]
    r = spark.sql(f"DELETE FROM delta.`{p}` WHERE k = 2")
    assert version(p) == 2
    assert [tuple(x) for x in r.collect()] == [(3,)]
    assert history(p)[0]["operationMetrics"]["numDeletedRows"] == 1
    spark.sql(f"DELETE FROM delta.`{p}` WHERE k = 999")
    assert version(p) == 2
    assert rows(p, "select * from t order by k") == [
        {"k": 0, "v": "v0"},
        {"k": 1, "v": "u"},
        {"k": 3, "v": "v3"},
    ]
