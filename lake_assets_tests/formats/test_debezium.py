"""`format: debezium`: Kafka Connect S3 sink files of Debezium events, synced through the real
assets into Delta tables (fixtures and where their wire format comes from: debezium/README.md)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from lake_assets.catalog import CatalogError, parse_catalog
from lake_assets_tests.assets._lake import assert_ok, bronze, raw, utc

FIXTURES = Path(__file__).parent / "debezium"
PG_FILE = "pg.public.accounts+0+0000000000.json"
PG_TRUNCATE_FILE = "pg.public.accounts+0+0000000006.json"
MY_FILE = "my.inventory.products+0+0000000000.json"

CATALOG = """
sources:
  - name: pg
    format: debezium
    start_date: "2024-01-01"
    tables:
      - name: accounts
        schema: public
        primary_key: [id]
        columns:
          id: bigint
          name: string
          balance: decimal(10,2)
          opened: date
          updated_at: timestamp
          synced_at: timestamp
          closed_at: timestamp
  - name: my
    format: debezium
    start_date: "2024-01-01"
    tables:
      - name: products
        schema: inventory
        primary_key: [id]
"""


def _land(lake, source: str, topic: str, name: str, data: bytes, folder="partition=0") -> Path:
    path = lake.landing / source / topic / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _fixture(lake, source: str, kind: str, name: str, folder="partition=0") -> Path:
    topic = name.split("+", 1)[0]
    return _land(lake, source, topic, name, (FIXTURES / kind / name).read_bytes(), folder)


def _event(op: str, ms: int, before=None, after=None) -> dict:
    source = {
        "version": "2.5.0.Final",
        "connector": "postgresql",
        "name": "pg",
        "ts_ms": ms,
        "snapshot": "false",
        "db": "bank",
        "schema": "public",
        "table": "accounts",
    }
    return {"before": before, "after": after, "source": source, "op": op, "ts_ms": ms + 50}


def _lines(*events) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def _account(id: int, name: str) -> dict:
    return {"id": id, "name": name}


def _accounts(lake, name: str, *events, folder="partition=0") -> Path:
    return _land(lake, "pg", "pg.public.accounts", name, _lines(*events), folder)


def _names(lake, source="pg", table="accounts") -> list[tuple]:
    return [(r["id"], r["name"]) for r in bronze(lake, table, source=source)]


def test_postgres_events_without_schema_apply_in_offset_order_typed_by_the_catalog(lake):
    lake.write_catalog(CATALOG)
    _fixture(lake, "pg", "postgres", PG_FILE)
    assert_ok(lake.sync())
    # The update's source.ts_ms is before the snapshot read's, its offset after: offsets win.
    assert bronze(lake, "accounts", source="pg") == [
        {
            "id": 1,
            "name": "Ada L.",
            "balance": Decimal("999.99"),
            "opened": dt.date(2024, 1, 2),
            "updated_at": utc(2024, 1, 2, 10, 0, 3),
            "synced_at": utc(2024, 1, 2, 10, 0, 3, 456000),
            "closed_at": None,
        },
        {
            "id": 3,
            "name": "Cy",
            "balance": Decimal("0.00"),
            "opened": dt.date(2024, 1, 4),
            "updated_at": utc(2024, 1, 2, 11, 0, 0, 123456),
            "synced_at": utc(2024, 1, 2, 11, 0, 0, 123000),
            "closed_at": utc(2024, 1, 2, 10, 30, 0, 500000),
        },
    ]
    got = raw(lake, "accounts", "_commit_ts", "_file_date", source="pg")
    assert [(r["_op"], r["id"], r["_file_pos"]) for r in got] == [
        ("I", 1, 0),
        ("I", 2, 1),
        ("U", 1, 2),
        ("I", 3, 3),
        ("D", 2, 4),
    ]
    assert got[2]["_commit_ts"] == utc(2024, 1, 2, 10, 0, 3)
    assert got[1]["balance"] == Decimal("-5.25")
    assert got[4]["name"] is None and got[4]["balance"] is None  # a delete: its key alone
    assert {r["_source_file"] for r in got} == {PG_FILE}
    assert {r["_file_date"] for r in got} == {dt.date(2024, 1, 2)}  # its first event's day


def test_mysql_events_with_schema_decode_every_logical_type(lake):
    lake.write_catalog(CATALOG)
    _fixture(lake, "my", "mysql", MY_FILE)
    assert_ok(lake.sync())
    assert [(r["id"], r["name"]) for r in bronze(lake, "products", source="my")] == [
        (101, "scooter v2")
    ]
    got = raw(lake, "products", "_commit_ts", source="my")
    assert [(r["_op"], r["id"]) for r in got] == [("I", 101), ("I", 102), ("U", 101), ("D", 102)]
    assert got[0]["_commit_ts"] == utc(2024, 1, 2, 10)
    assert got[1]["price"] == Decimal("123451.10")  # Paimon's bytes, at this column's scale
    row = got[2]
    assert {k: row[k] for k in row if not k.startswith("_")} == {
        "id": 101,
        "name": "scooter v2",
        "price": Decimal("-5.25"),
        "weight": 3.14,
        "released": dt.date(2023, 3, 23),
        "made_at": utc(2023, 3, 23, 14, 30, 5, 123000),
        "seen_at": utc(2023, 3, 23, 14, 30, 5, 123456),
        "nano_at": utc(2023, 3, 23, 14, 30, 5, 123456),  # ns cut to the lake's µs
        "stamped": utc(2023, 3, 23, 22, 0, 10, 123456),
        "opens": "10:13:23.000000",
        "attrs": '{"a": "b"}',
        "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "flags": bytes([0x05, 0x80]),
        "tags": ["x", None, "y"],
        "ratio": Decimal("-0.0015"),
        "year": 2023,
    }
    from lake_assets_tests.conftest import read_delta

    types = read_delta(
        lake.path("raw", "my", "products"),
        "SELECT arrow_typeof(price) p, arrow_typeof(ratio) r FROM t LIMIT 1",
    )
    assert types == [{"p": "Decimal128(10, 2)", "r": "Decimal128(38, 18)"}]


def test_raw_holds_a_truncate_as_one_change_with_null_columns(lake, dagster_instance):
    from lake_assets.keys import asset_key

    lake.write_catalog(CATALOG)
    _fixture(lake, "pg", "postgres", PG_TRUNCATE_FILE)
    res = (
        lake.defs()
        .resolve_implicit_global_asset_job_def()
        .execute_in_process(
            instance=dagster_instance,
            partition_key="2024-01-03",
            asset_selection=[asset_key("raw", "pg", "accounts")],
            raise_on_error=False,
        )
    )
    assert res.success
    got = raw(lake, "accounts", "_commit_ts", source="pg")
    assert [(r["_op"], r["id"], r["name"], r["_file_pos"]) for r in got] == [
        ("I", 4, "Di", 0),
        ("T", None, None, 1),
        ("I", 5, "Eve", 2),
    ]
    assert got[1]["_commit_ts"] == utc(2024, 1, 3, 11)


def test_gzipped_files_in_partition_and_time_folders_of_several_partitions(lake):
    lake.write_catalog(CATALOG)
    first = _lines(_event("c", 1704189600000, after=_account(1, "a")))
    _land(
        lake,
        "pg",
        "pg.public.accounts",
        "pg.public.accounts+0+0000000000.json.gz",
        gzip.compress(first),
    )
    _accounts(
        lake,
        "pg.public.accounts+1+0000000000.json",
        _event("c", 1704189600000, after=_account(2, "b")),
        folder="year=2024/month=01/day=02/hour=10",
    )
    assert_ok(lake.sync())
    assert _names(lake) == [(1, "a"), (2, "b")]


def test_a_file_landed_twice_is_held_once_and_a_second_sync_changes_nothing(lake):
    lake.write_catalog(CATALOG)
    once = _accounts(
        lake,
        "pg.public.accounts+0+0000000000.json",
        _event("c", 1704189600000, after=_account(1, "a")),
        _event("u", 1704189601000, after=_account(1, "b")),
    )
    _land(lake, "pg", "pg.public.accounts", once.name, once.read_bytes(), "elsewhere/partition=0")
    assert_ok(lake.sync())
    assert [(r["_op"], r["name"]) for r in raw(lake, "accounts", source="pg")] == [
        ("I", "a"),
        ("U", "b"),
    ]
    version = lake.version("raw", "pg", "accounts")
    assert_ok(lake.sync())
    assert lake.version("raw", "pg", "accounts") == version


def test_a_late_file_of_earlier_offsets_does_not_undo_later_ones(lake):
    lake.write_catalog(CATALOG)
    _accounts(
        lake,
        "pg.public.accounts+0+0000000002.json",
        _event("u", 1704189602000, after=_account(1, "newest")),
    )
    assert_ok(lake.sync())
    # Lands a day later, with later commit times (clock skew): offsets 0-1 still come first.
    _accounts(
        lake,
        "pg.public.accounts+0+0000000000.json",
        _event("c", 1704276000000, after=_account(1, "old")),
        _event("u", 1704276001000, after=_account(1, "older")),
    )
    assert_ok(lake.sync())
    assert _names(lake) == [(1, "newest")]
    assert [r["name"] for r in raw(lake, "accounts", source="pg")] == ["old", "older", "newest"]


def test_a_delete_removes_its_key_and_a_later_insert_brings_it_back(lake):
    lake.write_catalog(CATALOG)
    _accounts(
        lake,
        "pg.public.accounts+0+0000000000.json",
        _event("c", 1704189600000, after=_account(1, "a")),
        _event("c", 1704189600001, after=_account(2, "b")),
        _event("d", 1704189601000, before=_account(1, "a")),
        None,
        _event("d", 1704189602000, before={"id": 2}),
    )
    assert_ok(lake.sync())
    assert _names(lake) == []
    _accounts(
        lake,
        "pg.public.accounts+0+0000000005.json",
        _event("c", 1704189603000, after=_account(1, "again")),
    )
    assert_ok(lake.sync())
    assert _names(lake) == [(1, "again")]


@pytest.mark.parametrize(
    "line, reason",
    [
        (b'{"op": "c", "after": {"id": 1}', "line 2: not JSON"),
        (json.dumps(_event("x", 1704189600000, after={"id": 1})).encode(), "line 2: op 'x'"),
        (
            json.dumps(_event("d", 1704189600000, before={"name": "a"})).encode(),
            "line 2: op 'd': `before` lacks key column(s) ['id']",
        ),
        (json.dumps({"id": 1, "name": "flattened"}).encode(), "line 2: no `op`"),
    ],
    ids=["malformed-json", "unknown-op", "delete-without-key", "not-an-envelope"],
)
def test_a_bad_line_fails_its_file_naming_file_and_line(lake, line, reason):
    lake.write_catalog(CATALOG)
    good = _lines(_event("c", 1704189600000, after=_account(1, "a")))
    bad = _land(
        lake,
        "pg",
        "pg.public.accounts",
        "pg.public.accounts+0+0000000000.json",
        good + line + b"\n",
    )
    res = lake.sync()
    assert not res.ok
    assert any(bad.name in f and reason in f for f in res.failures), res.failures
    assert not (lake.root / "raw" / "pg" / "accounts").exists()  # nothing of it entered
    bad.unlink()
    assert_ok(lake.sync())


def test_a_file_not_named_as_the_sink_names_them_fails_naming_it(lake):
    lake.write_catalog(CATALOG)
    odd = _accounts(lake, "accounts-0.json", _event("c", 1704189600000, after=_account(1, "a")))
    res = lake.sync()
    assert not res.ok and any(odd.name in f and "<topic>+<partition>" in f for f in res.failures), (
        res.failures
    )


def test_the_landing_planner_and_raw_agree_on_a_files_day(lake):
    from lake_assets.lib import plan

    lake.write_catalog(CATALOG)
    _accounts(
        lake,
        "pg.public.accounts+0+0000000000.json",
        None,
        _event("c", 1704276000000, after=_account(1, "a")),  # 2024-01-03
        _event("c", 1704362400000, after=_account(2, "b")),
    )  # 2024-01-04
    source = parse_catalog(lake.catalog.read_text()).source("pg")
    days = plan.pending(str(lake.landing), str(lake.root), source)["accounts"]
    assert list(days) == [dt.date(2024, 1, 3)]
    assert_ok(lake.sync())
    assert {r["_file_date"] for r in raw(lake, "accounts", "_file_date", source="pg")} == {
        dt.date(2024, 1, 3)
    }
    assert plan.pending(str(lake.landing), str(lake.root), source) == {}


# -- the catalog's topic -----------------------------------------------------------------


def test_a_tables_topic_names_its_folder_and_its_files(lake):
    topic = "schema: public\n        topic: cdc.x\n"
    lake.write_catalog(CATALOG.replace("schema: public\n", topic))
    _land(
        lake,
        "pg",
        "cdc.x",
        "cdc.x+0+0000000000.json",
        _lines(_event("c", 1704189600000, after=_account(1, "a"))),
    )
    assert_ok(lake.sync())
    assert _names(lake) == [(1, "a")]


@pytest.mark.parametrize(
    "fmt, topic, error",
    [
        ("dms", "shop.public.t", "'topic' is for format debezium"),
        ("debezium", "no spaces", "is not a Kafka topic name"),
    ],
)
def test_a_topic_the_lake_would_not_use_is_a_catalog_error(fmt, topic, error):
    text = f"""
