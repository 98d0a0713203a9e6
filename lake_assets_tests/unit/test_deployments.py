"""Each deployment binds the same resource keys; only the classes behind them differ."""

import dagster as dg
import pytest

from lake_assets.defs.resources import resources_for
from lake_assets.resources.spark import DatabricksSparkResource, LocalSparkResource
from lake_assets.settings import Settings, SettingsError

KEYS = {"spark", "io_manager", "landing", "lake", "step_launcher"}


def test_local_runs_in_process_on_the_embedded_engine(tmp_path):
    res = resources_for(Settings.load(str(tmp_path), deployment="local"))
    assert set(res) == KEYS
    assert isinstance(res["spark"], LocalSparkResource)
    with dg.build_resources({"step_launcher": res["step_launcher"]}) as built:
        assert built.step_launcher is None  # steps run in the run's own process


def test_databricks_runs_steps_through_the_step_launcher(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", "https://127.0.0.1:9")
    monkeypatch.setenv("DATABRICKS_TOKEN", "t0ken")
    monkeypatch.setenv("DATABRICKS_CLUSTER_ID", "0101-abc")
    res = resources_for(Settings.load("s3://bucket/lake", deployment="databricks"))
    assert set(res) == KEYS
    assert isinstance(res["spark"], DatabricksSparkResource)
    with dg.build_resources({"step_launcher": res["step_launcher"]}) as built:
        launcher = built.step_launcher
    from dagster_databricks.databricks_pyspark_step_launcher import DatabricksPySparkStepLauncher

    assert isinstance(launcher, DatabricksPySparkStepLauncher)
    assert launcher.run_config["cluster"] == {"existing": "0101-abc"}
    assert launcher.env_variables == {
        "LAKE_ROOT": "s3://bucket/lake",
        "LAKE_LANDING": "s3://bucket/lake/landing",
        "LAKE_DEPLOYMENT": "databricks",
    }


def test_unknown_deployment_is_named():
    with pytest.raises(SettingsError, match="LAKE_DEPLOYMENT='emr' is not a deployment"):
        Settings.load("/tmp/x", deployment="emr")


def test_flags_win_over_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LAKE_ROOT", "/from/env")
    monkeypatch.setenv("LAKE_LANDING", "s3://env-bucket/landing")
    s = Settings.load(lake_root=str(tmp_path))
    assert s.lake_root == str(tmp_path)
    assert s.landing == "s3://env-bucket/landing"
    assert Settings.load("file:///data/lake").lake_root == "/data/lake"
    with pytest.raises(SettingsError, match="unsupported storage scheme 'gs'"):
        Settings.load("gs://b/lake")
