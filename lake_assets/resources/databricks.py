"""The `step_launcher` of the `databricks` deployment: every Spark asset's step runs on a
Databricks cluster through dagster-databricks' `databricks_pyspark_step_launcher`.

The launcher zips the folder holding the `lake_assets` package, stages it with the step on DBFS
(`DATABRICKS_STAGING_PREFIX`), submits a one-time run (`jobs/runs/submit`) of a
`spark_python_task` on the cluster, and streams the step's events, stdout and stderr back from
DBFS while it polls the run (docs/deploy-databricks.md).
"""

from __future__ import annotations

import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

import dagster as dg

from lake_assets.settings import SECRET_KEYS, DatabricksSettings, Settings

# What the step imports beyond the Databricks Runtime, pinned to the versions the lake is
# tested with (read from this environment). The launcher adds dagster, dagster-databricks,
# dagster-pyspark and databricks-sdk at this environment's versions itself; the lake's own
# code goes with every step, zipped.
CLUSTER_LIBRARIES = ("deltalake", "pyarrow", "sqlglot", "pydantic", "PyYAML")

# The lake_assets package: copied alone into a folder of its own, which the launcher zips and
# puts on the step's path on the cluster. (The launcher zips the whole folder it is given: the
# package's parent would be a repository with its .git, or all of site-packages.)
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def cluster_libraries() -> list[dict]:
    return [{"pypi": {"package": f"{name}=={version(name)}"}} for name in CLUSTER_LIBRARIES]


def launcher_config(settings: Settings, dbx: DatabricksSettings) -> dict:
    """The launcher's config: host and token as environment variables (read when a run starts
    the resource, never stored in the definitions), one cluster, the libraries, the S3
    credentials from the secret scope, and the variables every step needs."""
    cluster = {"existing": dbx.cluster_id} if dbx.cluster_id else {"new": dbx.new_cluster}
    secrets = (
        [
            {"name": var, "scope": dbx.secret_scope, "key": key}
            for var, key in sorted(SECRET_KEYS.items())
        ]
        if dbx.secret_scope
        else []
    )
    return {
        "run_config": {
            "run_name": "lake_assets",
            "cluster": cluster,
            "libraries": cluster_libraries(),
        },
        # dg.EnvVar in the form a config dict takes it (Dagster refuses EnvVar objects there).
        "databricks_host": {"env": "DATABRICKS_HOST"},
        "databricks_token": {"env": "DATABRICKS_TOKEN"},
        "staging_prefix": dbx.staging_prefix,
        # The step's stdout and stderr come back through the staging folder; waiting for the
        # cluster's own log delivery would add minutes to every step.
        "wait_for_logs": False,
        "poll_interval_sec": dbx.poll_interval_seconds,
        "secrets_to_env_variables": secrets,
        "env_variables": settings.as_env(),
    }


def step_launcher(settings: Settings, dbx: DatabricksSettings) -> dg.ResourceDefinition:
    if dbx.on_cluster:
        # The step already runs on the cluster (the launcher's remote side loads these same
        # definitions): it launches nothing, and needs neither host nor token there.
        return dg.ResourceDefinition.none_resource()
    from dagster_databricks import databricks_pyspark_step_launcher

    resource = dg.ResourceDefinition(
        resource_fn=_launcher,
        config_schema=databricks_pyspark_step_launcher.config_schema.as_field(),
        description="Runs each Spark asset's step on Databricks (dagster-databricks).",
    )
    return resource.configured(launcher_config(settings, dbx))


def _launcher(context: dg.InitResourceContext):
    """dagster-databricks' launcher, given a folder holding only the lake_assets package (made
    when a run starts the resource, removed when it ends)."""
    from dagster_databricks.databricks_pyspark_step_launcher import DatabricksPySparkStepLauncher

    with tempfile.TemporaryDirectory(prefix="lake_assets-code-") as folder:
        shutil.copytree(
            PACKAGE_DIR,
            Path(folder) / "lake_assets",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        yield DatabricksPySparkStepLauncher(
            **{**context.resource_config, "local_pipeline_package_path": folder}
        )
