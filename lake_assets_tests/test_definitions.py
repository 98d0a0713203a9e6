"""Snapshot of the asset graph of the `local` deployment with the packaged catalog.

An accidental change to a key, group, partitioning, freshness policy, check or sensor shows
up here in review. After an intended change: LAKE_UPDATE_SNAPSHOT=1 python -m pytest this file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions_local.json"


def _partitions(pdef) -> str | None:
    if pdef is None:
        return None
    if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        return (
            f"{type(pdef).__name__}(start={pdef.start:%Y-%m-%d}, cron={pdef.cron_schedule!r}, "
            f"tz={pdef.timezone}, end_offset={pdef.end_offset})"
        )
    return type(pdef).__name__


def _freshness(policy) -> str | None:
    if policy is None:
        return None
    return repr(policy)


def snapshot_of(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.path):
        node = graph.get(key)
        assets["/".join(key.path)] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "tags": {
                k: v for k, v in sorted(node.tags.items()) if not k.startswith("dagster/kind")
            },
            "partitions": _partitions(node.partitions_def),
            "backfill_policy": str(node.backfill_policy) if node.backfill_policy else None,
            "freshness_policy": _freshness(node.freshness_policy),
            "automation_condition": node.automation_condition.get_label()
            if node.automation_condition
            else None,
            "deps": sorted("/".join(k.path) for k in node.parent_keys),
            "checks": sorted(
                f"{c.name}{' (blocking)' if graph.get(c).blocking else ''}" for c in node.check_keys
            ),
        }
    sensors = (
        sorted(s.name for s in defs.resolve_all_sensor_defs())
        if hasattr(defs, "resolve_all_sensor_defs")
        else sorted(s.name for s in defs.sensors)
    )
    return {"assets": assets, "sensors": sensors, "resources": sorted(defs.resources)}


@pytest.fixture
def local_defs(monkeypatch, tmp_path):
    for var in ("LAKE_ROOT", "LAKE_LANDING", "LAKE_SOURCES", "LAKE_DEPLOYMENT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    from lake_assets.definitions import defs

    return defs()


def test_asset_graph_matches_snapshot(local_defs):
    snap = snapshot_of(local_defs)
    if os.environ.get("LAKE_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert snap == expected


def test_every_catalog_table_has_all_layers(local_defs):
    from lake_assets.catalog import load_catalog
    from lake_assets.settings import packaged_catalog

    keys = {"/".join(k.path) for k in local_defs.resolve_asset_graph().get_all_asset_keys()}
    for table in load_catalog(packaged_catalog()).tables():
        for layer in ("raw", "bronze", "silver"):
            assert f"{layer}/{table.source}/{table.name}" in keys
    assert "gold/shop/daily_sales" in keys


def test_every_asset_states_its_grain(local_defs):
    graph = local_defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        desc = graph.get(key).description or ""
        assert "one row per" in desc.lower(), f"{key} does not state its grain"


def test_definitions_validate_in_the_ui_loader(local_defs):
    # The same object `dagster dev` loads: resolving the job proves every resource is bound.
    assert local_defs.resolve_implicit_global_asset_job_def() is not None
