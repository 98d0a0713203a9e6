"""The source catalog: YAML in, frozen pydantic models out, errors naming the entry."""

import datetime as dt

import pytest

from lake_assets.catalog import CatalogError, load_catalog, parse_catalog
from lake_assets.settings import packaged_catalog

GOOD = """
sources:
  - name: crm
    format: dms
    start_date: "2019-01-01"
    csv_header: false
    tables:
      - name: customers
        schema: classicmodels
        primary_key: [customerNumber]
        columns:
          customerNumber: bigint
          customerName: string
          creditLimit: decimal(10,2)
"""


def test_contract_example_parses_with_case_kept():
    cat = parse_catalog(GOOD)
    src = cat.source("crm")
    assert src.start_date == dt.date(2019, 1, 1)
    assert src.timestamp_column is None and src.csv_header is False
    t = src.table("customers")
    assert t.schema == "classicmodels" and t.primary_key == ("customerNumber",)
    assert t.columns == (
        ("customerNumber", "bigint"),
        ("customerName", "string"),
        ("creditLimit", "decimal(10,2)"),
    )


def test_packaged_shop_catalog_loads():
    cat = load_catalog(packaged_catalog())
    shop = cat.source("shop")
    assert shop.timestamp_column == "dms_commit_ts"
    assert [t.name for t in shop.tables] == ["customers", "products", "orders", "order_items"]
    assert shop.table("order_items").primary_key == ("order_id", "line_no")
    assert shop.gold == ()  # its gold tables are SQL models, one .sql file each beside it
    daily = {m.name: m for m in shop.models}["daily_sales"]
    assert (daily.layer, daily.partitioned_by, daily.primary_key) == (
        "gold",
        "order_date",
        ("order_date",),
    )
    assert daily.sql_file.endswith("gold/daily_sales.sql") and "{{ silver.orders }}" in daily.sql
    assert [c.name for c in daily.checks] == ["revenue_and_orders_match_silver"]
    assert daily.checks[0].sql_file.endswith("gold/daily_sales_matches_silver.sql")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda s: s.replace("        primary_key: [customerNumber]\n", ""),
            "table 'customers': missing 'primary_key'",
        ),
        (lambda s: s.replace("format: dms", "format: avro"), "source 'crm': unknown format 'avro'"),
        (
            lambda s: s + "      - name: customers\n        schema: x\n        primary_key: [id]\n",
            "source 'crm': duplicate table 'customers'",
        ),
        (
            lambda s: s.replace("bigint", "bignumber"),
            "column 'customerNumber': unknown type 'bignumber'",
        ),
        (
            lambda s: s.replace('"2019-01-01"', '"2019-13-01"'),
            "start_date '2019-13-01' is not a date",
        ),
        (lambda s: s.replace("sources:", "sources: [\n"), "not readable YAML"),
        (
            lambda s: s.replace("[customerNumber]", "[customerId]"),
            "primary key column(s) ['customerId'] are not among its columns",
        ),
    ],
)
def test_wrong_catalog_names_the_entry(mutate, message, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(mutate(GOOD))
    with pytest.raises(CatalogError) as e:
        load_catalog(str(path))
    assert message in str(e.value)
    assert str(path) in str(e.value)


def test_missing_catalog_file_is_named(tmp_path):
    with pytest.raises(CatalogError, match="cannot read the source catalog .*nope.yaml"):
        load_catalog(str(tmp_path / "nope.yaml"))


def test_rule_actions_and_references_are_validated():
    base = GOOD + "        silver:\n          rules:\n"
    with pytest.raises(CatalogError, match="rule 'r1': unknown action 'explode'"):
        parse_catalog(base + "            - {name: r1, expr: 'true', action: explode}\n")
    with pytest.raises(CatalogError, match="references unknown table 'nope'"):
        parse_catalog(
            base
            + "            - {name: r1, references: {table: nope, columns: [customerNumber]}}\n"
        )
    with pytest.raises(CatalogError, match="unknown value set 'planets'"):
        parse_catalog(base + "            - {name: r1, column: customerName, accepted: planets}\n")
    cat = parse_catalog(
        base
        + "            - {name: r1, column: customerName, accepted: iso3166_alpha2, action: drop}\n"
    )
    rule = cat.tables()[0].rules[0]
    assert rule.action == "drop" and "DE" in rule.accepted and len(rule.accepted) == 249
