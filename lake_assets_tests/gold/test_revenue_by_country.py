"""gold/shop/revenue_by_country_at_order, the packaged model, on a hand-made shop: a customer who
moves from DE to FR counts in DE for the order placed before the move and in FR for the one
after; an order placed before a customer's first version counts in that version's country."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from lake_assets.demo import own_catalog
from lake_assets_tests.assets._lake import assert_ok, ts, write_cdc

D = pa.decimal128(10, 2)
SCHEMAS = {
    "customers": [
        ("customer_id", pa.int64()),
        ("email", pa.string()),
        ("full_name", pa.string()),
        ("country", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("updated_at", pa.timestamp("us")),
    ],
    "products": [
        ("product_id", pa.int64()),
        ("sku", pa.string()),
        ("name", pa.string()),
        ("category", pa.string()),
        ("unit_price", D),
        ("active", pa.bool_()),
        ("updated_at", pa.timestamp("us")),
    ],
    "orders": [
        ("order_id", pa.int64()),
        ("customer_id", pa.int64()),
        ("status", pa.string()),
        ("order_ts", pa.timestamp("us")),
        ("updated_at", pa.timestamp("us")),
    ],
    "order_items": [
        ("order_id", pa.int64()),
        ("line_no", pa.int32()),
        ("product_id", pa.int64()),
        ("quantity", pa.int32()),
        ("unit_price", D),
        ("discount", D),
        ("updated_at", pa.timestamp("us")),
    ],
}


def land(lake, table: str, when: str, op: str, *values) -> None:
    schema = pa.schema(
        [("Op", pa.string()), ("dms_commit_ts", pa.timestamp("us"))] + SCHEMAS[table]
    )
    row = dict(zip(schema.names, [op, ts(when), *values]))
    write_cdc(lake.landing, "shop", "public", table, ts(when), [row], schema)


def customer(lake, when: str, op: str, id: int, country: str) -> None:
    land(lake, "customers", when, op, id, f"c{id}@shop.example", f"C {id}", country,
         ts("2024-01-01 00:00:00"), ts(when))  # fmt: skip


def order(lake, when: str, id: int, cust: int, status: str, qty: int) -> None:
    land(lake, "orders", when, "I", id, cust, status, ts(when), ts(when))
    land(lake, "order_items", when, "I", id, 1, 7, qty, Decimal("5.00"), Decimal("0.00"), ts(when))


def test_revenue_by_the_country_at_the_time_of_the_order(lake):
    lake.catalog = Path(own_catalog(str(lake.tmp / "home"), dt.date(2024, 1, 1)))
    land(lake, "products", "2024-01-02 00:00:00", "I", 7, "SKU7", "Mug", "Home",
         Decimal("5.00"), True, ts("2024-01-02 00:00:00"))  # fmt: skip
    customer(lake, "2024-01-02 09:00:00", "I", 1, "DE")
    customer(lake, "2024-01-02 09:00:01", "I", 2, "FR")
    order(lake, "2024-01-02 08:00:00", 12, 2, "delivered", 1)  # before customer 2's first version
    order(lake, "2024-01-02 10:00:00", 10, 1, "paid", 2)
    customer(lake, "2024-01-03 12:00:00", "U", 1, "FR")  # customer 1 moves
    order(lake, "2024-01-03 13:00:00", 11, 1, "shipped", 6)
    order(lake, "2024-01-03 14:00:00", 13, 2, "placed", 20)  # not qualifying
    assert_ok(lake.sync())
    got = lake.rows("gold", "shop", "revenue_by_country_at_order", "country")
    assert got == [
        {
            "country": "DE",
            "orders": 1,
            "customers": 1,
            "gross_revenue": Decimal("10.00"),
            "gross_revenue_by_current_country": Decimal("0.00"),
        },
        {
            "country": "FR",
            "orders": 2,
            "customers": 2,
            "gross_revenue": Decimal("35.00"),
            "gross_revenue_by_current_country": Decimal("45.00"),
        },
    ]
