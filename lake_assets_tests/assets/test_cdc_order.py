"""The order of changes decides bronze: deletes and re-inserts, ties, late files, full loads,
hex LOAD counters and composite keys, through the real `sync` on real Delta tables.

Each behaviour is a story (a generator) on a lake of its own: it lands files, then yields what
bronze (and raw) must hold after the next sync. (One lake for all stories is slower: every
sync runs every table's bronze, silver and checks, idle or not.)
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from lake_assets_tests.assets._lake import (
    SRC,
    catalog,
    cdc,
    load,
    own,
    r,
    ts,
    utc,
)

STORIES = {}


def story(*keys: str):
    def register(fn):
        STORIES[fn.__name__] = (fn, list(keys) or ["id"])
        return fn

    return register


class Land:
    """Lands the files of one story's table."""

    def __init__(self, lake, table):
        self.lake, self.table = lake, table

    def cdc(self, name_time, rows, schema=None, **kw):
        return cdc(self.lake, self.table, name_time, rows, *([schema] if schema else []), **kw)

    def load(self, counter, rows, schema=None):
        return load(self.lake, self.table, counter, rows, *([schema] if schema else []))


def expect(bronze, raw=None, bronze_cols=None, raw_cols=None):
    return {"bronze": bronze, "raw": raw, "bronze_cols": bronze_cols, "raw_cols": raw_cols}


@story()
def delete_then_reinsert_across_files_and_syncs(land):
    land.load(1, [r("I", "2024-01-01 00:00:00", 1, "a"), r("I", "2024-01-01 00:00:00", 2, "b")])
    land.cdc(
        "2024-01-02 10:00:00", [{"Op": "D", "ts": ts("2024-01-02 10:00:00"), "id": 1, "v": None}]
    )
    yield expect([{"id": 2, "v": "b"}])
    # Re-inserted in a later file of the same day; deleted and re-inserted in two files of the next.
    land.cdc("2024-01-02 11:00:00", [r("I", "2024-01-02 11:00:00", 1, "again")])
    land.cdc("2024-01-03 09:00:00", [r("D", "2024-01-03 09:00:00", 2)])
    land.cdc("2024-01-03 10:00:00", [r("I", "2024-01-03 10:00:00", 2, "back")])
    yield expect(
        [
            {"id": 1, "v": "again", "_commit_ts": utc(2024, 1, 2, 11)},
            {"id": 2, "v": "back", "_commit_ts": utc(2024, 1, 3, 10)},
        ],
        bronze_cols=("id", "v", "_commit_ts"),
    )


@story()
def delete_then_reinsert_within_one_file(land):
    land.cdc(
        "2024-01-02 10:00:00",
        [
            r("I", "2024-01-02 09:00:00", 1, "a"),
            r("D", "2024-01-02 09:00:01", 1),
            r("I", "2024-01-02 09:00:02", 1, "b"),
            # the same at one commit time: position decides
            r("I", "2024-01-02 09:00:03", 2, "x"),
            r("D", "2024-01-02 09:00:03", 2),
            r("I", "2024-01-02 09:00:03", 2, "y"),
            # and a delete that stays
            r("I", "2024-01-02 09:00:04", 3, "gone"),
            r("D", "2024-01-02 09:00:04", 3),
        ],
    )
    yield expect(
        [{"id": 1, "v": "b"}, {"id": 2, "v": "y"}],
        raw=[
            (1, "I", 0),
            (1, "D", 1),
            (1, "I", 2),
            (2, "I", 3),
            (2, "D", 4),
            (2, "I", 5),
            (3, "I", 6),
            (3, "D", 7),
        ],
        raw_cols=("id", "_op", "_file_pos"),
    )


@story()
def updates_with_one_commit_time_in_one_file_follow_position(land):
    same = "2024-01-02 09:00:00"
    # Twelve changes of key 1: positions 10 and 11 must sort after 2..9 (not as text).
    rows = [r("I", same, 1, "v0")] + [r("U", same, 1, f"v{i}") for i in range(1, 12)]
    rows += [
        r("U", same, 2, "first"),
        r("U", same, 2, "second"),
        r("D", same, 3),
        r("I", same, 3, "after-delete"),
    ]
    rows += [r("I", same, 4, "before-delete"), r("D", same, 4)]
    land.cdc("2024-01-02 10:00:00", rows)
    yield expect([{"id": 1, "v": "v11"}, {"id": 2, "v": "second"}, {"id": 3, "v": "after-delete"}])


