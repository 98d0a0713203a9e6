"""DMS csv files: headerless with declared columns, with a header row, quoting, nulls, and
commit times from file names. One lake for the module, synced once; one test per behaviour."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from lake_assets_tests.assets._lake import new_lake, own, table_dir, utc
from lake_assets_tests.dms_files import write_text

CATALOG = """
sources:
  - name: crm
    format: dms
    start_date: "2019-01-01"
    tables:
      - name: customers
        schema: classicmodels
        primary_key: [customerNumber]
        columns:
          customerNumber: bigint
          customerName: string
          city: string
          creditLimit: decimal(10,2)
          active: boolean
          since: date
          updatedAt: timestamp
  - name: hdr
    format: dms
    start_date: "2024-01-01"
    timestamp_column: dms_ts
    csv_header: true
    tables:
      - name: items
        schema: dbo
        primary_key: [id]
        columns:
          id: bigint
          price: decimal(10,2)
"""

# customers, headerless: [Op,] customerNumber, customerName, city, creditLimit, active, since,
# updatedAt
LOAD1 = (  # a full load without Op
    "1,Alice,Paris,100.50,true,2020-01-01,2024-01-01 10:00:00.000001\n"
    '2,"Smith, ""Bob"" Jr.",,0.00,false,,\n'
    '3,"multi\nline\r\nname","",,,2019-12-31,2023-06-30 23:59:59\n'
    '4,  spaced  ," Köln ",-5.25,TRUE,2021-02-28,2024-01-01 00:00:00\n'
)
LOAD2 = (  # a second full load, with Op
    "I,5,Zoë 😀,東京,99999999.99,f,2024-01-01,2024-01-01 00:00:00.5\nI,4,Dora,Köln,1.00,,,\n"
)
CDC1 = (  # 2024-01-05 10:15:00.123, flat
    'U,1,Alice,"Lyon, FR",200.00,true,2020-01-01,2024-01-05 10:15:00\nD,2,,,,,,\nI,6,"",,,,,\n'
)
CDC2 = (  # 2024-01-06 08:00:00.0000 (4 digits), in date folders
    'U,3,"say ""hi""",,,,,\nI,2,Bob again,,,,,\n'
)


@pytest.fixture(scope="module")
def csv_lake(tmp_path_factory, dagster_instance):
    lake = new_lake(tmp_path_factory.mktemp("csv"))
    lake.write_catalog(CATALOG)
    d = table_dir(lake.landing, "crm", "classicmodels", "customers")
    write_text(d / "LOAD00000001.csv", LOAD1)
    write_text(d / "LOAD00000002.csv", LOAD2)
    write_text(d / "20240105-101500123.csv", CDC1)
    write_text(d / "2024" / "01" / "06" / "20240106-0800000000.csv", CDC2)
    h = table_dir(lake.landing, "hdr", "dbo", "items")
    # Header rows in their own order (matched by name); `note` and `qty` are not declared: strings.
    write_text(
        h / "LOAD00000001.csv",
        "id,dms_ts,price,note,qty\n"
        "1,2024-01-01 00:00:00,1.10,first,7\n"
        '2,2024-01-01 00:00:00,,"",\n',
    )
    write_text(
        h / "2024" / "01" / "02" / "20240102-120000000.csv",
        "Op,dms_ts,qty,id,note,price\n"
        'U,2024-01-02 11:59:59.999999,8,1,"a, b ""c""",1.20\n'
        "I,2024-01-02 12:00:00,,3, x ,3\n",
    )
    result = lake.sync(dagster_instance)
    return lake, result


def _customers(lake, layer):
    order = "_seq" if layer == "raw" else "customerNumber"
    return lake.rows(layer, "crm", "customers", order)


def test_sync_succeeds(csv_lake):
    lake, result = csv_lake
    assert result.ok, result.failures


def test_headerless_full_load_with_and_without_op_then_cdc(csv_lake):
    lake, _ = csv_lake
    got = own(_customers(lake, "bronze"))
    assert got == [
        {
            "customerNumber": 1,
            "customerName": "Alice",
            "city": "Lyon, FR",
            "creditLimit": Decimal("200.00"),
            "active": True,
            "since": dt.date(2020, 1, 1),
            "updatedAt": utc(2024, 1, 5, 10, 15),
        },
        {
            "customerNumber": 2,
            "customerName": "Bob again",
            "city": None,
            "creditLimit": None,
            "active": None,
            "since": None,
            "updatedAt": None,
        },
        {
            "customerNumber": 3,
            "customerName": 'say "hi"',
            "city": None,
            "creditLimit": None,
            "active": None,
            "since": None,
            "updatedAt": None,
        },
        {
            "customerNumber": 4,
            "customerName": "Dora",
            "city": "Köln",
            "creditLimit": Decimal("1.00"),
            "active": None,
            "since": None,
            "updatedAt": None,
        },
        {
            "customerNumber": 5,
            "customerName": "Zoë 😀",
            "city": "東京",
            "creditLimit": Decimal("99999999.99"),
            "active": False,
            "since": dt.date(2024, 1, 1),
            "updatedAt": utc(2024, 1, 1, 0, 0, 0, 500000),
        },
        {
            "customerNumber": 6,
            "customerName": "",
            "city": None,
            "creditLimit": None,
            "active": None,
            "since": None,
            "updatedAt": None,
        },
    ]


