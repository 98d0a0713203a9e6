"""Time travel, the change data feed, and the Delta SQL commands the engine lacks."""

from __future__ import annotations

import pytest
from pyspark.errors import AnalysisException, IllegalArgumentException, SparkRuntimeException

from ._delta import rows, version


def _three_versions(spark, p):
    spark.createDataFrame([(1, "a")], "k bigint, v string").write.format("delta").save(p)
    spark.createDataFrame([(2, "b")], "k bigint, v string").write.format("delta").mode(
        "append"
    ).save(p)
    spark.createDataFrame([(3, "c")], "k bigint, v string").write.format("delta").mode(
        "overwrite"
    ).save(p)
    assert version(p) == 2


def test_version_as_of(spark, tmp_path):
    p = str(tmp_path / "t")
    _three_versions(spark, p)

    def keys(n):
        return sorted(
            r.k for r in spark.read.format("delta").option("versionAsOf", n).load(p).collect()
        )

    assert [keys(0), keys(1), keys(2)] == [[1], [1, 2], [3]]
    assert sorted(r.k for r in spark.read.format("delta").load(p).collect()) == [3]
    # SQL form
    got = spark.sql(f"SELECT k FROM delta.`{p}` VERSION AS OF 1 ORDER BY k").collect()
    assert [r.k for r in got] == [1, 2]
    with pytest.raises(AnalysisException, match="expected final version 7, replay reached 2"):
        spark.read.format("delta").option("versionAsOf", 7).load(p).collect()
    # delta-rs agrees on every version
    for n, expected in [(0, [1]), (1, [1, 2]), (2, [3])]:
        assert [r["k"] for r in rows(p, "select k from t order by k", version=n)] == expected


def test_read_change_feed_is_silently_ignored(spark, tmp_path):
    """readChangeFeed returns the current snapshot: no _change_type/_commit_version columns,
    startingVersion ignored. (CDF cannot even be enabled: see below.)"""
    p = str(tmp_path / "t")
    spark.createDataFrame([(1, "a")], "k bigint, v string").write.format("delta").save(p)
    spark.createDataFrame([(2, "b")], "k bigint, v string").write.format("delta").mode(
        "append"
    ).save(p)
    df = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", 1)
        .load(p)
    )
    assert df.columns == ["k", "v"]
    assert sorted(tuple(r) for r in df.collect()) == [(1, "a"), (2, "b")]


def test_change_data_feed_cannot_be_enabled_on_write(spark, tmp_path):
    p = str(tmp_path / "t")
    with pytest.raises(
        SparkRuntimeException,
        match="Table features must be specified, please specify: ChangeDataFeed",
    ):
        spark.createDataFrame([(1, "a")], "k bigint, v string").write.format("delta").option(
            "delta.enableChangeDataFeed", "true"
        ).save(p)


@pytest.mark.parametrize(
    "stmt",
    [
        "OPTIMIZE delta.`{p}`",
        "VACUUM delta.`{p}`",
        "DESCRIBE HISTORY delta.`{p}`",
        "DESCRIBE DETAIL delta.`{p}`",
    ],
)
def test_maintenance_sql_is_not_parsed(spark, tmp_path, stmt):
    """Table maintenance and history go through deltalake (delta-rs) instead."""
    p = str(tmp_path / "t")
    spark.createDataFrame([(1, "a")], "k bigint, v string").write.format("delta").save(p)
    with pytest.raises(IllegalArgumentException, match="invalid argument"):
        spark.sql(stmt.format(p=p))
    assert version(p) == 0
    assert rows(p) == [{"k": 1, "v": "a"}]