def _late_setup(land):
    land.load(1, [r("I", "2024-01-01 00:00:00", i, f"load{i}") for i in (1, 2, 3)])
    land.cdc(
        "2024-01-03 10:00:00",
        [r("U", "2024-01-03 10:00:00", 1, "new"), r("D", "2024-01-03 10:00:00", 2)],
    )
    return expect([{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}])


@story()
def late_update_older_than_the_current_row_does_not_overwrite_it(land):
    yield _late_setup(land)
    # A day before the processed file (its own raw partition, alone in the batch bronze applies).
    land.cdc(
        "2024-01-02 09:00:00",
        [
            r("U", "2024-01-02 09:00:00", 1, "stale-day-before"),
            r("U", "2024-01-02 09:00:00", 3, "newer-than-load"),
        ],
    )
    newer = expect(
        [
            {"id": 1, "v": "new", "_commit_ts": utc(2024, 1, 3, 10)},
            {"id": 3, "v": "newer-than-load", "_commit_ts": utc(2024, 1, 2, 9)},
        ],
        bronze_cols=("id", "v", "_commit_ts"),
    )
    yield newer
    # The same day as the processed file, an earlier name and commit time.
    land.cdc("2024-01-03 09:00:00", [r("U", "2024-01-03 09:00:00", 1, "stale-same-day")])
    yield {
        **newer,
        "raw": [
            (1, "load1"),
            (2, "load2"),
            (3, "load3"),
            (1, "stale-day-before"),
            (3, "newer-than-load"),
            (1, "stale-same-day"),
            (1, "new"),
            (2, None),
        ],
        "raw_cols": ("id", "v"),
    }


@story()
def late_change_older_than_a_delete_does_not_resurrect_the_key(land):
    yield _late_setup(land)
    land.cdc("2024-01-02 09:00:00", [r("I", "2024-01-02 09:00:00", 2, "zombie-insert")])
    land.cdc("2024-01-03 09:59:59", [r("U", "2024-01-03 09:59:59", 2, "zombie-update")])
    yield expect([{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}])
    # Deletes of a key that is no longer there: one older still, one newer (a day of its own).
    land.cdc("2024-01-02 08:00:00", [r("D", "2024-01-02 08:00:00", 2)])
    land.cdc("2024-01-05 08:00:00", [r("D", "2024-01-05 08:00:00", 2)])
    yield expect([{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}])
    # A change between the two deletes, landing late, stays deleted: the newer delete counts.
    land.cdc("2024-01-04 12:00:00", [r("U", "2024-01-04 12:00:00", 2, "zombie-between-deletes")])
    yield expect([{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}])
    # A newer insert does bring it back.
    land.cdc("2024-01-06 09:00:00", [r("I", "2024-01-06 09:00:00", 2, "reborn")])
    yield expect([{"id": 1, "v": "new"}, {"id": 2, "v": "reborn"}, {"id": 3, "v": "load3"}])


@story()
def late_delete_older_than_the_current_row_does_not_delete_it(land):
    yield _late_setup(land)
    land.cdc("2024-01-02 09:00:00", [r("D", "2024-01-02 09:00:00", 1)])
    yield expect([{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}])
    land.cdc("2024-01-05 09:00:00", [r("U", "2024-01-05 09:00:00", 1, "newest")])
    yield expect([{"id": 1, "v": "newest"}, {"id": 3, "v": "load3"}])


@story()
def late_insert_of_a_new_key_appears(land):
    yield _late_setup(land)
    land.cdc("2024-01-02 09:00:00", [r("I", "2024-01-02 09:00:00", 4, "late-new-key")])
    yield expect([{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}, {"id": 4, "v": "late-new-key"}])


@story()
def full_load_rows_with_later_commit_times_come_before_cdc(land):
    late = "2024-01-09 00:00:00"  # the full load's rows carry a time after every CDC row
    land.load(1, [r(None, late, 1, "load"), r(None, late, 2, "load"), r(None, late, 3, "load")])
    land.cdc(
        "2024-01-02 10:00:00",
        [r("U", "2024-01-02 10:00:00", 1, "cdc"), r("D", "2024-01-02 10:00:00", 2)],
    )
    yield expect([{"id": 1, "v": "cdc"}, {"id": 3, "v": "load"}])
    # The same when a full load lands after the CDC was processed.
    land.load(2, [r("I", late, 4, "load4"), r("I", late, 1, "load-again")])
    yield expect([{"id": 1, "v": "cdc"}, {"id": 3, "v": "load"}, {"id": 4, "v": "load4"}])


@story()
def full_load_without_op_column_counts_as_inserts(land):
    schema = pa.schema([("ts", pa.timestamp("us")), ("id", pa.int64()), ("v", pa.string())])
    land.load(1, [{"ts": ts("2024-01-01 00:00:00"), "id": i, "v": f"x{i}"} for i in (1, 2)], schema)
    yield expect(
        [{"id": 1, "v": "x1"}, {"id": 2, "v": "x2"}], raw=[("I",), ("I",)], raw_cols=("_op",)
    )


