"""A write that fails leaves the table exactly as it was (same version, same rows)."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.errors import (
    AnalysisException,
    NumberFormatException,
    SparkRuntimeException,
)

from ._delta import rows, version

CAST_ERROR = "Cast error: Cannot cast string 'x' to value of Int64"
ROWS = [{"k": 1, "n": 10, "d": dt.date(2024, 1, 1)}, {"k": 2, "n": 20, "d": dt.date(2024, 1, 2)}]


def _base(spark, path):
    spark.createDataFrame(
        [tuple(r.values()) for r in ROWS], "k bigint, n bigint, d date"
    ).write.format("delta").partitionBy("d").save(path)
    assert version(path) == 0


def _unchanged(path):
    assert version(path) == 0
    assert rows(path, "select k, n, d from t order by k") == ROWS


def test_merge_cardinality_violation(spark, tmp_path, view_name):
    p = str(tmp_path / "t")
    _base(spark, p)
    src = view_name("src")
    spark.createDataFrame(
        [(1, 11), (1, 12), (3, 30)], "k bigint, n bigint"
    ).createOrReplaceTempView(src)
    with pytest.raises(
        AnalysisException,
        match="MERGE_CARDINALITY_VIOLATION: Multiple source rows matched target row",
    ):
        spark.sql(
            f"MERGE INTO delta.`{p}` t USING {src} s ON t.k = s.k "
            "WHEN MATCHED THEN UPDATE SET n = s.n "
            "WHEN NOT MATCHED THEN INSERT (k, n, d) VALUES (s.k, s.n, DATE'2024-01-03')"
        )
    _unchanged(p)


def test_merge_with_uncastable_column(spark, tmp_path, view_name):
    """Unlike a DataFrame append (which writes NULL), MERGE refuses string -> bigint."""
    p = str(tmp_path / "t")
    _base(spark, p)
    src = view_name("src")
    spark.createDataFrame([(1, "x"), (3, "7")], "k bigint, n string").createOrReplaceTempView(src)
    with pytest.raises(AnalysisException, match="INCOMPATIBLE_DATA_FOR_TABLE.CANNOT_SAFELY_CAST"):
        spark.sql(
            f"MERGE INTO delta.`{p}` t USING {src} s ON t.k = s.k "
            "WHEN MATCHED THEN UPDATE SET n = s.n "
            "WHEN NOT MATCHED THEN INSERT (k, n, d) VALUES (s.k, s.n, DATE'2024-01-03')"
        )
    _unchanged(p)


def test_merge_whose_expression_fails_at_run_time(spark, tmp_path, view_name):
    p = str(tmp_path / "t")
    _base(spark, p)
    src = view_name("src")
    spark.createDataFrame([(1, "11"), (2, "x")], "k bigint, n string").createOrReplaceTempView(src)
    # (raised as SparkRuntimeException "Cast error: …" here, NumberFormatException elsewhere)
    with pytest.raises(SparkRuntimeException, match=CAST_ERROR):
        spark.sql(
            f"MERGE INTO delta.`{p}` t USING {src} s ON t.k = s.k "
            "WHEN MATCHED THEN UPDATE SET n = CAST(s.n AS BIGINT)"
        )
    _unchanged(p)


def test_write_of_a_constant_cast_fails_at_planning(spark, tmp_path):
    p = str(tmp_path / "t")
    _base(spark, p)
    bad = spark.sql(
        "SELECT CAST('x' AS BIGINT) AS k, CAST(1 AS BIGINT) AS n, DATE'2024-01-05' AS d"
    )
    with pytest.raises(NumberFormatException, match="Cannot cast string 'x' to value of Int64"):
        bad.write.format("delta").mode("overwrite").save(p)
    _unchanged(p)


@pytest.mark.parametrize("mode", ["append", "overwrite"])
def test_write_whose_cast_fails(spark, tmp_path, mode):
    p = str(tmp_path / "t")
    _base(spark, p)
    bad = spark.sql(
        "SELECT CAST(k AS BIGINT) AS k, CAST(n AS BIGINT) AS n, DATE'2024-01-05' AS d "
        "FROM VALUES ('3', '30'), ('4', 'x') AS v(k, n)"
    )
    # a cast failing while rows are written: SparkRuntimeException "Cast error: …"
    # (a cast of a constant fails earlier, at planning, as NumberFormatException)
    with pytest.raises(SparkRuntimeException, match=CAST_ERROR):
        bad.write.format("delta").mode(mode).save(p)
    _unchanged(p)


def test_replace_where_whose_computation_fails(spark, tmp_path):
    p = str(tmp_path / "t")
    _base(spark, p)
    bad = spark.sql(
        "SELECT CAST(1 AS BIGINT) AS k, CAST(10 / (n - 1) AS BIGINT) AS n, "
        "DATE'2024-01-01' AS d FROM VALUES (2), (1) AS v(n)"
    )
    with pytest.raises(AnalysisException, match="Division by zero"):
        bad.write.format("delta").mode("overwrite").option("replaceWhere", "d = '2024-01-01'").save(
            p
        )
    _unchanged(p)
