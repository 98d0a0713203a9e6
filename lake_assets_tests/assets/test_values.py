"""Values kept exactly: nulls, decimals, microsecond timestamps, unicode; UTC whatever the TZ."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal

import pyarrow as pa

from lake_assets_tests.assets._lake import (
    SRC,
    assert_ok,
    bronze,
    catalog,
    cdc,
    load,
    raw,
    table_dir,
    ts,
    utc,
)
from lake_assets_tests.dms_files import write_text

SCHEMA = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("id", pa.int64()),
        ("name", pa.string()),
        ("amount", pa.decimal128(10, 2)),
        ("at", pa.timestamp("us")),
        ("flag", pa.bool_()),
        ("qty", pa.int32()),
        ("ratio", pa.float64()),
        ("day", pa.date32()),
    ]
)
NAMES = [
    "José Ñandú",
    "emoji 😀🎉",
    "漢字テスト",
    "  leading and trailing  ",
    "",
    None,
    "tab\there\nnewline",
]
AMOUNTS = [
    Decimal("12345678.90"),
    Decimal("-0.01"),
    Decimal("0.00"),
    Decimal("99999999.99"),
    None,
    Decimal("-99999999.99"),
    Decimal("1.50"),
]
ATS = [
    dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2024, 3, 10, 2, 30, 0, 1),
    None,
    dt.datetime(2038, 1, 19, 3, 14, 8, 999999),
    dt.datetime(2024, 11, 3, 1, 30, 0, 500000),
    dt.datetime(2000, 2, 29, 0, 0, 0, 0),
]


def _row(i: int, op: str = "I", when: str = "2024-01-01 00:00:00") -> dict:
    return {
        "Op": op,
        "ts": ts(when),
        "id": i,
        "name": NAMES[i],
        "amount": AMOUNTS[i],
        "at": ATS[i],
        "flag": [True, False, None][i % 3],
        "qty": [None, 0, -2147483648, 2147483647][i % 4],
        "ratio": [0.1, None, -1e-300, 1.5e300][i % 4],
        "day": [dt.date(2024, 2, 29), None][i % 2],
    }


def _expected(i: int) -> dict:
    r = _row(i)
    del r["Op"], r["ts"]
    r["at"] = r["at"].replace(tzinfo=dt.timezone.utc) if r["at"] else None
    return r


def test_nulls_decimals_timestamps_and_unicode_kept_exactly(lake):
    lake.write_catalog(catalog("t"))
    load(lake, "t", 1, [_row(i) for i in range(4)], SCHEMA)
    cdc(
        lake,
        "t",
        "2024-01-02 10:00:00.123",
        [{**_row(i, "I", "2024-01-02 10:00:00.123456")} for i in range(4, 7)]
        + [
            {
                **_row(0, "U", "2024-01-02 10:00:00.999999"),
                "name": "ÆØÅ – “quotes” ‘single’ \u00a0nbsp",
            }
        ],
        SCHEMA,
    )
    assert_ok(lake.sync())
    expected = [_expected(i) for i in range(7)]
    expected[0] = {**expected[0], "name": "ÆØÅ – “quotes” ‘single’ \u00a0nbsp"}
    assert bronze(lake, "t") == expected
    got_raw = raw(lake, "t", "_commit_ts")
    assert [x["_commit_ts"] for x in got_raw] == [utc(2024, 1, 1)] * 4 + [
        utc(2024, 1, 2, 10, 0, 0, 123456)
    ] * 3 + [utc(2024, 1, 2, 10, 0, 0, 999999)]
    assert [{k: v for k, v in x.items() if not k.startswith("_")} for x in got_raw] == [
        _expected(i) for i in range(7)
    ] + [expected[0]]
    # The types are the source's.
    from deltalake import DeltaTable

    for layer in ("raw", "bronze"):
        schema = pa.schema(DeltaTable(str(lake.path(layer, SRC, "t"))).schema().to_arrow())
        assert schema.field("amount").type == pa.decimal128(10, 2), layer
        assert schema.field("at").type == pa.timestamp("us", tz="UTC"), layer
        assert schema.field("qty").type == pa.int32(), layer
        assert schema.field("day").type == pa.date32(), layer
        assert schema.field("_commit_ts").type == pa.timestamp("us", tz="UTC"), layer


TZ_CATALOG = """
sources:
  - name: s
    format: dms
    timestamp_column: ts
    start_date: "2024-01-01"
    tables:
      - name: p
        schema: public
        primary_key: [id]
      - name: c
        schema: public
        primary_key: [id]
        columns:
          id: bigint
          at: timestamp
