"""One dict of resources per deployment, the same keys everywhere."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from lake_assets.resources.io_manager import DeltaIOManager
from lake_assets.resources.lake import LakeResource, LandingResource
from lake_assets.resources.spark import (
    ClassicSparkResource,
    ConnectSparkResource,
    DatabricksSparkResource,
    LocalSparkResource,
    SparkResource,
)
from lake_assets.settings import Settings


def _in_process(settings: Settings, spark: SparkResource) -> dict:
    return {
        "spark": spark,
        "io_manager": DeltaIOManager(root=settings.lake_root, spark=spark),
        "landing": LandingResource(root=settings.landing),
        "lake": LakeResource(root=settings.lake_root),
        # No step launcher: steps run in the run's own process.
        "step_launcher": dg.ResourceDefinition.none_resource(),
    }


def _local(settings: Settings) -> dict:
    return _in_process(settings, LocalSparkResource())


def _connect(settings: Settings) -> dict:
    return _in_process(settings, ConnectSparkResource(url=settings.spark_remote))


def _classic(settings: Settings) -> dict:
    return _in_process(settings, ClassicSparkResource())


def _databricks(settings: Settings) -> dict:
    import warnings

    from dagster_databricks import databricks_pyspark_step_launcher

    spark = DatabricksSparkResource()
    # Superseded by Pipes, kept on purpose: it runs the same asset code, IO managers included,
    # on the cluster. Silence only its own warning (raised when the resource starts).
    warnings.filterwarnings(
        "ignore", message="StepLauncher is superseded", category=dg.SupersessionWarning
    )
    launcher = databricks_pyspark_step_launcher.configured(
        {
            "run_config": {
                "run_name": "lake_assets",
                "cluster": {"existing": os.environ.get("DATABRICKS_CLUSTER_ID", "")},
                "libraries": [{"pypi": {"package": "lake_assets"}}],
            },
            "databricks_host": {"env": "DATABRICKS_HOST"},
            "databricks_token": {"env": "DATABRICKS_TOKEN"},
            # The folder holding the lake_assets package: zipped and put on the cluster's path.
            "local_pipeline_package_path": str(Path(__file__).resolve().parents[2]),
            # A DBFS folder the launcher stages the step and its code in.
            "staging_prefix": os.environ.get(
                "DATABRICKS_STAGING_PREFIX", "/dagster_staging/lake_assets"
            ),
            "wait_for_logs": True,
            "secrets_to_env_variables": [],
            "env_variables": settings.as_env(),
        }
    )
    return {
        "spark": spark,
        "io_manager": DeltaIOManager(root=settings.lake_root, spark=spark),
        "landing": LandingResource(root=settings.landing),
        "lake": LakeResource(root=settings.lake_root),
        "step_launcher": launcher,
    }


def resources_for(settings: Settings) -> dict:
    build = {"local": _local, "connect": _connect, "classic": _classic, "databricks": _databricks}
    return build[settings.deployment](settings)
