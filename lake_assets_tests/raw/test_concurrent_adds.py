"""Two runs adding different new files to one raw day at once: raw holds both, each once.

Each run sees a landing zone of its own (the same lake), so each has a file the other lacks:
a run that rewrote the day from what it read before the other committed would drop that file."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest

from lake_assets_tests.assets import _workers
from lake_assets_tests.assets._lake import ROW, SRC, assert_ok, catalog, r, raw, ts
from lake_assets_tests.dms_files import write_cdc

DAY = "2024-01-02"


def _cdc(landing, when: str, id: int):
    return write_cdc(landing, SRC, "public", "t", ts(when), [r("I", when, id, f"v{id}")], ROW)


def _race(pool, lake, landings, tag: str) -> None:
    dirs = []
    for i, _ in enumerate(landings):
        dirs.append(lake.tmp / f"sync-{tag}-{i}")
        dirs[-1].mkdir()
    args = [
        (str(lake.root), str(landing), str(lake.catalog), SRC, "t", DAY, str(d))
        for landing, d in zip(landings, dirs)
    ]
    runs = [pool.apply_async(_workers.materialize_raw_partition, a) for a in args]
    deadline = time.monotonic() + 180
    while not all(list(d.glob("ready-*")) for d in dirs):
        assert time.monotonic() < deadline, "workers did not get ready"
        assert not any(x.ready() for x in runs), [x.get() for x in runs if x.ready()]
        time.sleep(0.01)
    for d in dirs:
        (d / "go").touch()
    assert [x.get(timeout=300) for x in runs] == [True] * len(runs)


@pytest.mark.slow
def test_two_runs_adding_different_files_to_one_day_keep_both(lake):
    lake.write_catalog(catalog("t"))
    other = lake.tmp / "landing-2"
    for landing in (lake.landing, other):
        _cdc(landing, f"{DAY} 08:00:00", 0)  # the same file in both, held before the race
    assert_ok(lake.sync())
    added = set()
    with mp.get_context("spawn").Pool(2) as pool:
        for i in range(3):
            added |= {
                _cdc(lake.landing, f"{DAY} 09:00:0{i}", 10 + i).name,
                _cdc(other, f"{DAY} 10:00:0{i}", 20 + i).name,
            }
            _race(pool, lake, [lake.landing, other], str(i))
            held = [(x["_source_file"], x["_file_pos"]) for x in raw(lake, "t")]
            assert sorted(held) == sorted(set(held)), f"round {i}: a change held twice"
            assert added <= {name for name, _ in held}, f"round {i}: a file lost"
        pool.close()
        pool.join()
    assert len(raw(lake, "t")) == 1 + len(added)
