"""format postgres when things go wrong: a DSN unset or with a wrong password, the slot dropped
by someone else, and the extraction killed (-9) between landing its files and confirming the
slot, which the next sync recovers from with each change held once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from lake_assets_tests import pg_server
from lake_assets_tests.postgres._compare import assert_bronze_equals

TABLES = "- {name: items, schema: public, primary_key: [id]}"


def _failure_lines(lake) -> list[str]:
    res = lake.sync()
    assert not res.ok
    return res.failures


def test_unset_dsn_variable_is_named_in_one_line(lake, pgdb, monkeypatch):
    pgdb.sql("CREATE TABLE items (id int PRIMARY KEY, v text)")
    lake.write_catalog(pgdb.catalog("app", TABLES))
    monkeypatch.delenv(pgdb.var)
    failures = _failure_lines(lake)
    assert len(failures) == 1
    assert "APP_PG_DSN" in failures[0] and "not set" in failures[0]
    assert "\n" not in failures[0]


def test_wrong_password_names_the_variable_and_never_prints_the_password(lake, pgdb, monkeypatch):
    pgdb.sql("CREATE TABLE items (id int PRIMARY KEY, v text)")
    lake.write_catalog(pgdb.catalog("app", TABLES))
    wrong = "Wr0ng-Pass-42"
    monkeypatch.setenv(pgdb.var, pgdb.server.dsn(password=wrong, dbname=pgdb.name))
    failures = _failure_lines(lake)
    assert len(failures) == 1 and "\n" not in failures[0]
    assert "APP_PG_DSN" in failures[0] and "password authentication failed" in failures[0]
    printed = "\n".join(lake.lines + failures)
    assert wrong not in printed and pg_server.PASSWORD not in printed


def test_slot_dropped_by_someone_else_is_a_clear_error(lake, pgdb):
    pgdb.sql("CREATE TABLE items (id int PRIMARY KEY, v text)", "INSERT INTO items VALUES (1, 'a')")
    lake.write_catalog(pgdb.catalog("app", TABLES))
    assert lake.sync().ok
    pgdb.sql(f"SELECT pg_drop_replication_slot('slot_{pgdb.name}')")
    failures = _failure_lines(lake)
    assert len(failures) == 1
    assert f"replication slot 'slot_{pgdb.name}' is gone" in failures[0]
    assert_bronze_equals(lake, pgdb, "app", "items", "id")  # the lake as it was


_KILLED_EXTRACTION = """
import os, signal, sys
from lake_assets.catalog import load_catalog
from lake_assets.lib import postgres

def killed(conn, slot, lsn):  # the files are landed; die before the slot hears of it
    os.kill(os.getpid(), signal.SIGKILL)

postgres.confirm = killed
source = load_catalog(sys.argv[1]).source("app")
postgres.extract(source, sys.argv[2])
"""


@pytest.mark.slow
def test_killed_between_landing_and_confirming_holds_each_change_once(lake, pgdb, tmp_path):
    pgdb.sql("CREATE TABLE items (id int PRIMARY KEY, v text)", "INSERT INTO items VALUES (1, 'a')")
    lake.write_catalog(pgdb.catalog("app", TABLES))
    assert lake.sync().ok
    pgdb.sql(*[f"INSERT INTO items VALUES ({i}, 'v{i}')" for i in range(2, 7)])
    pgdb.sql("UPDATE items SET v = 'changed' WHERE id = 1")
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(_KILLED_EXTRACTION))
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, str(script), str(lake.catalog), str(lake.landing)], env=env
    )
    assert done.returncode == -9  # killed after landing, before confirming
    landed = sorted(p.name for p in (lake.landing / "app").rglob("*.parquet"))
    assert len(landed) == 2  # the initial load and the killed run's changes
    # More changes after the crash: the next read's first batch spans the killed run's
    # transactions and the new ones, so its file would hold the killed run's changes again.
    pgdb.sql("DELETE FROM items WHERE id = 2", "INSERT INTO items VALUES (7, 'after')")
    res = lake.sync()
    assert res.ok, "\n".join(lake.lines)
    assert_bronze_equals(lake, pgdb, "app", "items", "id")
    changes = [r for r in lake.rows("raw", "app", "items") if r["_commit_ts"] is not None]
    assert len(changes) == 8  # 5 inserts, 1 update, 1 delete, 1 insert: each once
    assert len({(r["id"], r["_op"], r["_commit_ts"]) for r in changes}) == 8
