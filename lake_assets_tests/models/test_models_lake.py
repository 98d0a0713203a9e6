"""SQL models on real Delta tables: a silver model joining two sources and a partitioned gold
model over it equal an independent pandas computation; a late change recomputes exactly its
date (other dates' Delta files untouched); a date whose rows vanish has no rows left."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lake_assets_tests.assets._lake import new_lake, ts, write_cdc, write_load

ORDERS = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("order_id", pa.int64()),
        ("customer_id", pa.int64()),
        ("amount", pa.decimal128(10, 2)),
        ("order_ts", pa.timestamp("us")),
    ]
)
ACCOUNTS = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("customer_id", pa.int64()),
        ("region", pa.string()),
    ]
)
REGION_DAILY = dg.AssetKey(["gold", "shop", "region_daily"])

CATALOG = """
sources:
  - name: shop
    format: dms
    start_date: "2024-01-01"
    timestamp_column: ts
    tables:
      - {name: orders, schema: public, primary_key: [order_id]}
    models:
      - name: orders_enriched
        layer: silver
        description: One row per order, with the region of its customer's CRM account.
        primary_key: [order_id]
        sql: |
          SELECT o.order_id, to_date(o.order_ts) AS order_date, a.region, o.amount
          FROM {{ silver.orders }} o
          LEFT JOIN {{ silver.crm.accounts }} a ON a.customer_id = o.customer_id
      - name: region_daily
        description: One row per order date and region.
        partitioned_by: order_date
        primary_key: [order_date, region]
        sql: |
          SELECT order_date, coalesce(region, 'unknown') AS region, COUNT(*) AS orders,
                 CAST(SUM(amount) AS DECIMAL(18,2)) AS revenue
          FROM {{ silver.orders_enriched }} GROUP BY order_date, coalesce(region, 'unknown')
        checks:
          - name: revenue_not_negative
            sql: SELECT * FROM {{ this }} WHERE revenue < 0
  - name: crm
    format: dms
    start_date: "2024-01-01"
    timestamp_column: ts
    tables:
      - {name: accounts, schema: crm, primary_key: [customer_id]}
"""


def order(op, when, order_id, customer_id, amount, day) -> dict:
    return {
        "Op": op,
        "ts": ts(when),
        "order_id": order_id,
        "customer_id": customer_id,
        "amount": Decimal(amount),
        "order_ts": ts(f"2024-01-{day:02d} 12:00:00"),
    }


def account(op, when, customer_id, region) -> dict:
    return {"Op": op, "ts": ts(when), "customer_id": customer_id, "region": region}


def expected_region_daily(orders: list[dict], accounts: list[dict]) -> list[dict]:
    """The contract's definition, computed with pandas from the landed changes alone."""

    def latest(rows, key):
        df = pd.DataFrame(rows).sort_values("ts", kind="stable").groupby(key).tail(1)
        return df[df["Op"] != "D"]

    o, a = latest(orders, "order_id"), latest(accounts, "customer_id")
    joined = o.merge(a[["customer_id", "region"]], on="customer_id", how="left")
    joined["region"] = joined["region"].fillna("unknown")
    joined["order_date"] = joined["order_ts"].dt.date
    out = joined.groupby(["order_date", "region"]).agg(
        orders=("order_id", "count"), revenue=("amount", "sum")
    )
    return [
        {"order_date": d, "region": r, "orders": int(row.orders), "revenue": Decimal(row.revenue)}
        for (d, r), row in out.sort_index().iterrows()
    ]


def files_by_date(lake, key: dg.AssetKey) -> dict[str, set[str]]:
    actions = pa.table(DeltaTable(str(lake.path(*key.path))).get_add_actions(flatten=True))
    out: dict[str, set[str]] = defaultdict(set)
    for path, day in zip(
        actions.column("path").to_pylist(), actions.column("partition.order_date").to_pylist()
    ):
        out[str(day)].add(path)
    return dict(out)


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    lake = new_lake(tmp_path_factory.mktemp("models"))
    lake.write_catalog(CATALOG)
    orders = [
        order("I", "2024-01-02 09:00:00", i, 100 + i % 3, f"{10 * i}.50", 2 + i % 4)
        for i in range(1, 13)
    ]
    accounts = [
        account("I", "2024-01-01 08:00:00", 100, "north"),
        account("I", "2024-01-01 08:00:00", 101, "south"),
    ]
    write_load(lake.landing, "shop", "public", "orders", 1, orders, ORDERS)
    write_load(lake.landing, "crm", "crm", "accounts", 1, accounts, ACCOUNTS)
    with dg.DagsterInstance.ephemeral() as instance:
        first = lake.sync(instance=instance)
        state = {
            "lake": lake,
            "instance": instance,
            "orders": orders,
            "accounts": accounts,
            "sync1": first,
            "gold1": lake.rows("gold", "shop", "region_daily", "order_date, region"),
            "files1": files_by_date(lake, REGION_DAILY),
        }
        yield state


