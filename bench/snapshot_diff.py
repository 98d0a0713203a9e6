"""Benchmark: the diff of `format: snapshot`, one snapshot against the one before, through raw.

    python bench/snapshot_diff.py --n 10000000 --changed 0.01 [--repeat 3] [--workdir DIR]

Set-up (its figures printed, not the subject): snapshot A of N rows (`id` bigint key, two
strings, an int, a decimal(10,2), a timestamp) landed as parquet; then snapshot B: A with a
fraction `changed` of its keys changed (70% updated in one column, 15% deleted, and as many
new keys as 15%), in another row order. A enters the lake by the format's own read and diff
against nothing (which writes the lake's state of A), recorded as a file raw holds, without
raw's write of its N inserts: the diff of B is the subject, and one raw run of 10M new rows
fails in the engine's RPC on this machine (`--through-raw` does the set-up through raw).

Each repetition copies the set-up lake afresh and runs, each in a process of its own:
- the lake: `lake_assets.sync.sync` (the code of `lake-assets sync`) with the real raw assets
  only (bronze and above are not the subject), so raw reads B and diffs it against the state
  the lake kept of A: seconds and the process's peak RSS (the in-process engine included);
- the floor: pyarrow reads A and B once, whole, joins them by key and compares their columns
  (the least a diff that holds both in memory does): seconds and peak RSS.
Raw's new changes are then counted by `_op` (read with delta-rs) and checked against what was
generated; a wrong count fails the benchmark. Last line (medians):
    snapshot_diff N=<n> changed=<f> seconds=<s> floor_seconds=<f> ratio=<s/f>
        peak_rss_mb=<mb> floor_peak_rss_mb=<mb>
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SOURCE, SCHEMA, TABLE = "bench", "public", "items"
A_NAME, B_NAME = "20240102-000000.parquet", "20240103-000000.parquet"
CATALOG = f"""\
sources:
  - name: {SOURCE}
    format: snapshot
    start_date: "2024-01-01"
    tables:
      - name: {TABLE}
        schema: {SCHEMA}
        primary_key: [id]
"""


def say(line: str = "") -> None:
    print(line, flush=True)


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM: fresh at exec, where ru_maxrss keeps the parent's)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


# -- data ----------------------------------------------------------------------------------


def rows(ids: np.ndarray, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = len(ids)
    ids_s = pc.cast(pa.array(ids), pa.string())
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pc.binary_join_element_wise("customer-", ids_s, ""),
            "city": pa.array(np.array(["Oslo", "Lima", "Pune", "Turin", "Quito"])[ids % 5]),
            "qty": pa.array(rng.integers(0, 1000, n, dtype=np.int32)),
            "price": pa.array(ids % 100000).cast(pa.decimal128(21, 2)).cast(pa.decimal128(10, 2)),
            "updated_at": pa.array(
                (1_700_000_000_000_000 + ids * 1000).astype("datetime64[us]")
            ).cast(pa.timestamp("us", tz="UTC")),
        }
    )


def write_snapshot(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=1_000_000)


def generate(landing: Path, n: int, changed: float) -> dict[str, int]:
    """Snapshots A and B under the table's landing folder; the changes B is expected to make."""
    folder = landing / SOURCE / SCHEMA / TABLE
    ids = np.arange(1, n + 1, dtype=np.int64)
    a = rows(ids, 1)
    write_snapshot(folder / A_NAME, a)
    rng = np.random.default_rng(2)
    k = int(n * changed)
    picked = rng.choice(n, size=k, replace=False)
    upd, gone = picked[: int(k * 0.7)], picked[int(k * 0.7) : int(k * 0.85)]
    new = np.arange(n + 1, n + 1 + (k - len(upd) - len(gone)), dtype=np.int64)
    qty = a.column("qty").to_numpy().copy()
    qty[upd] = (qty[upd] + 1) % 1000
    keep = np.ones(n, dtype=bool)
    keep[gone] = False
    b = a.set_column(3, "qty", pa.array(qty)).filter(pa.array(keep))
    b = pa.concat_tables([b, rows(new, 3)])
    b = b.take(pa.array(np.random.default_rng(4).permutation(b.num_rows)))  # another order
    del a
    write_snapshot(folder / B_NAME, b)
    return {"I": len(new), "U": len(upd), "D": len(gone)}


