"""mergeSchema, overwriteSchema, implicit casts on append, and ALTER TABLE."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from pyspark.errors import AnalysisException, SparkRuntimeException, UnsupportedOperationException

from ._delta import field_types, read_table, rows, version

UNSUPPORTED_ALTER = "unsupported ALTER TABLE operation"


def _base(spark, path, ddl="k bigint, v string", data=((1, "a"), (2, "b"))):
    spark.createDataFrame(list(data), ddl).write.format("delta").save(path)
    assert version(path) == 0


def test_merge_schema_adds_column_old_rows_null(spark, tmp_path):
    p = str(tmp_path / "t")
    _base(spark, p)
    spark.createDataFrame([(3, "c", 1.5)], "k bigint, v string, extra double").write.format(
        "delta"
    ).mode("append").option("mergeSchema", "true").save(p)
    assert version(p) == 1
    assert field_types(p)["extra"] == ("double", True)
    assert rows(p, "select * from t order by k") == [
        {"k": 1, "v": "a", "extra": None},
        {"k": 2, "v": "b", "extra": None},
        {"k": 3, "v": "c", "extra": 1.5},
    ]


def test_empty_append_with_merge_schema_adds_the_column(spark, tmp_path):
    """A commit with no rows (unlike a plain empty append, which makes no commit)."""
    p = str(tmp_path / "t")
    _base(spark, p)
    spark.createDataFrame([], "k bigint, v string, d date").write.format("delta").mode(
        "append"
    ).option("mergeSchema", "true").save(p)
    assert version(p) == 1
    assert list(field_types(p)) == ["k", "v", "d"]
    assert rows(p, "select * from t order by k") == [
        {"k": 1, "v": "a", "d": None},
        {"k": 2, "v": "b", "d": None},
    ]
    assert spark.read.format("delta").load(p).columns == ["k", "v", "d"]


def test_new_column_without_merge_schema_is_an_error(spark, tmp_path):
    p = str(tmp_path / "t")
    _base(spark, p)
    with pytest.raises(
        AnalysisException, match="Field 'extra' not found in table schema. Use mergeSchema=true"
    ):
        spark.createDataFrame([(3, "c", 1.5)], "k bigint, v string, extra double").write.format(
            "delta"
        ).mode("append").save(p)
    assert version(p) == 0
    # overwrite with another schema needs overwriteSchema, not only mode overwrite
    with pytest.raises(AnalysisException, match="Field 'z' not found in table schema"):
        spark.createDataFrame([(1.0,)], "z double").write.format("delta").mode("overwrite").save(p)
    assert version(p) == 0
    spark.createDataFrame([(1.0,)], "z double").write.format("delta").mode("overwrite").option(
        "overwriteSchema", "true"
    ).save(p)
    assert version(p) == 1
    assert field_types(p) == {"z": ("double", True)}
    assert rows(p) == [{"z": 1.0}]


def test_type_change_with_merge_schema_is_an_error(spark, tmp_path):
    p = str(tmp_path / "t")
    _base(spark, p)
    with pytest.raises(
        SparkRuntimeException, match="unsupported Delta type widening change at k: long -> string"
    ):
        spark.createDataFrame([("3", "c")], "k string, v string").write.format("delta").mode(
            "append"
        ).option("mergeSchema", "true").save(p)
    assert version(p) == 0
    # int -> bigint widening is also refused without the table's type-widening feature
    q = str(tmp_path / "int")
    _base(spark, q, "k int, v string")
    with pytest.raises(AnalysisException, match="requires table property delta.enableTypeWidening"):
        spark.createDataFrame([(5, "c")], "k bigint, v string").write.format("delta").mode(
            "append"
        ).option("mergeSchema", "true").save(q)
    assert version(q) == 0
    assert field_types(q)["k"] == ("integer", True)


def test_type_change_without_merge_schema_casts_silently_to_null(spark, tmp_path):
    """Surprise, DATA LOSS: without mergeSchema an append casts to the table's type and a
    value that does not fit becomes NULL (no error, though spark.sql.ansi.enabled=true).
    With mergeSchema the same append fails (test above); a MERGE fails too (test_failures)."""
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    p = str(tmp_path / "t")
    _base(spark, p)
    spark.createDataFrame([("3", "c"), ("x", "d")], "k string, v string").write.format(
        "delta"
    ).mode("append").save(p)
    assert version(p) == 1
    assert field_types(p)["k"] == ("long", True)
    assert rows(p, "select k, v from t order by v") == [
        {"k": 1, "v": "a"},
        {"k": 2, "v": "b"},
        {"k": 3, "v": "c"},
        {"k": None, "v": "d"},
    ]
    q = str(tmp_path / "int")
    _base(spark, q, "k int, v string")
    spark.createDataFrame([(5, "c"), (3_000_000_000, "d")], "k bigint, v string").write.format(
        "delta"
    ).mode("append").save(q)
    assert field_types(q)["k"] == ("integer", True)
    assert rows(q, "select k, v from t order by v") == [
        {"k": 1, "v": "a"},
        {"k": 2, "v": "b"},
        {"k": 5, "v": "c"},
        {"k": None, "v": "d"},
    ]


def test_non_nullable_columns_become_not_null_in_the_table(spark, tmp_path):
    """A DataFrame column that cannot be null (a literal, a CAST of a literal) is written as
    NOT NULL in the Delta schema. Later appends of null then fail."""
    p = str(tmp_path / "t")
    spark.sql("SELECT CAST(1 AS BIGINT) AS k, 'a' AS v").write.format("delta").save(p)
    assert field_types(p) == {"k": ("long", False), "v": ("string", False)}
    with pytest.raises(AnalysisException, match="DELTA_NOT_NULL_CONSTRAINT_VIOLATED"):
        spark.createDataFrame([(None, "b")], "k bigint, v string").write.format("delta").mode(
            "append"
        ).save(p)
    assert version(p) == 0


def test_merge_schema_with_a_non_nullable_new_column_breaks_readers(spark, tmp_path):
    """Surprise: mergeSchema adds a NOT NULL column although old files lack it. Sail then
    reads old rows as 0.00 (not null!) and delta-rs refuses to read the table. New columns
    must come from a nullable DataFrame column (e.g. createDataFrame with a DDL schema)."""
    p = str(tmp_path / "t")
    _base(spark, p, data=[(1, "a")])
    spark.sql(
        "SELECT CAST(2 AS BIGINT) AS k, 'z' AS v, CAST(1.5 AS DECIMAL(18,2)) AS m"
    ).write.format("delta").mode("append").option("mergeSchema", "true").save(p)
    assert version(p) == 1
    assert field_types(p)["m"] == ("decimal(18,2)", False)
    got = spark.read.format("delta").load(p).orderBy("k").collect()
    assert [tuple(r) for r in got] == [(1, "a", Decimal("0.00")), (2, "z", Decimal("1.50"))]
    with pytest.raises(pa.ArrowInvalid, match="Non-nullable column 'm' is missing"):
        read_table(p)


def test_alter_table(spark, tmp_path, view_name):
    """ALTER TABLE ADD/RENAME COLUMN are unsupported; ALTER on delta.`path` is not found;
    SET TBLPROPERTIES works on a catalog table (LOCATION) but cannot turn on change data
    feed. Schema changes go through a mergeSchema append."""
    p = str(tmp_path / "t")
    _base(spark, p)
    with pytest.raises(UnsupportedOperationException, match=UNSUPPORTED_ALTER):
        spark.sql(f"ALTER TABLE delta.`{p}` ADD COLUMNS (z string)")
    with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_NOT_FOUND"):
        spark.sql(f"ALTER TABLE delta.`{p}` SET TBLPROPERTIES ('custom.key' = 'x')")
    name = view_name("tbl")
    spark.sql(f"CREATE TABLE {name} USING DELTA LOCATION '{p}'")
    try:
        with pytest.raises(UnsupportedOperationException, match=UNSUPPORTED_ALTER):
            spark.sql(f"ALTER TABLE {name} ADD COLUMNS (z string)")
        with pytest.raises(UnsupportedOperationException, match=UNSUPPORTED_ALTER):
            spark.sql(f"ALTER TABLE {name} RENAME COLUMN v TO w")
        with pytest.raises(AnalysisException, match="Table features must be specified"):
            spark.sql(
                f"ALTER TABLE {name} SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')"
            )
        assert version(p) == 0
        spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ('custom.key' = 'x')")
        assert version(p) == 1
        assert DeltaTable(p).metadata().configuration == {"custom.key": "x"}
    finally:
        spark.sql(f"DROP TABLE {name}")
    assert list(field_types(p)) == ["k", "v"]
