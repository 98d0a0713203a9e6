"""A process with its own embedded engine, for the conformance tests that need one.

    python _worker.py tz <table>                      write timestamps with TZ=America/Los_Angeles
    python _worker.py checkpoint <table>              localCheckpoint / cache over a Delta read
    python _worker.py append <table> <tag> <sync>     three appends, after the go signal
    python _worker.py merge <table> <tag> <sync>      one CDC-style MERGE, after the go signal
    python _worker.py overwrite <table> <tag> <sync>  one overwrite of 10 rows, after the go signal
                                                      (replaceWhere: LAKE_TEST_REPLACE_WHERE)
    python _worker.py lake_overwrite <table> <tag> <sync>  the same through the lake's own
                                                      write (io_manager.write_frame, retried)

Prints one JSON line with the outcome. <sync> is a folder: the worker creates ready-<tag>
once its engine is up, then waits for a file named go, so that writers really overlap.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _spark():
    from lake_assets.lib.engine import local_spark

    return local_spark()


def _wait_for_go(sync: str, tag: str) -> None:
    open(os.path.join(sync, f"ready-{tag}"), "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(sync, "go")):
        if time.monotonic() > deadline:
            raise TimeoutError("no go signal")
        time.sleep(0.005)


def tz(path: str) -> dict:
    # The machine's zone is Los Angeles; the session's is UTC (lake_assets.lib.engine).
    os.environ["TZ"] = "America/Los_Angeles"
    time.tzset()
    import datetime as dt

    import pyarrow as pa

    spark = _spark()
    utc = dt.timezone.utc
    aware = pa.table(
        {
            "k": pa.array([1], pa.int64()),
            "ts": pa.array(
                [dt.datetime(2024, 3, 10, 10, 30, 0, 123456, tzinfo=utc)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    spark.createDataFrame(aware).write.format("delta").save(path)
    # Naive strings: 02:30 on 2024-03-10 does not exist in Los Angeles (DST gap) and
    # 01:30 on 2024-11-03 happens twice there; in UTC both are plain instants.
    spark.sql(
        "SELECT CAST(2 AS BIGINT) AS k, to_timestamp('2024-03-10 02:30:00') AS ts "
        "UNION ALL SELECT CAST(3 AS BIGINT), CAST('2024-11-03 01:30:00.000001' AS TIMESTAMP)"
    ).write.format("delta").mode("append").save(path)
    naive_arrow = pa.table(
        {
            "k": pa.array([4], pa.int64()),
            "ts": pa.array([dt.datetime(2024, 1, 1, 0, 0)], pa.timestamp("us")),
        }
    )
    spark.createDataFrame(naive_arrow).write.format("delta").mode("append").save(path)
    # A naive Python datetime goes through the client's local zone, not the session's.
    spark.createDataFrame(
        [(5, dt.datetime(2024, 1, 1, 0, 0))], "k bigint, ts timestamp"
    ).write.format("delta").mode("append").save(path)
    df = spark.read.format("delta").load(path)
    micros = {r["k"]: r["u"] for r in df.selectExpr("k", "unix_micros(ts) AS u").collect()}
    collected = {r["k"]: r["ts"].isoformat() for r in df.collect()}
    arrow = {r["k"]: r["ts"].isoformat() for r in df.toArrow().to_pylist()}
    formatted = {
        r["k"]: r["f"]
        for r in df.selectExpr("k", "date_format(ts, 'yyyy-MM-dd HH:mm:ss.SSSSSS') AS f").collect()
    }
    return {
        "tzname": list(time.tzname),
        "session_tz": spark.conf.get("spark.sql.session.timeZone"),
        "unix_micros": {str(k): v for k, v in micros.items()},
        "collect": {str(k): v for k, v in collected.items()},
        "to_arrow": {str(k): v for k, v in arrow.items()},
        "date_format": {str(k): v for k, v in formatted.items()},
    }


def checkpoint(path: str) -> dict:
    """Needs SAIL_EXECUTION__CHECKPOINT__PATH in the environment before the engine starts."""
    spark = _spark()
    out: dict = {}
    spark.createDataFrame([(1,)], "k bigint").write.format("delta").save(path)
    lc = spark.read.format("delta").load(path).localCheckpoint()
    cached = spark.read.format("delta").load(path).cache()
    out["cache_before"] = cached.count()
    spark.createDataFrame([(2,)], "k bigint").write.format("delta").mode("append").save(path)
    out["local_checkpoint_after_append"] = sorted(r.k for r in lc.collect())
    out["cache_after_append"] = sorted(r.k for r in cached.collect())
    out["plain_after_append"] = sorted(r.k for r in spark.read.format("delta").load(path).collect())
    root = os.environ["SAIL_EXECUTION__CHECKPOINT__PATH"]
    out["checkpoint_files"] = sum(
        name.endswith(".parquet") for _, _, names in os.walk(root) for name in names
    )
    return out


def append(path: str, tag: str, sync: str) -> dict:
    spark = _spark()
    spark.range(1).collect()
    base = int(tag) * 1000
    frames = [
        spark.createDataFrame([(base + i * 10 + j, tag) for j in range(10)], "k bigint, w string")
        for i in range(3)
    ]
    _wait_for_go(sync, tag)
    for f in frames:
        f.write.format("delta").mode("append").save(path)
    return {}


def merge(path: str, tag: str, sync: str) -> dict:
    """Update keys 0..9 to u<tag>, insert <tag>00..<tag>04 and the shared key 500."""
    spark = _spark()
    base = int(tag) * 100
    src = [(k, f"u{tag}") for k in range(10)]
    src += [(base + j, f"i{tag}") for j in range(5)] + [(500, f"i{tag}")]
    view = f"merge_src_{tag}"
    spark.createDataFrame(src, "k bigint, w string").createOrReplaceTempView(view)
    spark.range(1).collect()
    _wait_for_go(sync, tag)
    spark.sql(
        f"MERGE INTO delta.`{path}` t USING {view} s ON t.k = s.k "
        "WHEN MATCHED THEN UPDATE SET w = s.w "
        "WHEN NOT MATCHED THEN INSERT (k, w) VALUES (s.k, s.w)"
    )
    return {}


def _ten_rows_when_go(tag: str, sync: str):
    """(engine, keys 0..9 tagged <tag>), returned once the go signal came."""
    spark = _spark()
    df = spark.createDataFrame([(k, tag) for k in range(10)], "k bigint, w string")
    spark.range(1).collect()
    _wait_for_go(sync, tag)
    return spark, df


def overwrite(path: str, tag: str, sync: str) -> dict:
    """Overwrite the table (or create it) with keys 0..9 tagged <tag>."""
    _, df = _ten_rows_when_go(tag, sync)
    writer = df.write.format("delta").mode("overwrite")
    if os.environ.get("LAKE_TEST_REPLACE_WHERE"):
        writer = writer.option("replaceWhere", os.environ["LAKE_TEST_REPLACE_WHERE"])
    writer.save(path)
    return {}


def lake_overwrite(path: str, tag: str, sync: str) -> dict:
    from lake_assets.lib.retry import with_commit_retry
    from lake_assets.resources.io_manager import write_frame

    spark, df = _ten_rows_when_go(tag, sync)
    with_commit_retry(lambda: write_frame(spark, df, path, "t", "overwrite", None, None))
    return {}


def main(argv: list[str]) -> None:
    cmd, *args = argv
    result: dict = {"cmd": cmd, "args": args}
    try:
        result.update(globals()[cmd](*args))
        result["ok"] = True
    except Exception as e:  # the outcome is reported, not raised
        result["ok"] = False
        result["error_type"] = type(e).__name__
        result["error"] = str(e)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
