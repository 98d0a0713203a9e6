"""The strict catalog: every unknown key, wrong type or missing key is one line naming the file,
the entry and the key; `models:` parse; the packaged catalog loads to the same values as before."""

import datetime as dt
import textwrap

import pytest
from pydantic import ValidationError

from lake_assets.catalog import CatalogError, load_catalog, parse_catalog
from lake_assets.settings import packaged_catalog

BASE = textwrap.dedent("""\
    sources:
      - name: acme
        format: dms
        start_date: "2024-01-01"
        gold: [daily_sales]
        tables:
          - name: customers
            schema: public
            primary_key: [id]
            columns: {id: bigint, email: string}
            silver:
              trim_strings: true
              max_quarantine_rate: 0.1
              rules:
                - {name: email_set, expr: "email IS NOT NULL"}
          - name: orders
            schema: public
            primary_key: [order_id]
            silver:
              rules:
                - name: customer_exists
                  references: {table: customers, columns: {customer_id: id}}
        models:
          - name: totals
            sql: SELECT 1 AS n
            partitioned_by: d
            checks:
              - {name: some_rows, sql: SELECT 1 WHERE false}
    """)


def _error(tmp_path, text: str, name: str = "acme.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CatalogError) as e:
        load_catalog(str(path))
    message = str(e.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


def _swap(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


TYPOS = {
    "top level": ("sources:", "source:", "", "source", "sources"),
    "source": ("    format: dms", "    formats: dms", "source 'acme':", "formats", "format"),
    "table": (
        "primary_key: [id]",
        "primary_keys: [id]",
        "source 'acme' table 'customers':",
        "primary_keys",
        "primary_key",
    ),
    "silver": (
        "trim_strings: true",
        "trim_string: true",
        "source 'acme' table 'customers' silver:",
        "trim_string",
        "trim_strings",
    ),
    "silver rate": (
        "max_quarantine_rate: 0.1",
        "max_quarantin_rate: 0.1",
        "source 'acme' table 'customers' silver:",
        "max_quarantin_rate",
        "max_quarantine_rate",
    ),
    "rule": (
        "{name: email_set, expr:",
        "{name: email_set, exp:",
        "source 'acme' table 'customers' silver rule 'email_set':",
        "exp",
        "expr",
    ),
    "references": (
        "columns: {customer_id: id}",
        "column: {customer_id: id}",
        "source 'acme' table 'orders' silver rule 'customer_exists' references:",
        "column",
        "columns",
    ),
    "model": (
        "partitioned_by: d",
        "partition_by: d",
        "source 'acme' model 'totals':",
        "partition_by",
        "partitioned_by",
    ),
    "model check": (
        "{name: some_rows, sql:",
        "{name: some_rows, blocked: false, sql:",
        "source 'acme' model 'totals' check 'some_rows':",
        "blocked",
        "blocking",
    ),
}


@pytest.mark.parametrize("level", list(TYPOS))
def test_a_misspelled_key_is_one_line_naming_the_entry_and_the_nearest_key(tmp_path, level):
    old, new, entry, wrong, right = TYPOS[level]
    message = _error(tmp_path, _swap(old, new))
    assert f"{entry} unknown key {wrong!r}; did you mean {right!r}?" in message, message


def test_a_key_like_no_other_lists_the_known_keys(tmp_path):
    message = _error(tmp_path, _swap("    format: dms", "    format: dms\n    zzz: 1"))
    assert "source 'acme': unknown key 'zzz'; known keys: name, format, start_date" in message


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("    tables:", "    tables: [", "not readable YAML"),
        (
            "trim_strings: true",
            "trim_strings: yes please",
            "table 'customers' silver: 'trim_strings' must be true or false, not 'yes please'",
        ),
        (
            "max_quarantine_rate: 0.1",
            "max_quarantine_rate: lots",
            "table 'customers' silver: 'max_quarantine_rate' must be a valid number",
        ),
        (
            'start_date: "2024-01-01"',
            'start_date: "2024-01-01"\n    csv_header: 1',
            "source 'acme': 'csv_header' must be true or false, not 1",
        ),
        (
            "primary_key: [id]",
            "primary_key: {id: 1}",
            "table 'customers': 'primary_key' must be a list",
        ),
        (
            "        schema: public\n        primary_key: [id]",
            "        primary_key: [id]",
            "source 'acme' table 'customers': missing 'schema'",
        ),
        (
            "- {name: email_set, expr:",
            "- {expr:",
            "table 'customers' silver rule #1: missing 'name'",
        ),
        (
            '{name: email_set, expr: "email IS NOT NULL"}',
            "{name: email_set}",
            "silver rule 'email_set': missing 'expr'",
        ),
        (
            "references: {table: customers, columns: {customer_id: id}}",
            "references: {table: customers}",
            "rule 'customer_exists' references: missing 'columns'",
        ),
        (
            "references: {table: customers,",
            "references: {table: nope,",
            "table 'orders' silver rule 'customer_exists': references unknown table 'nope'",
        ),
        (
            '{name: email_set, expr: "email IS NOT NULL"}',
            "{name: email_set, column: email}",
            "rule 'email_set': 'column' needs 'accepted'",
        ),
        (
            "    format: dms",
            "    format: dsm",
            "source 'acme': unknown format 'dsm'; did you mean 'dms'?",
        ),
        (
            "      - name: orders",
            "      - 5\n      - name: orders",
            "source 'acme' table #2: must be a mapping, not 5",
        ),
        (
            "    models:\n",
            "      - {name: t3, schema: public, primary_key: [id], silver: true}\n    models:\n",
            "source 'acme' table 't3' silver: must be a mapping, not True",
        ),
    ],
)
def test_wrong_values_and_missing_keys_are_one_line_naming_entry_and_key(
    tmp_path, old, new, expected
):
    message = _error(tmp_path, _swap(old, new))
    assert expected in message, message


def test_a_user_landing_format_is_a_class_path(tmp_path):
    cat = parse_catalog(_swap("format: dms", "format: acme_lake.formats:KafkaAvro"))
    assert cat.source("acme").format == "acme_lake.formats:KafkaAvro"
    message = _error(tmp_path, _swap("format: dms", "format: acme_lake.formats.KafkaAvro"))
    assert "unknown format 'acme_lake.formats.KafkaAvro'" in message
    assert "package.module:ClassName" in message


def test_models_parse_with_their_defaults():
    src = parse_catalog(BASE).source("acme")
    (m,) = src.models
    assert (m.source, m.name, m.layer, m.description) == ("acme", "totals", "gold", None)
    assert (m.sql, m.sql_file, m.partitioned_by, m.primary_key) == ("SELECT 1 AS n", None, "d", ())
    (check,) = m.checks
    assert (check.name, check.sql, check.blocking, check.description) == (
        "some_rows",
        "SELECT 1 WHERE false",
        True,
        None,
    )


def test_a_model_primary_key_as_one_name_is_a_one_tuple_and_layer_silver_parses():
    text = _swap(
        "partitioned_by: d", "layer: silver\n        primary_key: n\n        description: x"
    )
    (m,) = parse_catalog(text).source("acme").models
    assert (m.layer, m.primary_key, m.description) == ("silver", ("n",), "x")


def test_sql_file_is_read_relative_to_the_catalog_folder(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    (folder / "sql").mkdir(parents=True)
    (folder / "sql" / "totals.sql").write_text("SELECT 2 AS n\n")
    (folder / "lake.yaml").write_text(_swap("sql: SELECT 1 AS n", "sql_file: sql/totals.sql"))
    monkeypatch.chdir(tmp_path)
    (m,) = load_catalog("conf/lake.yaml").source("acme").models
    assert m.sql == "SELECT 2 AS n\n"
    assert (tmp_path / m.sql_file).resolve() == (folder / "sql" / "totals.sql").resolve()


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "sql: SELECT 1 AS n",
            "sql: SELECT 1 AS n\n        sql_file: t.sql",
            "model 'totals': give 'sql' or 'sql_file', not both",
        ),
        ("        sql: SELECT 1 AS n\n", "", "model 'totals': missing 'sql' (or 'sql_file')"),
        ("sql: SELECT 1 AS n", "sql_file: nowhere/t.sql", "model 'totals': cannot read sql_file"),
        (
            "- name: totals",
            "- name: daily_sales",
            "model 'daily_sales': the name is a built-in gold",
        ),
        (
            "- name: totals",
            "- name: orders\n        layer: silver",
            "model 'orders': as a silver model it would overwrite silver/acme/orders",
        ),
        (
            "- name: totals",
            "- name: orders_quarantine\n        layer: silver",
            "would overwrite silver/acme/orders_quarantine",
        ),
        (
            "    models:\n",
            "    models:\n      - {name: totals, sql: SELECT 2}\n",
            "duplicate model 'totals'",
        ),
        (
            "- {name: some_rows, sql: SELECT 1 WHERE false}",
            "- {name: c, sql: SELECT 1}\n          - {name: c, sql: SELECT 2}",
            "model 'totals': duplicate check 'c'",
        ),
        (
            "- name: totals",
            "- name: totals\n        layer: platinum",
            "model 'totals': 'layer' must be 'gold' or 'silver', not 'platinum'",
        ),
        (
            "- name: totals",
            "- name: total-s",
            "model 'total-s': name 'total-s' is not a valid name",
        ),
    ],
)
def test_wrong_models_are_one_line_naming_the_model(tmp_path, old, new, expected):
    message = _error(tmp_path, _swap(old, new))
    assert expected in message and "source 'acme'" in message, message


