"""silver/<source>/<table>_history: bronze's history typed and standardized by the table's silver
rules, keeping `_valid_from`, `_valid_to`, `_is_current`; a version a drop rule rejects is left
out (it goes to no quarantine), a warn rule counts."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lake_assets_tests.assets._lake import SCHEMA, SRC, assert_ok, new_lake, ts, write_cdc
from lake_assets_tests.assets.conftest import SharedInstanceLake
from lake_assets_tests.history._history import VERSION

CATALOG = f"""\
sources:
  - name: {SRC}
    format: dms
    timestamp_column: ts
    start_date: "2024-01-01"
    tables:
      - name: customers
        schema: {SCHEMA}
        primary_key: [customer_id]
        history: true
        columns: {{customer_id: bigint, email: string, country: string}}
        silver:
          trim_strings: true
          lower: [email]
          upper: [country]
          max_quarantine_rate: 1.0
          rules:
            - {{name: email_has_at, expr: "email LIKE '%@%'", action: drop}}
            - {{name: country_known, column: country, accepted: [DE, FR], action: warn}}
"""
ROW = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("customer_id", pa.int64()),
        ("email", pa.string()),
        ("country", pa.string()),
    ]
)


def change(op: str, when: str, id: int, email: str | None, country: str | None) -> dict:
    return {"Op": op, "ts": ts(when), "customer_id": id, "email": email, "country": country}


@pytest.fixture(scope="module")
def lake(tmp_path_factory, dagster_instance):
    lake = new_lake(tmp_path_factory.mktemp("silver_history"))
    lake.__class__ = SharedInstanceLake
    lake.instance = dagster_instance
    lake.write_catalog(CATALOG)
    d = "2024-01-02"
    land = [
        (f"{d} 09:00:00", [change("I", f"{d} 09:00:00", 1, " Ann@X.org ", "de")]),
        (f"{d} 10:00:00", [change("U", f"{d} 10:00:00", 1, "ann@x.org", "fr ")]),
        (f"{d} 11:00:00", [change("U", f"{d} 11:00:00", 1, "no-at-sign", "FR")]),
        (f"{d} 12:00:00", [change("I", f"{d} 12:00:00", 2, "bo@y.org", "XX")]),
    ]
    for when, rows in land:
        write_cdc(lake.landing, SRC, SCHEMA, "customers", ts(when), rows, ROW)
    assert_ok(lake.sync())
    return lake


def test_silver_history_is_bronze_history_standardized_without_dropped_versions(lake):
    rows = lake.rows("silver", SRC, "customers_history", "customer_id, _valid_from")
    got = [{k: v for k, v in r.items() if not k.startswith("_") or k in VERSION} for r in rows]
    d = "2024-01-02"

    def ver(id, email, country, start, end):
        return {
            "customer_id": id,
            "email": email,
            "country": country,
            "_valid_from": ts(f"{d} {start}"),
            "_valid_to": end and ts(f"{d} {end}"),
            "_is_current": end is None,
        }

    # Customer 1's third version (no `@`) is rejected by the drop rule: left out; the warn
    # rule keeps customer 2's unknown country.
    assert got == [
        ver(1, "ann@x.org", "DE", "09:00:00", "10:00:00"),
        ver(1, "ann@x.org", "FR", "10:00:00", "11:00:00"),
        ver(2, "bo@y.org", "XX", "12:00:00", None),
    ]
    assert len(lake.rows("bronze", SRC, "customers_history")) == 4


def test_silver_history_is_its_own_asset_with_a_version_key_check(lake):
    from lake_assets.keys import asset_key

    defs = lake.defs()
    key = asset_key("silver", SRC, "customers_history")
    graph = defs.resolve_asset_graph()
    assert graph.get(key).parent_keys == {asset_key("bronze", SRC, "customers_history")}
    checks = {c.name for c in graph.get_check_keys_for_assets([key])}
    assert checks == {"version_key_unique"}
