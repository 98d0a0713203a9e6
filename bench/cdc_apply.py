"""Benchmark: one CDC batch from landed DMS files to bronze, through the real asset code.

    python bench/cdc_apply.py --n 1000000 --m 200000 [--checks] [--history]
        [--workdir DIR --keep|--reuse]

Set-up (not timed): a bronze table of N rows (`id` bigint key plus 8 columns: two strings, an
int, a decimal(10,2), a double, a boolean, a timestamp, a date) landed as a DMS full load
(LOAD*.parquet, no Op column) and synced into the lake; then a batch of M DMS changes (70% U,
20% I, 10% D over ~M/3 distinct keys, several changes per key, key-coherent: a new key's first
change is its I, a deleted key's last is its D) landed as CDC parquet files (Op first, 50,000
rows a file, one minute apart, under yyyy/MM/dd folders).

Each of 3 repetitions copies the set-up tree (landing + lake) afresh and then times, in this
process:
- the floor: pyarrow reading every data file of the bronze Delta table and writing it back to
  a temp dir (the least any engine must do to rewrite the table);
- the sync: `lake_assets.sync.sync`, the code path of `lake-assets sync`, with the definitions
  it loads (only the raw and bronze assets: silver and gold are not the subject here; their
  blocking asset checks too with --checks), an ephemeral Dagster instance and the embedded
  Sail engine: landed files -> raw -> bronze.
After the sync, bronze is read with delta-rs (independently of the engine) and compared with
the state computed from the generated data: row count and the sum of `qty` (which change won).
A wrong result fails the benchmark.

With --history the table keeps history (`history: true`): the same sync also applies the batch
to bronze/<source>/<table>_history (its set-up holds the full load's N versions), and the run
prints the history step's seconds beside bronze's, measured in the same run, and their ratio;
the history's current versions are checked against the expected state as bronze is.

Prints per-run figures (wall and CPU seconds of the sync and the floor, the run's own peak
RSS, bronze files left untouched), the steps, and the engine calls by the lake code line that
made them (wall, CPU, RSS), and last:
    cdc_apply N=<n> M=<m> seconds=<s> floor_seconds=<f> ratio=<s/f> peak_rss_mb=<mb>
(medians of the runs; peak RSS of the whole process, set-up included, the in-process Sail
engine included, plus that of any children), and with --history:
    cdc_apply_history N=<n> M=<m> bronze_step_seconds=<b> history_step_seconds=<h> ratio=<h/b>
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SOURCE, SCHEMA, TABLE = "bench", "public", "items"
START = dt.date(2024, 1, 1)
CDC_DAY = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)

CATALOG = f"""\
sources:
  - name: {SOURCE}
    format: dms
    start_date: {START.isoformat()}
    tables:
      - name: {TABLE}
        schema: {SCHEMA}
        primary_key: [id]
        columns:
          id: bigint
          name: string
          city: string
          qty: int
          amount: decimal(10,2)
          score: double
          active: boolean
          updated_at: timestamp
          born: date
