"""Benchmark: bronze's MERGE of one deduplicated CDC batch, three ways, side by side.

    python bench/dv_merge.py --n 5000000 --m 1000 [--runs 3] [--no-engine-cow]

Set-up (not timed): bronze as the lake keeps it (the table of bench/cdc_apply.py plus
`_commit_ts` and `_seq`), N rows written by the embedded engine (Sail) twice: copy-on-write,
and with `delta.enableDeletionVectors=true`; and the batch bronze's apply MERGEs: the newest
change of each of the ~M/3 keys of M changes (70% U, 20% I, 10% D, as cdc_apply.py), with
`_op` and a `_seq` newer than bronze's, as a parquet file.

Each repetition copies both tables afresh and times, one after the other:
- floor: pyarrow reading every data file of bronze and writing it back (cdc_apply.py's floor);
- delta_rs: delta-rs MERGE of the batch into the copy-on-write table (the lake's path on the
  embedded engine with a local lake), the conditions of lib/cdc.py;
- sail_dv: Sail's SQL `MERGE INTO` (lib/cdc.py's statement) into the deletion-vector table;
- sail_cow: the same statement into the copy-on-write table (the lake's engine path);
- with --delete-bound, sail_dv_delete: Sail's `DELETE ... WHERE id IN (the batch's keys)` on the
  deletion-vector table: it only marks rows, so it bounds from below what any MERGE with
  deletion vectors costs on the engine (its rows differ from the others': not compared).
After each, the table's rows and sum of `qty` (read with delta-rs QueryBuilder, which reads
deletion vectors) must be the same for all three. Peak RSS of the process during each step
(kernel high-water mark, reset before it; the engine runs in this process). Last line:
    dv_merge N=<n> M=<m> floor=<s> delta_rs=<s> sail_dv=<s> sail_cow=<s> (ratios to the floor)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
import cdc_apply as ca  # noqa: E402  (the table, the batch, the floor, memory helpers)

KEYS = ("id",)


def bronze_rows(ids: np.ndarray, rng, seq_prefix: str) -> pa.Table:
    t = ca.make_rows(ids, rng)
    n = t.num_rows
    ts = pa.array(np.full(n, 1_700_000_000_000_000, dtype=np.int64), pa.timestamp("us", tz="UTC"))
    seq = pc.binary_join_element_wise(
        seq_prefix, pc.utf8_lpad(pc.cast(pa.array(ids), pa.string()), 20, "0"), ""
    )
    return t.append_column("_commit_ts", ts).append_column("_seq", seq)


def build(work: Path, n: int, m: int, rng) -> tuple[Path, Path, Path]:
    from lake_assets.lib.engine import local_spark

    spark = local_spark()
    staged = work / "staged"
    staged.mkdir(parents=True)
    step = 1_000_000
    for k, start in enumerate(range(0, n, step)):
        ids = np.arange(start + 1, min(n, start + step) + 1, dtype=np.int64)
        pq.write_table(bronze_rows(ids, rng, "0|"), staged / f"part-{k:03d}.parquet")
    src = spark.read.parquet(str(staged))
    cow, dv = work / "cow", work / "dv"
    src.write.format("delta").save(str(cow))
    src.write.format("delta").option("delta.enableDeletionVectors", "true").save(str(dv))
    shutil.rmtree(staged)
    keys, ops = ca.make_batch(n, m, rng)
    rev = np.arange(m)[::-1]
    uniq, first = np.unique(keys[::-1], return_index=True)
    last = rev[first]  # each key's newest change
    batch = bronze_rows(uniq, rng, "1|").append_column("_op", pa.array(ops[last].tolist()))
    batch_file = work / "batch.parquet"
    pq.write_table(batch, batch_file)
    return cow, dv, batch_file


def merge_delta_rs(path: str, batch_file: Path) -> None:
    from deltalake import DeltaTable

    batch = pads.dataset(str(batch_file), format="parquet")
    cols = [c for c in batch.schema.names if c != "_op"]
    (
        DeltaTable(path)
        .merge(
            batch.scanner(batch_readahead=0, fragment_readahead=0).to_reader(),
            predicate="t.id = s.id",
            source_alias="s",
            target_alias="t",
        )
        .when_matched_delete(predicate="s._seq > t._seq AND s._op = 'D'")
        .when_matched_update({c: f"s.{c}" for c in cols}, predicate="s._seq > t._seq")
        .when_not_matched_insert({c: f"s.{c}" for c in cols}, predicate="s._op <> 'D'")
        .execute()
    )


def merge_sail(path: str, batch_file: Path) -> None:
    from lake_assets.lib import cdc, delta
    from lake_assets.lib.engine import local_spark

    spark = local_spark()
    staged = spark.read.parquet(str(batch_file))
    view = "_bench_batch"
    staged.createOrReplaceTempView(view)
    sql = cdc._bronze_merge_sql(
        path, view, "s.`id` = t.`id`", delta.schema_of(spark, path), staged.columns
    )
    spark.sql(sql).collect()
    spark.catalog.dropTempView(view)


def delete_keys(path: str, batch_file: Path) -> None:
    from lake_assets.lib.engine import local_spark

    ids = pq.read_table(batch_file, columns=["id"]).column(0).to_pylist()
    listed = ", ".join(str(i) for i in ids)
    local_spark().sql(f"DELETE FROM delta.`{path}` WHERE id IN ({listed})").collect()


def state(path: str) -> tuple[int, int]:
    from lake_assets.lib import delta

    ((rows, qty),) = delta.query(path, "SELECT count(*), sum(CAST(qty AS BIGINT)) FROM t")
    return int(rows), int(qty or 0)


def timed(fn) -> tuple[float, float, float]:
    """(seconds, cpu seconds, peak RSS MiB during it)."""
    ca.reset_hwm()
    c0, t0 = ca.cpu_seconds(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, ca.cpu_seconds() - c0, ca.hwm_mb()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--m", type=int, required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-engine-cow", action="store_true", help="leave out sail_cow (slow)")
    p.add_argument(
        "--delete-bound", action="store_true", help="also time sail_dv_delete (see above)"
    )
    args = p.parse_args(argv)
    os.environ.setdefault("RUST_LOG", "error")
    work = Path(tempfile.mkdtemp(prefix="dv_merge_"))
    try:
        rng = np.random.default_rng(1)
        t0 = time.perf_counter()
        cow, dv, batch_file = build(work, args.n, args.m, rng)
        ca.say(
            f"setup: {args.n} rows twice, batch of {pq.read_metadata(batch_file).num_rows} keys "
            f"in {time.perf_counter() - t0:.1f}s; load {os.getloadavg()[0]:.2f}"
        )
        ways = ["floor", "delta_rs", "sail_dv"] + ([] if args.no_engine_cow else ["sail_cow"])
        ways += ["sail_dv_delete"] if args.delete_bound else []
        got: dict[str, list[float]] = {w: [] for w in ways}
        peaks: dict[str, float] = {w: 0.0 for w in ways}
        for r in range(1, args.runs + 1):
            results = {}
            for way in ways:
                src = dv if way.startswith("sail_dv") else cow
                copy = work / f"run-{way}"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(src, copy)
                os.sync()
                if way == "floor":
                    files = ca.bronze_files(str(copy))
                    secs, cpu, peak = timed(lambda: ca.floor_seconds(files, work / "floor"))
                    shutil.rmtree(work / "floor", ignore_errors=True)
                elif way == "sail_dv_delete":
                    secs, cpu, peak = timed(lambda: delete_keys(str(copy), batch_file))
                else:
                    fn = merge_delta_rs if way == "delta_rs" else merge_sail
                    secs, cpu, peak = timed(lambda: fn(str(copy), batch_file))
                    results[way] = state(str(copy))
                got[way].append(secs)
                peaks[way] = max(peaks[way], peak)
                ca.say(
                    f"run {r} {way}: seconds={secs:.2f} cpu={cpu:.2f} peak_rss_mb={peak:.0f} "
                    f"load={os.getloadavg()[0]:.2f} {results.get(way, '')}"
                )
                shutil.rmtree(copy, ignore_errors=True)
            if len(set(results.values())) != 1:
                raise SystemExit(f"FAIL: the ways disagree: {results}")
        med = {w: statistics.median(v) for w, v in got.items()}
        ratios = " ".join(f"{w}={med[w]:.2f}s({med[w] / med['floor']:.2f})" for w in ways)
        ca.say(
            f"dv_merge N={args.n} M={args.m} {ratios} "
            f"peak_rss_mb={' '.join(f'{w}:{peaks[w]:.0f}' for w in ways)} "
            f"load={os.getloadavg()[0]:.2f}"
        )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
