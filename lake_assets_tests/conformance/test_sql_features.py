"""SQL functions and DataFrame features the lake's transforms use, with exact results."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from pyspark.errors import AnalysisException, UnsupportedOperationException

from ._delta import field_types, rows, run_worker


def one(spark, sql: str) -> tuple:
    got = spark.sql(sql).collect()
    assert len(got) == 1
    return tuple(got[0])


def test_row_number_latest_per_key(spark, view_name):
    v = view_name("w")
    spark.createDataFrame(
        [("a", "0001", 1), ("a", "0003", 2), ("a", "0002", 3), ("b", "0001", 4), ("b", "0001", 5)],
        "k string, _seq string, v int",
    ).createOrReplaceTempView(v)
    got = spark.sql(f"""
        SELECT k, _seq, v FROM (
            SELECT *, row_number() OVER (PARTITION BY k ORDER BY _seq DESC, v DESC) AS rn
            FROM {v}) WHERE rn = 1 ORDER BY k""").collect()
    assert [tuple(r) for r in got] == [("a", "0003", 2), ("b", "0001", 5)]
    ranks = spark.sql(
        f"SELECT v, row_number() OVER (PARTITION BY k ORDER BY _seq DESC) AS rn "
        f"FROM {v} WHERE k = 'a' ORDER BY rn"
    ).collect()
    assert [(r.v, r.rn) for r in ranks] == [(2, 1), (3, 2), (1, 3)]


def test_string_functions(spark):
    assert one(
        spark,
        "SELECT lpad('7', 4, '0'), lpad('12345', 4, '0'), lpad('', 3, 'x'), "
        "lpad(NULL, 3, '0'), lpad(CAST(42 AS STRING), 10, '0')",
    ) == ("0007", "1234", "xxx", None, "0000000042")
    assert one(
        spark,
        "SELECT concat('a', NULL, 'b'), concat('a', 'b', CAST(1 AS STRING)), "
        "concat_ws('|', 'a', NULL, 'b'), concat('é', '😀')",
    ) == (None, "ab1", "a|b", "é😀")
    assert one(
        spark,
        "SELECT coalesce(NULL, 'x', 'y'), coalesce(NULL, NULL), coalesce('', 'x'), "
        "coalesce(CAST(NULL AS BIGINT), 0)",
    ) == ("x", None, "", 0)


def test_date_and_time_functions(spark):
    assert one(
        spark,
        "SELECT unix_micros(TIMESTAMP'2024-01-01 00:00:00.000001'), "
        "unix_micros(to_timestamp('1970-01-01 00:00:00'))",
    ) == (1704067200000001, 0)
    assert one(
        spark,
        "SELECT to_date('2024-02-29'), to_date('20240102', 'yyyyMMdd'), "
        "to_date(TIMESTAMP'2024-01-05 23:59:59'), "
        "date_format(DATE'2024-01-05', 'yyyyMMdd'), "
        "date_format(TIMESTAMP'2024-01-05 13:04:05.123456', "
        "'yyyy-MM-dd HH:mm:ss.SSSSSS')",
    ) == (
        dt.date(2024, 2, 29),
        dt.date(2024, 1, 2),
        dt.date(2024, 1, 5),
        "20240105",
        "2024-01-05 13:04:05.123456",
    )
    # ANSI: a bad date is an error, not NULL; try_to_date does not exist
    with pytest.raises(AnalysisException, match="CAST_INVALID_INPUT"):
        spark.sql("SELECT to_date('2024-02-30')").collect()
    with pytest.raises(AnalysisException, match="invalid parsed month"):
        spark.sql("SELECT to_date('2024-13-01', 'yyyy-MM-dd')").collect()
    with pytest.raises(UnsupportedOperationException, match="unknown function: try_to_date"):
        spark.sql("SELECT try_to_date('2024-02-30')").collect()
    assert one(spark, "SELECT try_cast('2024-02-30' AS DATE), try_cast('x' AS BIGINT)") == (
        None,
        None,
    )


def test_count_distinct(spark, view_name):
    v = view_name("c")
    spark.createDataFrame(
        [("a", "1"), ("a", "2"), ("b", "1"), ("b", "1"), (None, "1")], "k string, s string"
    ).createOrReplaceTempView(v)
    assert one(
        spark, f"SELECT count(DISTINCT k), count(DISTINCT k, s), count(*), count(k) FROM {v}"
    ) == (2, 3, 5, 4)


def test_decimal_casts(spark):
    # from strings and decimals: HALF_UP
    assert one(
        spark,
        "SELECT CAST('12.345' AS DECIMAL(18,2)), CAST('12.355' AS DECIMAL(18,2)), "
        "CAST('-12.345' AS DECIMAL(18,2)), CAST(12 AS DECIMAL(18,2)), "
        "CAST(CAST('1.005' AS DECIMAL(10,3)) AS DECIMAL(18,2))",
    ) == (Decimal("12.35"), Decimal("12.36"), Decimal("-12.35"), Decimal("12.00"), Decimal("1.01"))
    # surprise: from a DOUBLE the binary value is rounded (JVM Spark rounds the double's
    # shortest decimal form: 1.005D -> 1.01); so is round(double). Cast via STRING.
    assert one(
        spark,
        "SELECT CAST(1.005D AS DECIMAL(18,2)), CAST(0.285D AS DECIMAL(18,2)), "
        "CAST(2.675D AS DECIMAL(18,2)), CAST(0.125D AS DECIMAL(18,2)), "
        "round(1.005D, 2), CAST(CAST(1.005D AS STRING) AS DECIMAL(18,2))",
    ) == (Decimal("1.00"), Decimal("0.28"), Decimal("2.68"), Decimal("0.13"), 1.0, Decimal("1.01"))
    assert one(
        spark,
        "SELECT sum(CAST(x AS DECIMAL(18,2))), "
        "typeof(sum(CAST(x AS DECIMAL(18,2)))) "
        "FROM VALUES ('1.10'), ('2.20'), ('3.30') AS v(x)",
    ) == (Decimal("6.60"), "decimal(28,2)")
    with pytest.raises(Exception, match="too large to store in a Decimal128 of precision 10"):
        spark.sql("SELECT CAST(123456789012.345 AS DECIMAL(10,2))").collect()
    with pytest.raises(Exception, match="Cannot cast string 'abc' to value of Decimal128"):
        spark.sql("SELECT CAST('abc' AS DECIMAL(18,2))").collect()


def test_left_anti_join(spark, view_name):
    a, b = view_name("a"), view_name("b")
    left = spark.createDataFrame([(1, "x"), (2, "y"), (3, None), (None, "n")], "k int, v string")
    right = spark.createDataFrame([(2,), (None,)], "k int")
    left.createOrReplaceTempView(a)
    right.createOrReplaceTempView(b)
    # a NULL key never matches: the NULL row stays (unless <=> is used)
    got = spark.sql(
        f"SELECT l.* FROM {a} l LEFT ANTI JOIN {b} r ON l.k = r.k ORDER BY k NULLS FIRST"
    ).collect()
    assert [tuple(r) for r in got] == [(None, "n"), (1, "x"), (3, None)]
    got = spark.sql(
        f"SELECT l.* FROM {a} l LEFT ANTI JOIN {b} r ON l.k <=> r.k ORDER BY k"
    ).collect()
    assert [tuple(r) for r in got] == [(1, "x"), (3, None)]
    got = left.join(right, "k", "left_anti").orderBy("k").collect()
    assert [tuple(r) for r in got] == [(None, "n"), (1, "x"), (3, None)]


def test_create_dataframe_from_arrow_with_decimal(spark, tmp_path):
    t = pa.table(
        {
            "k": pa.array([1, 2], pa.int64()),
            "m": pa.array([Decimal("1.10"), Decimal("-99999999.99")], pa.decimal128(10, 2)),
            "w": pa.array([Decimal("0.0000000001"), None], pa.decimal128(38, 10)),
        }
    )
    df = spark.createDataFrame(t)
    assert df.schema.simpleString() == "struct<k:bigint,m:decimal(10,2),w:decimal(38,10)>"
    p = str(tmp_path / "t")
    df.write.format("delta").save(p)
    assert field_types(p)["m"] == ("decimal(10,2)", True)
    assert rows(p, "select * from t order by k") == t.to_pylist()
    # decimal256 is refused by the client; pandas Decimal objects get the narrowest type
    with pytest.raises(ValueError, match="precision should be between 1 and 38"):
        spark.createDataFrame(pa.table({"m": pa.array([Decimal("1.1")], pa.decimal256(40, 2))}))
    inferred = spark.createDataFrame(pd.DataFrame({"m": [Decimal("1.10")]})).schema
    assert inferred.simpleString() == "struct<m:decimal(3,2)>"


def test_cache_is_accepted_but_not_a_snapshot(spark, tmp_path):
    """cache()/persist() work; a cached Delta read still sees later commits."""
    p = str(tmp_path / "t")
    spark.createDataFrame([(1,)], "k bigint").write.format("delta").save(p)
    cached = spark.read.format("delta").load(p).cache()
    assert cached.is_cached
    assert cached.count() == 1
    spark.createDataFrame([(2,)], "k bigint").write.format("delta").mode("append").save(p)
    assert sorted(r.k for r in cached.collect()) == [1, 2]
    cached.unpersist()
    assert spark.range(3).persist().count() == 3


def test_local_checkpoint_needs_a_checkpoint_path(spark):
    """Without SAIL_EXECUTION__CHECKPOINT__PATH (not set by local_spark) it is an error."""
    with pytest.raises(AnalysisException, match="checkpoint object-store path is not configured"):
        spark.range(3).localCheckpoint()
    with pytest.raises(AnalysisException, match="checkpoint object-store path is not configured"):
        spark.range(3).checkpoint()


def test_local_checkpoint_with_a_checkpoint_path_is_a_snapshot(tmp_path):
    res = run_worker(
        "checkpoint", str(tmp_path / "t"), SAIL_EXECUTION__CHECKPOINT__PATH=str(tmp_path / "ckpt")
    )
    assert res["ok"], res
    assert res["local_checkpoint_after_append"] == [1]
    assert res["cache_after_append"] == [1, 2]
    assert res["plain_after_append"] == [1, 2]
    assert res["checkpoint_files"] >= 1  # while the engine runs ...
    assert not any((tmp_path / "ckpt").rglob("*.parquet"))  # ... removed when it stops