@story()
def hex_load_counters_order_past_nine(land):
    same = "2024-01-01 00:00:00"
    # Landed out of counter order, and LOAD00000009 only after A and 10 were synced.
    land.load(0x10, [r("I", same, 2, "sixteen")])
    land.load(0xA, [r("I", same, 1, "ten"), r("I", same, 2, "ten")])
    land.load(0x2, [r("I", same, 3, "two")])
    yield expect([{"id": 1, "v": "ten"}, {"id": 2, "v": "sixteen"}, {"id": 3, "v": "two"}])
    land.load(0x9, [r("I", same, 1, "nine"), r("I", same, 3, "nine")])
    files = [
        "LOAD00000002",
        "LOAD00000009",
        "LOAD00000009",
        "LOAD0000000A",
        "LOAD0000000A",
        "LOAD00000010",
    ]
    yield expect(
        [{"id": 1, "v": "ten"}, {"id": 2, "v": "sixteen"}, {"id": 3, "v": "nine"}],
        raw=[(f + ".parquet",) for f in files],
        raw_cols=("_source_file",),
    )


ITEM = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("order_id", pa.int64()),
        ("line_no", pa.int32()),
        ("qty", pa.int32()),
    ]
)


def item(op, when, order_id, line_no, qty=None):
    return {"Op": op, "ts": ts(when), "order_id": order_id, "line_no": line_no, "qty": qty}


@story("order_id", "line_no")
def composite_key(land):
    t0 = "2024-01-01 00:00:00"
    land.load(
        1,
        [
            item("I", t0, 1, 1, 10),
            item("I", t0, 1, 2, 20),
            item("I", t0, 2, 1, 30),
            # keys that collide if the key columns were joined as text
            item("I", t0, 1, 21, 121),
            item("I", t0, 12, 1, 121),
        ],
        ITEM,
    )
    land.cdc(
        "2024-01-02 10:00:00",
        [
            item("U", "2024-01-02 10:00:00", 1, 2, 22),
            item("D", "2024-01-02 10:00:00", 1, 1),
            item("I", "2024-01-02 10:00:01", 2, 2, 40),
            item("U", "2024-01-02 10:00:02", 12, 1, 999),
        ],
        ITEM,
    )
    yield expect(
        [
            {"order_id": 1, "line_no": 2, "qty": 22},
            {"order_id": 1, "line_no": 21, "qty": 121},
            {"order_id": 2, "line_no": 1, "qty": 30},
            {"order_id": 2, "line_no": 2, "qty": 40},
            {"order_id": 12, "line_no": 1, "qty": 999},
        ]
    )
    # Late: a delete of (2, 1) applies; an update of (1, 1) older than its delete does not.
    land.cdc(
        "2024-01-02 09:00:00",
        [item("D", "2024-01-02 09:00:00", 2, 1), item("U", "2024-01-02 09:00:00", 1, 1, 11)],
        ITEM,
    )
    yield expect(
        [
            {"order_id": 1, "line_no": 2, "qty": 22},
            {"order_id": 1, "line_no": 21, "qty": 121},
            {"order_id": 2, "line_no": 2, "qty": 40},
            {"order_id": 12, "line_no": 1, "qty": 999},
        ]
    )


def tell(lake, name: str) -> list:
    """Run one story on its own lake: land, sync, read back, until it is told."""
    fn, keys = STORIES[name]
    lake.write_catalog(catalog((name, keys)))
    out = []
    for exp in fn(Land(lake, name)):
        result = lake.sync()
        b = lake.rows("bronze", SRC, name, ", ".join(keys))
        got_b = [{c: x[c] for c in exp["bronze_cols"]} for x in b] if exp["bronze_cols"] else own(b)
        got_r = None
        if exp["raw"] is not None:
            got_r = [
                tuple(x[c] for c in exp["raw_cols"]) for x in lake.rows("raw", SRC, name, "_seq")
            ]
        out.append((exp, got_b, got_r, result.failures))
    return out


@pytest.mark.parametrize("name", list(STORIES))
def test_story(lake, name):
    told = tell(lake, name)
    assert told, "the story never ran"
    for step, (exp, got_bronze, got_raw, failures) in enumerate(told, 1):
        assert failures == [], f"sync {step}: {failures}"
        assert got_bronze == exp["bronze"], f"bronze after sync {step}"
        if exp["raw"] is not None:
            assert got_raw == exp["raw"], f"raw after sync {step}"