def test_models_equal_an_independent_computation(synced):
    lake = synced["lake"]
    assert synced["sync1"].ok, synced["sync1"].failures
    assert synced["gold1"] == expected_region_daily(synced["orders"], synced["accounts"])
    enriched = lake.rows("silver", "shop", "orders_enriched", "order_id")
    assert len(enriched) == 12
    assert {r["region"] for r in enriched} == {
        "north",
        "south",
        None,
    }  # customer 102 has no account
    assert {"north", "south", "unknown"} == {r["region"] for r in synced["gold1"]}


@pytest.fixture(scope="module")
def late(synced):
    """A late update of order 1 (dated 2024-01-03): 10.50 -> 99.00 and another customer."""
    lake, instance = synced["lake"], synced["instance"]
    mark = instance.fetch_materializations(REGION_DAILY, limit=1).records[0].storage_id
    changes = [order("U", "2024-01-06 10:00:00", 1, 101, "99.00", 3)]
    write_cdc(lake.landing, "shop", "public", "orders", ts("2024-01-06 10:00:00"), changes, ORDERS)
    result = lake.sync(instance=instance)
    recs = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=REGION_DAILY, after_storage_id=mark), limit=100
    ).records
    return {
        "sync": result,
        "lines": list(lake.lines),
        "partitions": sorted(r.partition_key for r in recs),
        "gold": lake.rows("gold", "shop", "region_daily", "order_date, region"),
        "files": files_by_date(lake, REGION_DAILY),
        "orders": synced["orders"] + changes,
    }


def test_a_late_change_recomputes_exactly_its_date(synced, late):
    assert late["sync"].ok, late["sync"].failures
    assert late["partitions"] == ["2024-01-03"]
    assert "gold/shop/region_daily: 2024-01-03..2024-01-03" in late["lines"]
    # its line counts the rows the run wrote (that date's), not the table's
    (line,) = [x for x in late["lines"] if x.startswith("  gold/shop/region_daily ")]
    written = sum(1 for r in late["gold"] if str(r["order_date"]) == "2024-01-03")
    assert f" rows={written} " in line and written < len(late["gold"]), line
    before, after = synced["files1"], late["files"]
    assert set(before) == set(after)
    assert {d for d in before if before[d] != after[d]} == {"2024-01-03"}
    assert late["gold"] == expected_region_daily(late["orders"], synced["accounts"])


def test_a_date_whose_rows_vanish_has_no_rows_left(synced, late):
    lake, instance = synced["lake"], synced["instance"]
    on_day_5 = [o for o in late["orders"] if o["order_ts"].day == 5 and o["Op"] == "I"]
    assert on_day_5, "the fixture has orders dated 2024-01-05"
    deletes = [{**o, "Op": "D", "ts": ts("2024-01-07 10:00:00")} for o in on_day_5]
    write_cdc(lake.landing, "shop", "public", "orders", ts("2024-01-07 10:00:00"), deletes, ORDERS)
    result = lake.sync(instance=instance)
    assert result.ok, result.failures
    gold = lake.rows("gold", "shop", "region_daily", "order_date, region")
    assert dt.date(2024, 1, 5) not in {r["order_date"] for r in gold}
    assert gold == expected_region_daily(late["orders"] + deletes, synced["accounts"])


def test_a_partition_materializes_through_dagster(synced, late):
    """The gold model alone, at one partition, through dg.materialize with the lake's resources."""
    lake = synced["lake"]
    defs = lake.defs()
    before = lake.version("gold", "shop", "region_daily")
    mine = [
        c
        for c in defs.asset_checks
        if any(
            k.asset_key == REGION_DAILY and k.name != "yesterday_partition_exists"
            for k in c.check_keys
        )
    ]
    result = dg.materialize(
        [defs.get_assets_def(REGION_DAILY), *mine],
        resources=defs.resources,
        partition_key="2024-01-04",
        instance=synced["instance"],
    )
    assert result.success
    assert lake.version("gold", "shop", "region_daily") == before + 1
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"primary_key_unique": True, "revenue_not_negative": True}
