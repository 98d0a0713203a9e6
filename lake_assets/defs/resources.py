"""One dict of resources per deployment, the same keys everywhere."""

from __future__ import annotations

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
from lake_assets.settings import DatabricksSettings, Settings


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

    from lake_assets.resources.databricks import step_launcher

    dbx = DatabricksSettings.load()
    spark = DatabricksSparkResource()
    # Superseded by Pipes, kept on purpose: it runs the same asset code, IO managers included,
    # on the cluster. Silence only its own warning (raised when a run starts the resource).
    warnings.filterwarnings(
        "ignore", message="StepLauncher is superseded", category=dg.SupersessionWarning
    )
    return {
        "spark": spark,
        "io_manager": DeltaIOManager(root=settings.lake_root, spark=spark),
        "landing": LandingResource(root=settings.landing),
        "lake": LakeResource(root=settings.lake_root),
        "step_launcher": step_launcher(settings, dbx),
    }


def resources_for(settings: Settings) -> dict:
    build = {"local": _local, "connect": _connect, "classic": _classic, "databricks": _databricks}
    return build[settings.deployment](settings)
