"""The order of changes decides bronze: deletes and re-inserts, ties, late files, full loads,
hex LOAD counters and composite keys, each through the real `sync` on real Delta tables."""

from __future__ import annotations

import pyarrow as pa

from lake_assets_tests.assets._lake import (
    assert_ok, bronze, catalog, cdc, load, r, raw, ts, utc,
)


def test_delete_then_reinsert_across_files_and_syncs(lake):
    lake.write_catalog(catalog("t"))
    load(lake, "t", 1, [r("I", "2024-01-01 00:00:00", 1, "a"), r("I", "2024-01-01 00:00:00", 2, "b")])
    cdc(lake, "t", "2024-01-02 10:00:00", [{"Op": "D", "ts": ts("2024-01-02 10:00:00"), "id": 1, "v": None}])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 2, "v": "b"}]
    # Re-inserted in a later file of the same day, and again in a file of the next day.
    cdc(lake, "t", "2024-01-02 11:00:00", [r("I", "2024-01-02 11:00:00", 1, "again")])
    cdc(lake, "t", "2024-01-03 09:00:00", [r("D", "2024-01-03 09:00:00", 2)])
    cdc(lake, "t", "2024-01-03 10:00:00", [r("I", "2024-01-03 10:00:00", 2, "back")])
    assert_ok(lake.sync())
    assert bronze(lake, "t", "id", "_commit_ts") == [
        {"id": 1, "v": "again", "_commit_ts": utc(2024, 1, 2, 11)},
        {"id": 2, "v": "back", "_commit_ts": utc(2024, 1, 3, 10)},
    ]


def test_delete_then_reinsert_within_one_file(lake):
    lake.write_catalog(catalog("t"))
    cdc(lake, "t", "2024-01-02 10:00:00", [
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
    ])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "b"}, {"id": 2, "v": "y"}]
    assert [(x["id"], x["_op"], x["_file_pos"]) for x in raw(lake, "t")] == [
        (1, "I", 0), (1, "D", 1), (1, "I", 2), (2, "I", 3), (2, "D", 4), (2, "I", 5), (3, "I", 6), (3, "D", 7),
    ]


def test_updates_with_one_commit_time_in_one_file_follow_position(lake):
    lake.write_catalog(catalog("t"))
    same = "2024-01-02 09:00:00"
    # Twelve updates of key 1: positions 10 and 11 must sort after 2..9 (not as text).
    rows = [r("I", same, 1, "v0")] + [r("U", same, 1, f"v{i}") for i in range(1, 12)]
    rows += [r("U", same, 2, "first"), r("U", same, 2, "second"), r("D", same, 3), r("I", same, 3, "after-delete")]
    rows += [r("I", same, 4, "before-delete"), r("D", same, 4)]
    cdc(lake, "t", "2024-01-02 10:00:00", rows)
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "v11"}, {"id": 2, "v": "second"}, {"id": 3, "v": "after-delete"}]


def _late_setup(lake):
    lake.write_catalog(catalog("t"))
    load(lake, "t", 1, [r("I", "2024-01-01 00:00:00", i, f"load{i}") for i in (1, 2, 3)])
    cdc(lake, "t", "2024-01-03 10:00:00", [r("U", "2024-01-03 10:00:00", 1, "new"), r("D", "2024-01-03 10:00:00", 2)])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}]


def test_late_update_older_than_the_current_row_does_not_overwrite_it(lake):
    _late_setup(lake)
    # Same day as the processed file, earlier name and commit time; and one a day earlier.
    cdc(lake, "t", "2024-01-03 09:00:00", [r("U", "2024-01-03 09:00:00", 1, "stale-same-day")])
    cdc(lake, "t", "2024-01-02 09:00:00", [r("U", "2024-01-02 09:00:00", 1, "stale-day-before"),
                                           r("U", "2024-01-02 09:00:00", 3, "newer-than-load")])
    assert_ok(lake.sync())
    assert bronze(lake, "t", "id", "_commit_ts") == [
        {"id": 1, "v": "new", "_commit_ts": utc(2024, 1, 3, 10)},
        {"id": 3, "v": "newer-than-load", "_commit_ts": utc(2024, 1, 2, 9)},
    ]
    assert [x["v"] for x in raw(lake, "t") if x["id"] == 1] == ["load1", "stale-day-before", "stale-same-day", "new"]


def test_late_change_older_than_a_delete_does_not_resurrect_the_key(lake):
    _late_setup(lake)
    cdc(lake, "t", "2024-01-02 09:00:00", [r("I", "2024-01-02 09:00:00", 2, "zombie-insert")])
    cdc(lake, "t", "2024-01-03 09:59:59", [r("U", "2024-01-03 09:59:59", 2, "zombie-update")])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}]
    # A delete of a key that is no longer there, older still, changes nothing either.
    cdc(lake, "t", "2024-01-02 08:00:00", [r("D", "2024-01-02 08:00:00", 2)])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}]
    # A newer insert does bring it back.
    cdc(lake, "t", "2024-01-04 09:00:00", [r("I", "2024-01-04 09:00:00", 2, "reborn")])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 2, "v": "reborn"}, {"id": 3, "v": "load3"}]


