"""History's versions on real Delta tables, through `sync` with DMS files: late changes, changes
that alter nothing tracked, deletes and re-inserts, one commit time, composite keys, full loads
without commit times, and the checks that guard it."""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable

from lake_assets_tests.assets._lake import SCHEMA, SRC, assert_ok, write_cdc, write_load
from lake_assets_tests.history._history import at, catalog, history, v

ROW = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("id", pa.int64()),
        ("v", pa.string()),
        ("note", pa.string()),
    ]
)


def c(op: str, second: int, id: int, val: str | None = None, note: str | None = None) -> dict:
    return {"Op": op, "ts": at(second), "id": id, "v": val, "note": note}


def land(lake, second: int, rows: list[dict], schema: pa.Schema = ROW, table: str = "t") -> None:
    """A CDC file named by `second` (its rows may carry other commit times)."""
    write_cdc(lake.landing, SRC, SCHEMA, table, at(second), rows, schema)


def row(id: int, val: str | None, note: str | None = None) -> dict:
    return {"id": id, "v": val, "note": note}


def synced(lake, history_key: str = "true") -> list[dict]:
    lake.write_catalog(catalog("t", ["id"], history_key))
    assert_ok(lake.sync())
    return history(lake, "t", "id, _valid_from")


def test_late_change_splits_the_version_it_falls_in(lake):
    land(lake, 10, [c("I", 10, 1, "a"), c("U", 30, 1, "c")])
    assert synced(lake) == [v(row(1, "a"), 10, 30), v(row(1, "c"), 30, None)]
    land(lake, 40, [c("U", 20, 1, "b")])  # lands last, happened between the two
    assert synced(lake) == [
        v(row(1, "a"), 10, 20),
        v(row(1, "b"), 20, 30),
        v(row(1, "c"), 30, None),
    ]


def test_change_with_no_tracked_difference_opens_no_version(lake):
    land(
        lake,
        10,
        [
            c("I", 10, 1, "a", "n1"),
            c("U", 20, 1, "a", "n2"),
            c("U", 30, 1, "b", "n3"),
            c("U", 40, 1, "b", "n3"),
        ],
    )
    assert synced(lake, "{except: [note]}") == [
        v(row(1, "a", "n2"), 10, 30),
        v(row(1, "b", "n3"), 30, None),
    ]


def test_a_change_of_an_untracked_column_alone_with_all_tracked(lake):
    """Without `except`, every source column is tracked: a note change opens a version, a
    change altering nothing does not."""
    land(lake, 10, [c("I", 10, 1, "a", "n1"), c("U", 20, 1, "a", "n2"), c("U", 30, 1, "a", "n2")])
    assert synced(lake) == [v(row(1, "a", "n1"), 10, 20), v(row(1, "a", "n2"), 20, None)]


def test_late_untracked_change_updates_the_version_it_falls_in(lake):
    land(lake, 10, [c("I", 10, 1, "a", "n1"), c("U", 30, 1, "b", "n3")])
    synced(lake, "{except: [note]}")
    land(lake, 40, [c("U", 20, 1, "a", "n2")])
    assert synced(lake, "{except: [note]}") == [
        v(row(1, "a", "n2"), 10, 30),
        v(row(1, "b", "n3"), 30, None),
    ]


def test_delete_closes_and_reinsert_opens(lake):
    land(
        lake,
        10,
        [c("I", 10, 1, "a"), c("D", 20, 1), c("I", 30, 1, "a"), c("I", 10, 2, "x"), c("D", 40, 2)],
    )
    assert synced(lake) == [
        v(row(1, "a"), 10, 20),
        v(row(1, "a"), 30, None),
        v(row(2, "x"), 10, 40),
    ]


def test_late_delete_closes_the_version_it_falls_in(lake):
    land(lake, 10, [c("I", 10, 1, "a"), c("I", 30, 1, "b")])
    synced(lake)
    land(lake, 40, [c("D", 20, 1)])
    assert synced(lake) == [v(row(1, "a"), 10, 20), v(row(1, "b"), 30, None)]


def test_several_changes_at_one_commit_time_the_last_is_the_version(lake):
    land(
        lake,
        10,
        [
            c("I", 10, 1, "a"),
            c("U", 20, 1, "b"),
            c("U", 20, 1, "c"),
            c("I", 10, 2, "x"),
            c("U", 20, 2, "y"),
            c("D", 20, 2),
        ],
    )
    assert synced(lake) == [
        v(row(1, "a"), 10, 20),
        v(row(1, "c"), 20, None),
        v(row(2, "x"), 10, 20),
    ]
    # Another file at the same commit time, later in the order (its name), replaces it.
    land(lake, 50, [c("U", 20, 1, "d")])
    assert synced(lake) == [
        v(row(1, "a"), 10, 20),
        v(row(1, "d"), 20, None),
        v(row(2, "x"), 10, 20),
    ]


def test_a_late_change_can_leave_fewer_versions(lake):
    """The held versions of a key that no longer are versions go."""
    land(lake, 10, [c("I", 10, 1, "a"), c("U", 20, 1, "b")])
    assert len(synced(lake)) == 2
    land(lake, 50, [c("U", 20, 1, "a")])  # the last at 20: equal to the version before
    assert synced(lake) == [v(row(1, "a"), 10, None)]


