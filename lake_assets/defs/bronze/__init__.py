"""bronze: the current state of each source table. Assets and checks."""

import dagster as dg


def definitions(ctx) -> dg.Definitions:
    from . import assets, checks

    return dg.Definitions(assets=assets.build(ctx.catalog), asset_checks=checks.build(ctx.catalog))
