"""Two ways to a history run must give the same versions.

With the embedded engine on a local lake, arrow reads the touched keys' changes from raw's
files, folds them, and one delta-rs MERGE writes the versions with the watermark in its commit;
everywhere else the engine reads, MERGEs, and the watermark is a commit of its own after. One
input (late files, deletes and re-inserts, changes at one commit time, a change of nothing
tracked) synced into two lakes, one per way: the histories are equal after every
sync.
"""

from __future__ import annotations

import pytest

from lake_assets.lib import cdc, delta
from lake_assets.lib import history as historylib
from lake_assets_tests.assets._lake import SRC, assert_ok
from lake_assets_tests.assets.conftest import SharedInstanceLake
from lake_assets_tests.history._history import catalog, history
from lake_assets_tests.history.test_versions import c, land

# (file's second, its changes): file 40 lands after 50 and holds changes older than both; key
# 6's late change at 25 moves its second version's start (the one held at 30 is no more).
SYNCS = [
    [(10, [c("I", 10, 1, "a", "n1"), c("I", 10, 2, "x"), c("I", 10, 3, "p"), c("I", 10, 6, "m")])],
    [(30, [c("U", 30, 1, "b", "n1"), c("D", 30, 2), c("U", 30, 3, "p", "n2"), c("U", 30, 6, "n")])],
    [(50, [c("I", 50, 2, "y"), c("U", 50, 1, "c"), c("U", 50, 1, "d"), c("I", 50, 4, "q")])],
    [(40, [c("U", 20, 1, "a2"), c("U", 45, 2, "w"), c("U", 35, 3, "p", "n3"), c("U", 25, 6, "n")])],
    [(55, [c("D", 55, 4), c("D", 55, 3)]), (58, [c("I", 58, 4, "s"), c("I", 58, 5, "r")])],
]


def _second_lake(lake) -> SharedInstanceLake:
    root = lake.tmp / "engine"
    (root / "lake").mkdir(parents=True)
    (root / "landing").mkdir()
    out = SharedInstanceLake(root, root / "lake", root / "landing", root / "catalog.yaml")
    out.instance = lake.instance
    return out


def _history_commits(lake) -> list[dict]:
    return delta.delta_table(str(lake.path("bronze", SRC, "t_history"))).history()


@pytest.mark.slow
def test_both_ways_give_the_same_history_after_every_sync(lake, monkeypatch):
    by_engine = _second_lake(lake)
    for each in (lake, by_engine):
        each.write_catalog(catalog("t", ["id"], "{except: [note]}"))
    engine_only = {"on": False}
    real = cdc.merges_in_process  # the way bronze's apply takes (whatever the tests' setting)
    monkeypatch.setattr(
        historylib,
        "merges_in_process",
        lambda embedded, path: False if engine_only["on"] else real(embedded, path),
    )
    for sync in SYNCS:
        for second, rows in sync:
            land(lake, second, rows)
            land(by_engine, second, rows)
        assert_ok(lake.sync())
        engine_only["on"] = True
        try:
            assert_ok(by_engine.sync())
        finally:
            engine_only["on"] = False
        got = history(lake, "t", "id, _valid_from")
        assert got == history(by_engine, "t", "id, _valid_from")
        assert got  # each sync leaves versions to compare
    assert [(r["id"], r["v"]) for r in got if r["_is_current"]] == [
        (1, "d"),
        (2, "y"),
        (4, "s"),
        (5, "r"),
        (6, "n"),
    ]
    # The in-process way: each run one delta-rs MERGE whose commit holds the watermark; the
    # engine's: its MERGE, then a commit of the watermark alone.
    ours, theirs = _history_commits(lake), _history_commits(by_engine)  # newest first
    merges = [h for h in ours if h.get("operation") == "MERGE"]
    assert len(merges) == len(SYNCS)
    assert all("delta-rs" in str(h.get("clientVersion", "")) for h in merges)
    assert ours[0]["operation"] == "MERGE"  # the watermark's commit is the MERGE's
    assert not any(
        "delta-rs" in str(h.get("clientVersion", ""))
        for h in theirs
        if h.get("operation") == "MERGE"
    )
    assert theirs[0].get("operation") != "MERGE"


def test_a_failed_in_process_merge_leaves_the_history_as_it_was(lake, monkeypatch):
    from deltalake.table import TableMerger

    lake.write_catalog(catalog("t", ["id"]))
    land(lake, 10, [c("I", 10, 1, "a"), c("I", 10, 2, "x")])
    assert_ok(lake.sync())
    path = str(lake.path("bronze", SRC, "t_history"))
    before = (
        delta.version(path),
        historylib.watermark(path),
        history(lake, "t", "id, _valid_from"),
    )
    land(lake, 20, [c("U", 20, 1, "b"), c("D", 20, 2)])
    real = TableMerger.execute

    def fails_on_history(self):
        if self._table.table_uri().rstrip("/").endswith("t_history"):
            raise OSError("No space left on device")
        return real(self)

    monkeypatch.setattr(TableMerger, "execute", fails_on_history)
    failed = lake.sync()
    assert any("t_history" in f for f in failed.failures)
    after = (delta.version(path), historylib.watermark(path), history(lake, "t", "id, _valid_from"))
    assert after == before
    monkeypatch.setattr(TableMerger, "execute", real)
    assert_ok(lake.sync())  # run again, it applies the batch
    assert [(r["id"], r["v"], r["_is_current"]) for r in history(lake, "t", "id, _valid_from")] == [
        (1, "a", False),
        (1, "b", True),
        (2, "x", False),
    ]
