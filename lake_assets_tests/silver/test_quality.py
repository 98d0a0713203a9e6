"""Silver's quality actions on real Delta tables, through `sync`: standardization, `warn`,
`drop` to `<table>_quarantine`, referential rules, rows leaving quarantine once fixed at the
source, `fail` writing nothing, and the blocking quarantine-rate check."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lake_assets_tests.conftest import Lake
from lake_assets_tests.dms_files import UTC, ts, write_cdc, write_load

# --------------------------------------------------------------------------------------------
# A source `q` with standardized, rule-checked customers and orders referencing them.

Q_CATALOG = """\
sources:
  - name: q
    format: dms
    timestamp_column: ts
    start_date: "2024-01-01"
    tables:
      - name: customers
        schema: public
        primary_key: [customer_id]
        columns:
          {customer_id: bigint, email: string, full_name: string, country: string,
           created_at: timestamp}
        silver:
          trim_strings: true
          lower: [email]
          upper: [country]
          max_quarantine_rate: 1.0
          rules:
            - {name: email_is_valid, expr: "email RLIKE '^[^@ ]+@[^@ ]+[.][a-z]+$'", action: drop}
            - {name: country_is_iso3166, column: country, accepted: iso3166_alpha2, action: drop}
            - {name: name_present, expr: "full_name <> ''", action: warn}
      - name: orders
        schema: public
        primary_key: [order_id]
        columns:
          {order_id: bigint, customer_id: bigint, amount: "decimal(10,2)", order_ts: timestamp}
        silver:
          max_quarantine_rate: 1.0
          rules:
            - name: customer_exists
              references: {table: customers, columns: [customer_id]}
              action: drop
