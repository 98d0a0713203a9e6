"""History against an independent fold of raw, after every sync of a shuffled simulated history
(the bronze oracle's landings: full loads whose commit times fall among the CDC's, late files,
files landed twice): pandas orders raw's changes by `_seq` and replays them key by key."""

from __future__ import annotations

import random

import pandas as pd

from lake_assets_tests.assets._lake import SRC, assert_ok
from lake_assets_tests.assets.test_oracle import COLUMNS, land
from lake_assets_tests.assets.test_oracle import history as landings
from lake_assets_tests.history._history import catalog, history

UNTRACKED = ("n",)
TRACKED = [c for c in COLUMNS if c != "id" and c not in UNTRACKED]


def _same(a: dict, b: dict) -> bool:
    return all(a[c] == b[c] or (pd.isna(a[c]) and pd.isna(b[c])) for c in TRACKED)


def _replay(changes: pd.DataFrame) -> list[dict]:
    """One key's versions from its changes in order: the last change at each commit time (times
    made non-decreasing along the order), a delete closing, an equal change updating in place."""
    last_at, events = None, {}
    for change in changes.to_dict("records"):
        at = change["_commit_ts"] if pd.notna(change["_commit_ts"]) else None
        last_at = at if last_at is None or (at is not None and at > last_at) else last_at
        events.pop(last_at, None)
        events[last_at] = change  # insertion order stays the order: times never decrease
    out: list[dict] = []
    open_: dict | None = None
    for at, change in events.items():
        if open_ is not None and (change["_op"] == "D" or not _same(open_, change)):
            open_["_valid_to"] = at
            open_ = None
        if change["_op"] == "D":
            continue
        if open_ is None:
            open_ = {**{c: change[c] for c in COLUMNS}, "_valid_from": at, "_valid_to": None}
            out.append(open_)
        else:
            open_.update({c: change[c] for c in UNTRACKED})
    return out


def fold(raw: list[dict]) -> list[dict]:
    frame = pd.DataFrame(raw).sort_values("_seq", kind="stable")
    out = []
    for _, changes in frame.groupby("id", sort=True):
        out += _replay(changes)
    for version in out:
        version["_is_current"] = version["_valid_to"] is None
    return [_plain(v) for v in out]


def _plain(row: dict) -> dict:
    return {
        k: (
            None
            if v is not None and not isinstance(v, str) and pd.isna(v)
            else v.to_pydatetime()
            if isinstance(v, pd.Timestamp)
            else v
        )
        for k, v in row.items()
    }


def test_history_equals_a_fold_of_raw_after_every_sync(lake):
    rng = random.Random(7)
    lake.write_catalog(catalog("t", ["id"], "{except: [n]}"))
    order = landings(rng, n_keys=60, n_cdc=12)
    rng.shuffle(order)  # later syncs hold files older than ones already synced
    for i, batch in enumerate([order[:6], order[6:11], order[11:]]):
        for f in batch:
            land(lake, f, rng)
        assert_ok(lake.sync())
        got = [_plain(r) for r in history(lake, "t", "id, _valid_from NULLS FIRST")]
        want = fold(lake.rows("raw", SRC, "t"))
        assert got == want, f"after sync {i + 1}"
    assert sum(not v["_is_current"] for v in want) > 20
