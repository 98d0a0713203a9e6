"""Rows raw cannot hold are refused at raw, naming the file, the row and the table; a file
dated after every partition fails its table naming the file. Other tables still sync."""

from __future__ import annotations

from lake_assets_tests.assets._lake import (
    SRC,
    assert_ok,
    bronze,
    catalog,
    cdc,
    has_table,
    load,
    r,
    raw,
)


def _two_tables(lake):
    lake.write_catalog(catalog("t", "ok"))
    for t in ("t", "ok"):
        load(lake, t, 1, [r("I", "2024-01-01 00:00:00", 1, f"{t}1")])
    assert_ok(lake.sync())
    cdc(lake, "ok", "2024-01-02 09:00:00", [r("U", "2024-01-02 09:00:00", 1, "ok-new")])
    return raw(lake, "t"), bronze(lake, "t")


def _fails_naming(lake, *words) -> str:
    res = lake.sync()
    assert not res.ok
    mine = [f for f in res.failures if "raw__s__t" in f]
    assert len(mine) == 1 and "\n" not in mine[0], res.failures
    assert all(w in mine[0] for w in words), mine[0]
    assert bronze(lake, "ok") == [{"id": 1, "v": "ok-new"}]
    return mine[0]


def test_a_null_primary_key_is_refused_at_raw_naming_file_row_and_table(lake):
    before = _two_tables(lake)
    bad = cdc(
        lake,
        "t",
        "2024-01-02 10:00:00",
        [
            r("U", "2024-01-02 10:00:00", 1, "fine"),
            {**r("I", "2024-01-02 10:00:01", 0, "no key"), "id": None},
        ],
    )
    _fails_naming(lake, bad.name, "row 1", f"{SRC}.t", "'id'", "null")
    assert (raw(lake, "t"), bronze(lake, "t")) == before
    bad.unlink()
    assert_ok(lake.sync())


def test_an_unknown_op_is_refused_at_raw_naming_file_row_and_table(lake):
    before = _two_tables(lake)
    bad = cdc(
        lake,
        "t",
        "2024-01-02 10:00:00",
        [
            r("U", "2024-01-02 10:00:00", 1, "a"),
            r("U", "2024-01-02 10:00:01", 1, "b"),
            r("X", "2024-01-02 10:00:02", 1, "c"),
        ],
    )
    _fails_naming(lake, bad.name, "row 2", f"{SRC}.t", "'X'")
    assert (raw(lake, "t"), bronze(lake, "t")) == before


def test_a_file_dated_after_the_last_partition_fails_its_table_naming_the_file(lake):
    before = _two_tables(lake)
    future = cdc(lake, "t", "2099-12-31 10:00:00", [r("I", "2099-12-31 10:00:00", 2, "later")])
    _fails_naming(lake, future.name, "after the last daily partition")
    assert (raw(lake, "t"), bronze(lake, "t")) == before
    future.unlink()
    assert_ok(lake.sync())


def test_a_future_file_is_the_only_file_of_a_new_table(lake):
    lake.write_catalog(catalog("t", "ok"))
    load(lake, "ok", 1, [r("I", "2024-01-01 00:00:00", 1, "ok1")])
    future = cdc(lake, "t", "2099-12-31 10:00:00", [r("I", "2099-12-31 10:00:00", 2, "later")])
    res = lake.sync()
    assert [
        f for f in res.failures if future.name in f and "after the last daily partition" in f
    ], res.failures
    assert bronze(lake, "ok") == [{"id": 1, "v": "ok1"}] and not has_table(lake, "raw", "t")
