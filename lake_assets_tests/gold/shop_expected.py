"""The contract's definition of the shop's gold, computed independently in plain Python from
silver tables read back with delta-rs (no Spark, no SQL of the lake's own)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

QUALIFYING = {"paid", "shipped", "delivered"}
CENT = Decimal("0.01")


def utc_date(ts: dt.datetime) -> dt.date:
    assert ts.tzinfo is not None, "timestamps read back from Delta are UTC-aware"
    return ts.astimezone(dt.timezone.utc).date()


def line_revenue(item: dict) -> Decimal:
    return item["quantity"] * item["unit_price"] - (
        item["discount"] if item["discount"] is not None else Decimal(0)
    )


def _items_by_order(items: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for i in items:
        out[i["order_id"]].append(i)
    return out


def qualifying(orders: list[dict]) -> list[dict]:
    return [o for o in orders if o["status"] in QUALIFYING]


def daily_sales(orders: list[dict], items: list[dict]) -> list[dict]:
    by_order = _items_by_order(items)
    acc: dict[dt.date, dict] = {}
    for o in qualifying(orders):
        d = utc_date(o["order_ts"])
        row = acc.setdefault(
            d,
            {
                "order_date": d,
                "orders": 0,
                "items": 0,
                "gross_revenue": Decimal("0.00"),
                "customers": set(),
            },
        )
        row["orders"] += 1
        row["customers"].add(o["customer_id"])
        for i in by_order.get(o["order_id"], []):
            row["items"] += i["quantity"]
            row["gross_revenue"] += line_revenue(i)
    out = []
    for d in sorted(acc):
        row = dict(acc[d])
        row["customers"] = len({c for c in row["customers"] if c is not None})
        row["gross_revenue"] = row["gross_revenue"].quantize(CENT)
        out.append(row)
    return out


def product_daily_sales(orders: list[dict], items: list[dict], products: list[dict]) -> list[dict]:
    by_order = _items_by_order(items)
    prod = {p["product_id"]: p for p in products}
    acc: dict[tuple, dict] = {}
    for o in qualifying(orders):
        d = utc_date(o["order_ts"])
        for i in by_order.get(o["order_id"], []):
            k = (d, i["product_id"])
            p = prod.get(i["product_id"], {})
            row = acc.setdefault(
                k,
                {
                    "order_date": d,
                    "product_id": i["product_id"],
                    "sku": p.get("sku"),
                    "name": p.get("name"),
                    "category": p.get("category"),
                    "orders": set(),
                    "units": 0,
                    "gross_revenue": Decimal("0.00"),
                },
            )
            row["orders"].add(o["order_id"])
            row["units"] += i["quantity"]
            row["gross_revenue"] += line_revenue(i)
    out = []
    for k in sorted(acc):
        row = dict(acc[k])
        row["orders"] = len(row["orders"])
        row["gross_revenue"] = row["gross_revenue"].quantize(CENT)
        out.append(row)
    return out


def customer_lifetime_value(
    customers: list[dict], orders: list[dict], items: list[dict]
) -> list[dict]:
    by_order = _items_by_order(items)
    per_customer: dict[int, list[tuple[dt.date, Decimal]]] = defaultdict(list)
    for o in qualifying(orders):
        rev = sum((line_revenue(i) for i in by_order.get(o["order_id"], [])), Decimal("0.00"))
        per_customer[o["customer_id"]].append((utc_date(o["order_ts"]), rev))
    out = []
    for c in sorted(customers, key=lambda c: c["customer_id"]):
        mine = per_customer.get(c["customer_id"], [])
        total = sum((r for _, r in mine), Decimal("0.00"))
        out.append(
            {
                "customer_id": c["customer_id"],
                "country": c["country"],
                "signup_date": utc_date(c["created_at"]) if c["created_at"] is not None else None,
                "orders": len(mine),
                "lifetime_revenue": total.quantize(CENT),
                "avg_order_value": (total / len(mine)).quantize(CENT, ROUND_HALF_UP)
                if mine
                else Decimal("0.00"),
                "first_order_date": min((d for d, _ in mine), default=None),
                "last_order_date": max((d for d, _ in mine), default=None),
            }
        )
    return out