# -- one phase, in a process of its own ----------------------------------------------------


def phase_sync(work: Path) -> dict:
    import dagster as dg

    from lake_assets.catalog import load_catalog
    from lake_assets.definitions import build_definitions
    from lake_assets.settings import Settings
    from lake_assets.sync import sync

    settings = Settings.load(
        str(work / "lake"), str(work / "landing"), str(work / "catalog.yaml"), "local"
    )
    defs = build_definitions(settings)
    raw_only = dg.Definitions(
        assets=[a for a in defs.assets if all(k.path[0] == "raw" for k in a.keys)],
        resources=defs.resources,
    )
    catalog = load_catalog(settings.sources)
    lines: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance:
        t0 = time.perf_counter()
        result = sync(settings, raw_only, catalog, instance, lines.append)
        secs = time.perf_counter() - t0
        if not result.ok:
            for rec in instance.get_run_records():
                for ev in instance.all_logs(rec.dagster_run.run_id):
                    if ev.dagster_event and ev.dagster_event.is_step_failure:
                        print(ev.dagster_event.step_failure_data.error.to_string(), file=sys.stderr)
            raise SystemExit("FAIL: sync failed:\n  " + "\n  ".join(result.failures + lines))
    return {"seconds": secs, "peak_rss_mb": peak_rss_mb()}


def phase_seed(work: Path) -> dict:
    """Snapshot A into the lake without raw's write: the format's own read and diff (which
    writes the state of A), then A recorded as a landed file raw holds with no rows."""
    from deltalake import write_deltalake

    from lake_assets import formats
    from lake_assets.catalog import load_catalog
    from lake_assets.formats.base import TableFiles
    from lake_assets.lib import raw as rawlib

    source = load_catalog(str(work / "catalog.yaml")).sources[0]
    table = source.tables[0]
    landing, lake = str(work / "landing"), str(work / "lake")
    fmt = formats.resolve(source)
    files = fmt.list_files(landing, source, table)
    ctx = TableFiles(source, table, fmt.filesystem(landing, source, table), lake, lambda: set())
    t0 = time.perf_counter()
    changes = sum(fmt.read_files(ctx, files, lambda got: got.rows.num_rows))
    secs = time.perf_counter() - t0
    held = pa.table(
        {
            "name": pa.array([f.name for f in files], pa.string()),
            "day": pa.array([f.partition_date for f in files], pa.date32()),
            "size": pa.array([f.size for f in files], pa.int64()),
        }
    )
    write_deltalake(rawlib.empty_files_path(lake, source.name, table.name), held, mode="append")
    return {"seconds": secs, "peak_rss_mb": peak_rss_mb(), "changes": changes}


