"""Snapshot of the asset graph of the `local` deployment with the packaged catalog; the
`databricks` deployment, loaded from environment variables only, has the same graph.

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


DATABRICKS_ENV = {
    "LAKE_DEPLOYMENT": "databricks",
    "LAKE_ROOT": "s3://lake-bucket/lake",
    "LAKE_LANDING": "s3://landing-bucket/dms",
    "DATABRICKS_HOST": "https://example.cloud.databricks.com",
    "DATABRICKS_TOKEN": "dapi-not-a-real-token",
    "DATABRICKS_CLUSTER_ID": "0101-000000-lakeassets",
    "DATABRICKS_SECRET_SCOPE": "lake",
    "AWS_REGION": "eu-west-1",
}


@pytest.fixture
def databricks_env(monkeypatch, tmp_path):
    """Only environment variables set, as a Dagster deployment's code server would have them."""
    from lake_assets.settings import FORWARDED_AWS

    for var in ("LAKE_SOURCES", "DATABRICKS_NEW_CLUSTER", "DATABRICKS_RUNTIME_VERSION"):
        monkeypatch.delenv(var, raising=False)
    for var in FORWARDED_AWS:
        monkeypatch.delenv(var, raising=False)
    for var, value in DATABRICKS_ENV.items():
        monkeypatch.setenv(var, value)
    monkeypatch.chdir(tmp_path)


def test_databricks_deployment_has_the_same_graph_and_resources(databricks_env):
    from lake_assets.definitions import defs

    assert snapshot_of(defs()) == json.loads(SNAPSHOT.read_text())


def test_databricks_launcher_runs_every_spark_asset(databricks_env):
    from dagster_databricks.databricks_pyspark_step_launcher import (
        DatabricksPySparkStepLauncher,
    )

    from lake_assets.definitions import defs

    d = defs()
    graph = d.resolve_asset_graph()
    spark_assets = [k for k in graph.get_all_asset_keys() if "spark" in graph.get(k).kinds]
    assert spark_assets
    for key in spark_assets:
        assets_def = graph.get(key).assets_def
        assert "step_launcher" in assets_def.required_resource_keys, key
    # The checks that read tables with Spark run on the cluster too; the others (the
    # instance's bookkeeping) where the run is.
    ops = d.resolve_implicit_global_asset_job_def().graph.node_defs
    spark_checks = [op.name for op in ops if "spark" in op.required_resource_keys]
    assert len(spark_checks) > len(spark_assets)
    # The partition sensors' planning runs too.
    planners = [j for j in d.resolve_all_job_defs() if j.name.endswith("_partitions_plan_shop")]
    assert [j.name for j in planners] == ["gold_partitions_plan_shop"]
    ops = [*ops, *planners[0].graph.node_defs]
    for op in ops:
        if "spark" in op.required_resource_keys:
            assert "step_launcher" in op.required_resource_keys, op.name
    with dg.build_resources({"step_launcher": d.resources["step_launcher"]}) as res:
        launcher = res.step_launcher
    assert isinstance(launcher, DatabricksPySparkStepLauncher)
    assert launcher.databricks_host == DATABRICKS_ENV["DATABRICKS_HOST"]
    assert launcher.run_config["cluster"] == {"existing": DATABRICKS_ENV["DATABRICKS_CLUSTER_ID"]}
    packages = {lib["pypi"]["package"].split("==")[0] for lib in launcher.run_config["libraries"]}
    assert {"deltalake", "pyarrow", "sqlglot", "pydantic"} <= packages
    assert launcher.env_variables == {
        "LAKE_ROOT": "s3://lake-bucket/lake",
        "LAKE_LANDING": "s3://landing-bucket/dms",
        "LAKE_DEPLOYMENT": "databricks",
        "AWS_REGION": "eu-west-1",
    }
    assert {(s["name"], s["scope"], s["key"]) for s in launcher.secrets} == {
        ("AWS_ACCESS_KEY_ID", "lake", "aws_access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "lake", "aws_secret_access_key"),
    }


def test_databricks_forwards_a_custom_catalog(databricks_env, monkeypatch, tmp_path):
    from lake_assets.settings import Settings, packaged_catalog

    custom = tmp_path / "catalog.yaml"
    custom.write_text(Path(packaged_catalog()).read_text())
    monkeypatch.setenv("LAKE_SOURCES", str(custom))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    env = Settings.load().as_env()
    assert env["LAKE_SOURCES"] == str(custom)
    assert env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9000"


@pytest.mark.parametrize("missing", ["DATABRICKS_HOST", "DATABRICKS_TOKEN"])
def test_databricks_without_host_or_token_fails_naming_it(databricks_env, monkeypatch, missing):
    from lake_assets.definitions import build_definitions
    from lake_assets.settings import Settings, SettingsError

    monkeypatch.delenv(missing)
    with pytest.raises(SettingsError) as err:
        build_definitions(Settings.load())
    assert str(err.value).startswith(f"{missing} is not set")
    assert "\n" not in str(err.value)


def test_databricks_needs_one_cluster(databricks_env, monkeypatch, tmp_path):
    from lake_assets.definitions import build_definitions
    from lake_assets.settings import Settings, SettingsError

    spec = tmp_path / "cluster.json"
    spec.write_text('{"spark_version": "15.4.x-scala2.12"')  # truncated JSON
    monkeypatch.setenv("DATABRICKS_NEW_CLUSTER", str(spec))
    with pytest.raises(SettingsError, match="exactly one of DATABRICKS_CLUSTER_ID"):
        build_definitions(Settings.load())
    monkeypatch.delenv("DATABRICKS_CLUSTER_ID")
    with pytest.raises(SettingsError, match="DATABRICKS_NEW_CLUSTER=.* is not JSON"):
        build_definitions(Settings.load())
    spec.write_text(
        json.dumps(
            {
                "spark_version": "15.4.x-scala2.12",
                "nodes": {"node_types": {"node_type_id": "m5d.large"}},
                "size": {"num_workers": 2},
            }
        )
    )
    d = build_definitions(Settings.load())
    with dg.build_resources({"step_launcher": d.resources["step_launcher"]}) as res:
        assert res.step_launcher.run_config["cluster"]["new"]["spark_version"] == "15.4.x-scala2.12"


def test_on_the_cluster_the_step_launches_nothing(databricks_env, monkeypatch):
    # What the step's own process loads on the cluster: no host, no token, no cluster id.
    from lake_assets.definitions import build_definitions
    from lake_assets.settings import Settings

    for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLUSTER_ID"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    d = build_definitions(Settings.load())
    with dg.build_resources({"step_launcher": d.resources["step_launcher"]}) as res:
        assert res.step_launcher is None


def test_only_the_launchers_own_supersession_warning_is_silenced(databricks_env):
    import warnings

    from lake_assets.definitions import build_definitions
    from lake_assets.settings import Settings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        d = build_definitions(Settings.load())
        with dg.build_resources({"step_launcher": d.resources["step_launcher"]}):
            pass
        warnings.warn("SomethingElse is superseded", dg.SupersessionWarning)
    messages = [str(w.message) for w in seen if issubclass(w.category, dg.SupersessionWarning)]
    assert messages == ["SomethingElse is superseded"]
