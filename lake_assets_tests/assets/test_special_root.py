"""A lake root whose path holds characters a URL encodes: every table lands inside it."""

from __future__ import annotations

import pytest

from lake_assets.settings import Settings, SettingsError, packaged_catalog
from lake_assets.sources.shop.simulator import simulate
from lake_assets_tests.conftest import Lake, read_delta

from ._lake import assert_ok

# A space, '#', '(', non-ASCII and a '%' (not followed by two hex digits: see below).
ROOT = "my lake #1 (ü) 100%"
TABLES = [
    ("raw", "orders"),
    ("bronze", "orders"),
    ("bronze", "order_items"),
    ("silver", "orders"),
    ("gold", "daily_sales"),
]


def test_a_sync_in_a_root_with_url_special_characters_writes_only_inside_it(tmp_path):
    base = tmp_path / ROOT
    lake = Lake(base, base / "lake", base / "landing", packaged_catalog())
    simulate(str(lake.landing), 2, scale=0.05)
    assert_ok(lake.sync())
    for layer, table in TABLES:
        # Read by deltalake, at the place the contract names.
        counted = read_delta(lake.root / layer / "shop" / table, "SELECT count(*) AS n FROM t")
        assert counted[0]["n"] > 0, (layer, table)
    # No percent-encoded twin anywhere beside it or in it.
    assert [p.name for p in tmp_path.iterdir()] == [ROOT]
    assert sorted(p.name for p in base.iterdir()) == ["lake", "landing"]
    assert not [p for p in base.rglob("*%2*")]
    assert {p.name for p in lake.root.iterdir()} <= {"raw", "bronze", "silver", "gold", "_state"}
    # A second sync finds nothing new and changes nothing.
    versions = {t: lake.version(*t[:1], "shop", t[1]) for t in TABLES}
    assert_ok(lake.sync())
    assert {t: lake.version(*t[:1], "shop", t[1]) for t in TABLES} == versions


def test_a_root_deltalake_cannot_read_under_is_refused_up_front(tmp_path):
    """'%' and two hex digits: deltalake 1.6.6 reads there at the decoded path
    (conformance/test_paths.py), so the lake says so before it writes anything."""
    root = tmp_path / "my lake #1 (ü)%20"
    with pytest.raises(SettingsError, match=r"'%20'.*deltalake 1\.6\.6"):
        Settings.load(str(root))
    assert not root.exists()
    # As a file:// URI, %20 is a space: that folder is fine.
    assert Settings.load((tmp_path / "my lake").as_uri()).lake_root == str(tmp_path / "my lake")
