"""A table with `history:` has a history asset downstream of its raw, with the same automation
as bronze and two blocking checks, and models may read it; the catalog checks the key."""

from __future__ import annotations

import dagster as dg
import pytest

from lake_assets.catalog import CatalogError, parse_catalog
from lake_assets_tests.history._history import catalog

MODEL = """    models:
      - name: versions_per_key
        sql: SELECT id, COUNT(*) AS versions FROM {{ bronze.t_history }} GROUP BY id
"""


def test_history_asset_checks_and_a_model_reading_it(lake):
    text = catalog("t", ["id"], "{except: [note]}").replace("    tables:", MODEL + "    tables:")
    lake.write_catalog(text)
    graph = lake.defs().resolve_asset_graph()
    key = dg.AssetKey(["bronze", "s", "t_history"])
    node = graph.get(key)
    assert node.parent_keys == {dg.AssetKey(["raw", "s", "t"])}
    assert node.automation_condition.get_label() == "after_any_raw_partition"
    checks = {c.name: c for c in graph.get_check_keys_for_assets([key])}
    assert set(checks) == {"current_versions_match_bronze", "versions_do_not_overlap"}
    assert key in graph.get(dg.AssetKey(["gold", "s", "versions_per_key"])).parent_keys


def test_without_history_no_history_asset(lake):
    lake.write_catalog(catalog("t", ["id"], "false"))
    keys = lake.defs().resolve_asset_graph().get_all_asset_keys()
    assert dg.AssetKey(["bronze", "s", "t_history"]) not in keys


@pytest.mark.parametrize(
    "history, message",
    [
        ("{excpt: [note]}", "history: unknown key 'excpt'; did you mean 'except'?"),
        ("{except: [id]}", "history: except ['id'] are primary key columns"),
        ("yes please", "history: must be a mapping"),
    ],
)
def test_catalog_refuses_a_wrong_history(history, message):
    with pytest.raises(CatalogError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_catalog(catalog("t", ["id"], history), "cat.yaml")


def test_catalog_refuses_a_history_that_collides_with_a_table():
    text = catalog("t", ["id"]) + "      - {name: t_history, schema: public, primary_key: [id]}\n"
    with pytest.raises(CatalogError, match="would overwrite bronze/s/t_history"):
        parse_catalog(text, "cat.yaml")


def test_catalog_refuses_except_columns_it_does_not_have():
    text = catalog("t", ["id"], "{except: [nope]}", columns="{id: bigint, v: string}")
    with pytest.raises(CatalogError, match=r"except \['nope'\] are not among its columns"):
        parse_catalog(text, "cat.yaml")
