"""The shop's gold over a simulated history, through `sync` on real Delta tables: each table
equals an independent computation of the contract's definition over silver, and a late status
change recomputes exactly the partition of that order's date."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lake_assets.sources.shop.simulator import arrow_schema, simulate
from lake_assets_tests.conftest import Lake
from lake_assets_tests.dms_files import UTC, write_cdc
from lake_assets_tests.gold import shop_expected as expected

PACKAGED_CATALOG = (
    Path(__file__).resolve().parents[2] / "lake_assets" / "sources" / "shop" / "catalog.yaml"
)
TODAY = dt.date(2024, 1, 20)  # history 2024-01-10 .. 01-19 (the full load holds 01-07 .. 01-09)
DAILY = dg.AssetKey(["gold", "shop", "daily_sales"])
PRODUCT_DAILY = dg.AssetKey(["gold", "shop", "product_daily_sales"])


def new_lake(tmp) -> Lake:
    root, landing = tmp / "lake", tmp / "landing"
    root.mkdir(parents=True)
    landing.mkdir(parents=True)
    lake = Lake(tmp, root, landing, PACKAGED_CATALOG)  # read only: its SQL files sit beside it
    return lake


def silver(lake: Lake) -> dict[str, list[dict]]:
    return {
        t: lake.rows("silver", "shop", t)
        for t in ("customers", "products", "orders", "order_items")
    }


def gold(lake: Lake) -> dict[str, list[dict]]:
    return {
        "daily_sales": lake.rows("gold", "shop", "daily_sales", "order_date"),
        "product_daily_sales": lake.rows(
            "gold", "shop", "product_daily_sales", "order_date, product_id"
        ),
        "customer_lifetime_value": lake.rows(
            "gold", "shop", "customer_lifetime_value", "customer_id"
        ),
    }


def files_by_partition(lake: Lake, table: str) -> dict[str, set[str]]:
    actions = pa.table(
        DeltaTable(str(lake.path("gold", "shop", table))).get_add_actions(flatten=True)
    )
    out: dict[str, set[str]] = defaultdict(set)
    for path, part in zip(
        actions.column("path").to_pylist(), actions.column("partition.order_date").to_pylist()
    ):
        out[str(part)].add(path)
    return dict(out)


def materialized_partitions(instance, key: dg.AssetKey, after_storage_id: int | None) -> list[str]:
    recs = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, after_storage_id=after_storage_id), limit=10_000
    ).records
    return sorted(r.partition_key for r in recs)


def last_storage_id(instance, key: dg.AssetKey) -> int:
    return instance.fetch_materializations(key, limit=1).records[0].storage_id


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    lake = new_lake(tmp_path_factory.mktemp("shop_gold"))
    summary = simulate(str(lake.landing), 10, seed=3, today=TODAY, dirty=True, scale=0.2)
    assert summary.last_day == TODAY - dt.timedelta(days=1)
    with dg.DagsterInstance.ephemeral() as instance:
        first = lake.sync(instance=instance)
        state = {
            "lake": lake,
            "instance": instance,
            "sync1": first,
            "silver1": silver(lake),
            "gold1": gold(lake),
            "files1": {
                t: files_by_partition(lake, t) for t in ("daily_sales", "product_daily_sales")
            },
            "marks": {k: last_storage_id(instance, k) for k in (DAILY, PRODUCT_DAILY)},
        }
        yield state


def test_first_sync_succeeds(shop):
    assert shop["sync1"].ok, shop["sync1"].failures


def test_daily_sales_equals_the_contract_definition_over_silver(shop):
    s, g = shop["silver1"], shop["gold1"]["daily_sales"]
    want = expected.daily_sales(s["orders"], s["order_items"])
    # the history is big enough to mean something, and has the edge cases of the definition
    assert (
        len(want) == 13
        and want[0]["order_date"] == dt.date(2024, 1, 7)
        and want[-1]["order_date"] == dt.date(2024, 1, 19)
    )
    with_items = {i["order_id"] for i in s["order_items"]}
    assert any(o["order_id"] not in with_items for o in expected.qualifying(s["orders"])), (
        "the history should hold a qualifying order without items (counts in orders, adds 0)"
    )
    assert {o["status"] for o in s["orders"]} >= {
        "placed",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
    }
    assert g == want
    for row in g:
        assert isinstance(row["order_date"], dt.date) and not isinstance(
            row["order_date"], dt.datetime
        )
        assert all(row[c] is not None for c in ("orders", "items", "gross_revenue", "customers"))
        assert row["gross_revenue"].as_tuple().exponent == -2
    types = {
        f.name: f.type
        for f in pa.schema(
            DeltaTable(str(shop["lake"].path("gold", "shop", "daily_sales"))).schema().to_arrow()
        )
    }
    assert types == {
        "order_date": pa.date32(),
        "orders": pa.int64(),
        "items": pa.int64(),
        "gross_revenue": pa.decimal128(18, 2),
        "customers": pa.int64(),
    }


def test_rows_silver_rejects_count_nowhere(shop):
    """Orphan orders and negative quantities are quarantined by silver, so gold never sees them."""
    lake = shop["lake"]
    orders_q = lake.rows("silver", "shop", "orders_quarantine")
    items_q = lake.rows("silver", "shop", "order_items_quarantine")
    assert orders_q and {r["_rule"] for r in orders_q} == {"customer_exists"}
    assert items_q and "quantity_positive" in {r["_rule"] for r in items_q}
    bronze_orders = lake.rows("bronze", "shop", "orders")
    bronze_items = lake.rows("bronze", "shop", "order_items")
    # computed over bronze the totals differ: the check above is not vacuous
    assert expected.daily_sales(bronze_orders, bronze_items) != shop["gold1"]["daily_sales"]
    assert all(i["quantity"] > 0 for i in shop["silver1"]["order_items"])


def test_product_daily_sales_and_clv_equal_the_same_computation(shop):
    s, g = shop["silver1"], shop["gold1"]
    pds = expected.product_daily_sales(s["orders"], s["order_items"], s["products"])
    assert g["product_daily_sales"] == pds
    clv = expected.customer_lifetime_value(s["customers"], s["orders"], s["order_items"])
    assert g["customer_lifetime_value"] == clv
    daily = g["daily_sales"]
    total = sum(r["gross_revenue"] for r in daily)
    assert total > 0
    # one revenue, three tables: product_daily_sales sums to daily_sales exactly
    assert sum(r["gross_revenue"] for r in pds) == total
    assert sum(r["units"] for r in pds) == sum(r["items"] for r in daily)
    # CLV counts the qualifying orders of customers in silver: daily_sales minus those of
    # customers whom silver rejected (their orders exist at the source, so they stay in gold)
    in_silver = {c["customer_id"] for c in s["customers"]}
    rejected = [o for o in expected.qualifying(s["orders"]) if o["customer_id"] not in in_silver]
    rejected_ids = {o["order_id"] for o in rejected}
    rejected_rev = sum(
        (expected.line_revenue(i) for i in s["order_items"] if i["order_id"] in rejected_ids),
        Decimal("0.00"),
    )
    assert rejected, "the dirty history should hold orders of customers silver rejected"
    assert sum(r["lifetime_revenue"] for r in g["customer_lifetime_value"]) + rejected_rev == total
    assert sum(r["orders"] for r in g["customer_lifetime_value"]) + len(rejected) == sum(
        r["orders"] for r in daily
    )


# --------------------------------------------------------------------------------------------
# A late status change: one old order is refunded days after it was delivered.


@pytest.fixture(scope="module")
def refund(shop):
    lake, instance = shop["lake"], shop["instance"]
    s = shop["silver1"]
    with_items = {i["order_id"] for i in s["order_items"]}
    # the earliest delivered order of the simulated days that has items: its date is old
    candidates = [
        o
        for o in s["orders"]
        if o["status"] == "delivered"
        and o["order_id"] in with_items
        and expected.utc_date(o["order_ts"]) >= dt.date(2024, 1, 10)
    ]
    victim = min(candidates, key=lambda o: o["order_ts"])
    day = expected.utc_date(victim["order_ts"])
    assert day <= TODAY - dt.timedelta(days=5)
    when = dt.datetime(2024, 1, 20, 10, 0, 0, tzinfo=UTC)
    row = {
        "Op": "U",
        "dms_commit_ts": when - dt.timedelta(minutes=5),
        "order_id": victim["order_id"],
        "customer_id": victim["customer_id"],
        "status": "refunded",
        "order_ts": victim["order_ts"],
        "updated_at": when - dt.timedelta(minutes=5),
    }
    write_cdc(lake.landing, "shop", "public", "orders", when, [row], arrow_schema("orders"))
    second = lake.sync(instance=instance)
    return {
        "sync2": second,
        "victim": victim,
        "day": day,
        "lines": list(lake.lines),
        "silver2": silver(lake),
        "gold2": gold(lake),
        "files2": {t: files_by_partition(lake, t) for t in ("daily_sales", "product_daily_sales")},
    }


def test_late_refund_rematerializes_exactly_its_partition(shop, refund):
    assert refund["sync2"].ok, refund["sync2"].failures
    day = refund["day"].isoformat()
    instance = shop["instance"]
    assert materialized_partitions(instance, DAILY, shop["marks"][DAILY]) == [day]
    assert materialized_partitions(instance, PRODUCT_DAILY, shop["marks"][PRODUCT_DAILY]) == [day]
    assert f"gold/shop/daily_sales: {day}..{day}" in refund["lines"]
    # the other partitions' files were not touched; that day's were replaced
    before, after = shop["files1"]["daily_sales"], refund["files2"]["daily_sales"]
    assert set(before) == set(after)
    assert {p for p in before if before[p] != after[p]} == {day}


def test_late_refund_changes_that_date_only_and_rightly(shop, refund):
    day = refund["day"]
    s2 = refund["silver2"]
    assert {o["order_id"]: o["status"] for o in s2["orders"]}[
        refund["victim"]["order_id"]
    ] == "refunded"
    before = {r["order_date"]: r for r in shop["gold1"]["daily_sales"]}
    after = {r["order_date"]: r for r in refund["gold2"]["daily_sales"]}
    assert set(before) == set(after)
    assert {d for d in before if before[d] != after[d]} == {day}
    assert refund["gold2"]["daily_sales"] == expected.daily_sales(s2["orders"], s2["order_items"])
    # the refunded order left that day's orders and revenue
    lost = sum(
        expected.line_revenue(i)
        for i in s2["order_items"]
        if i["order_id"] == refund["victim"]["order_id"]
    )
    assert after[day]["orders"] == before[day]["orders"] - 1
    assert after[day]["gross_revenue"] == before[day]["gross_revenue"] - lost
    assert refund["gold2"]["product_daily_sales"] == expected.product_daily_sales(
        s2["orders"], s2["order_items"], s2["products"]
    )
    assert refund["gold2"]["customer_lifetime_value"] == expected.customer_lifetime_value(
        s2["customers"], s2["orders"], s2["order_items"]
    )


def test_a_partition_carries_its_own_figures_a_chart_and_described_columns(shop):
    """What the UI shows of a daily_sales materialization: the run's own sums, the chart as an
    inline PNG, and each column's description from the catalog."""
    import base64

    instance, gold1 = (
        shop["instance"],
        {r["order_date"].isoformat(): r for r in shop["gold1"]["daily_sales"]},
    )
    records = instance.fetch_materializations(DAILY, limit=1000).records
    # the first sync's materializations (a later test's sync rewrites a date)
    by_partition = {
        r.partition_key: r.asset_materialization.metadata
        for r in records
        if r.storage_id <= shop["marks"][DAILY]
    }
    assert set(gold1) <= set(by_partition)
    for day, row in gold1.items():
        # Each partition's own figures, whether its run wrote one date or several.
        meta = by_partition[day]
        first, last = meta["dates"].value.split("..")
        assert first <= day <= last and meta["rows_written"].value == 1
        assert meta["dagster/row_count"].value == 1  # the partition's rows, not the table's
        assert meta["sum_orders"].value == row["orders"]
        assert meta["sum_gross_revenue"].value == pytest.approx(float(row["gross_revenue"]))
    assert any(
        m["dates"].value.split("..")[0] != m["dates"].value.split("..")[1]
        for m in by_partition.values()
    ), "a run of several dates is among them"
    meta = records[0].asset_materialization.metadata
    chart = meta["chart"].value
    last = dt.date.fromisoformat(records[0].partition_key)  # the month up to the run's date
    charted = sorted(
        d for d in gold1 if last - dt.timedelta(days=30) <= dt.date.fromisoformat(d) <= last
    )
    assert chart.startswith(f"![daily_sales, {charted[0]}..{charted[-1]}](data:image/png;base64,")
    png = base64.b64decode(chart.split("base64,", 1)[1].rstrip(")"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    columns = {c.name: c.description for c in meta["dagster/column_schema"].schema.columns}
    assert columns["gross_revenue"] == "Sum of quantity * unit_price - discount over their lines"