KEYED = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("order_id", pa.int64()),
        ("line_no", pa.int32()),
        ("qty", pa.int64()),
    ]
)


def test_composite_key(lake):
    def line(op, second, order, no, qty=None):
        return {"Op": op, "ts": at(second), "order_id": order, "line_no": no, "qty": qty}

    lake.write_catalog(catalog("items", ["order_id", "line_no"]))
    land(
        lake,
        10,
        [
            line("I", 10, 1, 1, 5),
            line("I", 10, 1, 2, 7),
            line("U", 20, 1, 1, 6),
            line("I", 10, 2, 1, 1),
            line("D", 30, 1, 2),
        ],
        KEYED,
        "items",
    )
    assert_ok(lake.sync())

    def ver(order, no, qty, start, end):
        return v({"order_id": order, "line_no": no, "qty": qty}, start, end)

    assert history(lake, "items", "order_id, line_no, _valid_from") == [
        ver(1, 1, 5, 10, 20),
        ver(1, 1, 6, 20, None),
        ver(1, 2, 7, 10, 30),
        ver(2, 1, 1, 10, None),
    ]


UNTIMED = pa.schema([("Op", pa.string()), ("id", pa.int64()), ("v", pa.string())])


def test_no_timestamp_column_full_load_versions_start_null(lake):
    """Without a timestamp column a CDC change's time is its file's name; a full-load row has
    none: its version's `_valid_from` is null."""
    lake.write_catalog(catalog("t", ["id"], timestamp_column=None))
    write_load(
        lake.landing,
        SRC,
        SCHEMA,
        "t",
        1,
        [{"Op": None, "id": 1, "v": "a"}, {"Op": None, "id": 2, "v": "x"}],
        UNTIMED,
    )
    write_cdc(lake.landing, SRC, SCHEMA, "t", at(30), [{"Op": "U", "id": 1, "v": "b"}], UNTIMED)
    assert_ok(lake.sync())
    assert [
        {k: r[k] for k in ("id", "v", "_valid_from", "_valid_to", "_is_current")}
        for r in history(lake, "t", "id, _valid_from NULLS FIRST")
    ] == [
        v({"id": 1, "v": "a"}, None, 30),
        v({"id": 1, "v": "b"}, 30, None),
        v({"id": 2, "v": "x"}, None, None),
    ]


def test_run_with_nothing_new_changes_nothing(lake):
    land(lake, 10, [c("I", 10, 1, "a")])
    synced(lake)
    version = lake.version("bronze", SRC, "t_history")
    assert_ok(lake.sync())
    assert lake.version("bronze", SRC, "t_history") == version


def test_checks_fail_when_current_versions_differ_from_bronze(lake):
    land(lake, 10, [c("I", 10, 1, "a"), c("I", 10, 2, "x")])
    synced(lake)
    DeltaTable(str(lake.path("bronze", SRC, "t_history"))).update({"v": "'z'"}, predicate="id = 1")
    result = lake.sync()
    assert any("current_versions_match_bronze" in f for f in result.failures), result.failures


def test_checks_fail_when_versions_overlap(lake):
    land(lake, 10, [c("I", 10, 1, "a"), c("U", 20, 1, "b")])
    synced(lake)
    DeltaTable(str(lake.path("bronze", SRC, "t_history"))).update(
        {"_valid_to": "TIMESTAMP '2024-01-02 00:00:25+00:00'"}, predicate="v = 'a'"
    )
    result = lake.sync()
    assert any("versions_do_not_overlap" in f for f in result.failures), result.failures


def test_a_run_recomputes_only_the_keys_its_batch_touches(lake):
    import dagster as dg

    land(lake, 10, [c("I", 10, 1, "a"), c("I", 10, 2, "x"), c("I", 10, 3, "p")])
    synced(lake)
    # Named a day later (its own raw partition), a change of key 1 from between.
    write_cdc(lake.landing, SRC, SCHEMA, "t", at(10).replace(day=3), [c("U", 20, 1, "b")], ROW)
    assert synced(lake) == [
        v(row(1, "a"), 10, 20),
        v(row(1, "b"), 20, None),
        v(row(2, "x"), 10, None),
        v(row(3, "p"), 10, None),
    ]
    event = lake.instance.get_latest_materialization_event(
        dg.AssetKey(["bronze", SRC, "t_history"])
    )
    meta = event.asset_materialization.metadata
    assert (meta["keys_recomputed"].value, meta["versions_written"].value) == (1, 2)


WIDER = pa.schema([*ROW, ("w", pa.int64())])


def test_a_column_added_at_the_source_appears_null_in_older_versions(lake):
    land(lake, 10, [c("I", 10, 1, "a")])
    synced(lake)
    land(lake, 20, [{**c("U", 20, 1, "a"), "w": 7}], WIDER)
    assert synced(lake) == [
        {**v(row(1, "a"), 10, 20), "w": None},
        {**v(row(1, "a"), 20, None), "w": 7},
    ]