sources:
  - name: s
    format: {fmt}
    start_date: "2024-01-01"
    tables: [{{name: t, schema: public, primary_key: [id], topic: "{topic}"}}]
"""
    with pytest.raises(CatalogError, match=error):
        parse_catalog(text)


def test_a_copy_without_its_topic_in_the_name_is_refused(tmp_path):
    from lake_assets import formats
    from lake_assets.formats.base import LandedFileError

    source = parse_catalog(CATALOG).source("pg")
    folder = tmp_path / "pg" / "pg.public.accounts" / "partition=0"
    folder.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "postgres" / PG_FILE, folder / "pg.public.other+0+0000000000.json")
    with pytest.raises(LandedFileError, match="a file of topic 'pg.public.other'"):
        formats.resolve(source).list_files(str(tmp_path), source, source.table("accounts"))


# -- values, one file parsed (no lake) ---------------------------------------------------


def _parse(columns: str, *events, wrapped_schema=None):
    from lake_assets import formats
    from lake_assets.formats.base import LandedFile

    text = f"""
sources:
  - name: pg
    format: debezium
    start_date: "2024-01-01"
    tables: [{{name: accounts, schema: public, primary_key: [id], columns: {columns}}}]
"""
    source = parse_catalog(text).source("pg")
    file = LandedFile("f.json", "f.json", "f.json", False, "P", source.start_date, None)
    if wrapped_schema is not None:
        events = [{"schema": wrapped_schema, "payload": e} for e in events]
    return formats.resolve(source).parse(source, source.table("accounts"), file, _lines(*events))


def test_without_a_schema_decimals_read_in_each_decimal_handling_mode():
    events = [
        _event("c", 1704189600000, after={"id": i, "balance": v})
        for i, v in enumerate(["MDk=", "123.45", 123.45, {"scale": 1, "value": "MDk="}])
    ]
    got = _parse("{id: bigint, balance: 'decimal(10,2)'}", *events).column("balance").to_pylist()
    assert got == [Decimal("123.45"), Decimal("123.45"), Decimal("123.45"), Decimal("1234.50")]


def test_without_a_schema_integer_timestamps_are_told_apart_by_magnitude():
    when = [1704189600123, 1704189600123456, 1704189600123456789, "2024-01-02T10:00:00.123Z"]
    events = [
        _event("c", 1704189600000, after={"id": i, "updated_at": v}) for i, v in enumerate(when)
    ]
    got = _parse("{id: bigint, updated_at: timestamp}", *events).column("updated_at").to_pylist()
    assert got == [
        utc(2024, 1, 2, 10, 0, 0, 123000),
        utc(2024, 1, 2, 10, 0, 0, 123456),
        utc(2024, 1, 2, 10, 0, 0, 123456),
        utc(2024, 1, 2, 10, 0, 0, 123000),
    ]


def _schema(*fields):
    row = {
        "type": "struct",
        "fields": [{"type": "int64", "optional": False, "field": "id"}, *fields],
        "optional": True,
    }
    return {"type": "struct", "fields": [{**row, "field": "before"}, {**row, "field": "after"}]}


def test_with_a_schema_times_of_day_run_past_a_day_and_below_zero_as_mysql_sends_them():
    micro = {
        "type": "int64",
        "optional": True,
        "name": "io.debezium.time.MicroTime",
        "version": 1,
        "field": "t",
    }
    events = [
        _event("c", 1704189600000, after={"id": i, "t": v})
        for i, v in enumerate([-3_600_000_001, 90_000_000_000])
    ]
    got = _parse("{id: bigint}", *events, wrapped_schema=_schema(micro)).column("t").to_pylist()
    assert got == ["-01:00:00.000001", "25:00:00.000000"]


def test_with_a_schema_zoned_timestamps_with_nanoseconds_and_offsets_are_utc():
    zoned = {
        "type": "string",
        "optional": True,
        "name": "io.debezium.time.ZonedTimestamp",
        "version": 1,
        "field": "z",
    }
    when = "2024-01-02T11:00:00.123456789+01:00"
    events = [_event("c", 1704189600000, after={"id": 1, "z": when})]
    got = _parse("{id: bigint}", *events, wrapped_schema=_schema(zoned)).column("z").to_pylist()
    assert got == [utc(2024, 1, 2, 10, 0, 0, 123456)]


def test_a_value_of_the_wrong_encoding_fails_naming_line_and_column():
    from lake_assets.formats.base import LandedFileError

    events = [_event("c", 1704189600000, after={"id": 1, "balance": "not base64!"})]
    with pytest.raises(LandedFileError, match=r"f.json: line 1: column 'balance'"):
        _parse("{id: bigint, balance: 'decimal(10,2)'}", *events)