"""

CITIES = pa.array([f"city-{i:04d}" for i in range(1000)], pa.string())


def say(line: str = "") -> None:
    print(line, flush=True)


# -- memory --------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak RSS of this process (the in-process engine included) plus that of its children."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024.0  # Linux: kilobytes


def reset_hwm() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM), to measure one run's own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def hwm_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


# -- data ----------------------------------------------------------------------------------


def make_rows(ids: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """Rows of the table for the given ids: the key plus 8 columns of mixed types."""
    n = len(ids)
    name = pc.binary_join_element_wise(
        "name-", pc.cast(pa.array(rng.integers(0, 10**9, n)), pa.string()), ""
    )
    city = CITIES.take(pa.array(rng.integers(0, len(CITIES), n)))
    qty = pa.array(rng.integers(0, 1000, n).astype(np.int32))
    cents = rng.integers(0, 10**8, n).astype(np.int64)  # < 10**10: fits decimal(10,2)
    words = np.zeros((n, 2), dtype=np.int64)  # decimal128: low 64 bits, high 64 bits (>= 0)
    words[:, 0] = cents
    amount = pa.Array.from_buffers(pa.decimal128(10, 2), n, [None, pa.py_buffer(words)])
    score = pa.array(rng.random(n) * 100.0)
    active = pa.array(rng.random(n) < 0.5)
    base = int(dt.datetime(2023, 1, 1).timestamp()) * 10**6
    updated = pa.array(
        base + rng.integers(0, 365 * 86400 * 10**6, n), pa.timestamp("us")
    )  # DMS: no zone
    born = pa.array(rng.integers(0, 20000, n).astype(np.int32), pa.date32())
    return pa.table(
        {
            "id": pa.array(ids.astype(np.int64)),
            "name": name,
            "city": city,
            "qty": qty,
            "amount": amount,
            "score": score,
            "active": active,
            "updated_at": updated,
            "born": born,
        }
    )


def table_dir(landing: Path) -> Path:
    d = landing / SOURCE / SCHEMA / TABLE
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_full_load(
    landing: Path, n: int, rng: np.random.Generator, rows_per_file: int
) -> np.ndarray:
    """LOAD0000000k.parquet files of ids 1..n; returns each id's qty (index id-1)."""
    d = table_dir(landing)
    qty = np.empty(n, dtype=np.int64)
    for k, start in enumerate(range(0, n, rows_per_file)):
        ids = np.arange(start + 1, min(n, start + rows_per_file) + 1, dtype=np.int64)
        t = make_rows(ids, rng)
        qty[start : start + len(ids)] = t.column("qty").to_numpy()
        pq.write_table(t, d / f"LOAD{k + 1:08X}.parquet")
    return qty


class Batch:
    """A CDC batch in change order: key, op, qty of every change."""

    def __init__(self, keys: np.ndarray, ops: np.ndarray, qty: np.ndarray, files: int):
        self.keys, self.ops, self.qty, self.files = keys, ops, qty, files