"""

CUSTOMERS = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("customer_id", pa.int64()),
        ("email", pa.string()),
        ("full_name", pa.string()),
        ("country", pa.string()),
        ("created_at", pa.timestamp("us")),
    ]
)
ORDERS = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("order_id", pa.int64()),
        ("customer_id", pa.int64()),
        ("amount", pa.decimal128(10, 2)),
        ("order_ts", pa.timestamp("us")),
    ]
)
T0 = "2024-01-01 00:00:00"
CREATED = dt.datetime(2023, 12, 1, 8, 30)


def customer(op, when, cid, email, name, country):
    return {
        "Op": op,
        "ts": ts(when),
        "customer_id": cid,
        "email": email,
        "full_name": name,
        "country": country,
        "created_at": CREATED,
    }


def order(op, when, oid, cid, amount):
    return {
        "Op": op,
        "ts": ts(when),
        "order_id": oid,
        "customer_id": cid,
        "amount": Decimal(amount),
        "order_ts": dt.datetime(2024, 1, 1, 12, oid % 60),
    }


def new_lake(tmp) -> Lake:
    root, landing = tmp / "lake", tmp / "landing"
    root.mkdir(parents=True)
    landing.mkdir(parents=True)
    return Lake(tmp, root, landing, tmp / "catalog.yaml")


def own(rows, *keep):
    return [{k: v for k, v in r.items() if not k.startswith("_") or k in keep} for r in rows]


def latest_metadata(instance, key: list[str]) -> dict:
    ev = instance.get_latest_materialization_event(dg.AssetKey(key))
    assert ev is not None, f"no materialization of {key}"
    return {k: getattr(v, "value", v) for k, v in ev.asset_materialization.metadata.items()}


@pytest.fixture(scope="module")
def quality(tmp_path_factory):
    """Two syncs of `q`: the first with dirty rows, the second after fixes landed at the source.
    Returns what each sync left in silver and quarantine (read back with delta-rs)."""
    lake = new_lake(tmp_path_factory.mktemp("quality"))
    lake.write_catalog(Q_CATALOG)
    write_load(
        lake.landing,
        "q",
        "public",
        "customers",
        1,
        [
            customer("I", T0, 1, "  Alice@Example.COM ", "  Alice Martin ", " de "),
            customer("I", T0, 2, "bob@example.com", "Bob", "UK"),  # not ISO 3166
            customer("I", T0, 3, "carol at example.com", "Carol", "FR"),  # fixed later
            customer("I", T0, 4, "dave@example", "Dave", "XX"),  # violates both drop rules
            customer("I", T0, 5, "erin@example.org", None, "us"),  # warn: null name
            customer("I", T0, 6, "frank@example.net", "   ", "GB"),  # warn: blank once trimmed
        ],
        CUSTOMERS,
    )
    write_load(
        lake.landing,
        "q",
        "public",
        "orders",
        1,
        [
            order("I", T0, 10, 1, "10.50"),
            order(
                "I", T0, 11, 3, "20.00"
            ),  # its customer is quarantined in silver, but exists at the source
            order("I", T0, 12, 99, "30.25"),  # orphan: no customer 99 (yet)
            order("I", T0, 13, None, "1.00"),  # null reference: a violation too
        ],
        ORDERS,
    )
    out = {"lake": lake}
    with dg.DagsterInstance.ephemeral() as instance:
        out["sync1"] = lake.sync(instance=instance)
        out["lines1"] = list(lake.lines)
        out["meta1"] = latest_metadata(instance, ["silver", "q", "customers"])
        out["qmeta1"] = latest_metadata(instance, ["silver", "q", "customers_quarantine"])
        out["ometa1"] = latest_metadata(instance, ["silver", "q", "orders"])
        for t in ("customers", "customers_quarantine", "orders", "orders_quarantine"):
            out[f"{t}1"] = lake.rows("silver", "q", t, "1")
        out["schema_customers"] = pa.schema(
            DeltaTable(str(lake.path("silver", "q", "customers"))).schema().to_arrow()
        )
        out["schema_orders"] = pa.schema(
            DeltaTable(str(lake.path("silver", "q", "orders"))).schema().to_arrow()
        )
        out["schema_quarantine"] = pa.schema(
            DeltaTable(str(lake.path("silver", "q", "customers_quarantine"))).schema().to_arrow()
        )
        # At the source: Carol's e-mail is fixed, customer 99 signs up; Bob and Dave stay as they
        # are.
        write_cdc(
            lake.landing,
            "q",
            "public",
            "customers",
            ts("2024-01-02 10:00:00"),
            [
                customer("U", "2024-01-02 09:00:00", 3, " Carol@Example.com", "Carol", "FR"),
                customer("I", "2024-01-02 09:30:00", 99, "zoe@example.com", "Zoe", "IE"),
            ],
            CUSTOMERS,
        )
        out["sync2"] = lake.sync(instance=instance)
        out["meta2"] = latest_metadata(instance, ["silver", "q", "customers"])
        for t in ("customers", "customers_quarantine", "orders", "orders_quarantine"):
            out[f"{t}2"] = lake.rows("silver", "q", t, "1")
    return out


def by_key(rows, key):
    return {r[key]: r for r in rows}


def test_first_sync_succeeds(quality):
    assert quality["sync1"].ok, quality["sync1"].failures
    assert quality["sync2"].ok, quality["sync2"].failures


def test_standardization_and_warn_rows_are_kept(quality):
    rows = own(sorted(quality["customers1"], key=lambda r: r["customer_id"]))
    created = CREATED.replace(tzinfo=UTC)
    assert rows == [
        # trimmed, e-mail lower-cased, country upper-cased: ' de ' is accepted as DE
        {
            "customer_id": 1,
            "email": "alice@example.com",
            "full_name": "Alice Martin",
            "country": "DE",
            "created_at": created,
        },
        # warn keeps the row (null name, and a name that is blank once trimmed)
        {
            "customer_id": 5,
            "email": "erin@example.org",
            "full_name": None,
            "country": "US",
            "created_at": created,
        },
        {
            "customer_id": 6,
            "email": "frank@example.net",
            "full_name": "",
            "country": "GB",
            "created_at": created,
        },
    ]


def test_rule_counts_in_materialization_metadata(quality):
    meta = quality["meta1"]
    assert meta["rule/email_is_valid"] == 2  # carol, dave
    assert meta["rule/country_is_iso3166"] == 2  # bob (UK), dave (XX)
    assert meta["rule/name_present"] == 2  # erin (null), frank (blank)
    assert meta["rows_in"] == 6
    assert meta["rows_dropped"] == 3
    assert quality["ometa1"]["rule/customer_exists"] == 2
    assert quality["ometa1"]["rows_dropped"] == 2
    # after the fix only Bob and Dave are rejected
    assert quality["meta2"]["rule/email_is_valid"] == 1
    assert quality["meta2"]["rows_dropped"] == 2


def test_drop_moves_rows_to_quarantine_with_the_first_violated_rule(quality):
    q = sorted(quality["customers_quarantine1"], key=lambda r: r["customer_id"])
    assert [(r["customer_id"], r["email"], r["country"], r["_rule"]) for r in q] == [
        (2, "bob@example.com", "UK", "country_is_iso3166"),  # 'UK' is not ISO 3166 (GB is)
        (3, "carol at example.com", "FR", "email_is_valid"),
        (4, "dave@example", "XX", "email_is_valid"),  # both violated: the first in catalog order
    ]
    assert all(isinstance(r["_quarantined_at"], dt.datetime) for r in q)
    now = dt.datetime.now(UTC)
    assert all(now - dt.timedelta(minutes=10) < r["_quarantined_at"] <= now for r in q)
    # standardized before the rules, and quarantine keeps the table's own columns too
    assert own(q)[0] == {
        "customer_id": 2,
        "email": "bob@example.com",
        "full_name": "Bob",
        "country": "UK",
        "created_at": CREATED.replace(tzinfo=UTC),
    }
    silver_ids = {r["customer_id"] for r in quality["customers1"]}
    assert silver_ids.isdisjoint({r["customer_id"] for r in q})


def test_referential_rule_quarantines_orphans_against_the_source(quality):
    orders = sorted(quality["orders1"], key=lambda r: r["order_id"])
    # order 11's customer is quarantined in silver, but exists at the source: the order stays
    assert [(r["order_id"], r["customer_id"], r["amount"]) for r in orders] == [
        (10, 1, Decimal("10.50")),
        (11, 3, Decimal("20.00")),
    ]
    q = sorted(quality["orders_quarantine1"], key=lambda r: r["order_id"])
    assert [(r["order_id"], r["customer_id"], r["_rule"]) for r in q] == [
        (12, 99, "customer_exists"),
        (13, None, "customer_exists"),
    ]


def test_fixed_rows_leave_quarantine_and_still_rejected_rows_keep_their_time(quality):
    silver = by_key(own(quality["customers2"]), "customer_id")
    assert sorted(silver) == [1, 3, 5, 6, 99]
    assert silver[3]["email"] == "carol@example.com"
    q1 = by_key(quality["customers_quarantine1"], "customer_id")
    q2 = by_key(quality["customers_quarantine2"], "customer_id")
    assert sorted(q2) == [2, 4]
    for k in (2, 4):
        assert q2[k]["_rule"] == q1[k]["_rule"]
        assert q2[k]["_quarantined_at"] == q1[k]["_quarantined_at"], (
            "first quarantine time must be stable"
        )
    # the orphan order's customer arrived: it leaves quarantine; the null reference stays
    assert sorted(r["order_id"] for r in quality["orders2"]) == [10, 11, 12]
    oq1 = by_key(quality["orders_quarantine1"], "order_id")
    oq2 = by_key(quality["orders_quarantine2"], "order_id")
    assert sorted(oq2) == [13]
    assert oq2[13]["_quarantined_at"] == oq1[13]["_quarantined_at"]


def test_types_enforced(quality):
    schema = quality["schema_customers"]
    types = {f.name: f.type for f in schema}
    assert types["customer_id"] == pa.int64()
    assert types["email"] in (pa.string(), pa.large_string(), pa.string_view())
    assert pa.types.is_timestamp(types["created_at"]) and types["created_at"].tz == "UTC"
    otypes = {f.name: f.type for f in quality["schema_orders"]}
    assert otypes["order_id"] == pa.int64() and otypes["customer_id"] == pa.int64()
    assert otypes["amount"] == pa.decimal128(10, 2)
    assert pa.types.is_timestamp(otypes["order_ts"]) and otypes["order_ts"].tz == "UTC"
    qtypes = {f.name: f.type for f in quality["schema_quarantine"]}
    assert qtypes["_rule"] in (pa.string(), pa.large_string(), pa.string_view())
    assert pa.types.is_timestamp(qtypes["_quarantined_at"])
    # the rows read back carry those types
    row = quality["orders1"][0]
    assert isinstance(row["amount"], Decimal) and row["amount"].as_tuple().exponent == -2


# --------------------------------------------------------------------------------------------
# `fail` writes nothing; the quarantine rate check blocks.

F_CATALOG = """\
sources:
  - name: f
    format: dms
    timestamp_column: ts
    start_date: "2024-01-01"
    tables:
      - name: products
        schema: public
        primary_key: [id]
        columns: {id: bigint, price: "decimal(10,2)"}
        silver:
          max_quarantine_rate: 1.0
          rules:
            - {name: unit_price_not_negative, expr: "price >= 0", action: fail}
            - {name: price_below_limit, expr: "price < 1000", action: drop}
      - name: broken
        schema: public
        primary_key: [id]
        columns: {id: bigint, price: "decimal(10,2)"}
        silver:
          rules:
            - {name: price_present, expr: "price IS NOT NULL", action: fail}
      - name: items
        schema: public
        primary_key: [id]
        columns: {id: bigint, price: "decimal(10,2)"}
        silver:
          max_quarantine_rate: 0.2
          rules:
            - {name: quantity_positive, expr: "price > 0", action: drop}
      - name: items_ok
        schema: public
        primary_key: [id]
        columns: {id: bigint, price: "decimal(10,2)"}
        silver:
          max_quarantine_rate: 0.2
          rules:
            - {name: quantity_positive, expr: "price > 0", action: drop}
