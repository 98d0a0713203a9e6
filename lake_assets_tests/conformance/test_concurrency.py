"""Two processes, each with its own embedded engine, writing one table at the same time.

The workers start their engines, report ready, and all write on one go signal, so that the
commits really race. Nothing here asserts timing: only the invariants that must hold
whichever writer wins."""

from __future__ import annotations

import time

import pytest

from ._delta import rows, start_worker, version, worker_result

COMMIT_CONFLICT = "Failed to commit transaction"


def _race(kind: str, path: str, sync, n: int = 2) -> list[dict]:
    sync.mkdir()
    procs = [start_worker(kind, path, str(tag), str(sync)) for tag in range(1, n + 1)]
    try:
        deadline = time.monotonic() + 90
        while sum(f.name.startswith("ready-") for f in sync.iterdir()) < n:
            if any(pr.poll() is not None for pr in procs):
                break  # a worker died before it was ready: release the others, report
            if time.monotonic() > deadline:
                pytest.fail("workers never became ready")
            time.sleep(0.01)
        (sync / "go").touch()
        return [worker_result(pr) for pr in procs]
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
                pr.wait()


def test_concurrent_appends_all_commit(spark, tmp_path):
    p = str(tmp_path / "t")
    spark.createDataFrame([(k, "orig") for k in range(10)], "k bigint, w string").write.format(
        "delta"
    ).save(p)
    results = _race("append", p, tmp_path / "sync")
    assert [r["ok"] for r in results] == [True, True], results
    # 1 create + 2 writers x 3 appends, none lost (Sail retries an append's commit)
    assert version(p) == 6
    assert rows(
        p, "select w, count(*) AS n, count(distinct k) AS d from t group by w order by w"
    ) == [
        {"w": "1", "n": 30, "d": 30},
        {"w": "2", "n": 30, "d": 30},
        {"w": "orig", "n": 10, "d": 10},
    ]


def test_concurrent_merges_never_duplicate(spark, tmp_path):
    """Each MERGE updates keys 0..9, inserts its own keys <tag>00..<tag>04, and inserts the
    shared key 500. Seen: one MERGE fails with "Failed to commit transaction" and leaves no
    trace (a writer that can meet another must retry on a fresh snapshot). If the two
    happen not to overlap, both succeed one after the other. Either way: no duplicate key."""
    p = str(tmp_path / "t")
    spark.createDataFrame([(k, "orig") for k in range(10)], "k bigint, w string").write.format(
        "delta"
    ).save(p)
    results = _race("merge", p, tmp_path / "sync")
    ok = [int(r["args"][1]) for r in results if r["ok"]]
    failed = [r for r in results if not r["ok"]]
    assert ok, results
    for r in failed:
        assert r["error_type"] == "SparkRuntimeException", r
        assert COMMIT_CONFLICT in r["error"], r

    assert version(p) == len(ok)
    got = rows(p, "select k, w from t order by k")
    keys = [r["k"] for r in got]
    assert len(keys) == len(set(keys)), "duplicate keys after concurrent MERGEs"
    w = {r["k"]: r["w"] for r in got}
    for tag in (1, 2):
        own = [tag * 100 + j for j in range(5)]
        if tag in ok:
            assert all(w.get(k) == f"i{tag}" for k in own), got
        else:
            assert not any(k in w for k in own), got
    assert sorted(keys) == sorted(
        list(range(10)) + [t * 100 + j for t in ok for j in range(5)] + [500]
    )
    # keys 0..9: all from the one merge that committed last
    assert len({w[k] for k in range(10)}) == 1 and w[0] in {f"u{t}" for t in ok}
    assert w[500] in {f"i{t}" for t in ok}

    # the cure for the loser: run the whole MERGE again, on a fresh snapshot
    for r in failed:
        tag = int(r["args"][1])
        src = [(k, f"u{tag}") for k in range(10)]
        src += [(tag * 100 + j, f"i{tag}") for j in range(5)] + [(500, f"i{tag}")]
        spark.createDataFrame(src, "k bigint, w string").createOrReplaceTempView("conf_retry")
        spark.sql(
            f"MERGE INTO delta.`{p}` t USING conf_retry s ON t.k = s.k "
            "WHEN MATCHED THEN UPDATE SET w = s.w "
            "WHEN NOT MATCHED THEN INSERT (k, w) VALUES (s.k, s.w)"
        )
    assert version(p) == 2
    assert rows(p, "select count(*) AS n, count(distinct k) AS d from t") == [{"n": 21, "d": 21}]


def _one_writers_rows(path) -> set[str]:
    got = rows(path, "select k, w from t order by k")
    assert [r["k"] for r in got] == list(range(10)), f"not one writer's 10 rows: {got}"
    return {r["w"] for r in got}


@pytest.mark.parametrize("before", ["empty", "rows"])
def test_concurrent_replace_where_true_overwrites_keep_one_writers_rows(
    spark, tmp_path, before, monkeypatch
):
    """A plain overwrite of a new or EMPTY table that loses the race is committed as an append:
    both writers' rows stay (seen: 20 rows, in every one of 7 tries). With replaceWhere 'true'
    (every row) the loser fails with "Failed to commit transaction", as on a table with rows:
    the lake writes whole tables this way (delta.replace_all, io_manager.write_frame)."""
    p = str(tmp_path / "t")
    spark.createDataFrame(
        [(k, "orig") for k in range(10) if before == "rows"], "k bigint, w string"
    ).write.format("delta").save(p)
    monkeypatch.setenv("LAKE_TEST_REPLACE_WHERE", "true")
    results = _race("overwrite", p, tmp_path / "sync")
    for r in results:
        assert r["ok"] or COMMIT_CONFLICT in r["error"], r
    assert len(_one_writers_rows(p)) == 1


def test_the_lakes_overwrite_of_a_new_table_by_two_runs_at_once_keeps_one(spark, tmp_path):
    """Two runs writing a whole (silver or gold) table that does not exist yet, at once."""
    p = str(tmp_path / "t")
    results = _race("lake_overwrite", p, tmp_path / "sync")
    assert [r["ok"] for r in results] == [True, True], results
    assert len(_one_writers_rows(p)) == 1
