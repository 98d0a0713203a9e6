"""A real PostgreSQL server per test module (lake_assets_tests/pg_server.py), a fresh database
per test, and a lake whose catalog reads it as `format: postgres`."""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass

import pytest

from lake_assets_tests import pg_server

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def pg_server_module():
    try:
        server = pg_server.start()
    except pg_server.ServerMissing as e:
        pytest.fail(str(e), pytrace=False)  # never a skip: CI must install the server
    yield server
    server.stop()


@dataclass
class PgDatabase:
    server: pg_server.PgServer
    name: str
    var: str = "APP_PG_DSN"

    @property
    def dsn(self) -> str:
        return self.server.dsn(dbname=self.name)

    def connect(self):
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True)

    def sql(self, *statements: str) -> None:
        """Each statement in its own transaction (a list of them joined by ; is one)."""
        with self.connect() as c:
            for s in statements:
                c.execute(s)

    def rows(self, table: str, order_by: str) -> list[dict]:
        import psycopg.rows

        with self.connect() as c:
            c.execute("SET TIME ZONE 'UTC'")
            cur = c.cursor(row_factory=psycopg.rows.dict_row)
            return cur.execute(f"SELECT * FROM {table} ORDER BY {order_by}").fetchall()

    def catalog(self, source: str, tables: str, extra: str = "") -> str:
        return (
            textwrap.dedent(
                f"""
            sources:
              - name: {source}
                format: postgres
                dsn_env: {self.var}
                slot: slot_{self.name}
                start_date: "2024-01-01"
            """
            )
            + textwrap.indent(textwrap.dedent(extra).strip() + "\n" if extra else "", "    ")
            + ("    tables:\n" + textwrap.indent(textwrap.dedent(tables).strip(), "      ") + "\n")
        )


@pytest.fixture
def pgdb(pg_server_module, monkeypatch) -> PgDatabase:
    name = f"db{next(_ids)}"
    pg_server_module.psql_admin(f"CREATE DATABASE {name} OWNER {pg_server.USER}")
    db = PgDatabase(pg_server_module, name)
    monkeypatch.setenv(db.var, db.dsn)
    return db
