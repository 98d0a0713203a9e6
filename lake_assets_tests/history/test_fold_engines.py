"""The history fold in process (lib/history_arrow.py) gives exactly the engine's fold
(lib/history.versions) on the same changes: random raw-like rows with a composite key, full-load
rows without a commit time and with one later than CDC after them, several changes at one
commit time, deletes, re-inserts, changes that alter only the `except` column, and truncates."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa

from lake_assets.lib import history, history_arrow

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 2, tzinfo=UTC)
SCHEMA = pa.schema(
    [
        ("k1", pa.int64()),
        ("k2", pa.string()),
        ("v", pa.string()),
        ("n", pa.int64()),
        ("_op", pa.string()),
        ("_commit_ts", pa.timestamp("us", tz="UTC")),
        ("_seq", pa.string()),
    ]
)


def changes(seed: int) -> pa.Table:
    rng = random.Random(seed)
    rows = []
    for i in range(rng.randint(300, 500)):
        full_load = i < 60
        op = "T" if not full_load and rng.random() < 0.01 else rng.choice("IUUUD")
        if full_load:
            op = "I"
        at = (
            None
            if full_load and rng.random() < 0.5
            else T0 + dt.timedelta(minutes=rng.randint(0, 40))
        )
        key = (rng.randint(1, 12), rng.choice("ab"))
        rows.append(
            {
                "k1": None if op == "T" else key[0],
                "k2": None if op == "T" else key[1],
                "v": None if op in "DT" else rng.choice(["x", "y", None]),
                "n": None if op in "DT" else rng.randint(0, 2),
                "_op": op,
                "_commit_ts": at,
                "_seq": f"{0 if full_load else 1}.{i:08d}",
            }
        )
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(
        rows, key=lambda r: (r["k1"], r["k2"], r["_valid_from"] or T0.min.replace(tzinfo=UTC))
    )


def test_the_in_process_fold_equals_the_engines(spark):
    spec = history.Spec(("k1", "k2"), ("n",))
    for seed in range(4):
        table = changes(seed)
        engine = [
            r.asDict() for r in history.versions(spark.createDataFrame(table), spec).collect()
        ]
        local = history_arrow.versions(table, spec.keys, spec.untracked).to_pylist()
        for r in engine:  # the engine's timestamps come back without a zone, in UTC
            for c in ("_valid_from", "_valid_to"):
                r[c] = r[c] and r[c].replace(tzinfo=UTC)
        assert _sorted(local) == _sorted(engine), f"seed {seed}"
        assert any(r["_valid_from"] is None for r in local)
        assert sum(not r["_is_current"] for r in local) > 10
