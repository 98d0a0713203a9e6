"""Benchmark: extraction from PostgreSQL (format postgres), against a real server on 127.0.0.1.

    python bench/pg_extract.py [--n 1000000] [--txn 100000] [--batch-size 10000] [--runs 1]

Set-up (not timed): a fresh server (lake_assets_tests/pg_server.py), a table `items` (bigint
key, text, numeric(12,2), timestamptz, boolean, jsonb) of N rows. Each run, in a fresh database:
1. snapshot: the first extraction, which creates the slot and reads the N rows from its
   exported snapshot in one REPEATABLE READ transaction (server-side cursor, --batch-size rows
   a fetch) into one parquet file;
2. logical: N changes (updates of every row, --txn rows a transaction, REPLICA IDENTITY FULL)
   committed after the slot, then one extraction that reads them from the slot (pgoutput via
   pg_logical_slot_peek_binary_changes), lands them and confirms the slot;
3. mode snapshot: the N rows (after the updates) read in one REPEATABLE READ transaction into
   one format-snapshot parquet file.
Timed: the wall seconds of each extraction in this process, and the server's CPU seconds
meanwhile (utime + stime from /proc of the postmaster and its live children, plus the
postmaster's cutime + cstime, which holds the children that ended). The landed row count is
checked against N (a wrong count fails the benchmark).

Prints per run, then the medians:
    pg_extract N=<n> snapshot_rows_per_s=<r> snapshot_server_cpu_s=<c> logical_rows_per_s=<r>
    logical_server_cpu_s=<c> mode_snapshot_rows_per_s=<r> mode_snapshot_server_cpu_s=<c>
    load=<1-min loadavg>
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(server) -> float:
    """CPU seconds of the server: live processes, plus the ended children the postmaster reaped."""
    total = 0.0
    for i, pid in enumerate(server.pids()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        total += utime + stime + (cutime + cstime if i == 0 else 0)
    return total / _TICK


def one_run(server, n: int, txn: int, batch: int, run: int) -> dict:
    import psycopg
    import pyarrow.parquet as pq

    from lake_assets.catalog import parse_catalog
    from lake_assets.lib import postgres
    from lake_assets_tests import pg_server

    db = f"bench{run}"
    server.psql_admin(f"CREATE DATABASE {db} OWNER {pg_server.USER}")
    dsn = server.dsn(dbname=db)
    os.environ["BENCH_PG_DSN"] = dsn
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, name text, amount numeric(12,2), "
            "ts timestamptz, flag boolean, meta jsonb)"
        )
        c.execute(
            "INSERT INTO items SELECT g, 'item ' || g, g * 0.01, "
            "timestamptz '2024-01-01' + g * interval '1 second', g %% 2 = 0, "
            "jsonb_build_object('g', g) FROM generate_series(1, %s) g",
            (n,),
        )
        c.execute("VACUUM ANALYZE items")
    source = parse_catalog(
        textwrap.dedent(
            f"""
            sources:
              - name: bench
                format: postgres
                dsn_env: BENCH_PG_DSN
                slot: slot_{db}
                batch_size: {batch}
                statement_timeout_s: 600
                start_date: "2024-01-01"
                tables:
                  - {{name: items, schema: public, primary_key: [id]}}
            """
        )
    ).sources[0]
    landing = tempfile.mkdtemp(prefix="pg-bench-")
    out = {}
    cpu0, t0 = server_cpu(server), time.perf_counter()
    loaded = postgres.extract(source, landing)
    out["snapshot_s"], out["snapshot_cpu"] = time.perf_counter() - t0, server_cpu(server) - cpu0
    assert loaded.loaded_rows == n, loaded
    with psycopg.connect(dsn, autocommit=True) as c:
        for lo in range(1, n + 1, txn):
            c.execute(
                "UPDATE items SET amount = amount + 1, flag = NOT flag WHERE id >= %s AND id < %s",
                (lo, lo + txn),
            )
    cpu0, t0 = server_cpu(server), time.perf_counter()
    got = postgres.extract(source, landing)
    out["logical_s"], out["logical_cpu"] = time.perf_counter() - t0, server_cpu(server) - cpu0
    assert got.changes == n, got
    landed = sum(pq.read_metadata(p).num_rows for p in Path(landing).rglob("*.parquet"))
    assert landed == 2 * n, landed
    out["batches"] = got.batches
    snap = source.model_copy(update={"mode": "snapshot", "slot": None})
    cpu0, t0 = server_cpu(server), time.perf_counter()
    taken = postgres.extract(snap, tempfile.mkdtemp(prefix="pg-bench-snap-"))
    out["mode_snapshot_s"] = time.perf_counter() - t0
    out["mode_snapshot_cpu"] = server_cpu(server) - cpu0
    assert taken.loaded_rows == n, taken
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--txn", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    from lake_assets_tests import pg_server

    server = pg_server.start()
    try:
        runs = []
        for i in range(args.runs):
            r = one_run(server, args.n, args.txn, args.batch_size, i)
            runs.append(r)
            print(
                f"run {i + 1}: snapshot {r['snapshot_s']:.2f}s (server CPU "
                f"{r['snapshot_cpu']:.2f}s), logical {r['logical_s']:.2f}s in {r['batches']} "
                f"batch(es) (server CPU {r['logical_cpu']:.2f}s), mode snapshot "
                f"{r['mode_snapshot_s']:.2f}s (server CPU {r['mode_snapshot_cpu']:.2f}s)",
                flush=True,
            )
    finally:
        server.stop()

    def med(k):
        return statistics.median(r[k] for r in runs)

    load = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"pg_extract N={args.n} snapshot_rows_per_s={args.n / med('snapshot_s'):.0f} "
        f"snapshot_server_cpu_s={med('snapshot_cpu'):.2f} "
        f"logical_rows_per_s={args.n / med('logical_s'):.0f} "
        f"logical_server_cpu_s={med('logical_cpu'):.2f} "
        f"mode_snapshot_rows_per_s={args.n / med('mode_snapshot_s'):.0f} "
        f"mode_snapshot_server_cpu_s={med('mode_snapshot_cpu'):.2f} load={load}"
    )


if __name__ == "__main__":
    main()
