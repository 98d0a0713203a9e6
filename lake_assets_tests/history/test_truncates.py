"""Truncates (raw `_op` `T`, null source columns) in bronze and in history, landed through the
tests' JSON lines format (DMS writes no truncate): a truncate removes every row whose change
comes before it, changes after it apply, a late change from before it brings no row back, and
in history it closes every open version at its commit time."""

from __future__ import annotations

import datetime as dt

from lake_assets_tests.assets._lake import SRC, UTC, assert_ok
from lake_assets_tests.formats.jsonl_format import NAME, write_batch
from lake_assets_tests.history._history import catalog, history


def line(op: str, hour: int, minute: int = 0, id: int | None = None, v: str | None = None) -> dict:
    return {"op": op, "ts": f"2024-01-02T{hour:02d}:{minute:02d}:00", "id": id, "v": v}


def when(hour: int | None, minute: int = 0) -> dt.datetime | None:
    return None if hour is None else dt.datetime(2024, 1, 2, hour, minute, tzinfo=UTC)


def ver(id: int, v: str, start: tuple, end: tuple | None) -> dict:
    return {
        "id": id,
        "v": v,
        "_valid_from": when(*start),
        "_valid_to": end and when(*end),
        "_is_current": end is None,
    }


def land(lake, batch: int, *lines: dict) -> None:
    write_batch(lake.landing, SRC, "public", "t", "2024-01-02", batch, list(lines))


def sync(lake) -> None:
    lake.write_catalog(
        catalog(
            "t", ["id"], timestamp_column=None, fmt=f'"{NAME}"', columns="{id: bigint, v: string}"
        )
    )
    assert_ok(lake.sync())


def bronze(lake) -> list[dict]:
    return [{"id": r["id"], "v": r["v"]} for r in lake.rows("bronze", SRC, "t", "id")]


def test_truncate_in_bronze_and_history(lake):
    land(lake, 1, line("I", 9, id=1, v="a"), line("I", 9, id=2, v="b"), line("I", 9, id=3, v="c"))
    sync(lake)
    land(lake, 2, line("T", 10), line("I", 11, id=2, v="b2"))
    sync(lake)
    assert bronze(lake) == [{"id": 2, "v": "b2"}]
    # Late: a change from before the truncate (no row back), one after it (applies).
    land(lake, 3, line("U", 9, 30, id=1, v="a1"), line("U", 12, id=3, v="c3"))
    sync(lake)
    assert bronze(lake) == [{"id": 2, "v": "b2"}, {"id": 3, "v": "c3"}]
    assert history(lake, "t", "id, _valid_from") == [
        ver(1, "a", (9,), (9, 30)),
        ver(1, "a1", (9, 30), (10,)),
        ver(2, "b", (9,), (10,)),
        ver(2, "b2", (11,), None),
        ver(3, "c", (9,), (10,)),
        ver(3, "c3", (12,), None),
    ]


def test_late_truncate_removes_only_what_came_before_it(lake):
    land(lake, 1, line("I", 9, id=1, v="a"), line("I", 11, id=2, v="b"))
    sync(lake)
    land(lake, 2, line("T", 10))
    sync(lake)
    assert bronze(lake) == [{"id": 2, "v": "b"}]
    assert history(lake, "t", "id, _valid_from") == [
        ver(1, "a", (9,), (10,)),
        ver(2, "b", (11,), None),
    ]
    sync(lake)  # nothing new: the truncate is not applied again
    assert bronze(lake) == [{"id": 2, "v": "b"}]