"""


def test_timestamps_are_utc_whatever_the_machines_time_zone(lake):
    lake.write_catalog(TZ_CATALOG)
    schema = pa.schema(
        [("Op", pa.string()), ("ts", pa.string()), ("id", pa.int64()), ("at", pa.timestamp("us"))]
    )
    # String commit times (DMS's yyyy-MM-dd HH:mm:ss.ffffff), naive timestamps, and instants
    # that do not exist or happen twice in zones with daylight saving.
    rows = [
        {
            "Op": "I",
            "ts": "2024-01-02 00:00:00.000001",
            "id": 1,
            "at": dt.datetime(2024, 1, 2, 0, 0, 0, 1),
        },
        {
            "Op": "I",
            "ts": "2024-01-02 05:30:00",
            "id": 3,
            "at": dt.datetime(2024, 11, 3, 1, 30, 0, 654321),
        },
        {
            "Op": "I",
            "ts": "2024-01-02 23:59:59.999999",
            "id": 2,
            "at": dt.datetime(2024, 3, 10, 2, 30),
        },
    ]
    cdc(lake, "p", "2024-01-03 00:00:00", rows, schema)
    write_text(
        table_dir(lake.landing, SRC, "public", "c") / "20240103-000000000.csv",
        "I,2024-01-02 00:00:00.000001,1,2024-01-02 00:00:00.000001\n"
        "I,2024-01-02 18:30:00.5,2,2024-03-10 02:30:00\n",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "DAGSTER_HOME"))}
    env["TZ"] = "Asia/Kolkata"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lake_assets.cli",
            "sync",
            "--lake-root",
            str(lake.root),
            "--landing",
            str(lake.landing),
            "--sources",
            str(lake.catalog),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [(x["id"], x["_commit_ts"], x["at"]) for x in raw(lake, "p", "_commit_ts")] == [
        (1, utc(2024, 1, 2, 0, 0, 0, 1), utc(2024, 1, 2, 0, 0, 0, 1)),
        (3, utc(2024, 1, 2, 5, 30), utc(2024, 11, 3, 1, 30, 0, 654321)),
        (2, utc(2024, 1, 2, 23, 59, 59, 999999), utc(2024, 3, 10, 2, 30)),
    ]
    assert bronze(lake, "p", "id", "_commit_ts") == [
        {"id": 1, "at": utc(2024, 1, 2, 0, 0, 0, 1), "_commit_ts": utc(2024, 1, 2, 0, 0, 0, 1)},
        {"id": 2, "at": utc(2024, 3, 10, 2, 30), "_commit_ts": utc(2024, 1, 2, 23, 59, 59, 999999)},
        {"id": 3, "at": utc(2024, 11, 3, 1, 30, 0, 654321), "_commit_ts": utc(2024, 1, 2, 5, 30)},
    ]
    assert bronze(lake, "c", "id", "_commit_ts") == [
        {"id": 1, "at": utc(2024, 1, 2, 0, 0, 0, 1), "_commit_ts": utc(2024, 1, 2, 0, 0, 0, 1)},
        {"id": 2, "at": utc(2024, 3, 10, 2, 30), "_commit_ts": utc(2024, 1, 2, 18, 30, 0, 500000)},
    ]
    # The raw partition is the day of the file's name, in UTC.
    assert {x["_file_date"] for x in lake.rows("raw", SRC, "p")} == {dt.date(2024, 1, 3)}
