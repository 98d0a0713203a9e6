"""`lake-assets demo --source postgres` against a real server: the shop's tables created, its
history run as SQL transactions, the lake synced through logical replication; bronze equals
the database, by the demo's own check and by this test's; a second demo syncs what is new."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lake_assets_tests.postgres._compare import assert_bronze_equals

TABLES = [("customers", "customer_id"), ("products", "product_id"), ("orders", "order_id")]


def _demo(tmp_path, env):
    proc = subprocess.run(
        [sys.executable, "-m", "lake_assets.cli", "demo", "--source", "postgres", "--days", "2",
         "--scale", "0.05"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def demo_env(tmp_path, pgdb):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "DAGSTER_HOME"))}
    env.update(APP_PG_DSN=pgdb.dsn, PYTHONPATH=os.getcwd())
    return env


@pytest.mark.slow
def test_demo_runs_the_history_against_the_database_and_bronze_equals_it(
    tmp_path, pgdb, demo_env, lake
):
    code, out, err = _demo(tmp_path, demo_env)
    assert code == 0, err[-3000:] + out[-3000:]
    assert "tables created: customers, products, orders, order_items" in out
    assert "created replication slot lake_assets_shop" in out
    for table in ("customers", "products", "orders", "order_items"):
        assert f"bronze/shop/{table} (" in out and f"equals the database's public.{table}" in out
    lake.root = tmp_path / ".lake"
    for table, key in TABLES:
        assert_bronze_equals(lake, pgdb, "shop", table, key)
    assert lake.rows("gold", "shop", "daily_sales")
    # The first day came by the initial load, the rest through the slot, as changes.
    raw = lake.rows("raw", "shop", "orders")
    assert any(r["_commit_ts"] is None for r in raw) and any(r["_op"] == "U" for r in raw)

    # The demo's own verdict can fail: the database moved on, the lake not yet.
    pgdb.sql("UPDATE orders SET status = 'refunded' WHERE order_id = (SELECT min(order_id) "
             "FROM orders)")  # fmt: skip
    from lake_assets.catalog import load_catalog
    from lake_assets.demo import bronze_equals_database
    from lake_assets.lib import postgres
    from lake_assets.settings import Settings

    catalog = lake.root / "_dagster" / "shop_pg_catalog" / "catalog.yaml"
    settings = Settings.load(str(lake.root), sources=str(catalog))
    source = load_catalog(str(catalog)).source("shop")
    lines = []
    with postgres.connect(source) as conn:
        assert not bronze_equals_database(settings, source, conn, lines.append)
    assert any("bronze/shop/orders" in line and "DIFFERS FROM" in line for line in lines)

    # A second demo runs no history again: it syncs what the database has new.
    code, out, err = _demo(tmp_path, demo_env)
    assert code == 0, err[-3000:] + out[-3000:]
    assert "the database already holds the shop" in out
    assert "extract/shop" in out and "changes=1 " in out
    for table, key in TABLES:
        assert_bronze_equals(lake, pgdb, "shop", table, key)


def test_demo_without_the_dsn_variable_fails_in_one_line(tmp_path, demo_env):
    del demo_env["APP_PG_DSN"]
    code, out, err = _demo(tmp_path, demo_env)
    assert code == 1
    failed = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "APP_PG_DSN" in failed[0] and "not set" in failed[0]
