"""The load the lake puts on the source: one session in UTC with the catalog's statement
timeout, and changes read in batches of `batch_size` (whole transactions)."""

from __future__ import annotations

import psycopg
import pytest

from lake_assets.catalog import parse_catalog
from lake_assets.lib import postgres

TABLES = "- {name: items, schema: public, primary_key: [id]}"


def test_a_statement_past_the_timeout_is_cancelled(pgdb):
    source = parse_catalog(pgdb.catalog("app", TABLES, extra="statement_timeout_s: 0.3")).sources[0]
    with postgres.connect(source) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "300ms"
        assert conn.execute("SHOW TimeZone").fetchone()[0] == "UTC"
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(2)")


def test_changes_are_read_in_batches_of_whole_transactions(pgdb, tmp_path):
    pgdb.sql("CREATE TABLE items (id int PRIMARY KEY, v text)")
    source = parse_catalog(pgdb.catalog("app", TABLES, extra="batch_size: 4")).sources[0]
    assert postgres.extract(source, str(tmp_path)).loaded_rows == 0
    # Five transactions of three inserts: four messages allowed a batch, and a batch ends
    # only at a commit, so each transaction (begin, relation, 3 inserts, commit) is one batch.
    for t in range(5):
        pgdb.sql(
            "BEGIN; "
            + " ".join(f"INSERT INTO items VALUES ({t * 3 + i}, 'x');" for i in range(3))
            + " COMMIT"
        )
    out = postgres.extract(source, str(tmp_path))
    assert out.changes == 15 and out.batches == 5
    files = sorted(p.name for p in tmp_path.rglob("*.parquet") if not p.name.startswith("LOAD"))
    assert len(files) == 5