def make_batch(n: int, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(key id, op) of m changes in change order: 70% U, 20% I, 10% D over ~m/3 keys."""
    k = max(1, m // 3)
    n_new = min(k, round(0.2 * m))
    n_old = k - n_new
    n_del = round(0.1 * m)
    # Key index 0..n_new-1: new keys (inserted in this batch); n_new..k-1: existing keys.
    idx = np.concatenate([np.arange(k), rng.integers(0, k, m - k)])
    idx = idx[rng.permutation(m)]  # the change order
    order = np.argsort(idx, kind="stable")  # by key, then change order
    counts = np.bincount(idx, minlength=k)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m) - np.repeat(starts, counts)
    is_new = np.arange(k) < n_new
    eligible = np.flatnonzero(~is_new | (counts >= 2))  # a new key needs its I before a D
    deleted = np.zeros(k, dtype=bool)
    deleted[rng.choice(eligible, size=min(n_del, len(eligible)), replace=False)] = True
    ops = np.full(m, "U", dtype="<U1")
    last = rank == counts[idx] - 1
    ops[last & deleted[idx]] = "D"
    ops[(rank == 0) & is_new[idx]] = "I"
    key_ids = np.empty(k, dtype=np.int64)
    key_ids[:n_new] = n + 1 + np.arange(n_new)
    key_ids[n_new:] = rng.choice(n, size=n_old, replace=False) + 1
    return key_ids[idx], ops


def write_cdc(landing: Path, n: int, m: int, rng: np.random.Generator, rows_per_file: int) -> Batch:
    """CDC files (Op first, then the row) under yyyy/MM/dd folders, one minute apart."""
    keys, ops = make_batch(n, m, rng)
    qty = np.empty(m, dtype=np.int64)
    d = table_dir(landing)
    files = 0
    for i, start in enumerate(range(0, m, rows_per_file)):
        sl = slice(start, min(m, start + rows_per_file))
        t = make_rows(keys[sl], rng)
        qty[sl] = t.column("qty").to_numpy()
        t = t.add_column(0, "Op", pa.array(ops[sl].tolist(), pa.string()))
        when = CDC_DAY + dt.timedelta(minutes=i, milliseconds=123)
        folder = d / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(t, folder / f"{when:%Y%m%d-%H%M%S}{when.microsecond // 1000:03d}.parquet")
        files += 1
    return Batch(keys, ops, qty, files)


def expected_state(n: int, initial_qty: np.ndarray, batch: Batch) -> tuple[int, int]:
    """(rows, sum of qty) of bronze after the batch: the latest change per key wins."""
    m = len(batch.keys)
    rev = np.arange(m)[::-1]
    uniq, first_in_rev = np.unique(batch.keys[::-1], return_index=True)
    last = rev[first_in_rev]  # index of each key's latest change
    live = batch.ops[last] != "D"
    touched_old = uniq[uniq <= n]
    rows = n - len(touched_old) + int(live.sum())
    qty_sum = (
        int(initial_qty.sum())
        - int(initial_qty[touched_old - 1].sum())
        + int(batch.qty[last][live].sum())
    )
    return rows, qty_sum


# -- the lake ------------------------------------------------------------------------------


class Lake:
    def __init__(self, root: Path, history: bool = False):
        self.root = root
        self.lake = root / "lake"
        self.landing = root / "landing"
        self.catalog = root / "catalog.yaml"
        self.history = history

    def create(self) -> Lake:
        self.lake.mkdir(parents=True, exist_ok=True)
        self.landing.mkdir(parents=True, exist_ok=True)
        keyed = "        primary_key: [id]\n"
        history = keyed + "        history: true\n"
        self.catalog.write_text(CATALOG.replace(keyed, history) if self.history else CATALOG)
        return self

    def path(self, layer: str, table: str = TABLE) -> str:
        return str(self.lake / layer / SOURCE / table)

    def sync(self, lines: list[str], checks: bool = True) -> tuple[float, float, dict[str, float]]:
        """`lake-assets sync` in this process: the same definitions and sync, an ephemeral
        instance. Returns (seconds, cpu seconds, seconds of each step) of the sync() call."""
        import dagster as dg

        from lake_assets.catalog import load_catalog
        from lake_assets.definitions import build_definitions
        from lake_assets.settings import Settings
        from lake_assets.sync import sync

        settings = Settings.load(str(self.lake), str(self.landing), str(self.catalog), "local")
        defs = raw_and_bronze(build_definitions(settings), checks)
        catalog = load_catalog(settings.sources)
        with dg.DagsterInstance.ephemeral() as instance:
            c0, t0 = cpu_seconds(), time.perf_counter()
            result = sync(settings, defs, catalog, instance, lines.append)
            secs, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            steps = step_seconds(instance)
        if not result.ok:
            raise SystemExit("FAIL: sync failed:\n  " + "\n  ".join(result.failures + lines))
        return secs, cpu, steps


def cpu_seconds() -> float:
    """CPU time of this process, all threads (the engine's included), and of its children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


LAYERS = ("raw", "bronze")


def raw_and_bronze(defs, checks: bool):
    """The real definitions with only the raw and bronze assets (and their checks, or none).

    Silver and gold (and what they cost) are not this benchmark's subject; the assets,
    checks, resources and the sync that runs them are the very objects `lake-assets sync` uses.
    """
    import dagster as dg

    assets = [a for a in defs.assets if all(k.path[0] in LAYERS for k in a.keys)]
    checks = (
        [
            c
            for c in defs.asset_checks or []
            if all(k.asset_key.path[0] in LAYERS for k in c.check_keys)
        ]
        if checks
        else []
    )
    return dg.Definitions(assets=assets, asset_checks=checks, resources=defs.resources)


def step_seconds(instance) -> dict[str, float]:
    """Seconds of each step of every run in the instance (STEP_START -> success/failure)."""
    out: dict[str, float] = defaultdict(float)
    for rec in instance.get_run_records():
        started: dict[str, float] = {}
        for ev in instance.all_logs(rec.dagster_run.run_id):
            de = ev.dagster_event
            if de is None or de.step_key is None:
                continue
            if de.event_type_value == "STEP_START":
                started[de.step_key] = ev.timestamp
            elif de.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and de.step_key in started:
                out[de.step_key] += ev.timestamp - started[de.step_key]
    return dict(out)


def bronze_files(path: str) -> list[str]:
    from deltalake import DeltaTable

    return [u.removeprefix("file://") for u in DeltaTable(path).file_uris()]


def bronze_state(path: str) -> tuple[int, int, int]:
    """(rows, sum of qty, data files) of bronze, read with delta-rs."""
    from deltalake import DeltaTable

    ds = DeltaTable(path).to_pyarrow_dataset()
    rows = 0
    total = 0
    for b in ds.to_batches(columns=["qty"]):
        rows += b.num_rows
        s = pc.sum(b.column(0)).as_py()
        total += s or 0
    return rows, total, len(bronze_files(path))


def history_state(path: str) -> tuple[int, int, int]:
    """(current versions, their sum of qty, all versions) of the history, read with delta-rs."""
    from deltalake import DeltaTable, QueryBuilder

    sql = (
        "SELECT sum(CASE WHEN _is_current THEN 1 ELSE 0 END), "
        "sum(CASE WHEN _is_current THEN qty ELSE 0 END), count(*) FROM t"
    )
    got = pa.table(QueryBuilder().register("t", DeltaTable(path)).execute(sql).read_all())
    current, qty, total = (got.column(i)[0].as_py() or 0 for i in range(3))
    return int(current), int(qty), int(total)


def _step(steps: dict[str, float], suffix: str) -> float:
    """Seconds of the one step whose key ends with `suffix`."""
    found = [v for k, v in steps.items() if k.endswith(suffix)]
    if len(found) != 1:
        raise SystemExit(f"FAIL: {len(found)} step(s) ending {suffix!r} in {sorted(steps)}")
    return found[0]


def floor_seconds(files: list[str], out_dir: Path) -> tuple[float, float]:
    """pyarrow: read every data file and write it back (the least a rewrite of bronze costs).
    Returns (seconds, cpu seconds)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    c0, t0 = cpu_seconds(), time.perf_counter()
    for i, f in enumerate(files):
        t = pq.read_table(f)
        pq.write_table(t, out_dir / f"part-{i:05d}.parquet")
        del t
    return time.perf_counter() - t0, cpu_seconds() - c0


# -- phase breakdown -----------------------------------------------------------------------


class Phases:
    """Wall time of each engine call and lake function, by the lake code line that made it.

    Wraps (without changing) the Spark Connect calls that do work (createDataFrame, sql,
    count, collect, toPandas, write.save, schema) and the lake's delta-rs helpers; an inner
    call made inside an outer wrapped call counts only in the outer one.
    """

    def __init__(self):
        self.t: dict[str, float] = defaultdict(float)
        self.c: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)
        self.rss: dict[str, float] = defaultdict(float)  # highest RSS sampled during the calls
        self.rss0: dict[str, float] = {}  # RSS when the first of the calls started
        self.depth = 0
        self.active = "(between calls)"
        self.installed = False
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            mb = rss_mb()
            key = self.active
            self.rss[key] = max(self.rss[key], mb)
            time.sleep(0.02)

    @staticmethod
    def _site() -> str:
        f = sys._getframe(1)
        while f is not None:
            fn = f.f_code.co_filename
            mine = fn == __file__ and f.f_code.co_name in ("wrapper", "getter", "_timed", "_site")
            if not mine and ("lake_assets" in fn or fn == __file__):
                return f"{Path(fn).parent.name}/{Path(fn).name}:{f.f_lineno} {f.f_code.co_name}"
            f = f.f_back
        return "?"

    def wrap(self, owner, attr: str, label: str) -> None:
        orig = owner.__dict__[attr]
        phases = self

        if isinstance(orig, property):
            fget = orig.fget

            def getter(obj):
                return phases._timed(label, fget, (obj,), {})

            setattr(owner, attr, property(getter, orig.fset, orig.fdel, orig.__doc__))
            return

        def wrapper(*args, **kwargs):
            return phases._timed(label, orig, args, kwargs)

        wrapper.__wrapped__ = orig
        setattr(owner, attr, wrapper)

    def _timed(self, label, fn, args, kwargs):
        if self.depth:
            return fn(*args, **kwargs)
        site = self._site()
        key = f"{label:<16} {site}"
        self.depth += 1
        self.rss0.setdefault(key, rss_mb())
        self.active = key
        c0, t0 = cpu_seconds(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.depth -= 1
            self.active = "(between calls)"
            self.t[key] += time.perf_counter() - t0
            self.c[key] += cpu_seconds() - c0
            self.n[key] += 1

    def install(self) -> None:
        if self.installed:
            return
        from pyspark.sql.connect import dataframe as cdf
        from pyspark.sql.connect import readwriter as crw
        from pyspark.sql.connect import session as cs

        from lake_assets.lib import delta as ldelta
        from lake_assets.lib import raw as lraw

        self.wrap(cs.SparkSession, "createDataFrame", "createDataFrame")
        self.wrap(cs.SparkSession, "sql", "sql")
        self.wrap(cdf.DataFrame, "count", "count")
        self.wrap(cdf.DataFrame, "collect", "collect")
        self.wrap(cdf.DataFrame, "toPandas", "toPandas")
        self.wrap(cdf.DataFrame, "toArrow", "toArrow")
        self.wrap(cdf.DataFrame, "schema", "schema")
        self.wrap(crw.DataFrameWriter, "save", "write.save")
        self.wrap(lraw, "read_changes", "landing read")
        from lake_assets.lib import cdc as lcdc
        from lake_assets.resources import io_manager as lio

        self.wrap(lcdc, "_stage_fresh", "arrow batch")
        self.wrap(lio, "stage_local_rows", "stage rows")
        from lake_assets.lib import history as lhistory

        self.wrap(lhistory, "_read_scope", "arrow read")
        self.wrap(lhistory.history_arrow, "versions", "arrow fold")
        self.wrap(lhistory, "_gone", "arrow held")
        from deltalake.table import TableMerger

        self.wrap(TableMerger, "execute", "delta-rs merge")
        for name in ("exists", "version", "files_at"):
            self.wrap(ldelta, name, f"delta-rs {name}")
        self.installed = True

    def reset(self) -> None:
        self.t.clear()
        self.c.clear()
        self.n.clear()
        self.rss.clear()
        self.rss0.clear()

    def report(self, total: float, total_cpu: float) -> list[str]:
        lines = [
            f"    {'wall':>8s}  {'share':>5s} {'cpu':>8s} {'RSS MB':>13s}  "
            "calls (RSS: at start > highest)"
        ]
        for key, secs in sorted(self.t.items(), key=lambda kv: -kv[1]):
            if secs < 0.01:
                continue
            lines.append(
                f"    {secs:7.2f}s {100 * secs / total:5.1f}% {self.c[key]:7.2f}s "
                f"{self.rss0.get(key, 0):6.0f}>{self.rss.get(key, 0):6.0f}  "
                f"x{self.n[key]:<3d} {key}"
            )
        rest, rest_cpu = total - sum(self.t.values()), total_cpu - sum(self.c.values())
        lines.append(
            f"    {rest:7.2f}s {100 * rest / total:5.1f}% {rest_cpu:7.2f}s "
            f"{'':6s}>{self.rss.get('(between calls)', 0):6.0f}        "
            "(Dagster, Python and the rest)"
        )
        return lines


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--n", type=int, required=True, help="rows of the initial bronze table (full load)"
    )
    p.add_argument("--m", type=int, required=True, help="changes in the timed CDC batch")
    p.add_argument(
        "--runs", type=int, default=3, help="repetitions (default 3; the figures are medians)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--load-file-rows", type=int, default=1_000_000, help="rows per LOAD file")
    p.add_argument("--cdc-file-rows", type=int, default=50_000, help="rows per CDC file")
    p.add_argument(
        "--workdir", help="where to build the lakes (default: a temp dir, removed after)"
    )
    p.add_argument("--keep", action="store_true", help="keep the work dir")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the set-up lake of an earlier --workdir run of the same sizes",
    )
    p.add_argument(
        "--checks",
        action="store_true",
        help="include the raw and bronze asset checks in the timed sync "
        "(as `lake-assets sync` runs them)",
    )
    p.add_argument(
        "--history",
        action="store_true",
        help="the table keeps history: time its apply beside bronze's in the same sync",
    )
    p.add_argument(
        "--no-phases", action="store_true", help="do not time the engine calls one by one"
    )
    args = p.parse_args(argv)
    if args.n < 1 or args.m < 1 or args.runs < 1:
        p.error("--n, --m and --runs must be positive")

    os.environ.setdefault("RUST_LOG", "error")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="cdc_apply_"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    say(f"cdc_apply: N={args.n} M={args.m} runs={args.runs} work={work} cpus={os.cpu_count()}")
    try:
        return _run(args, work, rng)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def build_setup(setup: Lake, args, rng: np.random.Generator, phases: Phases) -> tuple[int, int]:
    """Land the full load, sync it (not timed), land the CDC batch; the expected end state."""
    if setup.root.exists():
        shutil.rmtree(setup.root)
    setup.create()

    t0 = time.perf_counter()
    initial_qty = write_full_load(setup.landing, args.n, rng, args.load_file_rows)
    say(f"setup: full load of {args.n} rows landed in {time.perf_counter() - t0:.1f}s")
    lines: list[str] = []
    phases.reset()
    secs, cpu, _ = setup.sync(lines, checks=False)
    rows, qsum, nfiles = bronze_state(setup.path("bronze"))
    say(
        f"setup: full-load sync in {secs:.1f}s (cpu {cpu:.1f}s): bronze {rows} rows in "
        f"{nfiles} file(s); "
        f"peak RSS {peak_rss_mb():.0f} MB"
    )
    if phases.installed:
        for line in phases.report(secs, cpu):
            say(line)
    if rows != args.n or qsum != int(initial_qty.sum()):
        raise SystemExit(
            f"FAIL: bronze after the full load has {rows} rows, qty sum {qsum}; "
            f"expected {args.n}, {int(initial_qty.sum())}"
        )

    t0 = time.perf_counter()
    batch = write_cdc(setup.landing, args.n, args.m, rng, args.cdc_file_rows)
    want_rows, want_qty = expected_state(args.n, initial_qty, batch)
    ops = {o: int((batch.ops == o).sum()) for o in "UID"}
    say(
        f"setup: {args.m} changes ({ops['U']} U, {ops['I']} I, {ops['D']} D) over "
        f"{len(np.unique(batch.keys))} keys in {batch.files} CDC file(s), "
        f"in {time.perf_counter() - t0:.1f}s; "
        f"bronze must end with {want_rows} rows"
    )
    return want_rows, want_qty


def _run(args, work: Path, rng: np.random.Generator) -> int:
    from lake_assets.lib.engine import local_spark

    setup = Lake(work / "setup", args.history)
    marker = setup.root / "setup.json"
    ident = {
        "history": args.history,
        "n": args.n,
        "m": args.m,
        "seed": args.seed,
        "load_file_rows": args.load_file_rows,
        "cdc_file_rows": args.cdc_file_rows,
    }
    local_spark()  # start the engine outside the timings
    phases = Phases()
    if not args.no_phases:
        phases.install()
    if args.reuse and marker.exists() and json.loads(marker.read_text()).get("ident") == ident:
        want_rows, want_qty = json.loads(marker.read_text())["want"]
        say(f"setup: reusing {setup.root}; bronze must end with {want_rows} rows")
    else:
        want_rows, want_qty = build_setup(setup, args, rng, phases)
        marker.write_text(json.dumps({"ident": ident, "want": [want_rows, want_qty]}))
    say(f"setup: peak RSS so far {peak_rss_mb():.0f} MB")

    peak = peak_rss_mb()
    results = []
    history_runs: list[tuple[float, float]] = []
    for r in range(1, args.runs + 1):
        lake = Lake(work / f"run{r}", args.history)
        if lake.root.exists():
            shutil.rmtree(lake.root)
        shutil.copytree(setup.root, lake.root)
        os.sync()  # no write-back of the copy during the timings
        before = bronze_files(lake.path("bronze"))
        floor, floor_cpu = floor_seconds(before, work / f"floor{r}")
        shutil.rmtree(work / f"floor{r}", ignore_errors=True)

        peak = max(peak, peak_rss_mb())  # resetting the high-water mark resets ru_maxrss too
        own_peak = reset_hwm()
        phases.reset()
        lines = []
        secs, cpu, steps = lake.sync(lines, checks=args.checks)
        run_hwm = hwm_mb() if own_peak else float("nan")

        rows, qsum, nfiles = bronze_state(lake.path("bronze"))
        after = set(bronze_files(lake.path("bronze")))
        kept = len(set(before) & after)
        ok = rows == want_rows and qsum == want_qty
        say(
            f"run {r}: seconds={secs:.2f} floor_seconds={floor:.2f} ratio={secs / floor:.2f} "
            f"cpu_seconds={cpu:.2f} floor_cpu_seconds={floor_cpu:.2f} "
            f"load={os.getloadavg()[0]:.1f} "
            f"run_peak_rss_mb={run_hwm:.0f} bronze_rows={rows} files={nfiles} "
            f"(untouched {kept}/{len(before)}) {'OK' if ok else 'WRONG'}"
        )
        for line in lines:
            say(f"    | {line}")
        say("  steps:")
        for k, v in sorted(steps.items(), key=lambda kv: -kv[1]):
            say(f"    {v:8.2f}s  {k}")
        if not args.no_phases:
            say("  engine calls by lake code line (wall time):")
            for line in phases.report(secs, cpu):
                say(line)
        if not ok:
            raise SystemExit(
                f"FAIL: bronze has {rows} rows and qty sum {qsum}; expected {want_rows} rows, "
                f"qty sum {want_qty}"
            )
        results.append((secs, floor))
        if args.history:
            current, hqty, versions = history_state(lake.path("bronze", TABLE + "_history"))
            b, h = _step(steps, f"bronze__{SOURCE}__{TABLE}"), _step(steps, f"{TABLE}_history")
            say(
                f"  history: bronze_step_seconds={b:.2f} history_step_seconds={h:.2f} "
                f"ratio={h / b:.2f} versions={versions} current={current} "
                f"{'OK' if (current, hqty) == (want_rows, want_qty) else 'WRONG'}"
            )
            if (current, hqty) != (want_rows, want_qty):
                raise SystemExit(
                    f"FAIL: history has {current} current versions, qty sum {hqty}; expected "
                    f"{want_rows}, {want_qty}"
                )
            history_runs.append((b, h))
        shutil.rmtree(lake.root, ignore_errors=True)

    s = statistics.median(x for x, _ in results)
    f = statistics.median(y for _, y in results)
    say(
        f"cdc_apply N={args.n} M={args.m} seconds={s:.2f} floor_seconds={f:.2f} ratio={s / f:.2f} "
        f"peak_rss_mb={max(peak, peak_rss_mb()):.0f}"
    )
    if history_runs:
        b = statistics.median(x for x, _ in history_runs)
        h = statistics.median(y for _, y in history_runs)
        say(
            f"cdc_apply_history N={args.n} M={args.m} bronze_step_seconds={b:.2f} "
            f"history_step_seconds={h:.2f} ratio={h / b:.2f} load={os.getloadavg()[0]:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
