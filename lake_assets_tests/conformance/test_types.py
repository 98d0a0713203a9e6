"""Values and types kept exactly through a write and a delta-rs read-back; time zones."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa

from ._delta import field_types, read_table, rows, run_worker, version

UTC = dt.timezone.utc

SOURCE = pa.table(
    {
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "i": pa.array([1, None, -2147483648, 2147483647], pa.int32()),
        "b": pa.array(
            [9007199254740993, None, -9223372036854775808, 9223372036854775807], pa.int64()
        ),
        "d10": pa.array(
            [Decimal("12345678.90"), None, Decimal("-0.01"), Decimal("-99999999.99")],
            pa.decimal128(10, 2),
        ),
        "d18": pa.array(
            [Decimal("9999999999999999.99"), None, Decimal("0.00"), Decimal("0.10")],
            pa.decimal128(18, 2),
        ),
        "s": pa.array(["héllo wörld 😀 日本語 Ωμέγα", None, "  padded  ", "naïve café 🇫🇷"]),
        "e": pa.array(["", None, " ", "\t"]),
        "ts": pa.array(
            [
                dt.datetime(2024, 3, 10, 10, 30, 0, 123456, tzinfo=UTC),
                None,
                dt.datetime(1970, 1, 1, tzinfo=UTC),
                dt.datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        "dt": pa.array(
            [dt.date(2024, 2, 29), None, dt.date(1900, 1, 1), dt.date(9999, 12, 31)], pa.date32()
        ),
        "bo": pa.array([True, None, False, True]),
    }
)


def test_types_round_trip_through_delta(spark, tmp_path):
    df = spark.createDataFrame(SOURCE)
    assert df.schema.simpleString() == (
        "struct<id:bigint,i:int,b:bigint,d10:decimal(10,2),d18:decimal(18,2),s:string,"
        "e:string,ts:timestamp,dt:date,bo:boolean>"
    )
    p = str(tmp_path / "t")
    df.write.format("delta").save(p)
    assert version(p) == 0
    assert {k: t for k, (t, _) in field_types(p).items()} == {
        "id": "long",
        "i": "integer",
        "b": "long",
        "d10": "decimal(10,2)",
        "d18": "decimal(18,2)",
        "s": "string",
        "e": "string",
        "ts": "timestamp",
        "dt": "date",
        "bo": "boolean",
    }
    back = read_table(p, "select * from t order by id")
    assert [str(f.type) for f in back.schema] == [
        "int64",
        "int32",
        "int64",
        "decimal128(10, 2)",
        "decimal128(18, 2)",
        "string_view",
        "string_view",
        "timestamp[us, tz=UTC]",
        "date32[day]",
        "bool",
    ]
    assert back.to_pylist() == SOURCE.to_pylist()
    # exact strings: empty is not null, spaces and tabs kept, unicode byte-exact
    assert rows(p, "select id from t where e = '' ") == [{"id": 1}]
    assert rows(p, "select id from t where e is null") == [{"id": 2}]
    assert [r["s"] for r in rows(p, "select s from t order by id")] == SOURCE["s"].to_pylist()
    # and through the engine itself
    mine = spark.read.format("delta").load(p).orderBy("id").toArrow()
    assert mine.to_pylist() == SOURCE.to_pylist()
    assert str(mine.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    lengths = (
        spark.read.format("delta")
        .load(p)
        .orderBy("id")
        .selectExpr("length(s) AS n", "octet_length(s) AS o")
        .collect()
    )
    assert [(r.n, r.o) for r in lengths] == [
        (len(SOURCE["s"][0].as_py()), len(SOURCE["s"][0].as_py().encode())),
        (None, None),
        (10, 10),
        (len("naïve café 🇫🇷"), len("naïve café 🇫🇷".encode())),
    ]


def test_int_vs_bigint_from_python_rows(spark, tmp_path):
    p = str(tmp_path / "t")
    spark.createDataFrame([(1, 2, 3)], "a int, b bigint, c smallint").write.format("delta").save(p)
    assert {k: t for k, (t, _) in field_types(p).items()} == {
        "a": "integer",
        "b": "long",
        "c": "short",
    }
    assert [str(f.type) for f in read_table(p).schema] == ["int32", "int64", "int16"]
    # Python ints without a schema are bigint; literals are int until they do not fit
    assert spark.createDataFrame([(1,)], ["x"]).schema.simpleString() == "struct<x:bigint>"
    r = spark.sql("SELECT typeof(1) a, typeof(3000000000) b, typeof(1.5) c").collect()[0]
    assert tuple(r) == ("int", "bigint", "decimal(2,1)")


def test_arrow_timestamp_units_and_zones(spark, tmp_path):
    """ms / ns / other-zone / naive arrow timestamps all become Spark `timestamp`, stored as
    UTC microseconds; a NAIVE arrow timestamp is taken as UTC (not the machine's zone)."""
    t = pa.table(
        {
            "k": pa.array([1, 2, 3, 4], pa.int64()),
            "ms": pa.array(
                [dt.datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)] * 4,
                pa.timestamp("ms", tz="UTC"),
            ),
            "ny": pa.array(
                [dt.datetime(2024, 1, 1, 5, 0, tzinfo=UTC)] * 4,
                pa.timestamp("us", tz="America/New_York"),
            ),
            "naive": pa.array([dt.datetime(2024, 1, 1, 0, 0)] * 4, pa.timestamp("us")),
        }
    )
    df = spark.createDataFrame(t)
    assert df.schema.simpleString() == "struct<k:bigint,ms:timestamp,ny:timestamp,naive:timestamp>"
    p = str(tmp_path / "t")
    df.write.format("delta").save(p)
    back = read_table(p, "select * from t where k = 1")
    assert [str(f.type) for f in back.schema][1:] == ["timestamp[us, tz=UTC]"] * 3
    assert back.to_pylist()[0] == {
        "k": 1,
        "ms": dt.datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC),
        "ny": dt.datetime(2024, 1, 1, 5, 0, tzinfo=UTC),
        "naive": dt.datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
    }


