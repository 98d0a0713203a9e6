"""Replacing some partitions: replaceWhere works; partitionOverwriteMode=dynamic is a trap."""

from __future__ import annotations

import datetime as dt

from ._delta import history, rows, version

SCHEMA = "k bigint, d date, v string"
PRED = "d >= '2024-01-02' AND d <= '2024-01-03'"


def day(n: int) -> dt.date:
    return dt.date(2024, 1, n)


def _base(spark, path):
    """k = 1..4, one row per day 2024-01-01..04, partitioned by d; version 0."""
    spark.createDataFrame([(i, day(i), "old") for i in range(1, 5)], SCHEMA).write.format(
        "delta"
    ).partitionBy("d").save(path)
    assert version(path) == 0


def _new(spark):
    return spark.createDataFrame(
        [(20, day(2), "new"), (30, day(3), "new"), (31, day(3), "new")], SCHEMA
    )


def test_replace_where_replaces_only_matching_partitions(spark, tmp_path):
    p = str(tmp_path / "t")
    _base(spark, p)
    _new(spark).write.format("delta").mode("overwrite").option("replaceWhere", PRED).save(p)
    assert version(p) == 1
    assert rows(p, "select k, d, v from t order by d, k") == [
        {"k": 1, "d": day(1), "v": "old"},
        {"k": 20, "d": day(2), "v": "new"},
        {"k": 30, "d": day(3), "v": "new"},
        {"k": 31, "d": day(3), "v": "new"},
        {"k": 4, "d": day(4), "v": "old"},
    ]
    h = history(p)[0]
    assert h["operation"] == "WRITE"
    assert h["operationParameters"]["predicate"] == PRED
    m = h["operationMetrics"]
    assert (m["numRemovedFiles"], m["numAddedFiles"]) == (2, 2)


def test_replace_where_with_rows_outside_the_predicate_is_not_an_error(spark, tmp_path):
    """Surprise (Delta on Spark raises DELTA_REPLACE_WHERE_MISMATCH): no error. Matching
    partitions are replaced (01-03 emptied), and the row for 01-04, outside the predicate,
    is APPENDED next to the old 01-04 row. Filter the DataFrame to the predicate first."""
    p = str(tmp_path / "t")
    _base(spark, p)
    spark.createDataFrame([(40, day(2), "new"), (50, day(4), "outside")], SCHEMA).write.format(
        "delta"
    ).mode("overwrite").option("replaceWhere", PRED).save(p)
    assert version(p) == 1
    assert rows(p, "select k, d, v from t order by d, k") == [
        {"k": 1, "d": day(1), "v": "old"},
        {"k": 40, "d": day(2), "v": "new"},
        {"k": 4, "d": day(4), "v": "old"},
        {"k": 50, "d": day(4), "v": "outside"},
    ]


def test_replace_where_with_empty_dataframe_deletes_the_partitions(spark, tmp_path):
    p = str(tmp_path / "t")
    _base(spark, p)
    spark.createDataFrame([], SCHEMA).write.format("delta").mode("overwrite").option(
        "replaceWhere", "d = '2024-01-02'"
    ).save(p)
    assert version(p) == 1
    assert rows(p, "select k from t order by k") == [{"k": 1}, {"k": 3}, {"k": 4}]


def test_replace_where_on_a_data_column(spark, tmp_path):
    p = str(tmp_path / "t")
    _base(spark, p)
    spark.createDataFrame([(2, day(2), "nn")], SCHEMA).write.format("delta").mode(
        "overwrite"
    ).option("replaceWhere", "k = 2").save(p)
    assert version(p) == 1
    assert rows(p, "select k, v from t order by k") == [
        {"k": 1, "v": "old"},
        {"k": 2, "v": "nn"},
        {"k": 3, "v": "old"},
        {"k": 4, "v": "old"},
    ]


def test_replace_where_is_ignored_in_append_mode(spark, tmp_path):
    p = str(tmp_path / "t")
    _base(spark, p)
    _new(spark).write.format("delta").mode("append").option("replaceWhere", PRED).save(p)
    assert version(p) == 1
    assert rows(p, "select count(*) AS n from t") == [{"n": 7}]


def test_dynamic_partition_overwrite_option_overwrites_the_whole_table(spark, tmp_path):
    """THE TRAP: Spark would replace only 01-02 and 01-03; Sail drops 01-01 and 01-04 too."""
    p = str(tmp_path / "t")
    _base(spark, p)
    _new(spark).write.format("delta").mode("overwrite").option(
        "partitionOverwriteMode", "dynamic"
    ).save(p)
    assert version(p) == 1
    assert rows(p, "select k, d from t order by k") == [
        {"k": 20, "d": day(2)},
        {"k": 30, "d": day(3)},
        {"k": 31, "d": day(3)},
    ]


def test_dynamic_partition_overwrite_session_conf_overwrites_the_whole_table(spark, tmp_path):
    p = str(tmp_path / "t")
    _base(spark, p)
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    try:
        _new(spark).write.format("delta").mode("overwrite").save(p)
    finally:
        spark.conf.unset("spark.sql.sources.partitionOverwriteMode")
    assert rows(p, "select k from t order by k") == [{"k": 20}, {"k": 30}, {"k": 31}]
