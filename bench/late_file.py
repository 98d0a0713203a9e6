"""Benchmark: a small CDC file after a large full load, on the full-load day and on another day.

    python bench/late_file.py --n 2000000 [--rows 10] [--runs 3] [--no-checks]

Set-up (not timed): the table of bench/cdc_apply.py, N rows landed as a DMS full load
(LOAD*.parquet, 1M rows a file) and synced; raw holds them in the partition of the source's
first day (a full load belongs to the first day).

Each repetition copies the set-up tree twice and times, one right after the other, the sync
of one CDC file of `--rows` updates of existing keys
- dated on the full-load day (raw rewrites that day's partition: the full load and the file),
- dated on the next day (a partition of its own),
through `lake_assets.sync.sync` with the raw and bronze assets and their blocking checks
(without them: --no-checks). Bronze is read back with delta-rs after each sync and compared
with the expected state (rows, sum of qty). Prints each run, its steps, and last:
    late_file N=<n> rows=<r> full_load_day_seconds=<s> other_day_seconds=<s> ratio=<a/b> load=<l>
(medians; load: the 1-minute load average at the end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
import cdc_apply as ca  # noqa: E402  (the same table, lake and sync helpers)


def land_file(lake: ca.Lake, n: int, rows: int, day: dt.date, seed: int) -> np.ndarray:
    """A CDC file of `rows` updates of existing keys dated `day`; returns (ids, qty)."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(n, size=rows, replace=False).astype(np.int64) + 1
    t = ca.make_rows(ids, rng)
    t = t.add_column(0, "Op", pa.array(["U"] * rows, pa.string()))
    when = dt.datetime.combine(day, dt.time(12, 0), tzinfo=dt.UTC)
    folder = ca.table_dir(lake.landing) / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, folder / f"{when:%Y%m%d-%H%M%S}000.parquet")
    return ids, t.column("qty").to_numpy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=2_000_000, help="rows of the full load")
    p.add_argument("--rows", type=int, default=10, help="changes in the small file")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-checks", action="store_true", help="time raw and bronze only")
    p.add_argument("--workdir", help="where to build the lakes (default: a temp dir)")
    args = p.parse_args(argv)
    os.environ.setdefault("RUST_LOG", "error")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="late_file_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args, work: Path) -> int:
    from lake_assets.lib.engine import local_spark

    local_spark()
    rng = np.random.default_rng(1)
    setup = ca.Lake(work / "setup").create()
    qty = ca.write_full_load(setup.landing, args.n, rng, 1_000_000)
    secs, cpu, _ = setup.sync([], checks=False)
    ca.say(f"setup: full load of {args.n} rows synced in {secs:.1f}s (cpu {cpu:.1f}s)")
    checks = not args.no_checks
    days = {"full_load_day": ca.START, "other_day": ca.START + dt.timedelta(days=1)}
    got: dict[str, list[float]] = {k: [] for k in days}
    for r in range(1, args.runs + 1):
        for case, day in days.items():
            lake = ca.Lake(work / f"run{r}-{case}")
            shutil.copytree(setup.root, lake.root)
            ids, new_qty = land_file(lake, args.n, args.rows, day, seed=100 + r)
            os.sync()
            lines: list[str] = []
            secs, cpu, steps = lake.sync(lines, checks=checks)
            rows, qsum, _ = ca.bronze_state(lake.path("bronze"))
            want = int(qty.sum() - qty[ids - 1].sum() + new_qty.sum())
            ok = rows == args.n and qsum == want
            ca.say(
                f"run {r} {case}: seconds={secs:.2f} cpu_seconds={cpu:.2f} "
                f"load={os.getloadavg()[0]:.2f} {'OK' if ok else 'WRONG'}"
            )
            for k, v in sorted(steps.items(), key=lambda kv: -kv[1]):
                ca.say(f"    {v:8.2f}s  {k}")
            if not ok:
                raise SystemExit(f"FAIL: bronze has {rows} rows, qty {qsum}; want {args.n}, {want}")
            got[case].append(secs)
            shutil.rmtree(lake.root, ignore_errors=True)
    a, b = statistics.median(got["full_load_day"]), statistics.median(got["other_day"])
    ca.say(
        f"late_file N={args.n} rows={args.rows} checks={checks} full_load_day_seconds={a:.2f} "
        f"other_day_seconds={b:.2f} ratio={a / b:.2f} load={os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
