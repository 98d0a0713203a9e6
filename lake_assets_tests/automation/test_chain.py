"""From a landed file to gold through Dagster's own machinery, with no `sync`: the landing
sensor's run requests, declarative automation ticks, then the gold partitions sensor, each
executed as Dagster would launch them, on real Delta tables."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from lake_assets.keys import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from lake_assets.lib import plan
from lake_assets.sources.shop.simulator import simulate
from lake_assets_tests.conftest import Lake
from lake_assets_tests.gold import shop_expected as expected

PACKAGED_CATALOG = (
    Path(__file__).resolve().parents[2] / "lake_assets" / "sources" / "shop" / "catalog.yaml"
)
TODAY = dt.date(2024, 1, 20)
MAX_TICKS = 6
DAILY = dg.AssetKey(["gold", "shop", "daily_sales"])


def execute(job, instance, requests) -> list[dg.RunRequest]:
    for r in requests:
        res = job.execute_in_process(
            instance=instance,
            asset_selection=list(r.asset_selection),
            partition_key=r.partition_key,
            tags=dict(r.tags or {}),
            raise_on_error=False,
        )
        failures = [e.message for e in res.all_events if e.event_type_value == "STEP_FAILURE"]
        assert res.success, f"run of {r.asset_selection} [{r.partition_key}] failed: {failures}"
    return list(requests)


def _dates_of(request: dg.RunRequest) -> list[str]:
    """The partitions a run request covers: its partition, or its range of daily partitions."""
    if request.partition_key:
        return [request.partition_key]
    first = dt.date.fromisoformat(request.tags[PARTITION_RANGE_START_TAG])
    last = dt.date.fromisoformat(request.tags[PARTITION_RANGE_END_TAG])
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def tick_sensor(defs, instance, name: str, cursor: str | None):
    """A tick's requests; a planning run it asks for is run, and the sensor ticks again."""
    for _ in range(2):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
        ) as ctx:
            data = defs.resolve_sensor_def(name).evaluate_tick(ctx)
        requests = list(data.run_requests or [])
        plans = [r for r in requests if r.job_name and "_plan_" in r.job_name]
        if not plans:
            return requests, data.cursor
        for r in plans:
            job = defs.resolve_job_def(r.job_name)
            assert job.execute_in_process(instance=instance, tags=dict(r.tags)).success
    pytest.fail(f"{name} asked for a planning run twice")


def automation_requests(defs, result) -> list[dg.RunRequest]:
    """The runs a tick's result asks for: one per partition key (None: the unpartitioned assets)."""
    graph = defs.resolve_asset_graph()
    by_partition: dict[str | None, list[dg.AssetKey]] = defaultdict(list)
    for key in graph.get_all_asset_keys():
        for p in result.get_requested_partitions(key):
            by_partition[p].append(key)
    return [
        dg.RunRequest(asset_selection=sorted(keys, key=lambda k: k.path), partition_key=p)
        for p, keys in sorted(by_partition.items(), key=lambda kv: kv[0] or "")
    ]


def automate(defs, job, instance, cursor) -> tuple[list[set[str]], object]:
    """Ticks of declarative automation, each tick's runs executed, until a tick requests nothing."""
    ticks = []
    for _ in range(MAX_TICKS):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        requests = automation_requests(defs, result)
        if not requests:
            return ticks, cursor
        ticks.append({"/".join(k.path) for r in requests for k in r.asset_selection})
        execute(job, instance, requests)
    pytest.fail(f"automation still requesting after {MAX_TICKS} ticks: {ticks}")