def test_quoting_empty_vs_null_and_spaces_in_raw(csv_lake):
    lake, _ = csv_lake
    load1 = own([x for x in _customers(lake, "raw") if x["_source_file"] == "LOAD00000001.csv"])
    assert load1 == [
        {
            "customerNumber": 1,
            "customerName": "Alice",
            "city": "Paris",
            "creditLimit": Decimal("100.50"),
            "active": True,
            "since": dt.date(2020, 1, 1),
            "updatedAt": utc(2024, 1, 1, 10, 0, 0, 1),
        },
        {
            "customerNumber": 2,
            "customerName": 'Smith, "Bob" Jr.',
            "city": None,
            "creditLimit": Decimal("0.00"),
            "active": False,
            "since": None,
            "updatedAt": None,
        },
        {
            "customerNumber": 3,
            "customerName": "multi\nline\r\nname",
            "city": "",
            "creditLimit": None,
            "active": None,
            "since": dt.date(2019, 12, 31),
            "updatedAt": utc(2023, 6, 30, 23, 59, 59),
        },
        {
            "customerNumber": 4,
            "customerName": "  spaced  ",
            "city": " Köln ",
            "creditLimit": Decimal("-5.25"),
            "active": True,
            "since": dt.date(2021, 2, 28),
            "updatedAt": utc(2024, 1, 1),
        },
    ]


def test_raw_order_ops_and_commit_times_from_file_names(csv_lake):
    lake, _ = csv_lake
    got = [
        (x["_source_file"], x["_file_pos"], x["_op"], x["customerNumber"], x["_commit_ts"])
        for x in _customers(lake, "raw")
    ]
    assert got == [
        ("LOAD00000001.csv", 0, "I", 1, None),
        ("LOAD00000001.csv", 1, "I", 2, None),
        ("LOAD00000001.csv", 2, "I", 3, None),
        ("LOAD00000001.csv", 3, "I", 4, None),
        ("LOAD00000002.csv", 0, "I", 5, None),
        ("LOAD00000002.csv", 1, "I", 4, None),
        ("20240105-101500123.csv", 0, "U", 1, utc(2024, 1, 5, 10, 15, 0, 123000)),
        ("20240105-101500123.csv", 1, "D", 2, utc(2024, 1, 5, 10, 15, 0, 123000)),
        ("20240105-101500123.csv", 2, "I", 6, utc(2024, 1, 5, 10, 15, 0, 123000)),
        ("20240106-0800000000.csv", 0, "U", 3, utc(2024, 1, 6, 8)),
        ("20240106-0800000000.csv", 1, "I", 2, utc(2024, 1, 6, 8)),
    ]
    assert {x["_file_date"] for x in _customers(lake, "raw")} == {
        dt.date(2019, 1, 1),
        dt.date(2024, 1, 5),
        dt.date(2024, 1, 6),
    }
    assert [x["_commit_ts"] for x in _customers(lake, "bronze")] == [
        utc(2024, 1, 5, 10, 15, 0, 123000),
        utc(2024, 1, 6, 8),
        utc(2024, 1, 6, 8),
        None,
        None,
        utc(2024, 1, 5, 10, 15, 0, 123000),
    ]


def test_csv_columns_are_typed_in_raw_and_bronze(csv_lake):
    lake, _ = csv_lake
    from deltalake import DeltaTable

    for layer in ("raw", "bronze"):
        schema = pa.schema(
            DeltaTable(str(lake.path(layer, "crm", "customers"))).schema().to_arrow()
        )
        types = {f.name: f.type for f in schema if not f.name.startswith("_")}
        assert types == {
            "customerNumber": pa.int64(),
            "customerName": pa.string(),
            "city": pa.string(),
            "creditLimit": pa.decimal128(10, 2),
            "active": pa.bool_(),
            "since": pa.date32(),
            "updatedAt": pa.timestamp("us", tz="UTC"),
        }, layer
        # Column order is the declared (file) order.
        assert [f.name for f in schema if not f.name.startswith("_")] == [
            "customerNumber",
            "customerName",
            "city",
            "creditLimit",
            "active",
            "since",
            "updatedAt",
        ], layer


def test_csv_with_header_matched_by_name_undeclared_columns_strings(csv_lake):
    lake, _ = csv_lake
    got = lake.rows("bronze", "hdr", "items", "id")
    assert own(got, "_commit_ts") == [
        {
            "id": 1,
            "price": Decimal("1.20"),
            "note": 'a, b "c"',
            "qty": "8",
            "_commit_ts": utc(2024, 1, 2, 11, 59, 59, 999999),
        },
        {"id": 2, "price": None, "note": "", "qty": None, "_commit_ts": utc(2024, 1, 1)},
        {
            "id": 3,
            "price": Decimal("3.00"),
            "note": " x ",
            "qty": None,
            "_commit_ts": utc(2024, 1, 2, 12),
        },
    ]
    raw = lake.rows("raw", "hdr", "items", "_seq")
    assert [(x["_op"], x["id"], x["qty"]) for x in raw] == [
        ("I", 1, "7"),
        ("I", 2, None),
        ("U", 1, "8"),
        ("I", 3, None),
    ]
