"""The lake's bronze against an independent oracle, over a randomized history of landings.

The oracle is the contract's rule written plainly in Python: order every landed change by
(full load before CDC, commit time, file name with LOAD counters as hex, position in the
file), replay them, the latest change per key wins, a D removes the key.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pytest

from lake_assets.resources.spark import LocalSparkResource
from lake_assets_tests.assets._lake import SRC, assert_ok, catalog, table_dir
from lake_assets_tests.dms_files import UTC, write_parquet

SCHEMA = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("id", pa.int64()),
        ("v", pa.string()),
        ("n", pa.int64()),
        ("amt", pa.decimal128(10, 2)),
    ]
)
COLUMNS = ("id", "v", "n", "amt")


@dataclass
class Landed:
    name: str
    rows: list[dict]  # in file order; "ts" naive UTC

    @property
    def is_full_load(self) -> bool:
        return self.name.startswith("LOAD")

    def file_order(self):
        stem = self.name.rsplit(".", 1)[0]
        if self.is_full_load:
            return (int(stem[4:], 16), "")
        day, rest = stem.split("-")
        frac = rest[6:]
        when = dt.datetime.strptime(day + rest[:6], "%Y%m%d%H%M%S") + dt.timedelta(
            microseconds=int(frac.ljust(6, "0"))
        )
        return (when, self.name)


def oracle(files: list[Landed]) -> list[dict]:
    """Bronze by the contract: one row per live key, source columns and `_commit_ts`."""
    unique = {f.name: f for f in files}.values()  # a file landed twice is one file
    changes = [
        ((0 if f.is_full_load else 1, row["ts"], f.file_order(), pos), row)
        for f in unique
        for pos, row in enumerate(f.rows)
    ]
    changes.sort(key=lambda c: c[0])
    state: dict[int, dict] = {}
    for _, row in changes:
        if row["Op"] == "D":
            state.pop(row["id"], None)
        else:
            state[row["id"]] = {
                **{c: row[c] for c in COLUMNS},
                "_commit_ts": row["ts"].replace(tzinfo=UTC),
            }
    return [state[k] for k in sorted(state)]


def history(rng: random.Random, n_keys: int = 200, n_cdc: int = 27) -> list[Landed]:
    start = dt.datetime(2024, 1, 1)

    def values(key: int) -> dict:
        return {
            "id": key,
            "v": rng.choice([None, "", f"v{rng.randrange(10**6)}", "é😀 "]),
            "n": rng.choice([None, rng.randrange(-(10**12), 10**12)]),
            "amt": rng.choice([None, Decimal(rng.randrange(-(10**9), 10**9)).scaleb(-2)]),
        }

    files = []
    # Full loads with counters 9, A and 10 (hex), overlapping keys; their commit times fall
    # among the CDC's.
    snapshot = start + dt.timedelta(days=rng.randrange(2, 6), minutes=rng.randrange(0, 600))
    for counter, keys in (
        (0x9, range(1, 121)),
        (0xA, range(100, n_keys + 1)),
        (0x10, range(90, 130, 3)),
    ):
        if counter == 0x9:
            t0 = snapshot - dt.timedelta(hours=rng.randrange(1, 30))
            times = sorted(t0 + dt.timedelta(minutes=rng.randrange(0, 30)) for _ in keys)
        else:  # one snapshot time: the file order decides between A and 10
            times = [snapshot] * len(keys)
        ops = [rng.choice([None, "I"]) if counter == 0x9 else "I" for _ in keys]
        files.append(
            Landed(
                f"LOAD{counter:08X}.parquet",
                [{"Op": op, "ts": t, **values(k)} for op, t, k in zip(ops, times, keys)],
            )
        )
    # Keys only the full loads write: their rows show which full load came last.
    cdc_keys = [k for k in range(1, n_keys + 1) if k not in range(90, 130, 6)]
    # CDC files over six days; commit times on a coarse grid so files and rows share them.
    names = set()
    while len(names) < n_cdc:
        when = start + dt.timedelta(
            days=rng.randrange(1, 7),
            seconds=rng.randrange(0, 86400),
            microseconds=rng.choice([0, 1000, 123000, 999000]),
        )
        names.add(when)
    for when in sorted(names):
        n_rows = rng.randrange(10, 40)
        base = when.replace(minute=(when.minute // 20) * 20, second=0, microsecond=0)
        # Commit times reach back up to two hours before the name: files' times interleave.
        times = sorted(
            base - dt.timedelta(minutes=10 * rng.randrange(0, 12)) for _ in range(n_rows)
        )
        rows = []
        for t in times:
            key = rng.choice(cdc_keys)
            op = rng.choices(["I", "U", "D"], weights=[3, 5, 2])[0]
            if op == "D":
                rows.append({"Op": "D", "ts": t, "id": key, "v": None, "n": None, "amt": None})
            else:
                rows.append({"Op": op, "ts": t, **values(key)})
        frac = f"{when.microsecond:06d}"[:3]
        files.append(Landed(f"{when:%Y%m%d-%H%M%S}{frac}.parquet", rows))
    return files


def land(lake, f: Landed, rng: random.Random) -> None:
    d = table_dir(lake.landing, SRC, "public", "t")
    if not f.is_full_load and rng.random() < 0.6:
        d = d / f.name[0:4] / f.name[4:6] / f.name[6:8]
    write_parquet(d / f.name, f.rows, SCHEMA)


def bronze_rows(lake) -> list[dict]:
    return [
        {k: r[k] for k in (*COLUMNS, "_commit_ts")} for r in lake.rows("bronze", SRC, "t", "id")
    ]


@pytest.mark.parametrize("seed", [20240101])
@pytest.mark.parametrize("apply", ["arrow_and_delta_rs", "engine"])
def test_bronze_equals_the_oracle_after_every_sync(lake, seed, apply, monkeypatch):
    """Both ways of applying a batch: arrow and delta-rs (the embedded engine on a local lake)
    and the engine's own window and MERGE (every other deployment)."""
    if apply == "engine":
        # What a remote engine says of itself: it does not share this process's files.
        monkeypatch.setattr(LocalSparkResource, "embedded", lambda self: False)
    rng = random.Random(seed)
    lake.write_catalog(catalog("t"))
    files = history(rng)
    order = files[:]
    rng.shuffle(order)  # landing order: later batches hold files older than ones already synced
    batches = [order[:10], order[10:18], order[18:25], order[25:]]
    assert len(files) == 30
    landed: list[Landed] = []
    late = 0
    for i, batch in enumerate(batches):
        seen_max = max((f.file_order() for f in landed if not f.is_full_load), default=None)
        late += sum(
            1 for f in batch if not f.is_full_load and seen_max and f.file_order() < seen_max
        )
        for f in batch:
            land(lake, f, rng)
        # Some files already landed land again, in the other folder.
        for f in rng.sample(landed, min(2, len(landed))):
            if not f.is_full_load:
                src = next(p for p in (lake.landing / SRC / "public" / "t").rglob(f.name))
                flat = table_dir(lake.landing, SRC, "public", "t") / f.name
                dated = flat.parent / f.name[0:4] / f.name[4:6] / f.name[6:8] / f.name
                dst = dated if src == flat else flat
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        landed += batch
        assert_ok(lake.sync())
        expected = oracle(landed)
        assert bronze_rows(lake) == expected, f"after sync {i + 1}"
        assert len(lake.rows("raw", SRC, "t")) == sum(len(f.rows) for f in landed)
    assert late >= 5, "the history should hold late files"
    assert 50 < len(expected) < 200
