"""silver: bronze cleaned, typed and checked, with quarantines, and the histories of the tables
that keep one. Assets and checks."""

import dagster as dg


def definitions(ctx) -> dg.Definitions:
    from . import assets, checks, history

    return dg.Definitions(
        assets=assets.build(ctx.catalog) + history.build(ctx.catalog),
        asset_checks=checks.build(ctx.catalog) + history.build_checks(ctx.catalog),
    )
