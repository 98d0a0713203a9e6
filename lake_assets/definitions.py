"""The one entry point: workspace.yaml, `dagster dev` and `lake-assets sync` all load these."""

from __future__ import annotations

import warnings

import dagster as dg

from lake_assets.catalog import load_catalog
from lake_assets.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    from lake_assets.defs import checks, sensors
    from lake_assets.defs import gold
    from lake_assets.defs.bronze import assets as bronze
    from lake_assets.defs.silver import assets as silver
    from lake_assets.defs.raw import assets as raw
    from lake_assets.defs.resources import resources_for

    catalog = load_catalog(settings.sources)
    with warnings.catch_warnings():
        # BackfillPolicy.single_run is beta in Dagster 1.13 and used on purpose (one run per range).
        warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
        gold_assets, gold_checks, gold_sensors = gold.build(catalog, settings)
        assets = raw.build(catalog) + bronze.build(catalog) + silver.build(catalog) + gold_assets
    asset_checks = checks.build(catalog) + gold_checks
    sensor_defs = sensors.build(catalog, settings.landing, settings.lake_root) + gold_sensors + [
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
