"""format postgres, mode snapshot, against a real server: each sync lands every table as of
one REPEATABLE READ snapshot, which format snapshot diffs; bronze equals `SELECT *`."""

from __future__ import annotations

import pytest

from lake_assets_tests.postgres._compare import assert_bronze_equals

TABLES = """
- {name: accounts, schema: public, primary_key: [id]}
- {name: entries, schema: public, primary_key: [account_id, n]}
"""


def _sync_ok(lake):
    res = lake.sync()
    assert res.ok, "\n".join(lake.lines)


@pytest.mark.slow
def test_snapshots_diffed_into_changes(lake, pgdb):
    pgdb.sql(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance numeric, "
        "opened date, seen timestamptz, tags text[], doc jsonb, ref uuid, raw bytea)",
        "CREATE TABLE entries (account_id bigint, n int, amount numeric(10,2), "
        "PRIMARY KEY (account_id, n))",
        "INSERT INTO accounts VALUES (1, 'ann', 1.5, '2024-01-02', '2024-01-02 03:04:05.678+01',"
        " '{a,b}', '{\"x\": 1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff'),"
        " (2, 'ben', 0, NULL, NULL, NULL, NULL, NULL, NULL)",
        "INSERT INTO entries VALUES (1, 1, 9.99), (1, 2, -1.00), (2, 1, 0.01)",
    )
    lake.write_catalog(pgdb.catalog("app", TABLES, extra="mode: snapshot").replace(
        f"    slot: slot_{pgdb.name}\n", ""))  # fmt: skip
    _sync_ok(lake)
    assert_bronze_equals(lake, pgdb, "app", "accounts", "id")
    assert_bronze_equals(lake, pgdb, "app", "entries", "account_id, n")
    raw = lake.rows("raw", "app", "accounts")
    assert [r["_op"] for r in raw] == ["I", "I"] and raw[0]["_commit_ts"] is not None

    pgdb.sql(
        "UPDATE accounts SET balance = 2.25, tags = '{c}' WHERE id = 1",
        "DELETE FROM accounts WHERE id = 2",
        "INSERT INTO accounts (id, owner) VALUES (3, 'cy')",
        "BEGIN; DELETE FROM entries WHERE account_id = 2; "
        "UPDATE entries SET amount = 5 WHERE account_id = 1 AND n = 2; COMMIT",
    )
    _sync_ok(lake)
    assert_bronze_equals(lake, pgdb, "app", "accounts", "id")
    assert_bronze_equals(lake, pgdb, "app", "entries", "account_id, n")
    ops = sorted(r["_op"] for r in lake.rows("raw", "app", "accounts"))
    assert ops == ["D", "I", "I", "I", "U"]

    # Nothing changed at the source: the next snapshot adds no change.
    before = len(lake.rows("raw", "app", "entries"))
    _sync_ok(lake)
    assert len(lake.rows("raw", "app", "entries")) == before
    assert len(list((lake.landing / "app" / "public" / "entries").glob("*.parquet"))) == 3
