"""Each deployment binds the same resource keys; only the classes behind them differ."""

import os
import re
import socket
import subprocess
import sys

import dagster as dg
import pytest

from lake_assets.defs.resources import resources_for
from lake_assets.resources.spark import DatabricksSparkResource, LocalSparkResource
from lake_assets.settings import FORWARDED_AWS, Settings, SettingsError

KEYS = {"spark", "io_manager", "landing", "lake", "step_launcher"}


def test_local_runs_in_process_on_the_embedded_engine(tmp_path):
    res = resources_for(Settings.load(str(tmp_path), deployment="local"))
    assert set(res) == KEYS
    assert isinstance(res["spark"], LocalSparkResource)
    with dg.build_resources({"step_launcher": res["step_launcher"]}) as built:
        assert built.step_launcher is None  # steps run in the run's own process


def test_local_runs_steps_in_one_process_and_databricks_in_many(tmp_path, monkeypatch):
    from lake_assets.definitions import build_definitions

    def executor(deployment: str) -> str:
        defs = build_definitions(Settings.load(str(tmp_path), deployment=deployment))
        return defs.resolve_implicit_global_asset_job_def().executor_def.name

    assert executor("local") == "in_process"
    monkeypatch.setenv("DATABRICKS_HOST", "https://127.0.0.1:9")
    monkeypatch.setenv("DATABRICKS_TOKEN", "t0ken")
    monkeypatch.setenv("DATABRICKS_CLUSTER_ID", "0101-abc")
    assert executor("databricks") == "multi_or_in_process_executor"


def _launcher(monkeypatch, settings: Settings):
    monkeypatch.setenv("DATABRICKS_HOST", "https://127.0.0.1:9")
    monkeypatch.setenv("DATABRICKS_TOKEN", "t0ken")
    monkeypatch.setenv("DATABRICKS_CLUSTER_ID", "0101-abc")
    for var in ("DATABRICKS_NEW_CLUSTER", "DATABRICKS_RUNTIME_VERSION", *FORWARDED_AWS):
        monkeypatch.delenv(var, raising=False)
    res = resources_for(settings)
    assert set(res) == KEYS
    with dg.build_resources({"step_launcher": res["step_launcher"]}) as built:
        return res, built.step_launcher


def test_databricks_runs_steps_through_the_step_launcher(monkeypatch):
    monkeypatch.delenv("LAKE_SOURCES", raising=False)
    settings = Settings.load("s3://bucket/lake", deployment="databricks")
    res, launcher = _launcher(monkeypatch, settings)
    assert isinstance(res["spark"], DatabricksSparkResource)
    from dagster_databricks.databricks_pyspark_step_launcher import DatabricksPySparkStepLauncher

    assert isinstance(launcher, DatabricksPySparkStepLauncher)
    assert launcher.run_config["cluster"] == {"existing": "0101-abc"}
    assert launcher.env_variables == {
        "LAKE_ROOT": "s3://bucket/lake",
        "LAKE_LANDING": "s3://bucket/lake/landing",
        "LAKE_DEPLOYMENT": "databricks",
    }


def test_the_cluster_gets_every_setting_a_custom_catalog_included(monkeypatch, tmp_path):
    catalog = str(tmp_path / "acme.yaml")
    settings = Settings.load("s3://bucket/lake", "s3://land/zone", catalog, "databricks")
    _, launcher = _launcher(monkeypatch, settings)
    assert (
        launcher.env_variables
        == settings.as_env()
        == {
            "LAKE_ROOT": "s3://bucket/lake",
            "LAKE_LANDING": "s3://land/zone",
            "LAKE_SOURCES": catalog,
            "LAKE_DEPLOYMENT": "databricks",
        }
    )
    # What the cluster's step reads back from them is these settings.
    for k, v in launcher.env_variables.items():
        monkeypatch.setenv(k, v)
    assert Settings.load() == settings


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


