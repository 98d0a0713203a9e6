"""extract: what a source that the lake reads directly (format postgres) has new, landed as
files before raw reads them. An asset, its check and its sensor per such source."""

import dagster as dg


def definitions(ctx) -> dg.Definitions:
    from . import assets, sensors

    return dg.Definitions(assets=assets.build(ctx.catalog), sensors=sensors.build(ctx.catalog))