def test_timestamps_are_utc_whatever_the_machine_zone(tmp_path):
    """A process with TZ=America/Los_Angeles (time.tzset) writes the same UTC instants:
    naive strings (to_timestamp, CAST) are read in the session zone, UTC, even at a DST gap
    or overlap in Los Angeles. Two client-side exceptions, pinned: a naive PYTHON datetime
    is taken in the machine's zone, and collect() returns naive datetimes in the machine's
    zone (use toArrow(), unix_micros or date_format to see UTC)."""
    p = str(tmp_path / "t")
    res = run_worker("tz", p, TZ="America/Los_Angeles")
    assert res["ok"], res
    assert res["tzname"] == ["PST", "PDT"]
    assert res["session_tz"] == "UTC"
    expected = {
        1: dt.datetime(2024, 3, 10, 10, 30, 0, 123456, tzinfo=UTC),  # arrow, tz=UTC
        2: dt.datetime(2024, 3, 10, 2, 30, tzinfo=UTC),  # to_timestamp('2024-03-10 02:30:00')
        3: dt.datetime(2024, 11, 3, 1, 30, 0, 1, tzinfo=UTC),  # CAST('2024-11-03 01:30:00.000001')
        4: dt.datetime(2024, 1, 1, 0, 0, tzinfo=UTC),  # naive arrow timestamp
        5: dt.datetime(2024, 1, 1, 8, 0, tzinfo=UTC),  # naive Python datetime: LA midnight!
    }
    back = {r["k"]: r["ts"] for r in rows(p, "select k, ts from t")}
    assert back == expected
    assert version(p) == 3
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    assert res["unix_micros"] == {
        str(k): (v - epoch) // dt.timedelta(microseconds=1) for k, v in expected.items()
    }
    assert res["to_arrow"] == {str(k): v.isoformat() for k, v in expected.items()}
    assert res["date_format"] == {
        str(k): v.strftime("%Y-%m-%d %H:%M:%S.%f") for k, v in expected.items()
    }
    # collect(): naive, in Los Angeles time
    assert res["collect"] == {
        "1": "2024-03-10T03:30:00.123456",
        "2": "2024-03-09T18:30:00",
        "3": "2024-11-02T18:30:00.000001",
        "4": "2023-12-31T16:00:00",
        "5": "2024-01-01T00:00:00",
    }
