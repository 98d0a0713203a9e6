"""A type the source widens is accepted the same way whether its files come in one sync or in
several, through raw, bronze and silver; an incompatible change names table, column and file."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lake_assets_tests.assets._lake import SRC, assert_ok, catalog, cdc, load, ts

BIG = 2**40


def _schema(t: pa.DataType) -> pa.Schema:
    return pa.schema(
        [("Op", pa.string()), ("ts", pa.timestamp("us")), ("id", pa.int64()), ("n", t)]
    )


def _row(op, when, id, n):
    return {"Op": op, "ts": ts(when), "id": id, "n": n}


def _type_of(lake, layer, table) -> pa.DataType:
    return (
        pa.schema(DeltaTable(str(lake.path(layer, SRC, table))).schema().to_arrow()).field("n").type
    )


WIDENINGS = [
    (pa.int32(), pa.int64(), 7, BIG),
    (pa.float32(), pa.float64(), 0.5, 1e300),
    (
        pa.decimal128(10, 2),
        pa.decimal128(14, 2),
        Decimal("12345678.90"),
        Decimal("123456789012.34"),
    ),
]


@pytest.mark.parametrize("narrow, wide, small, large", WIDENINGS, ids=["int", "float", "decimal"])
def test_widening_in_a_later_sync_is_accepted_as_in_one(lake, narrow, wide, small, large):
    lake.write_catalog(catalog("later", "together"))

    def land_narrow(t):
        load(
            lake,
            t,
            1,
            [
                _row("I", "2024-01-01 00:00:00", 1, small),
                _row("I", "2024-01-01 00:00:00", 2, small),
            ],
            _schema(narrow),
        )

    def land_wide(t):
        cdc(
            lake,
            t,
            "2024-01-02 09:00:00",
            [
                _row("U", "2024-01-02 09:00:00", 2, large),
                _row("I", "2024-01-02 09:00:01", 3, large),
            ],
            _schema(wide),
        )

    land_narrow("later")
    land_narrow("together")
    land_wide("together")
    assert_ok(lake.sync())
    land_wide("later")
    assert_ok(lake.sync())
    expected = [(1, small), (2, large), (3, large)]
    for t in ("later", "together"):
        for layer in ("raw", "bronze", "silver"):
            assert _type_of(lake, layer, t) == wide, (t, layer)
        got = [(x["id"], x["n"]) for x in lake.rows("bronze", SRC, t, "id")]
        assert got == expected, t
        assert [(x["id"], x["n"]) for x in lake.rows("silver", SRC, t, "id")] == expected, t
    assert len(lake.rows("raw", SRC, "later")) == 4
    # A narrower file after the wide one fits the wide column.
    cdc(
        lake,
        "later",
        "2024-01-03 09:00:00",
        [_row("U", "2024-01-03 09:00:00", 1, small)],
        _schema(narrow),
    )
    assert_ok(lake.sync())
    assert _type_of(lake, "raw", "later") == wide and len(lake.rows("raw", SRC, "later")) == 5


def test_an_incompatible_change_in_a_later_sync_names_table_column_and_file(lake):
    lake.write_catalog(catalog("t"))
    load(lake, "t", 1, [_row("I", "2024-01-01 00:00:00", 1, 10)], _schema(pa.int64()))
    assert_ok(lake.sync())
    bad = cdc(
        lake,
        "t",
        "2024-01-02 09:00:00",
        [_row("U", "2024-01-02 09:00:00", 1, "ten")],
        _schema(pa.string()),
    )
    res = lake.sync()
    assert not res.ok
    assert any(bad.name in f and "'n'" in f and f"{SRC}.t" in f for f in res.failures), res.failures
