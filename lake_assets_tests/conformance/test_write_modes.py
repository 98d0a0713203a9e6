"""DataFrameWriter save modes, partitionBy, and the table version after each commit."""

from __future__ import annotations

import datetime as dt

import pytest
from deltalake import DeltaTable
from pyspark.errors import AnalysisException

from ._delta import history, rows, version

SCHEMA = "k bigint, v string, d date"
D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)


def _df(spark, data):
    return spark.createDataFrame(data, SCHEMA)


def test_overwrite_append_partitioned_versions(spark, tmp_path):
    p = str(tmp_path / "t")
    _df(spark, [(1, "a", D1), (2, "b", D2)]).write.format("delta").mode("overwrite").partitionBy(
        "d"
    ).save(p)
    assert version(p) == 0
    assert history(p)[0]["operation"] == "CREATE TABLE"
    assert sorted(x.name for x in (tmp_path / "t").iterdir()) == [
        "_delta_log",
        "d=2024-01-01",
        "d=2024-01-02",
    ]
    assert DeltaTable(p).metadata().partition_columns == ["d"]

    _df(spark, [(3, "c", D3)]).write.format("delta").mode("append").partitionBy("d").save(p)
    assert version(p) == 1
    # append without partitionBy into a partitioned table: fine, partitioning kept
    _df(spark, [(4, "d", D1)]).write.format("delta").mode("append").save(p)
    assert version(p) == 2
    assert rows(p, "select k, v, d from t order by k") == [
        {"k": 1, "v": "a", "d": D1},
        {"k": 2, "v": "b", "d": D2},
        {"k": 3, "v": "c", "d": D3},
        {"k": 4, "v": "d", "d": D1},
    ]
    # overwrite without partitionBy replaces every row and keeps the partitioning
    _df(spark, [(9, "z", D2)]).write.format("delta").mode("overwrite").save(p)
    assert version(p) == 3
    assert DeltaTable(p).metadata().partition_columns == ["d"]
    assert rows(p, "select k, v, d from t") == [{"k": 9, "v": "z", "d": D2}]
    assert [h["operation"] for h in history(p)] == ["WRITE", "WRITE", "WRITE", "CREATE TABLE"]
    assert history(p)[0]["operationParameters"]["mode"] == "Overwrite"
    assert history(p)[1]["operationParameters"]["mode"] == "Append"
    # the engine sees the same thing
    assert [tuple(r) for r in spark.read.format("delta").load(p).collect()] == [(9, "z", D2)]


def test_partitioning_cannot_change_without_overwrite_schema(spark, tmp_path):
    p = str(tmp_path / "t")
    _df(spark, [(1, "a", D1)]).write.format("delta").partitionBy("d").save(p)
    with pytest.raises(AnalysisException, match="Cannot change partitioning on append"):
        _df(spark, [(2, "b", D1)]).write.format("delta").mode("append").partitionBy("v").save(p)
    with pytest.raises(AnalysisException, match="Set overwriteSchema=true to change partitioning"):
        _df(spark, [(2, "b", D1)]).write.format("delta").mode("overwrite").partitionBy("v").save(p)
    assert version(p) == 0


def test_error_and_ignore_modes(spark, tmp_path):
    p = str(tmp_path / "t")
    _df(spark, [(1, "a", D1)]).write.format("delta").save(p)  # default mode on a new path
    assert version(p) == 0
    with pytest.raises(AnalysisException, match="Delta table already exists"):
        _df(spark, [(2, "b", D1)]).write.format("delta").save(p)
    _df(spark, [(2, "b", D1)]).write.format("delta").mode("ignore").save(p)
    assert version(p) == 0
    assert rows(p, "select k from t") == [{"k": 1}]


def test_empty_writes(spark, tmp_path):
    p = str(tmp_path / "t")
    empty = spark.createDataFrame([], SCHEMA)
    empty.write.format("delta").save(p)  # an empty first write still creates the table
    assert version(p) == 0
    assert rows(p, "select count(*) AS n from t") == [{"n": 0}]
    _df(spark, [(1, "a", D1)]).write.format("delta").mode("append").save(p)
    assert version(p) == 1
    # surprise: an empty append makes no commit at all
    empty.write.format("delta").mode("append").save(p)
    assert version(p) == 1
    # an empty overwrite commits and empties the table
    empty.write.format("delta").mode("overwrite").save(p)
    assert version(p) == 2
    assert rows(p, "select count(*) AS n from t") == [{"n": 0}]


def test_null_partition_value(spark, tmp_path):
    p = str(tmp_path / "t")
    _df(spark, [(1, "a", D1), (2, "b", None)]).write.format("delta").partitionBy("d").save(p)
    assert sorted(x.name for x in (tmp_path / "t").iterdir()) == [
        "_delta_log",
        "d=2024-01-01",
        "d=__HIVE_DEFAULT_PARTITION__",
    ]
    assert rows(p, "select k, d from t order by k") == [{"k": 1, "d": D1}, {"k": 2, "d": None}]
    got = spark.read.format("delta").load(p).where("d IS NULL").collect()
    assert [r.k for r in got] == [2]


def test_append_matches_columns_by_name(spark, tmp_path):
    p = str(tmp_path / "t")
    spark.createDataFrame([(1, "a")], "k bigint, v string").write.format("delta").save(p)
    # other column order: matched by name, not position
    spark.createDataFrame([("b", 2)], "v string, k bigint").write.format("delta").mode(
        "append"
    ).save(p)
    # a missing column is filled with null
    spark.createDataFrame([(3,)], "k bigint").write.format("delta").mode("append").save(p)
    assert rows(p, "select k, v from t order by k") == [
        {"k": 1, "v": "a"},
        {"k": 2, "v": "b"},
        {"k": 3, "v": None},
    ]
    assert version(p) == 2


def test_sql_insert_needs_a_catalog_table(spark, tmp_path, view_name):
    """INSERT INTO delta.`path` is not understood; a table registered with
    CREATE TABLE … USING DELTA LOCATION takes INSERT INTO / INSERT OVERWRITE / REPLACE WHERE."""
    p = str(tmp_path / "t")
    spark.createDataFrame([(1, "a")], "k bigint, v string").write.format("delta").save(p)
    with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_NOT_FOUND"):
        spark.sql(f"INSERT INTO delta.`{p}` SELECT CAST(2 AS BIGINT), 'b'")
    assert version(p) == 0
    name = view_name("tbl")
    spark.sql(f"CREATE TABLE {name} USING DELTA LOCATION '{p}'")
    try:
        assert version(p) == 0  # registering an existing table writes nothing
        spark.sql(f"INSERT INTO {name} VALUES (2, 'b')")
        assert version(p) == 1
        spark.sql(f"INSERT INTO {name} REPLACE WHERE k = 2 SELECT CAST(3 AS BIGINT), 'c'")
        assert version(p) == 2
        assert rows(p, "select k, v from t order by k") == [{"k": 1, "v": "a"}, {"k": 3, "v": "c"}]
        assert spark.sql(f"DESCRIBE TABLE {name}").collect() == []  # surprise: empty
    finally:
        spark.sql(f"DROP TABLE {name}")
    assert version(p) == 2  # DROP TABLE of a LOCATION table keeps the files
    assert rows(p, "select count(*) AS n from t") == [{"n": 2}]