def materialization_count(instance) -> int:
    return sum(
        len(instance.fetch_materializations(k, limit=10_000).records)
        for k in instance.get_asset_keys()
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("automation")
    root, landing = tmp / "lake", tmp / "landing"
    root.mkdir()
    landing.mkdir()
    lake = Lake(tmp, root, landing, PACKAGED_CATALOG)  # read only: its SQL files sit beside it
    defs = lake.defs()
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        # The automation sensor ticks before anything has landed: nothing to do yet.
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        out = {"lake": lake, "instance": instance, "initial_requested": first.total_requested}
        simulate(str(lake.landing), 2, seed=3, today=TODAY, dirty=True, scale=0.2)

        landing_reqs, landing_cursor = tick_sensor(
            defs, instance, "landing_files_sensor_shop", None
        )
        out["landing_requests"] = execute(job, instance, landing_reqs)
        out["ticks"], auto_cursor = automate(defs, job, instance, first.cursor)
        gold_reqs, gold_cursor = tick_sensor(defs, instance, "gold_partitions_sensor_shop", None)
        out["gold_requests"] = execute(job, instance, gold_reqs)
        out["materializations"] = materialization_count(instance)

        # A second round with nothing new landed.
        again, _ = tick_sensor(defs, instance, "landing_files_sensor_shop", landing_cursor)
        out["again_landing"] = execute(job, instance, again)
        out["again_ticks"], _ = automate(defs, job, instance, auto_cursor)
        gold_again, _ = tick_sensor(defs, instance, "gold_partitions_sensor_shop", gold_cursor)
        out["again_gold"] = execute(job, instance, gold_again)
        out["again_materializations"] = materialization_count(instance)
        yield out


def test_landing_sensor_requests_the_raw_partitions_of_the_landed_files(chain):
    reqs = chain["landing_requests"]
    # the full load belongs to the first day; then one partition per simulated day
    assert sorted(r.partition_key for r in reqs) == ["2024-01-01", "2024-01-18", "2024-01-19"]
    for r in reqs:
        assert {"/".join(k.path) for k in r.asset_selection} == {
            f"raw/shop/{t}" for t in ("customers", "orders", "order_items", "products")
        }


def test_automation_carries_raw_to_bronze_silver_and_clv(chain):
    assert chain["initial_requested"] == 0
    ticks = chain["ticks"]
    requested = set().union(*ticks) if ticks else set()
    tables = ("customers", "orders", "order_items", "products")
    assert {f"bronze/shop/{t}" for t in tables} <= requested, (
        f"automation requested {ticks} after the raw partitions were materialized: bronze's "
        "condition must fire when any raw partition is updated, even though most of raw's daily "
        "partitions are missing"
    )
    assert {f"silver/shop/{t}" for t in tables} <= requested, ticks
    assert "gold/shop/customer_lifetime_value" in requested, ticks
    # and each of them exactly once: what one tick requested, later ticks do not request again
    assert sum(len(t) for t in ticks) == len(requested), ticks


def test_gold_sensor_then_gold_holds_the_landed_orders(chain):
    lake = chain["lake"]
    for layer in ("bronze", "silver", "gold"):
        assert DeltaTable.is_deltatable(
            str(lake.path(layer, "shop", "orders" if layer != "gold" else "daily_sales"))
        ), f"{layer} was never built by the sensors and automation"
    silver = {t: lake.rows("silver", "shop", t) for t in ("customers", "orders", "order_items")}
    want = expected.daily_sales(silver["orders"], silver["order_items"])
    assert want, "the landed history has qualifying orders"
    # one run per (gold table, range of consecutive dates), for exactly the dates with
    # qualifying orders
    got_parts = sorted(
        (d, "/".join(r.asset_selection[0].path))
        for r in chain["gold_requests"]
        for d in _dates_of(r)
    )
    dates = sorted(r["order_date"].isoformat() for r in want)
    assert sorted({p for p, _ in got_parts}) == dates
    assert [p for p, k in got_parts if k == "gold/shop/daily_sales"] == dates
    daily_runs = [
        r for r in chain["gold_requests"] if r.asset_selection[0].path[-1] == "daily_sales"
    ]
    assert len(daily_runs) == len(plan.date_ranges([dt.date.fromisoformat(d) for d in dates]))
    assert lake.rows("gold", "shop", "daily_sales", "order_date") == want
    assert lake.rows(
        "gold", "shop", "customer_lifetime_value", "customer_id"
    ) == expected.customer_lifetime_value(
        silver["customers"], silver["orders"], silver["order_items"]
    )
    # every order landed is in bronze, and in silver or its quarantine
    landed = set()
    for f in (lake.landing / "shop" / "public" / "orders").rglob("*.parquet"):
        landed |= set(pq.read_table(f, columns=["order_id"]).column("order_id").to_pylist())
    assert {r["order_id"] for r in lake.rows("bronze", "shop", "orders")} == landed
    quarantined = {r["order_id"] for r in lake.rows("silver", "shop", "orders_quarantine")}
    assert {r["order_id"] for r in silver["orders"]} | quarantined == landed


def test_second_round_with_nothing_new_requests_nothing(chain):
    assert chain["again_landing"] == []
    assert chain["again_ticks"] == []
    assert chain["again_gold"] == []
    assert chain["again_materializations"] == chain["materializations"]
