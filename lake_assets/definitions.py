"""The one entry point: workspace.yaml, `dagster dev` and `lake-assets sync` all load these.

Each layer module returns its own `dg.Definitions` from one LakeContext (settings and catalog,
loaded once); they are merged here with the resources of the deployment.

Building them changes nothing process-wide, with one documented exception: the `databricks`
deployment silences the step launcher's own SupersessionWarning (defs/resources.py), which
Dagster raises when the resource starts, in a run. The embedded engine sets its variables
(RUST_LOG, MIMALLOC_PURGE_DELAY, AWS_* of the lake's endpoint) when it starts, not here
(lib/engine.py).
"""

from __future__ import annotations

import warnings

import dagster as dg

from lake_assets.context import LakeContext
from lake_assets.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    from lake_assets.defs import automation, bronze, extract, maintenance, models, raw, silver
    from lake_assets.defs.resources import resources_for

    ctx = LakeContext.load(settings)
    with warnings.catch_warnings():
        # BackfillPolicy.single_run is beta in Dagster 1.13 and used on purpose (one run per
        # range): silenced while the definitions are built, not for the process.
        warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
        layers = [
            layer.definitions(ctx)
            for layer in (extract, raw, bronze, silver, models, automation, maintenance)
        ]
    # Off Databricks, a run's steps share one process (and so one engine session): a step in
    # a new process costs seconds of start-up on a laptop, more than most steps' work.
    executor = dg.in_process_executor if settings.deployment != "databricks" else None
    return dg.Definitions.merge(
        *layers, dg.Definitions(resources=resources_for(settings), executor=executor)
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.load())