def test_an_unreadable_sql_file_names_its_path(tmp_path):
    message = _error(tmp_path, _swap("sql: SELECT 1 AS n", "sql_file: nowhere/t.sql"))
    assert str(tmp_path / "nowhere" / "t.sql") in message


def test_a_gold_model_may_share_a_table_name():
    (m,) = parse_catalog(_swap("- name: totals", "- name: orders")).source("acme").models
    assert m.layer == "gold" and m.name == "orders"


def test_entries_are_frozen():
    table = parse_catalog(BASE).source("acme").table("customers")
    with pytest.raises(ValidationError):
        table.name = "other"


def test_the_packaged_catalog_loads_to_the_values_it_always_had():
    cat = load_catalog(packaged_catalog())
    assert cat.path == packaged_catalog() and len(cat.tables()) == 4
    shop = cat.source("shop")
    assert (shop.format, shop.start_date, shop.timestamp_column, shop.csv_header) == (
        "dms",
        dt.date(2024, 1, 1),
        "dms_commit_ts",
        False,
    )
    assert shop.gold == ()  # its gold tables are SQL models
    assert [m.name for m in shop.models] == [
        "daily_sales",
        "product_daily_sales",
        "customer_lifetime_value",
        "revenue_by_country_at_order",
    ]
    customers = shop.table("customers")
    assert (customers.source, customers.schema, customers.primary_key) == (
        "shop",
        "public",
        ("customer_id",),
    )
    assert customers.columns[:2] == (("customer_id", "bigint"), ("email", "string"))
    assert (customers.trim_strings, customers.lower, customers.upper) == (
        True,
        ("email",),
        ("country",),
    )
    assert (customers.max_quarantine_rate, customers.freshness_hours) == (0.05, 26.0)
    email, country = customers.rules
    assert (email.action, email.references, email.column, email.accepted) == (
        "drop",
        None,
        None,
        (),
    )
    assert country.column == "country" and len(country.accepted) == 249
    assert country.expr == "true"
    items = shop.table("order_items")
    assert items.column_types["unit_price"] == "decimal(10,2)"
    assert [r.references for r in items.rules if r.references] == [
        ("orders", ("order_id",), ("order_id",)),
        ("products", ("product_id",), ("product_id",)),
    ]
    assert items.trim_strings is False and items.lower == () and items.max_quarantine_rate == 0.05
    assert shop.table("orders").rules[0].accepted == (
        "placed",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
        "refunded",
    )


def test_references_map_my_columns_to_theirs():
    (rule,) = parse_catalog(BASE).source("acme").table("orders").rules
    assert rule.references == ("customers", ("customer_id",), ("id",))
    assert rule.expr == "true" and rule.action == "warn"
