"""The demo shop as a PostgreSQL database: its tables created, and its simulated history run
against them as SQL transactions (the demo of `format: postgres`).

The simulator (simulator.py) writes the history as DMS files into a folder of its own (not the
landing zone); `replay` applies those changes in commit order, in transactions of up to
`TRANSACTION_ROWS` changes: an `I` or `U` as an upsert (DMS's changes are upserts), a `D` as a
delete of the key. Dagster-free: the demo and the tests call it directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake_assets.lib import storage
from lake_assets.sources.shop.simulator import PRIMARY_KEYS, TABLES, TIMESTAMP_COLUMN

TRANSACTION_ROWS = 500
_SQL_TYPES = {
    "bigint": "bigint",
    "int": "integer",
    "string": "text",
    "boolean": "boolean",
    "timestamp": "timestamptz",
}


def _sql_type(spark_type: str) -> str:
    return _SQL_TYPES.get(spark_type) or spark_type.replace("decimal", "numeric")


def create_schema(conn, schema: str = "public") -> list[str]:
    """The shop's four tables, where absent (with their primary keys); the tables created."""
    created = []
    for table, columns in TABLES.items():
        exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()[0]
        if exists is not None:
            continue
        cols = ", ".join(f'"{c}" {_sql_type(t)}' for c, t in columns)
        key = ", ".join(PRIMARY_KEYS[table])
        conn.execute(f'CREATE TABLE "{schema}"."{table}" ({cols}, PRIMARY KEY ({key}))')
        created.append(table)
    return created


def is_empty(conn, schema: str = "public") -> bool:
    return all(
        conn.execute(f'SELECT NOT EXISTS (SELECT 1 FROM "{schema}"."{t}")').fetchone()[0]
        for t in TABLES
    )


def changes(folder: str, source: str = "shop", schema: str = "public") -> pa.Table:
    """Every simulated change under `folder`, of every table, in commit order: `table`, `Op`,
    the commit time, then the union of the tables' columns."""
    parts = []
    for order, table in enumerate(TABLES):
        fs, base = storage.filesystem(f"{folder.rstrip('/')}/{source}/{schema}/{table}")
        for f in storage.list_files(fs, base):
            if not f.rel.endswith(".parquet") or storage_hidden(f.rel):
                continue
            with fs.open_input_file(f.path) as fh:
                t = pq.read_table(fh)
            n = t.num_rows
            t = t.append_column("table", pa.repeat(pa.scalar(table), n))
            t = t.append_column("_order", pa.repeat(pa.scalar(order), n))
            t = t.append_column("_file", pa.repeat(pa.scalar(f.rel), n))
            t = t.append_column("_pos", pa.array(range(n), pa.int64()))
            parts.append(t)
    if not parts:
        return pa.table({})
    rows = pa.concat_tables(parts, promote_options="permissive")
    keys = [(TIMESTAMP_COLUMN, "ascending"), ("_file", "ascending"), ("_pos", "ascending")]
    return rows.take(pc.sort_indices(rows, sort_keys=keys))


def storage_hidden(rel: str) -> bool:
    return any(p.startswith(("_", ".")) for p in rel.split("/"))


def _statements(schema: str) -> dict[tuple[str, str], str]:
    out = {}
    for table, columns in TABLES.items():
        names = [c for c, _ in columns]
        key = PRIMARY_KEYS[table]
        cols = ", ".join(f'"{c}"' for c in names)
        marks = ", ".join(["%s"] * len(names))
        sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in names if c not in key)
        out[(table, "upsert")] = (
            f'INSERT INTO "{schema}"."{table}" ({cols}) VALUES ({marks}) '
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
        )
        where = " AND ".join(f'"{k}" = %s' for k in key)
        out[(table, "delete")] = f'DELETE FROM "{schema}"."{table}" WHERE {where}'
    return out


def _runs(rows: list[dict]) -> Iterator[tuple[tuple[str, str], list[dict]]]:
    """Consecutive changes of one table and kind, so each run is one executemany."""
    run: list[dict] = []
    kind = None
    for r in rows:
        k = (r["table"], "delete" if r["Op"] == "D" else "upsert")
        if k != kind and run:
            yield kind, run
            run = []
        kind = k
        run.append(r)
    if run:
        yield kind, run


def split(rows: pa.Table, at: dt.datetime) -> tuple[pa.Table, pa.Table]:
    """The changes committed before `at`, and the others."""
    ts = rows.column(TIMESTAMP_COLUMN)
    before = pc.less(ts, pa.scalar(at, ts.type))
    return rows.filter(before), rows.filter(pc.invert(before))


def replay(conn, rows: pa.Table, schema: str = "public") -> tuple[int, int]:
    """Apply the changes in their order as transactions; returns (changes, transactions)."""
    statements = _statements(schema)
    done = txns = 0
    for start in range(0, rows.num_rows, TRANSACTION_ROWS):
        chunk = rows.slice(start, TRANSACTION_ROWS).to_pylist()
        with conn.transaction(), conn.cursor() as cur:
            for (table, kind), run in _runs(chunk):
                cols = PRIMARY_KEYS[table] if kind == "delete" else [c for c, _ in TABLES[table]]
                cur.executemany(statements[(table, kind)], [[r[c] for c in cols] for r in run])
        done += len(chunk)
        txns += 1
    return done, txns