def test_late_delete_older_than_the_current_row_does_not_delete_it(lake):
    _late_setup(lake)
    cdc(lake, "t", "2024-01-02 09:00:00", [r("D", "2024-01-02 09:00:00", 1)])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}]
    # ... nor does it block a change between it and the current row from being ignored.
    cdc(lake, "t", "2024-01-05 09:00:00", [r("U", "2024-01-05 09:00:00", 1, "newest")])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "newest"}, {"id": 3, "v": "load3"}]


def test_late_insert_of_a_new_key_appears(lake):
    _late_setup(lake)
    cdc(lake, "t", "2024-01-02 09:00:00", [r("I", "2024-01-02 09:00:00", 4, "late-new-key")])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 3, "v": "load3"}, {"id": 4, "v": "late-new-key"}]


def test_full_load_rows_with_later_commit_times_come_before_cdc(lake):
    lake.write_catalog(catalog("t"))
    late = "2024-01-09 00:00:00"  # the full load's rows carry a time after every CDC row
    load(lake, "t", 1, [r(None, late, 1, "load"), r(None, late, 2, "load"), r(None, late, 3, "load")],
         pa.schema([("Op", pa.string()), ("ts", pa.timestamp("us")), ("id", pa.int64()), ("v", pa.string())]))
    cdc(lake, "t", "2024-01-02 10:00:00", [r("U", "2024-01-02 10:00:00", 1, "cdc"), r("D", "2024-01-02 10:00:00", 2)])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "cdc"}, {"id": 3, "v": "load"}]
    # The same when the full load lands after the CDC was processed.
    lake2_rows = [r("I", late, 4, "load4"), r("I", late, 1, "load-again")]
    load(lake, "t", 2, lake2_rows)
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "cdc"}, {"id": 3, "v": "load"}, {"id": 4, "v": "load4"}]


def test_full_load_without_op_column_counts_as_inserts(lake):
    lake.write_catalog(catalog("t"))
    schema = pa.schema([("ts", pa.timestamp("us")), ("id", pa.int64()), ("v", pa.string())])
    load(lake, "t", 1, [{"ts": ts("2024-01-01 00:00:00"), "id": i, "v": f"x{i}"} for i in (1, 2)], schema)
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "x1"}, {"id": 2, "v": "x2"}]
    assert [x["_op"] for x in raw(lake, "t")] == ["I", "I"]


def test_hex_load_counters_order_past_nine(lake):
    lake.write_catalog(catalog("t"))
    same = "2024-01-01 00:00:00"
    load(lake, "t", 0x9, [r("I", same, 1, "nine"), r("I", same, 3, "nine")])
    load(lake, "t", 0xA, [r("I", same, 1, "ten"), r("I", same, 2, "ten")])
    load(lake, "t", 0x10, [r("I", same, 2, "sixteen")])  # 'LOAD00000010' sorts before 'LOAD0000000A' as text
    load(lake, "t", 0x2, [r("I", same, 3, "two")])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "ten"}, {"id": 2, "v": "sixteen"}, {"id": 3, "v": "nine"}]
    assert [x["_source_file"] for x in raw(lake, "t")] == [
        "LOAD00000002.parquet", "LOAD00000009.parquet", "LOAD00000009.parquet",
        "LOAD0000000A.parquet", "LOAD0000000A.parquet", "LOAD00000010.parquet",
    ]


def test_composite_key(lake):
    lake.write_catalog(catalog(("order_items", ["order_id", "line_no"])))
    schema = pa.schema([("Op", pa.string()), ("ts", pa.timestamp("us")), ("order_id", pa.int64()),
                        ("line_no", pa.int32()), ("qty", pa.int32())])

    def item(op, when, order_id, line_no, qty=None):
        return {"Op": op, "ts": ts(when), "order_id": order_id, "line_no": line_no, "qty": qty}

    t0 = "2024-01-01 00:00:00"
    load(lake, "order_items", 1, [item("I", t0, 1, 1, 10), item("I", t0, 1, 2, 20), item("I", t0, 2, 1, 30),
                                  # keys that collide if the key columns were joined as text
                                  item("I", t0, 1, 21, 121), item("I", t0, 12, 1, 121)], schema)
    cdc(lake, "order_items", "2024-01-02 10:00:00", [
        item("U", "2024-01-02 10:00:00", 1, 2, 22),
        item("D", "2024-01-02 10:00:00", 1, 1),
        item("I", "2024-01-02 10:00:01", 2, 2, 40),
        item("U", "2024-01-02 10:00:02", 12, 1, 999),
    ], schema)
    assert_ok(lake.sync())
    # A late delete of (2, 1) older than nothing: it applies; a late update of (1, 1) older than its delete: it doesn't.
    cdc(lake, "order_items", "2024-01-02 09:00:00", [item("D", "2024-01-02 09:00:00", 2, 1),
                                                     item("U", "2024-01-02 09:00:00", 1, 1, 11)], schema)
    assert_ok(lake.sync())
    got = bronze(lake, "order_items", "order_id, line_no")
    assert got == [
        {"order_id": 1, "line_no": 2, "qty": 22},
        {"order_id": 1, "line_no": 21, "qty": 121},
        {"order_id": 2, "line_no": 2, "qty": 40},
        {"order_id": 12, "line_no": 1, "qty": 999},
    ]
