"""Table maintenance by delta-rs on tables the embedded engine writes (lib/maintenance.py):
compaction keeps every row, VACUUM keeps what time travel inside the retention needs, and a
bronze MERGE that meets a compaction is retried, not lost."""

from __future__ import annotations

import datetime as dt

import pytest
from deltalake import DeltaTable

from lake_assets.lib import maintenance

from ._delta import rows


def _small_files(spark, path: str, n: int = 8) -> None:
    """n appends of 5 rows, in 2 daily partitions: many small files, as raw's days get."""
    for i in range(n):
        df = spark.createDataFrame(
            [(i * 10 + j, f"v{i}", dt.date(2024, 1, 1 + j % 2)) for j in range(5)],
            "id bigint, v string, d date",
        )
        df.write.format("delta").mode("append").partitionBy("d").save(path)


def _sorted(path, version=None):
    return sorted(rows(path, "select id, v, d from t", version), key=lambda r: r["id"])


def test_compaction_keeps_every_row_for_both_readers(spark, tmp_path):
    path = str(tmp_path / "t")
    _small_files(spark, path)
    before_rs, before_sail = (
        _sorted(path),
        sorted(spark.read.format("delta").load(path).collect(), key=lambda r: r.id),
    )
    got = maintenance.maintain(path, 168)
    assert got.files_before >= 8 and got.files_after == 2  # one file a partition
    assert _sorted(path) == before_rs and len(before_rs) == 40
    after_sail = sorted(spark.read.format("delta").load(path).collect(), key=lambda r: r.id)
    assert after_sail == before_sail
    # A checkpoint of the version maintenance ended at.
    assert (tmp_path / "t" / "_delta_log" / f"{got.version:020d}.checkpoint.parquet").exists()


def test_time_travel_inside_the_retention_survives_vacuum(spark, tmp_path):
    path = str(tmp_path / "t")
    _small_files(spark, path, 4)
    old = DeltaTable(path).version()
    want = _sorted(path, old)
    maintenance.maintain(path, 168)  # compacted: the old files are no version's but `old`'s
    assert _sorted(path, old) == want  # delta-rs reads the version before the compaction
    now = DeltaTable(path).version()
    assert spark.read.format("delta").option("versionAsOf", now).load(path).count() == len(want)
    # With no retention, VACUUM removes them: the old version cannot be read any more.
    got = maintenance.maintain(path, 0, compact=False)
    assert got.files_removed >= 4
    with pytest.raises(Exception, match="(?i)not found|no such file"):
        _sorted(path, old)
    assert _sorted(path) == want


def test_a_merge_that_meets_a_compaction_is_retried_and_keeps_both(spark, tmp_path):
    """delta-rs's MERGE (bronze's apply) reads files a compaction then replaces: its commit
    fails as a conflict, and the apply, retried on a fresh snapshot, loses nothing."""
    import pyarrow as pa
    from deltalake.exceptions import CommitFailedError

    from lake_assets.lib.retry import with_commit_retry

    path = str(tmp_path / "t")
    _small_files(spark, path, 4)
    stale = DeltaTable(path)  # the MERGE's snapshot, taken before the compaction commits
    maintenance.maintain(path, 168)
    source = pa.table({"id": pa.array([0, 999], pa.int64()), "v": ["new", "ins"]})

    def merge(table):
        return (
            table.merge(source, "t.id = s.id", source_alias="s", target_alias="t")
            .when_matched_update({"v": "s.v"})
            .when_not_matched_insert({"id": "s.id", "v": "s.v"})
            .execute()
        )

    with pytest.raises(CommitFailedError):
        merge(stale)
    attempts = []
    with_commit_retry(lambda: attempts.append(1) or merge(DeltaTable(path)))
    got = {r["id"]: r["v"] for r in rows(path, "select id, v from t")}
    assert len(got) == 21 and got[0] == "new" and got[999] == "ins"


def test_the_engine_cannot_time_travel_to_before_a_checkpoint(spark, tmp_path):
    """Surprise (Sail 0.7.2): `versionAsOf` older than the table's latest checkpoint fails,
    whoever wrote the checkpoint (Sail itself writes one every 10 commits); delta-rs reads it."""
    path = str(tmp_path / "t")
    _small_files(spark, path, 12)  # Sail's own checkpoint at version 10
    assert (tmp_path / "t" / "_delta_log" / f"{10:020d}.checkpoint.parquet").exists()
    with pytest.raises(Exception, match="Missing commit file"):
        spark.read.format("delta").option("versionAsOf", 5).load(path).count()
    assert len(_sorted(path, 5)) == 30
    assert spark.read.format("delta").option("versionAsOf", 11).load(path).count() == 60
