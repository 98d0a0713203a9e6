"""Schema changes at the source: an added column, and a type that changes incompatibly."""

from __future__ import annotations

import pyarrow as pa

from lake_assets_tests.assets._lake import SRC, assert_ok, bronze, catalog, cdc, load, raw, ts

V1 = pa.schema(
    [("Op", pa.string()), ("ts", pa.timestamp("us")), ("id", pa.int64()), ("n", pa.int64())]
)
V2 = pa.schema(list(V1) + [("extra", pa.string())])
TEXT_N = pa.schema(
    [("Op", pa.string()), ("ts", pa.timestamp("us")), ("id", pa.int64()), ("n", pa.string())]
)


def c(op, when, id, n=None, **more):
    return {"Op": op, "ts": ts(when), "id": id, "n": n, **more}


def test_added_column_appears_in_raw_and_bronze_null_for_older_rows(lake):
    lake.write_catalog(catalog("t", "u"))

    def land_v1(t):
        load(
            lake,
            t,
            1,
            [c("I", "2024-01-01 00:00:00", 1, 10), c("I", "2024-01-01 00:00:00", 2, 20)],
            V1,
        )
        cdc(lake, t, "2024-01-02 09:00:00", [c("U", "2024-01-02 09:00:00", 2, 21)], V1)

    def land_v2(t):
        cdc(
            lake,
            t,
            "2024-01-03 09:00:00",
            [
                c("I", "2024-01-03 09:00:00", 3, 30, extra="x3"),
                c("U", "2024-01-03 09:00:01", 2, 22, extra=None),
            ],
            V2,
        )
        cdc(lake, t, "2024-01-03 10:00:00", [c("U", "2024-01-03 10:00:00", 1, 11, extra="")], V2)

    # t: the new column arrives in a later sync; u: both versions land before the first sync.
    land_v1("t")
    land_v1("u")
    land_v2("u")
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "n": 10}, {"id": 2, "n": 21}]
    land_v2("t")
    assert_ok(lake.sync())
    expected_bronze = [
        {"id": 1, "n": 11, "extra": ""},
        {"id": 2, "n": 22, "extra": None},
        {"id": 3, "n": 30, "extra": "x3"},
    ]
    expected_raw = [
        (1, 10, None),
        (2, 20, None),
        (2, 21, None),
        (3, 30, "x3"),
        (2, 22, None),
        (1, 11, ""),
    ]
    for t in ("t", "u"):
        assert bronze(lake, t) == expected_bronze, t
        assert [(x["id"], x["n"], x["extra"]) for x in raw(lake, t)] == expected_raw, t

    # After the column exists, a late file of an older day without it: that day is re-written.
    for t in ("t", "u"):
        cdc(lake, t, "2024-01-02 12:00:00", [c("I", "2024-01-02 12:00:00", 4, 40)], V1)
    assert_ok(lake.sync())
    for t in ("t", "u"):
        assert bronze(lake, t) == expected_bronze + [{"id": 4, "n": 40, "extra": None}], t
        assert [(x["id"], x["n"], x["extra"]) for x in raw(lake, t)] == expected_raw[:3] + [
            (4, 40, None)
        ] + expected_raw[3:]
    from deltalake import DeltaTable

    for layer in ("raw", "bronze"):
        schema = pa.schema(DeltaTable(str(lake.path(layer, SRC, "t"))).schema().to_arrow())
        assert schema.field("extra").type in (pa.string(), pa.large_string(), pa.string_view()), (
            layer
        )
        assert schema.field("n").type == pa.int64(), layer


def test_incompatible_type_change_fails_sync_naming_table_and_column_and_keeps_bronze(lake):
    lake.write_catalog(catalog("t", "ok"))
    load(lake, "t", 1, [c("I", "2024-01-01 00:00:00", 1, 10)], V1)
    load(lake, "ok", 1, [c("I", "2024-01-01 00:00:00", 1, 10)], V1)
    assert_ok(lake.sync())
    raw_before, bronze_before = (
        lake.rows("raw", SRC, "t", "_seq"),
        lake.rows("bronze", SRC, "t", "id"),
    )
    version = lake.version("bronze", SRC, "t")

    # n: bigint -> string, in a file of a later day (a partition of its own).
    cdc(lake, "t", "2024-01-02 09:00:00", [c("U", "2024-01-02 09:00:00", 1, "ten")], TEXT_N)
    cdc(lake, "ok", "2024-01-02 09:00:00", [c("U", "2024-01-02 09:00:00", 1, 11)], V1)
    res = lake.sync()
    assert not res.ok
    bad = [f for f in res.failures if "'n'" in f or "`n`" in f or "column n" in f]
    assert bad, res.failures
    assert any(f"{SRC}/t" in f or f"{SRC}.t" in f for f in bad), res.failures
    assert lake.rows("raw", SRC, "t", "_seq") == raw_before
    assert lake.rows("bronze", SRC, "t", "id") == bronze_before
    assert lake.version("bronze", SRC, "t") == version
    assert bronze(lake, "ok") == [{"id": 1, "n": 11}]


def test_incompatible_type_change_within_one_sync_fails_naming_table_and_column(lake):
    lake.write_catalog(catalog("t"))
    load(lake, "t", 1, [c("I", "2024-01-01 00:00:00", 1, 10)], V1)
    cdc(lake, "t", "2024-01-02 09:00:00", [c("U", "2024-01-02 09:00:00", 1, "ten")], TEXT_N)
    res = lake.sync()
    assert not res.ok
    assert any("'n'" in f and f"{SRC}.t" in f for f in res.failures), res.failures
    from lake_assets_tests.assets._lake import has_table

    assert not has_table(lake, "raw", "t") and not has_table(lake, "bronze", "t")
