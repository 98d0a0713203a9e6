"""The partitions sensor of a source's models: it waits for the verdict of its inputs' blocking
checks, and asks for one run per range of consecutive touched dates."""

from __future__ import annotations

from decimal import Decimal

import dagster as dg
import pyarrow as pa

from lake_assets.keys import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from lake_assets_tests.assets._lake import ts, write_cdc, write_load

ORDERS = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("order_id", pa.int64()),
        ("amount", pa.decimal128(10, 2)),
        ("order_ts", pa.timestamp("us")),
    ]
)
CATALOG = """
sources:
  - name: shop
    format: dms
    start_date: "2024-01-01"
    timestamp_column: ts
    tables:
      - name: orders
        schema: public
        primary_key: [order_id]
        silver:
          max_quarantine_rate: 0.0
          rules:
            - {name: amount_not_negative, expr: "amount >= 0", action: drop}
    models:
      - name: revenue_daily
        partitioned_by: order_date
        sql: |
          SELECT to_date(order_ts) AS order_date, CAST(SUM(amount) AS DECIMAL(18,2)) AS revenue
          FROM {{ silver.orders }} GROUP BY to_date(order_ts)
"""
SENSOR = "gold_partitions_sensor_shop"


def order(op, when, order_id, amount, day) -> dict:
    return {
        "Op": op,
        "ts": ts(when),
        "order_id": order_id,
        "amount": Decimal(amount),
        "order_ts": ts(f"2024-01-{day:02d} 12:00:00"),
    }


PLANNER = "gold_partitions_plan_shop"


def _tick(defs, instance, cursor):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    ) as ctx:
        return defs.resolve_sensor_def(SENSOR).evaluate_tick(ctx)


def tick(lake, instance, cursor=None):
    """A tick; when it asks for the planning run, that run, then the next tick."""
    defs = lake.defs()
    result = _tick(defs, instance, cursor)
    plans = [r for r in result.run_requests or [] if r.job_name == PLANNER]
    if not plans:
        return result
    assert len(result.run_requests) == 1 and result.cursor == cursor
    job = defs.resolve_job_def(PLANNER)
    assert job.execute_in_process(instance=instance, tags=dict(plans[0].tags)).success
    return _tick(defs, instance, cursor)


def test_the_sensor_starts_no_engine(lake):
    lake.write_catalog(CATALOG)
    sensor = lake.defs().resolve_sensor_def(SENSOR)
    assert "spark" not in sensor.required_resource_keys


def test_the_sensor_waits_for_the_blocking_checks_of_its_inputs(lake, dagster_instance):
    lake.write_catalog(CATALOG)
    write_load(
        lake.landing,
        "shop",
        "public",
        "orders",
        1,
        [order("I", "2024-01-01 08:00:00", i, "10.00", 2 + i) for i in range(4)],
        ORDERS,
    )
    assert lake.sync(instance=dagster_instance).ok
    first = tick(lake, dagster_instance)
    assert first.cursor and "waiting" not in (first.skip_message or "")

    bad = [order("U", "2024-01-09 10:00:00", 1, "-5.00", 3)]
    write_cdc(lake.landing, "shop", "public", "orders", ts("2024-01-09 10:00:00"), bad, ORDERS)
    result = lake.sync(instance=dagster_instance)
    assert not result.ok and any("quarantine_rate_below_threshold" in f for f in result.failures)
    waiting = tick(lake, dagster_instance, first.cursor)
    assert waiting.run_requests == []
    assert (
        "waiting for the blocking checks of silver/shop/orders:quarantine_rate_below_threshold"
        in (waiting.skip_message or "")
    )
    assert waiting.cursor == first.cursor  # the same inputs are looked at again next tick

    fixed = [order("U", "2024-01-10 10:00:00", 1, "7.00", 3)]
    write_cdc(lake.landing, "shop", "public", "orders", ts("2024-01-10 10:00:00"), fixed, ORDERS)
    assert lake.sync(instance=dagster_instance).ok
    after = tick(lake, dagster_instance, first.cursor)
    assert "waiting" not in (after.skip_message or "") and after.cursor != first.cursor


def test_one_run_per_range_of_touched_dates(lake, dagster_instance):
    lake.write_catalog(CATALOG)
    # dates 2024-01-02, 03, 04 and 07: two ranges
    write_load(
        lake.landing,
        "shop",
        "public",
        "orders",
        1,
        [order("I", "2024-01-01 08:00:00", i, "10.00", d) for i, d in enumerate([2, 3, 4, 7])],
        ORDERS,
    )
    # raw, bronze and silver only: the sensor finds every date of the model untouched so far
    defs = lake.defs()
    keys = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] != "gold"]
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(
        instance=dagster_instance, asset_selection=keys, partition_key="2024-01-01"
    ).success
    requests = tick(lake, dagster_instance).run_requests
    ranges = sorted(
        (r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG]) for r in requests
    )
    assert ranges == [("2024-01-02", "2024-01-04"), ("2024-01-07", "2024-01-07")]
    for r in requests:
        run = job.execute_in_process(
            instance=dagster_instance, asset_selection=list(r.asset_selection), tags=dict(r.tags)
        )
        assert run.success
    got = lake.rows("gold", "shop", "revenue_daily", "order_date")
    assert [str(r["order_date"]) for r in got] == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-07",
    ]
