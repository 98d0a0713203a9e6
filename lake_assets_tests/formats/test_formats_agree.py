"""One simulated shop history, landed as AWS DMS, Debezium, Fivetran and snapshot files, synced
into four lakes through the real assets: bronze, history and gold come out the same.

Debezium's commit times are milliseconds (`source.ts_ms`), the others' microseconds: versions are
compared with their times cut to the millisecond. Snapshots see the tables only at the times they
are taken: their history is compared with DMS's as of each of those times."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from lake_assets.sources.shop.catalogs import write_catalog
from lake_assets.sources.shop.simulator import PRIMARY_KEYS, TABLES, simulate
from lake_assets_tests.assets._lake import assert_ok
from lake_assets_tests.conftest import Lake

pytestmark = pytest.mark.slow

FORMATS = ("dms", "debezium", "fivetran", "snapshot")
START = dt.date(2024, 3, 1)
NOW = dt.datetime(2024, 3, 4, 6, 0, tzinfo=dt.UTC)
END = dt.datetime.max.replace(tzinfo=dt.UTC)  # a version still current
GOLD = ("daily_sales", "product_daily_sales", "customer_lifetime_value")


def _catalog(folder: Path, fmt: str) -> Path:
    path = Path(write_catalog(folder, fmt, START))
    # Every table with its history: versions are compared too.
    text = re.sub(r"(?m)^(\s+)(schema: public)$", r"\1\2\n\1history: true", path.read_text())
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def lakes(tmp_path_factory) -> dict[str, Lake]:
    out = {}
    for fmt in FORMATS:
        tmp = tmp_path_factory.mktemp(fmt)
        lake = Lake(tmp, tmp / "lake", tmp / "landing", _catalog(tmp / "catalog", fmt))
        lake.root.mkdir()
        s = simulate(
            str(lake.landing),
            3,
            seed=11,
            scale=0.1,
            dirty=True,
            start=START,
            now=NOW,
            full_load=False,
            landing_format=fmt,
        )
        assert s.landing_format == fmt and s.files_written
        assert_ok(lake.sync())
        out[fmt] = lake
    return out


def _own(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def _ms(t: dt.datetime | None) -> dt.datetime | None:
    return None if t is None else t.replace(microsecond=t.microsecond // 1000 * 1000)


def _versions(lake: Lake, table: str) -> list[tuple]:
    order = ", ".join([*PRIMARY_KEYS[table], "_valid_from"])
    rows = lake.rows("bronze", "shop", f"{table}_history", order)
    return [
        (tuple(sorted(own.items())), _ms(r["_valid_from"]), _ms(r["_valid_to"]), r["_is_current"])
        for r, own in zip(rows, _own(rows))
    ]


def _snapshot_times(lake: Lake, table: str) -> list[dt.datetime]:
    names = sorted(p.stem for p in (lake.landing / "shop" / "public" / table).glob("*.parquet"))
    return [
        dt.datetime.strptime(n + "000", "%Y%m%d-%H%M%S%f").replace(tzinfo=dt.UTC) for n in names
    ]


def _as_of(lake: Lake, table: str, at: dt.datetime, *, before: bool) -> list[tuple]:
    """The versions valid at `at` (`before`: just before it), their own columns."""
    rows = lake.rows("bronze", "shop", f"{table}_history")
    if before:  # DMS: the changes committed before the snapshot was taken
        valid = [r for r in rows if r["_valid_from"] < at and (r["_valid_to"] or at) >= at]
    else:
        valid = [r for r in rows if r["_valid_from"] <= at and (r["_valid_to"] or END) > at]
    return sorted(tuple(sorted(own.items())) for own in _own(valid))


def test_snapshots_history_is_dms_history_at_the_snapshot_times(lakes):
    dms, snap = lakes["dms"], lakes["snapshot"]
    compared = 0
    for table in TABLES:
        times = _snapshot_times(snap, table)
        assert times, table
        compared += len(times)
        for at in times:
            want = _as_of(dms, table, at, before=True)
            assert _as_of(snap, table, at, before=False) == want, (table, at)
    assert compared > 20  # a snapshot at each flush with changes: many times compared


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "dms"])
def test_bronze_and_gold_equal_dms(lakes, fmt):
    dms, other = lakes["dms"], lakes[fmt]
    for table in TABLES:
        order = ", ".join(PRIMARY_KEYS[table])
        want = _own(dms.rows("bronze", "shop", table, order))
        assert want, f"bronze/shop/{table} is empty: nothing compared"
        assert _own(other.rows("bronze", "shop", table, order)) == want, table
        if fmt != "snapshot":  # which sees versions at its times only (the test above)
            versions = _versions(dms, table)
            assert len(versions) > len(want) or table in ("products", "order_items"), table
            assert _versions(other, table) == versions, table
    for name in GOLD:
        want = sorted(dms.rows("gold", "shop", name), key=repr)
        assert want, f"gold/shop/{name} is empty: nothing compared"
        assert sorted(other.rows("gold", "shop", name), key=repr) == want, name


def test_the_lakes_were_fed_by_their_own_format(lakes):
    """Each lake's raw came from its format's files: the comparison compares three readers."""
    names = {fmt: lakes[fmt].rows("raw", "shop", "orders")[0]["_source_file"] for fmt in FORMATS}
    assert names["dms"].endswith(".parquet") and names["fivetran"].endswith(".parquet")
    assert re.fullmatch(r"shop\.public\.orders\+0\+\d{10}\.json", names["debezium"])
    ops = {fmt: {r["_op"] for r in lakes[fmt].rows("raw", "shop", "orders")} for fmt in FORMATS}
    assert "U" in ops["fivetran"] and "I" not in ops["fivetran"]
    assert "I" in ops["dms"] and "I" in ops["debezium"] and "U" in ops["snapshot"]
    assert names["snapshot"].endswith(".parquet") and "_fivetran_synced" not in names
    # Deletes are among what is compared.
    assert any(r["_op"] == "D" for r in lakes["dms"].rows("raw", "shop", "customers"))
