"""Two runs writing one table at once: nothing lost, nothing held twice."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import time

import pytest

from lake_assets_tests.assets import _workers
from lake_assets_tests.assets._lake import SRC, assert_ok, bronze, catalog, cdc, load, r, raw

DAYS = ["2024-01-02", "2024-01-03", "2024-01-04"]


def _land(lake, table: str, keys: range) -> None:
    """A full load of every key, then two files a day updating every key (the last day deletes
    every third)."""
    load(lake, table, 1, [r("I", "2024-01-01 00:00:00", k, "load") for k in keys])
    for i, day in enumerate(DAYS):
        for hour in (9, 17):
            rows = []
            for k in keys:
                if i == 2 and k % 3 == 0:
                    rows.append(r("D", f"{day} {hour:02d}:00:00", k))
                else:
                    rows.append(r("U", f"{day} {hour:02d}:00:00", k, f"{day}-{hour}"))
            cdc(lake, table, f"{day} {hour:02d}:30:00", rows)


def _expected_bronze(keys: range) -> list[dict]:
    return [{"id": k, "v": f"{DAYS[-1]}-17"} for k in keys if k % 3 != 0]


@pytest.mark.slow
def test_raw_partitions_of_one_table_materialized_concurrently_in_two_processes(lake, tmp_path):
    lake.write_catalog(catalog("t"))
    keys = range(1, 41)
    _land(lake, "t", keys)
    with mp.get_context("spawn").Pool(2) as pool:  # two processes, each with its own engine

        def race(days: list[str], tag: str) -> None:
            sync_dir = tmp_path / f"sync-{tag}"
            sync_dir.mkdir()
            results = [
                pool.apply_async(
                    _workers.materialize_raw_partition,
                    (
                        str(lake.root),
                        str(lake.landing),
                        str(lake.catalog),
                        SRC,
                        "t",
                        d,
                        str(sync_dir),
                    ),
                )
                for d in days
            ]
            deadline = time.monotonic() + 180
            while len(list(sync_dir.glob("ready-*"))) < len(days):
                assert time.monotonic() < deadline, "workers did not get ready"
                assert not any(x.ready() for x in results), [x.get() for x in results if x.ready()]
                time.sleep(0.01)
            (sync_dir / "go").touch()
            assert [x.get(timeout=300) for x in results] == [True] * len(days)

        # The table does not exist yet: both runs create it (a narrow window: a few rounds).
        for attempt in range(4):
            shutil.rmtree(lake.path("raw", SRC, "t"), ignore_errors=True)
            race(["2024-01-01", "2024-01-02"], f"create{attempt}")
            held = [(x["_source_file"], x["_file_pos"]) for x in raw(lake, "t")]
            assert sorted(held) == sorted(set(held)), f"round {attempt}: a change held twice"
            assert len(held) == 3 * len(keys), f"round {attempt}: {len(held)} changes held"
        # It exists: two more partitions at once.
        race(["2024-01-03", "2024-01-04"], "replace")
        pool.close()
        pool.join()
    got = raw(lake, "t")
    files = sorted({x["_source_file"] for x in got})
    assert len(files) == 1 + 2 * len(DAYS)
    assert len(got) == len(files) * len(keys)
    assert len({(x["_source_file"], x["_file_pos"]) for x in got}) == len(got)
    # Bronze from it is right, and a sync now finds nothing new for raw.
    assert_ok(lake.sync())
    assert not any(line.startswith("  raw/") for line in lake.lines), lake.lines
    assert bronze(lake, "t") == _expected_bronze(keys)
    assert raw(lake, "t") == got


def test_two_syncs_at_once_equal_one_sync(lake, tmp_path):
    lake.write_catalog(catalog("t", "u"))
    keys = range(1, 31)
    _land(lake, "t", keys)
    _land(lake, "u", keys)
    sync_dir = tmp_path / "sync"
    sync_dir.mkdir()
    # Two processes, each the sync code path (one standing in for the sensor's run), started
    # together.
    with mp.get_context("spawn").Pool(2) as pool:
        runs = [
            pool.apply_async(
                _workers.run_sync,
                (str(lake.root), str(lake.landing), str(lake.catalog), str(sync_dir), tag),
            )
            for tag in ("a", "b")
        ]
        deadline = time.monotonic() + 180
        while len(list(sync_dir.glob("ready-*"))) < 2:
            assert time.monotonic() < deadline, "the syncs did not get ready"
            assert not any(x.ready() for x in runs), [x.get() for x in runs if x.ready()]
            time.sleep(0.01)
        (sync_dir / "go").touch()
        results = [x.get(timeout=300) for x in runs]
        pool.close()
        pool.join()
    for ok, failures, _ in results:
        assert ok, failures
    # Whatever the interleaving: what one sync gives. Another sync settles nothing more.
    for t in ("t", "u"):
        got = raw(lake, t)
        assert len(got) == (1 + 2 * len(DAYS)) * len(keys), t
        assert len({(x["_source_file"], x["_file_pos"]) for x in got}) == len(got), t
        assert bronze(lake, t) == _expected_bronze(keys), t
    before = {t: (raw(lake, t), bronze(lake, t)) for t in ("t", "u")}
    assert_ok(lake.sync())
    assert {t: (raw(lake, t), bronze(lake, t)) for t in ("t", "u")} == before
