"""lib/delta.py keeps one delta-rs handle per table within `logs_kept` (a run's life),
refreshed at every use: it must see every commit made before the call, another writer's
included, and a table removed and created again once `exists` has found it gone. Schemas come
from that handle's log, equal to what the engine reads."""

from __future__ import annotations

import shutil

import pytest

from lake_assets.lib import delta


def _append(spark, path: str, rows: list[tuple]) -> None:
    spark.createDataFrame(rows, "id bigint, v string").write.format("delta").mode("append").save(
        path
    )


@pytest.fixture
def kept():
    with delta.logs_kept():
        yield


def test_one_handle_per_table_sees_every_later_commit(spark, tmp_path, kept):
    path = str(tmp_path / "t")
    _append(spark, path, [(1, "a")])
    first = delta.delta_table(path)
    assert delta.version(path) == 0
    _append(spark, path, [(2, "b")])  # another writer: the engine, not the handle
    assert delta.version(path) == 1
    assert delta.delta_table(path) is first  # the same handle, its log read on from version 0
    assert sorted(delta.query(path, "SELECT id, v FROM t")) == [(1, "a"), (2, "b")]
    assert delta.delta_table(path, version=0).version() == 0
    assert delta.delta_table(path).version() == 1  # time travel leaves the kept handle alone


def test_a_table_created_again_is_read_anew(spark, tmp_path, kept):
    path = str(tmp_path / "t")
    _append(spark, path, [(1, "a")])
    _append(spark, path, [(2, "b")])
    assert delta.version(path) == 1
    shutil.rmtree(path)
    assert not delta.exists(path)
    _append(spark, path, [(3, "c")])
    assert delta.version(path) == 0
    assert delta.query(path, "SELECT id, v FROM t") == [(3, "c")]


def test_schema_from_the_log_is_the_engines(spark, tmp_path, kept):
    path = str(tmp_path / "t")
    df = spark.sql(
        "SELECT 1L AS id, 2 AS n, CAST(1.5 AS DECIMAL(10,2)) AS amount, 'x' AS s, "
        "TIMESTAMP'2024-01-01 00:00:00' AS ts, DATE'2024-01-01' AS d, true AS b, 1.5D AS f, "
        "array(1, 2) AS xs, named_struct('a', 1, 'b', 'y') AS st"
    )
    df.write.format("delta").partitionBy("d").save(path)
    assert delta.schema_of(spark, path) == delta.read(spark, path).schema
    # A new schema in a later commit (the lake's way to widen a table), read from the handle.
    wider = df.selectExpr("*", "'e' AS extra").write.format("delta").mode("overwrite")
    wider.option("overwriteSchema", "true").partitionBy("d").save(path)
    assert "extra" in delta.schema_of(spark, path).fieldNames()
    assert delta.schema_of(spark, path) == delta.read(spark, path).schema


def test_handles_are_kept_only_within_logs_kept(spark, tmp_path):
    path = str(tmp_path / "t")
    _append(spark, path, [(1, "a")])
    assert delta.delta_table(path) is not delta.delta_table(path)  # outside: afresh each time
    with delta.logs_kept():
        held = delta.delta_table(path)
        with delta.logs_kept():  # nested (the lake resource and the IO manager both open it)
            assert delta.delta_table(path) is held
        assert delta.delta_table(path) is held
    assert delta.delta_table(path) is not held  # dropped when the outermost exits
