"""History of the shop simulator's customers and products (a full load, then days of CDC:
thousands of changes), its files landed shuffled over several syncs, against an independent
pandas fold of raw written here from the contract's rules; the current versions against bronze.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil

import pandas as pd
import pytest

from lake_assets.sources.shop.simulator import simulate
from lake_assets_tests.assets._lake import assert_ok, new_lake
from lake_assets_tests.assets.conftest import SharedInstanceLake

SRC = "shop"
UNTRACKED = {"customers": (), "products": ("updated_at",)}
KEYS = {"customers": "customer_id", "products": "product_id"}
CATALOG = f"""\
sources:
  - name: {SRC}
    format: dms
    timestamp_column: dms_commit_ts
    start_date: "2024-02-01"
    tables:
      - {{name: customers, schema: public, primary_key: [customer_id], history: true}}
      - name: products
        schema: public
        primary_key: [product_id]
        history: {{except: [updated_at]}}
"""
VERSION = ("_valid_from", "_valid_to", "_is_current")


def _na(v) -> bool:
    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


def _replay(changes: list[dict], columns: list[str], untracked: tuple[str, ...]) -> list[dict]:
    """One key's versions from its changes in raw's order (the contract's "History"): commit
    times taken as non-decreasing along the order, the last change at a commit time is the
    version, a delete closes the open version and adds none, a change equal on every tracked
    column opens none and updates the untracked ones in place."""
    tracked = [c for c in columns if c not in untracked]
    by_time: dict = {}
    at = None
    for change in changes:
        t = None if _na(change["_commit_ts"]) else change["_commit_ts"]
        at = t if at is None or (t is not None and t > at) else at
        by_time.pop(at, None)
        by_time[at] = change
    out: list[dict] = []
    open_ = None
    for t, change in by_time.items():
        same = open_ is not None and all(
            open_[c] == change[c] or (_na(open_[c]) and _na(change[c])) for c in tracked
        )
        if open_ is not None and (change["_op"] == "D" or not same):
            open_["_valid_to"] = t
            open_ = None
        if change["_op"] == "D":
            continue
        if open_ is None:
            open_ = {**{c: change[c] for c in columns}, "_valid_from": t, "_valid_to": None}
            out.append(open_)
        else:
            open_.update({c: change[c] for c in untracked})
    return out


def fold(raw: list[dict], key: str, untracked: tuple[str, ...]) -> list[dict]:
    columns = [c for c in raw[0] if not c.startswith("_")]
    rows = sorted(raw, key=lambda r: r["_seq"])
    assert not any(r["_op"] == "T" for r in rows)  # the simulator truncates nothing
    keys: dict = {}
    for r in rows:
        keys.setdefault(r[key], []).append(r)
    out = []
    for k in sorted(keys):
        out += _replay(keys[k], columns, untracked)
    for v in out:
        v["_is_current"] = v["_valid_to"] is None
    return out


def _own(row: dict) -> dict:
    return {
        k: (None if _na(v) else v) for k, v in row.items() if not k.startswith("_") or k in VERSION
    }


@pytest.fixture(scope="module")
def synced(tmp_path_factory, dagster_instance):
    tmp = tmp_path_factory.mktemp("shop_oracle")
    staging = tmp / "staging"
    simulate(str(staging), 5, seed=11, scale=0.6, today=dt.date(2024, 3, 1))
    lake = new_lake(tmp)
    lake.__class__ = SharedInstanceLake
    lake.instance = dagster_instance
    lake.write_catalog(CATALOG)
    files = sorted(
        p
        for t in KEYS
        for p in (staging / SRC / "public" / t).rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(staging).parts)
    )
    random.Random(3).shuffle(files)  # later syncs hold files older than ones already synced
    n = len(files)
    out = []
    for group in (files[: n // 3], files[n // 3 : 2 * n // 3], files[2 * n // 3 :]):
        for f in group:
            dest = lake.landing / f.relative_to(staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        assert_ok(lake.sync())
        out.append(
            {
                t: {
                    "raw": lake.rows("raw", SRC, t),
                    "history": lake.rows("bronze", SRC, f"{t}_history", f"{k}, _valid_from"),
                    "bronze": lake.rows("bronze", SRC, t, k),
                }
                for t, k in KEYS.items()
            }
        )
    assert n > 20  # files enough to shuffle
    return out


@pytest.mark.parametrize("table", sorted(KEYS))
def test_history_equals_a_pandas_fold_of_raw_after_every_sync(synced, table):
    stages = synced
    for i, stage in enumerate(stages):
        got = [_own(r) for r in stage[table]["history"]]
        want = [_own(r) for r in fold(stage[table]["raw"], KEYS[table], UNTRACKED[table])]
        assert got == want, f"{table} after sync {i + 1}"
    final = stages[-1][table]
    changes, closed = {"customers": (1000, 50), "products": (100, 10)}[table]
    assert len(final["raw"]) > changes
    assert sum(not v["_is_current"] for v in final["history"]) > closed


@pytest.mark.parametrize("table", sorted(KEYS))
def test_current_versions_equal_bronze(synced, table):
    stages = synced
    for stage in stages:
        current = [
            {k: v for k, v in _own(r).items() if k not in VERSION}
            for r in stage[table]["history"]
            if r["_is_current"]
        ]
        assert current == [{k: v for k, v in _own(r).items()} for r in stage[table]["bronze"]]
