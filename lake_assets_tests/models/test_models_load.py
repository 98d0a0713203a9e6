"""SQL models at load: references become dependencies; bad SQL, unknown tables and collisions
fail naming the model (no engine needed)."""

from __future__ import annotations

import textwrap

import dagster as dg
import pytest

from lake_assets.catalog import CatalogError, parse_catalog
from lake_assets.lib import models

BASE = """
sources:
  - name: shop
    format: dms
    start_date: "2024-01-01"
    tables:
      - {name: orders, schema: public, primary_key: [order_id]}
      - {name: order_items, schema: public, primary_key: [order_id, line_no]}
    models:
%s
  - name: crm
    format: dms
    start_date: "2024-01-01"
    tables:
      - {name: accounts, schema: crm, primary_key: [customer_id]}
"""


def catalog_with(models_yaml: str):
    text = BASE % textwrap.indent(textwrap.dedent(models_yaml).strip(), " " * 6)
    return parse_catalog(text, "acme.yaml")


def load_error(models_yaml: str) -> str:
    with pytest.raises(CatalogError) as e:
        models.validate(catalog_with(models_yaml))
    return str(e.value)


def test_references_of_this_source_another_source_and_a_model():
    sql = (
        "SELECT * FROM {{ silver.orders }} JOIN {{silver.crm.accounts}} USING (customer_id) "
        "JOIN {{ gold.totals }} USING (order_id) JOIN {{ silver.shop.orders }} USING (order_id)"
    )
    assert models.refs_in(sql, "shop") == [
        models.Ref("silver", "shop", "orders"),
        models.Ref("silver", "crm", "accounts"),
        models.Ref("gold", "shop", "totals"),
    ]
    rendered = models.render(sql, "shop")
    assert "{{" not in rendered and rendered.count("__lake_silver__shop__orders") == 2


def test_a_valid_model_loads_and_its_references_are_its_deps(tmp_path):
    from lake_assets.defs.models.assets import deps_of

    cat = catalog_with("""
        - name: enriched
          layer: silver
          sql: >-
            SELECT o.*, a.region FROM {{ silver.orders }} o
            LEFT JOIN {{ silver.crm.accounts }} a USING (customer_id)
        - name: by_region
          sql: SELECT region, COUNT(*) AS n FROM {{ silver.enriched }} GROUP BY region
    """)
    models.validate(cat)
    enriched, by_region = cat.source("shop").models
    assert deps_of(enriched) == [
        dg.AssetKey(["silver", "shop", "orders"]),
        dg.AssetKey(["silver", "crm", "accounts"]),
    ]
    assert deps_of(by_region) == [dg.AssetKey(["silver", "shop", "enriched"])]


@pytest.mark.parametrize(
    "sql, complaint",
    [
        ("SELEC order_id FROM {{ silver.orders }}", "does not parse"),
        ("SELECT order_id FROM {{ silver.orders }} WHERE", "does not parse"),
        (
            "SELECT order_id FROM {{ silver.nope }}",
            "{{ silver.shop.nope }} names no table of the lake",
        ),
        (
            "SELECT * FROM {{ silver.crm.orders }}",
            "{{ silver.crm.orders }} names no table of the lake",
        ),
        ("SELECT * FROM {{ platinum.orders }}", "is not a lake table"),
        ("SELECT * FROM {{ orders }}", "is not a lake table"),
        ("SELECT * FROM orders", "names table 'orders', which is not a lake table reference"),
        ("SELECT * FROM {{ gold.bad }}", "the model reads itself"),
        ("DELETE FROM {{ silver.orders }}", "must be one query"),
    ],
)
def test_a_bad_model_fails_at_load_naming_the_model(sql, complaint):
    message = load_error(f"""
        - name: bad
          sql: "{sql}"
    """)
    assert message.startswith("acme.yaml: source 'shop' model 'bad': "), message
    assert complaint in message
    assert "\n" not in message


def test_a_bad_check_fails_at_load_naming_model_and_check():
    message = load_error("""
        - name: totals
          sql: SELECT order_id, COUNT(*) AS n FROM {{ silver.order_items }} GROUP BY order_id
          checks:
            - name: positive
              sql: SELECT * FROM {{ this }} WHERE n <= 0 AND
    """)
    assert message.startswith(
        "acme.yaml: source 'shop' model 'totals' check 'positive': the SQL does not parse"
    )


def test_a_silver_model_may_not_take_a_quarantine_name():
    message = load_error("""
        - name: orders_quarantine
          layer: silver
          sql: SELECT * FROM {{ silver.orders }}
    """)
    assert "model 'orders_quarantine'" in message and "quarantine" in message


def test_gold_names_the_built_in_models_and_an_unknown_one_fails():
    text = BASE.replace("    models:\n%s\n", "    gold: [daily_sales]\n")
    cat = parse_catalog(text, "acme.yaml")
    (daily,) = models.models_of(cat.source("shop"))
    assert (daily.name, daily.source, daily.partitioned_by) == ("daily_sales", "shop", "order_date")
    with pytest.raises(
        CatalogError, match="unknown gold table 'daily_sale'; built in: customer_lifetime_value"
    ):
        models.models_of(
            parse_catalog(text.replace("[daily_sales]", "[daily_sale]"), "acme.yaml").source("shop")
        )


def test_a_model_with_bad_sql_fails_the_definitions_load(lake):
    lake.write_catalog(BASE % "      - {name: bad, sql: 'SELECT FROM WHERE {{ silver.orders }}'}")
    with pytest.raises(CatalogError, match="source 'shop' model 'bad': the SQL does not parse"):
        lake.defs()
