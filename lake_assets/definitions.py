"""The one entry point: workspace.yaml, `dagster dev` and `lake-assets sync` all load these."""

from __future__ import annotations

import warnings

import dagster as dg

from lake_assets.catalog import load_catalog
from lake_assets.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    from lake_assets.defs import checks, sensors
    from lake_assets.defs.models import assets as model_assets
    from lake_assets.defs.models import checks as model_checks
    from lake_assets.defs.models import sensors as model_sensors
    from lake_assets.lib import models
    from lake_assets.defs.bronze import assets as bronze
    from lake_assets.defs.silver import assets as silver
    from lake_assets.defs.raw import assets as raw
    from lake_assets.defs.resources import resources_for

    catalog = load_catalog(settings.sources)
    models.validate(catalog)
    with warnings.catch_warnings():
        # BackfillPolicy.single_run is beta in Dagster 1.13 and used on purpose (one run per range).
        warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
        assets = raw.build(catalog) + bronze.build(catalog) + silver.build(catalog) + model_assets.build(catalog)
    asset_checks = checks.build(catalog) + model_checks.build(catalog)
    sensor_defs = sensors.build(catalog, settings.landing, settings.lake_root) + model_sensors.build(catalog) + [
        dg.AutomationConditionSensorDefinition(
            "default_automation_condition_sensor",
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
        )
    ]
    return dg.Definitions(
        assets=assets,
        asset_checks=asset_checks,
        sensors=sensor_defs,
        resources=resources_for(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.load())