def phase_floor(work: Path) -> dict:
    folder = work / "landing" / SOURCE / SCHEMA / TABLE
    t0 = time.perf_counter()
    a, b = pq.read_table(folder / A_NAME), pq.read_table(folder / B_NAME)
    a = a.append_column("_ai", pa.array(np.arange(a.num_rows)))
    b = b.append_column("_bi", pa.array(np.arange(b.num_rows)))
    j = b.select(["id", "_bi"]).join(a.select(["id", "_ai"]), "id", join_type="full outer")
    both = pc.and_(pc.is_valid(j.column("_ai")), pc.is_valid(j.column("_bi")))
    ai, bi = pc.filter(j.column("_ai"), both), pc.filter(j.column("_bi"), both)
    changed = pa.array(np.zeros(len(ai), dtype=bool))
    for c in a.column_names:
        if c in ("id", "_ai"):
            continue
        changed = pc.or_(changed, pc.not_equal(a.column(c).take(ai), b.column(c).take(bi)))
    counts = {
        "I": pc.sum(pc.is_null(j.column("_ai"))).as_py(),
        "D": pc.sum(pc.is_null(j.column("_bi"))).as_py(),
        "U": pc.sum(changed).as_py(),
    }
    return {"seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb(), "counts": counts}


def in_child(phase: str, work: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--workdir", str(work)],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"FAIL: {phase} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def raw_counts(work: Path, name: str) -> dict[str, int]:
    from deltalake import DeltaTable, QueryBuilder

    path = str(work / "lake" / "raw" / SOURCE / TABLE)
    sql = f"SELECT _op, COUNT(*) AS n FROM t WHERE _source_file = '{name}' GROUP BY _op"
    got = pa.table(QueryBuilder().register("t", DeltaTable(path)).execute(sql).read_all())
    return dict(zip(got.column("_op").to_pylist(), got.column("n").to_pylist()))


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--changed", type=float, default=0.01)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workdir", type=Path)
    p.add_argument(
        "--through-raw",
        action="store_true",
        help="set-up: snapshot A through raw (10M inserts in one raw run) rather than seeded",
    )
    p.add_argument("--phase", choices=["sync", "seed", "floor"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase:
        phase = {"sync": phase_sync, "seed": phase_seed, "floor": phase_floor}[args.phase]
        got = phase(args.workdir)
        print(json.dumps(got))
        return 0
    with open("/proc/loadavg") as f:
        say(f"load before: {f.read().strip()} (cores: {os.cpu_count()})")
    base = args.workdir or Path(tempfile.mkdtemp(prefix="snapshot-diff-"))
    setup = base / "setup"
    shutil.rmtree(setup, ignore_errors=True)
    (setup / "lake").mkdir(parents=True)
    (setup / "catalog.yaml").write_text(CATALOG)
    t0 = time.perf_counter()
    expected = generate(setup / "landing", args.n, args.changed)
    say(f"generated A ({args.n} rows) and B ({expected}) in {time.perf_counter() - t0:.1f}s")
    b_file = setup / "landing" / SOURCE / SCHEMA / TABLE / B_NAME
    held_back = setup / B_NAME
    b_file.rename(held_back)  # A alone first
    if args.through_raw:
        first = in_child("sync", setup)
        what = f"A through raw ({args.n} inserts)"
    else:
        first = in_child("seed", setup)
        if first["changes"] != args.n:
            raise SystemExit(f"FAIL: A's diff made {first['changes']} changes, not {args.n}")
        what = f"A's diff against nothing ({args.n} inserts, not written to raw)"
    say(f"set-up: {what}: {first['seconds']:.1f}s, peak RSS {first['peak_rss_mb']:.0f} MB")
    held_back.rename(b_file)
    runs, floors = [], []
    for i in range(args.repeat):
        work = base / f"run{i}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(setup, work)
        run = in_child("sync", work)
        got = raw_counts(work, B_NAME)
        if got != expected:
            raise SystemExit(f"FAIL: raw holds {got} of B's changes, expected {expected}")
        floor = in_child("floor", work)
        if floor["counts"] != expected:
            raise SystemExit(f"FAIL: the floor counted {floor['counts']}, expected {expected}")
        shutil.rmtree(work)
        runs.append(run)
        floors.append(floor)
        with open("/proc/loadavg") as f:
            load = f.read().strip()
        say(
            f"run {i + 1}: lake {run['seconds']:.1f}s peak {run['peak_rss_mb']:.0f} MB | "
            f"floor {floor['seconds']:.1f}s peak {floor['peak_rss_mb']:.0f} MB | load {load}"
        )
    if not args.workdir:
        shutil.rmtree(base)
    med = statistics.median
    s, f = med(r["seconds"] for r in runs), med(r["seconds"] for r in floors)
    say(
        f"snapshot_diff N={args.n} changed={args.changed} seconds={s:.1f} floor_seconds={f:.1f} "
        f"ratio={s / f:.2f} peak_rss_mb={med(r['peak_rss_mb'] for r in runs):.0f} "
        f"floor_peak_rss_mb={med(r['peak_rss_mb'] for r in floors):.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
