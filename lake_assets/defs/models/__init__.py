"""SQL models (silver integration, gold of your own): assets, checks and the partition sensors."""

import dagster as dg


def definitions(ctx) -> dg.Definitions:
    from . import assets, checks, sensors

    return dg.Definitions(
        assets=assets.build(ctx.catalog),
        asset_checks=checks.build(ctx.catalog),
        sensors=sensors.build(ctx.catalog),
    )
