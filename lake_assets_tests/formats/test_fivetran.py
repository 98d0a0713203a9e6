"""`format: fivetran`: Fivetran's rows (`_fivetran_synced`, `_fivetran_deleted`, and history
mode's `_fivetran_start`, `_fivetran_end`, `_fivetran_active`) in files named as DMS names them,
synced through the real assets into Delta tables.

The system columns and their meaning are Fivetran's: "System Columns and Tables" and "History
Mode" in Fivetran's documentation, and fivetran/fivetran_partner_sdk's
how-to-handle-history-mode-batch-files.md (a closed version ends 1 ms before the next starts; a
deleted one at the delete's time; an active one at the greatest timestamp)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lake_assets_tests.assets._lake import assert_ok, bronze, raw, utc
from lake_assets_tests.dms_files import cdc_name, write_parquet, write_text

SRC, SCHEMA = "ft", "public"
CATALOG = f"""
sources:
  - name: {SRC}
    format: fivetran
    start_date: "2024-01-01"
    tables:
      - name: accounts
        schema: {SCHEMA}
        primary_key: [id]
        history: true
        columns:
          id: bigint
          name: string
          balance: decimal(10,2)
          opened: date
"""
TS = pa.timestamp("us", tz="UTC")
LIVE = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("balance", pa.decimal128(10, 2)),
        ("opened", pa.date32()),
        ("_fivetran_deleted", pa.bool_()),
        ("_fivetran_synced", TS),
    ]
)
HISTORY = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("_fivetran_start", TS),
        ("_fivetran_end", TS),
        ("_fivetran_active", pa.bool_()),
        ("_fivetran_synced", TS),
    ]
)
# Fivetran's `_fivetran_end` of an active version: the greatest timestamp.
TMAX = dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC)
MS = dt.timedelta(milliseconds=1)


def at(minute: int, second: int = 0, ms: int = 0) -> dt.datetime:
    return utc(2024, 1, 2, 10, minute, second, ms * 1000)


def row(id: int, name: str | None, synced: dt.datetime, deleted=False, **more) -> dict:
    return {
        "id": id,
        "name": name,
        "balance": more.get("balance"),
        "opened": more.get("opened"),
        "_fivetran_deleted": deleted,
        "_fivetran_synced": synced,
    }


def version(id: int, name: str, start, end=TMAX, active=True) -> dict:
    return {
        "id": id,
        "name": name,
        "_fivetran_start": start,
        "_fivetran_end": end,
        "_fivetran_active": active,
        "_fivetran_synced": start,
    }


def land(lake, named: dt.datetime, rows: list[dict], schema=LIVE, folder: str = "") -> Path:
    d = lake.landing / SRC / SCHEMA / "accounts"
    d = d / folder if folder else d / f"{named:%Y/%m/%d}"
    return write_parquet(d / cdc_name(named), rows, schema)


def names(lake) -> list[tuple]:
    return [(r["id"], r["name"]) for r in bronze(lake, "accounts", source=SRC)]


def history(lake) -> list[tuple]:
    rows = lake.rows("bronze", SRC, "accounts_history", "id, _valid_from")
    return [(r["id"], r["name"], r["_valid_from"], r["_valid_to"]) for r in rows]


def test_rows_apply_by_synced_time_then_file_then_position_typed_as_parquet_says(lake):
    lake.write_catalog(CATALOG)
    # Named earlier, synced later: `_fivetran_synced` orders, not the name.
    land(lake, at(0), [row(1, "late", at(5))])
    land(
        lake,
        at(1),
        [
            row(1, "a", at(1), balance=Decimal("12.50"), opened=dt.date(2024, 1, 2)),
            row(2, "b", at(1)),
            row(2, "b2", at(1)),  # one synced time: position decides
        ],
    )
    assert_ok(lake.sync())
    assert bronze(lake, "accounts", source=SRC) == [
        {"id": 1, "name": "late", "balance": None, "opened": None},
        {"id": 2, "name": "b2", "balance": None, "opened": None},
    ]
    got = raw(lake, "accounts", "_commit_ts", source=SRC)
    assert [(r["_op"], r["id"], r["name"], r["_file_pos"]) for r in got] == [
        ("U", 1, "a", 0),
        ("U", 2, "b", 1),
        ("U", 2, "b2", 2),
        ("U", 1, "late", 0),
    ]
    assert got[0]["balance"] == Decimal("12.50") and got[0]["opened"] == dt.date(2024, 1, 2)
    assert got[-1]["_commit_ts"] == at(5)
    # Fivetran's columns are carried as _op and _commit_ts only.
    cols = lake.rows("raw", SRC, "accounts")[0].keys()
    assert not [c for c in cols if c.startswith("_fivetran")]


def test_a_deleted_row_removes_its_key_an_older_row_landing_late_does_not_bring_it_back(lake):
    lake.write_catalog(CATALOG)
    land(lake, at(1), [row(1, "a", at(1)), row(2, "b", at(1))])
    land(lake, at(3), [row(1, None, at(3), deleted=True)])
    assert_ok(lake.sync())
    assert names(lake) == [(2, "b")]
    land(lake, at(2), [row(1, "between", at(2))])  # lands late, synced before the delete
    assert_ok(lake.sync())
    assert names(lake) == [(2, "b")]
    land(lake, at(4), [row(1, "again", at(4))])  # an upsert of a deleted key inserts it
    assert_ok(lake.sync())
    assert names(lake) == [(1, "again"), (2, "b")]
    assert [r["_op"] for r in raw(lake, "accounts", source=SRC)] == ["U", "U", "U", "D", "U"]


def test_csv_with_a_header_row_is_typed_by_the_catalog(lake):
    lake.write_catalog(CATALOG)
    d = lake.landing / SRC / SCHEMA / "accounts"
    write_text(
        d / "20240102-100100000.csv",
        "id,name,balance,opened,_fivetran_deleted,_fivetran_synced\n"
        '1,"Ada, L.",-5.25,2024-01-02,false,2024-01-02 10:01:00.123456\n'
        "2,b,,,TRUE,2024-01-02 10:01:00.5\n"
        "3,c,1.00,,,2024-01-02 10:01:01\n",
    )
    assert_ok(lake.sync())
    assert bronze(lake, "accounts", source=SRC) == [
        {"id": 1, "name": "Ada, L.", "balance": Decimal("-5.25"), "opened": dt.date(2024, 1, 2)},
        {"id": 3, "name": "c", "balance": Decimal("1.00"), "opened": None},
    ]
    got = raw(lake, "accounts", "_commit_ts", source=SRC)
    assert [r["_op"] for r in got] == ["U", "D", "U"]  # an empty _fivetran_deleted: not deleted
    assert got[0]["_commit_ts"] == utc(2024, 1, 2, 10, 1, 0, 123456)


def test_a_file_landed_twice_is_held_once_and_a_second_sync_changes_nothing(lake):
    lake.write_catalog(CATALOG)
    once = land(lake, at(1), [row(1, "a", at(1)), row(1, "b", at(2))])
    # The same name again, flat in the table's folder rather than in its date folder.
    (lake.landing / SRC / SCHEMA / "accounts" / once.name).write_bytes(once.read_bytes())
    assert_ok(lake.sync())
    assert [(r["_op"], r["name"]) for r in raw(lake, "accounts", source=SRC)] == [
        ("U", "a"),
        ("U", "b"),
    ]
    v = lake.version("raw", SRC, "accounts")
    assert_ok(lake.sync())
    assert lake.version("raw", SRC, "accounts") == v


@pytest.mark.parametrize(
    "rows, schema, reason",
    [
        (
            [
                {**row(1, "ok", at(0)), "_fivetran_deleted": "false"},
                {**row(1, "a", at(1)), "_fivetran_deleted": "maybe"},
            ],
            LIVE.set(4, pa.field("_fivetran_deleted", pa.string())),
            "row 1 (position in the file): _fivetran_deleted is 'maybe', not true or false",
        ),
        (
            [{"name": "a", "_fivetran_synced": at(1), "_fivetran_id": "x1"}],
            pa.schema(
                [("name", pa.string()), ("_fivetran_synced", TS), ("_fivetran_id", pa.string())]
            ),
            "primary key column(s) ['id'] missing; it has Fivetran's _fivetran_id",
        ),
        (
            [row(1, "ok", at(0)), {**row(1, "a", at(1)), "id": None}],
            LIVE,
            "row 1 (position in the file): primary key column 'id' is null",
        ),
        (
            [row(1, "ok", at(0)), {**row(1, "a", at(1)), "_fivetran_synced": None}],
            LIVE,
            "row 1 (position in the file): _fivetran_synced is null",
        ),
        (
            [{"id": 1, "name": "a", "_fivetran_start": at(1), "_fivetran_synced": at(1)}],
            pa.schema(
                [
                    ("id", pa.int64()),
                    ("name", pa.string()),
                    ("_fivetran_start", TS),
                    ("_fivetran_synced", TS),
                ]
            ),
            "a history-mode file has ['_fivetran_start'] but not",
        ),
    ],
    ids=["unknown-deleted-value", "keyless-table", "null-key", "null-synced", "half-history"],
)
def test_a_bad_file_fails_naming_file_and_row_and_nothing_of_it_enters(lake, rows, schema, reason):
    lake.write_catalog(CATALOG)
    bad = land(lake, at(1), rows, schema)
    res = lake.sync()
    assert not res.ok
    assert any(bad.name in f and reason in f for f in res.failures), res.failures
    assert not (lake.root / "raw" / SRC / "accounts").exists()  # nothing of it entered
    bad.unlink()
    assert_ok(lake.sync())


def test_a_malformed_file_and_a_file_not_named_by_time_fail_naming_them(lake):
    lake.write_catalog(CATALOG)
    d = lake.landing / SRC / SCHEMA / "accounts"
    broken = write_text(d / "20240102-100100000.parquet", "not parquet at all")
    res = lake.sync()
    assert not res.ok
    assert any(
        broken.name in f and "cannot be read as a Fivetran parquet" in f for f in res.failures
    )
    broken.unlink()
    load = write_parquet(d / "LOAD00000001.parquet", [row(1, "a", at(1))], LIVE)
    res = lake.sync()
    assert any(load.name in f and "a LOAD file" in f for f in res.failures), res.failures
    load.unlink()
    odd = write_parquet(d / "part-00000-1c1b.c000.snappy.parquet", [row(1, "a", at(1))], LIVE)
    res = lake.sync()
    assert any(odd.name in f and "not a Fivetran file name" in f for f in res.failures)


def test_history_mode_rows_are_versions_and_bronze_the_active_ones(lake):
    lake.write_catalog(CATALOG)
    # Sync 1: 1 and 2 inserted. Sync 2: 1 updated (its old version closed 1 ms before the new
    # one starts), 2 deleted (closed at the delete's time, nothing after it).
    land(lake, at(1), [version(1, "a", at(1)), version(2, "b", at(1, ms=5))], HISTORY)
    land(
        lake,
        at(5),
        [
            version(1, "a", at(1), at(3) - MS, active=False),
            version(1, "a2", at(3)),
            version(2, "b", at(1, ms=5), at(4), active=False),
        ],
        HISTORY,
    )
    assert_ok(lake.sync())
    assert names(lake) == [(1, "a2")]
    assert history(lake) == [
        (1, "a", at(1), at(3)),  # valid until the next version starts, as for DMS
        (1, "a2", at(3), None),
        (2, "b", at(1, ms=5), at(4)),  # until its delete
    ]
    got = raw(lake, "accounts", "_commit_ts", source=SRC)
    assert [(r["_op"], r["id"], r["_commit_ts"]) for r in got] == [
        ("U", 1, at(1)),
        ("U", 1, at(1)),
        ("U", 2, at(1, ms=5)),
        ("U", 2, at(1, ms=5)),
        ("U", 1, at(3)),
        ("D", 2, at(4)),
    ]
    # A key deleted, then inserted again in a later sync; and a late file of older versions.
    land(lake, at(8), [version(2, "b again", at(7))], HISTORY)
    land(lake, at(0, 30), [version(1, "older", at(0))], HISTORY)
    assert_ok(lake.sync())
    assert names(lake) == [(1, "a2"), (2, "b again")]
    assert history(lake) == [
        (1, "older", at(0), at(1)),
        (1, "a", at(1), at(3)),
        (1, "a2", at(3), None),
        (2, "b", at(1, ms=5), at(4)),
        (2, "b again", at(7), None),
    ]


def test_history_mode_reads_active_and_end_from_csv_and_refuses_a_closed_version_without_end(lake):
    lake.write_catalog(CATALOG)
    d = lake.landing / SRC / SCHEMA / "accounts"
    header = "id,name,_fivetran_start,_fivetran_end,_fivetran_active,_fivetran_synced\n"
    write_text(
        d / "20240102-100500000.csv",
        header + "1,a,2024-01-02 10:01:00,2024-01-02 10:02:00,false,2024-01-02 10:05:00\n"
        "2,b,2024-01-02 10:01:00,9999-12-31 23:59:59.999,TRUE,2024-01-02 10:05:00\n",
    )
    assert_ok(lake.sync())
    assert names(lake) == [(2, "b")]
    assert history(lake)[0] == (1, "a", at(1), at(2))
    bad = write_text(
        d / "20240102-100600000.csv",
        header + "3,c,2024-01-02 10:01:00,,false,2024-01-02 10:06:00\n",
    )
    res = lake.sync()
    assert any(
        bad.name in f and "row 0 (position in the file): _fivetran_end is null" in f
        for f in res.failures
    ), res.failures


def test_a_timestamp_column_on_a_fivetran_source_is_a_catalog_error():
    from lake_assets.catalog import CatalogError, parse_catalog

    text = CATALOG.replace("format: fivetran", "format: fivetran\n    timestamp_column: ts")
    with pytest.raises(CatalogError, match="format fivetran orders rows by _fivetran_synced"):
        parse_catalog(text, "c.yaml")
    assert parse_catalog(CATALOG).sources[0].format == "fivetran"
