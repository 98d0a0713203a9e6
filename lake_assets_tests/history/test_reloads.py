"""A DMS table reload (its full load landed again, `LOAD00000001` onwards, in the same folder,
with the time DMS transferred each row in the timestamp column) is an epoch: afterwards the
table is the reload's full load plus later changes, a key absent from the reload is deleted as
of it, a late change older than the reload brings nothing back, and history closes versions at
the reload. One landing, synced in stages; each test reads what its stage left."""

from __future__ import annotations

import pytest

from lake_assets_tests.assets._lake import (
    SRC,
    assert_ok,
    bronze,
    cdc,
    load,
    new_lake,
    r,
    ts,
)
from lake_assets_tests.assets.conftest import SharedInstanceLake
from lake_assets_tests.history._history import catalog, history


def ver(id: int, v: str, start: str, end: str | None) -> dict:
    return {
        "id": id,
        "v": v,
        "_valid_from": ts(start),
        "_valid_to": end and ts(end),
        "_is_current": end is None,
    }


@pytest.fixture(scope="module")
def stages(tmp_path_factory, dagster_instance) -> dict:
    lake = new_lake(tmp_path_factory.mktemp("reloads"))
    lake.__class__ = SharedInstanceLake
    lake.instance = dagster_instance
    lake.write_catalog(catalog("t", ["id"]))
    out: dict = {}

    def sync(stage: str) -> None:
        assert_ok(lake.sync())
        out[stage] = {"bronze": bronze(lake, "t"), "history": history(lake, "t", "id, _valid_from")}

    # The first load (transferred at 09:00) and CDC before the reload.
    day = "2024-01-02"
    load(
        lake, "t", 1, [r(None, f"{day} 09:00:00", i, v) for i, v in [(1, "a"), (2, "b"), (3, "c")]]
    )
    cdc(lake, "t", f"{day} 10:00:00", [r("U", f"{day} 10:00:00", 1, "a1")])
    sync("before")
    # The reload at 12:00: key 2 is gone at the source, key 3 changed, key 1 as it was; a
    # second file of the reload, under a name the first load did not have, holds key 4.
    load(lake, "t", 1, [r(None, f"{day} 12:00:00", 1, "a1"), r(None, f"{day} 12:00:00", 3, "c2")])
    load(lake, "t", 2, [r(None, f"{day} 12:00:05", 4, "d")])
    sync("reloaded")
    # Late: a CDC file from 11:00, before the reload (it must bring nothing back).
    cdc(lake, "t", f"{day} 11:00:00", [r("I", f"{day} 11:00:00", 2, "b-late")])
    cdc(lake, "t", f"{day} 11:00:01", [r("U", f"{day} 11:00:01", 3, "c-late")])
    sync("late")
    # After the reload: changes apply as usual.
    cdc(lake, "t", f"{day} 13:00:00", [r("U", f"{day} 13:00:00", 3, "c3")])
    sync("after")
    out["raw"] = lake.rows("raw", SRC, "t", "_seq")
    return out


def test_a_key_absent_from_the_reload_is_deleted(stages):
    assert stages["before"]["bronze"] == [
        {"id": 1, "v": "a1"},
        {"id": 2, "v": "b"},
        {"id": 3, "v": "c"},
    ]
    assert stages["reloaded"]["bronze"] == [
        {"id": 1, "v": "a1"},
        {"id": 3, "v": "c2"},
        {"id": 4, "v": "d"},
    ]


def test_raw_holds_both_loads_and_the_reload_truncate_just_before_its_rows(stages):
    raw = [(row["_op"], row["id"], row["v"], row["_source_file"]) for row in stages["raw"]]
    assert [x[:3] for x in raw] == [
        ("I", 1, "a"),
        ("I", 2, "b"),
        ("I", 3, "c"),
        ("U", 1, "a1"),
        ("I", 2, "b-late"),
        ("U", 3, "c-late"),
        ("T", None, None),
        ("I", 1, "a1"),
        ("I", 3, "c2"),
        ("I", 4, "d"),
        ("U", 3, "c3"),
    ]
    assert raw[0][3] == "LOAD00000001.parquet"
    assert raw[6][3] == raw[7][3] and raw[6][3].startswith("LOAD00000001.parquet#")
    assert raw[9][3].startswith("LOAD00000002.parquet#")


def test_a_late_change_older_than_the_reload_brings_nothing_back(stages):
    assert stages["late"]["bronze"] == stages["reloaded"]["bronze"]


def test_a_change_after_the_reload_applies(stages):
    assert stages["after"]["bronze"] == [
        {"id": 1, "v": "a1"},
        {"id": 3, "v": "c3"},
        {"id": 4, "v": "d"},
    ]


def test_history_closes_versions_at_the_reload(stages):
    d = "2024-01-02"
    assert stages["after"]["history"] == [
        ver(1, "a", f"{d} 09:00:00", f"{d} 10:00:00"),
        ver(1, "a1", f"{d} 10:00:00", None),  # the reload kept it as it was: one version
        ver(2, "b", f"{d} 09:00:00", f"{d} 11:00:00"),
        ver(2, "b-late", f"{d} 11:00:00", f"{d} 12:00:00"),
        ver(3, "c", f"{d} 09:00:00", f"{d} 11:00:01"),
        ver(3, "c-late", f"{d} 11:00:01", f"{d} 12:00:00"),
        ver(3, "c2", f"{d} 12:00:00", f"{d} 13:00:00"),
        ver(3, "c3", f"{d} 13:00:00", None),
        ver(4, "d", f"{d} 12:00:05", None),
    ]