"""

PRICES = pa.schema(
    [
        ("Op", pa.string()),
        ("ts", pa.timestamp("us")),
        ("id", pa.int64()),
        ("price", pa.decimal128(10, 2)),
    ]
)


def price(op, when, i, p):
    return {"Op": op, "ts": ts(when), "id": i, "price": None if p is None else Decimal(p)}


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    lake = new_lake(tmp_path_factory.mktemp("failing"))
    lake.write_catalog(F_CATALOG)
    write_load(
        lake.landing,
        "f",
        "public",
        "products",
        1,
        [price("I", T0, 1, "1.00"), price("I", T0, 2, "2000.00"), price("I", T0, 3, "3.00")],
        PRICES,
    )
    write_load(
        lake.landing,
        "f",
        "public",
        "broken",
        1,
        [price("I", T0, 1, "1.00"), price("I", T0, 2, None)],
        PRICES,
    )
    # 1 of 3 quarantined: 33 % > 20 %
    write_load(
        lake.landing,
        "f",
        "public",
        "items",
        1,
        [price("I", T0, 1, "1.00"), price("I", T0, 2, "-1.00"), price("I", T0, 3, "3.00")],
        PRICES,
    )
    # 1 of 5 quarantined: exactly 20 %, allowed
    write_load(
        lake.landing,
        "f",
        "public",
        "items_ok",
        1,
        [price("I", T0, i, "-1.00" if i == 1 else "1.00") for i in range(1, 6)],
        PRICES,
    )
    out = {"lake": lake}
    out["sync1"] = lake.sync()
    out["lines1"] = list(lake.lines)
    out["products1"] = lake.rows("silver", "f", "products", "id")
    out["pq1"] = lake.rows("silver", "f", "products_quarantine", "id")
    out["v1"] = lake.version("silver", "f", "products")
    out["qv1"] = lake.version("silver", "f", "products_quarantine")
    # A negative price lands (and a change a drop rule would quarantine, in the same batch).
    write_cdc(
        lake.landing,
        "f",
        "public",
        "products",
        ts("2024-01-02 10:00:00"),
        [
            price("U", "2024-01-02 09:00:00", 3, "-3.00"),
            price("U", "2024-01-02 09:00:01", 1, "5000.00"),
        ],
        PRICES,
    )
    out["sync2"] = lake.sync()
    out["lines2"] = list(lake.lines)
    return out


def _silver_exists(lake, table):
    return DeltaTable.is_deltatable(str(lake.path("silver", "f", table)))


def test_fail_rule_fails_the_sync_naming_table_and_rule_and_writes_nothing(failing):
    lake = failing["lake"]
    res = failing["sync2"]
    assert not res.ok
    lines = [f for f in res.failures if "unit_price_not_negative" in f]
    assert len(lines) == 1, res.failures
    assert "f.products" in lines[0] and "1 row" in lines[0]
    # nothing written: neither silver nor its quarantine moved, their contents are those of sync 1
    assert lake.version("silver", "f", "products") == failing["v1"]
    assert lake.version("silver", "f", "products_quarantine") == failing["qv1"]
    assert lake.rows("silver", "f", "products", "id") == failing["products1"]
    assert lake.rows("silver", "f", "products_quarantine", "id") == failing["pq1"]
    assert [r["id"] for r in failing["products1"]] == [1, 3]
    assert [(r["id"], r["_rule"]) for r in failing["pq1"]] == [(2, "price_below_limit")]
    # bronze did take the change: only silver refused it
    assert {r["id"]: r["price"] for r in lake.rows("bronze", "f", "products")}[3] == Decimal(
        "-3.00"
    )


def test_fail_rule_on_first_sync_leaves_silver_absent(failing):
    lake = failing["lake"]
    for res in (failing["sync1"], failing["sync2"]):
        lines = [f for f in res.failures if "price_present" in f]
        assert len(lines) == 1 and "f.broken" in lines[0], res.failures
    assert not _silver_exists(lake, "broken")
    assert not _silver_exists(lake, "broken_quarantine")
    assert DeltaTable.is_deltatable(str(lake.path("bronze", "f", "broken")))


def test_quarantine_rate_above_threshold_fails_the_blocking_check(failing):
    res = failing["sync1"]
    assert not res.ok
    rate_lines = [
        f
        for f in res.failures
        if "check silver/f/items:quarantine_rate_below_threshold failed" in f
    ]
    assert len(rate_lines) == 1, res.failures
    assert "'rate': 0.333333" in rate_lines[0] and "'threshold': 0.2" in rate_lines[0]
    # exactly at the threshold passes; nothing but that check and the first-sync fail rule fails
    assert not [f for f in res.failures if "items_ok" in f], res.failures
    assert all(
        "price_present" in f or "silver/f/items:" in f or "silver__f__items_quarantine_rate" in f
        for f in res.failures
    ), res.failures
    assert any(
        "check silver/f/items:quarantine_rate_below_threshold FAILED" in line
        for line in failing["lines1"]
    )
    # the rows are still written (the check judges them); the quarantine holds the bad one
    lake = failing["lake"]
    assert [r["id"] for r in lake.rows("silver", "f", "items", "id")] == [1, 3]
    assert [(r["id"], r["_rule"]) for r in lake.rows("silver", "f", "items_quarantine", "id")] == [
        (2, "quantity_positive")
    ]
