"""format: postgres, mode logical, against a real server: bronze equals `SELECT *` of each
source table after every step (inserts, updates, deletes, a key update, a transaction over
two tables, a TOASTed value left unchanged, a truncate, a column added)."""

from __future__ import annotations

import pytest

from lake_assets_tests.postgres._compare import assert_bronze_equals

TABLES = """
- {name: customers, schema: public, primary_key: [id]}
- {name: orders, schema: public, primary_key: [id]}
"""


def _sync_ok(lake):
    res = lake.sync()
    assert res.ok, "\n".join(lake.lines)
    return res


def _both_equal(lake, db):
    assert_bronze_equals(lake, db, "app", "customers", "id")
    assert_bronze_equals(lake, db, "app", "orders", "id")


@pytest.mark.slow
def test_bronze_follows_the_database_step_by_step(lake, pgdb):
    pgdb.sql(
        "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, "
        "balance numeric(12,2), note text)",
        "CREATE TABLE orders (id int PRIMARY KEY, customer_id bigint, total numeric, "
        "placed timestamptz, day date, meta jsonb, ref uuid, blob bytea, tags text[], "
        "paid boolean, qty smallint, ratio real, local_ts timestamp, amounts numeric(8,3)[])",
        "INSERT INTO customers VALUES (1, 'Ada', 10.50, 'first'), (2, 'Bob', -3.25, NULL)",
        "INSERT INTO orders VALUES (10, 1, 12.345678901234567891, '2024-03-01 10:00:00.123456+02',"
        " '2024-03-01', '{\"a\": [1, 2], \"b\": null}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',"
        " '\\xdeadbeef', '{x,\"y z\",NULL}', true, -7, 0.5, '2024-03-01 23:30:00.5',"
        " '{1.5,NULL,-2.125}')",
    )
    lake.write_catalog(pgdb.catalog("app", TABLES))
    _sync_ok(lake)
    _both_equal(lake, pgdb)
    raw = lake.rows("raw", "app", "customers")
    assert {r["_op"] for r in raw} == {"I"} and all(r["_commit_ts"] is None for r in raw)

    # Inserts, updates, deletes; an update of the primary key; an update that changes nothing.
    pgdb.sql(
        "INSERT INTO customers VALUES (3, 'Cy', 0, 'x')",
        "UPDATE customers SET balance = balance + 1 WHERE id = 1",
        "DELETE FROM customers WHERE id = 2",
        "UPDATE customers SET id = 4 WHERE id = 3",
        "UPDATE customers SET name = name WHERE id = 1",
        "INSERT INTO orders VALUES (11, 4, 1e-18, '1999-12-31 23:59:59+00', '1970-01-01',"
        " '[]', NULL, '\\x', '{}')",
    )
    _sync_ok(lake)
    _both_equal(lake, pgdb)
    ops = [r["_op"] for r in lake.rows("raw", "app", "customers", "_seq") if r["_commit_ts"]]
    assert ops == ["I", "U", "D", "D", "I", "U"]

    # One transaction over both tables: one commit time for both changes.
    pgdb.sql(
        "BEGIN; INSERT INTO customers VALUES (5, 'Eve', 7.77, NULL); "
        "UPDATE orders SET customer_id = 5, total = total * 2 WHERE id = 10; COMMIT"
    )
    _sync_ok(lake)
    _both_equal(lake, pgdb)
    c = [r for r in lake.rows("raw", "app", "customers") if r["id"] == 5]
    o = [r for r in lake.rows("raw", "app", "orders") if r["id"] == 10 and r["_op"] == "U"]
    assert c[0]["_commit_ts"] == o[-1]["_commit_ts"] is not None

    # A TOASTed value (stored out of line), then an update that leaves it unchanged.
    pgdb.sql(
        "UPDATE customers SET note = (SELECT string_agg(md5(g::text), '') "
        "FROM generate_series(1, 4000) g) WHERE id = 1",
        "UPDATE customers SET balance = 99 WHERE id = 1",
    )
    _sync_ok(lake)
    _both_equal(lake, pgdb)
    note = [r for r in lake.rows("bronze", "app", "customers") if r["id"] == 1][0]["note"]
    assert len(note) == 4000 * 32

    # A truncate, then rows after it; and a column added at the source.
    pgdb.sql(
        "TRUNCATE orders",
        "INSERT INTO orders (id, customer_id) VALUES (12, 1)",
        "ALTER TABLE customers ADD COLUMN tier text",
        "UPDATE customers SET tier = 'gold' WHERE id = 4",
    )
    _sync_ok(lake)
    _both_equal(lake, pgdb)
    assert "T" in {r["_op"] for r in lake.rows("raw", "app", "orders")}

    # Nothing new: the extraction lands nothing, and no table changes.
    before = lake.version("raw", "app", "customers")
    _sync_ok(lake)
    assert lake.version("raw", "app", "customers") == before
    _both_equal(lake, pgdb)