def test_connect_and_classic_bind_the_same_keys(tmp_path, monkeypatch):
    from lake_assets.resources.spark import ClassicSparkResource, ConnectSparkResource

    monkeypatch.setenv("LAKE_SPARK_REMOTE", "sc://127.0.0.1:15002")
    res = resources_for(Settings.load(str(tmp_path), deployment="connect"))
    assert set(res) == KEYS
    assert isinstance(res["spark"], ConnectSparkResource)
    assert res["spark"].url == "sc://127.0.0.1:15002"
    assert res["io_manager"].spark is res["spark"]
    res = resources_for(Settings.load(str(tmp_path), deployment="classic"))
    assert set(res) == KEYS
    assert isinstance(res["spark"], ClassicSparkResource)


@pytest.mark.parametrize(
    "url, message",
    [
        (None, "LAKE_DEPLOYMENT=connect needs LAKE_SPARK_REMOTE"),
        ("", "LAKE_DEPLOYMENT=connect needs LAKE_SPARK_REMOTE"),
        ("http://127.0.0.1:15002", "LAKE_SPARK_REMOTE='http://127.0.0.1:15002' is not a Spark"),
        ("sc://127.0.0.1:port", "LAKE_SPARK_REMOTE='sc://127.0.0.1:port' is not a Spark"),
        ("sc://:15002", "LAKE_SPARK_REMOTE='sc://:15002' is not a Spark"),
        ("127.0.0.1:15002", "LAKE_SPARK_REMOTE='127.0.0.1:15002' is not a Spark"),
    ],
)
def test_a_bad_spark_connect_url_is_named(url, message, tmp_path, monkeypatch):
    if url is None:
        monkeypatch.delenv("LAKE_SPARK_REMOTE", raising=False)
    else:
        monkeypatch.setenv("LAKE_SPARK_REMOTE", url)
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.load(str(tmp_path), deployment="connect")
    Settings.load(str(tmp_path), deployment="local")  # the other deployments do not need it


def test_a_spark_connect_url_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKE_SPARK_REMOTE", " sc://spark.internal:443/;use_ssl=true;token=t ")
    settings = Settings.load(str(tmp_path), deployment="connect")
    assert settings.spark_remote == "sc://spark.internal:443/;use_ssl=true;token=t"


def test_an_unreachable_spark_connect_server_is_named(monkeypatch):
    from lake_assets.lib.engine import EngineUnreachableError, remote_spark

    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EngineUnreachableError) as e:
        remote_spark(f"sc://127.0.0.1:{port}")
    assert str(e.value).startswith(
        f"LAKE_SPARK_REMOTE=sc://127.0.0.1:{port}: no Spark Connect server answers at "
        f"127.0.0.1:{port}"
    )
    assert "\n" not in str(e.value)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-m", "lake_assets.cli", "sync", *args],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_names_an_unknown_deployment_in_one_line(tmp_path):
    result = _cli({"LAKE_ROOT": str(tmp_path), "LAKE_DEPLOYMENT": "emr"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: LAKE_DEPLOYMENT='emr' is not a deployment: choose one of "
        "local, databricks, connect, classic"
    ]


def test_cli_names_an_unreachable_s3_endpoint_in_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "LAKE_ROOT": "s3://bucket/lake",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    result = _cli(env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"error: LAKE_LANDING=s3://bucket/lake/landing: the S3 endpoint http://127.0.0.1:{port} "
        "(AWS_ENDPOINT_URL) cannot be reached"
    )


def test_sync_refuses_databricks_with_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "LAKE_"))}
    env.update(
        DATABRICKS_HOST="https://127.0.0.1:9",
        DATABRICKS_TOKEN="t0ken",
        DATABRICKS_CLUSTER_ID="0101-abc",
    )
    done = subprocess.run(
        [sys.executable, "-m", "lake_assets.cli", "sync", "--lake-root", "s3://bucket/lake"]
        + ["--deployment", "databricks"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    err = done.stderr.strip()
    assert err.startswith("error: LAKE_DEPLOYMENT=databricks: `lake-assets sync` runs its steps")
    assert "\n" not in err
