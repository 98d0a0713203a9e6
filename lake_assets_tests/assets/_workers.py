"""Entry points of the processes the concurrency tests start (multiprocessing, spawn)."""

from __future__ import annotations

import os
import time


def wait_for_go(sync_dir: str, tag: str, timeout: float = 120) -> None:
    open(os.path.join(sync_dir, f"ready-{tag}"), "w").close()
    deadline = time.monotonic() + timeout
    while not os.path.exists(os.path.join(sync_dir, "go")):
        if time.monotonic() > deadline:
            raise TimeoutError("no go signal")
        time.sleep(0.005)


def materialize_raw_partition(
    root: str, landing: str, catalog: str, source: str, table: str, day: str, sync_dir: str
) -> bool:
    """Materialize one raw partition through the definitions, after the go signal."""
    import dagster as dg

    from lake_assets.definitions import build_definitions
    from lake_assets.keys import asset_key
    from lake_assets.lib.engine import local_spark, shutdown
    from lake_assets.settings import Settings

    defs = build_definitions(Settings.load(root, landing, catalog, "local"))
    job = defs.resolve_implicit_global_asset_job_def()
    local_spark()  # the engine up before the race starts
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            wait_for_go(sync_dir, day)
            res = job.execute_in_process(
                instance=instance,
                asset_selection=[asset_key("raw", source, table)],
                partition_key=day,
                raise_on_error=False,
            )
            if not res.success:
                for ev in res.all_events:
                    if ev.event_type_value == "STEP_FAILURE":
                        print(ev.event_specific_data.error.to_string(), flush=True)
            return res.success
    finally:
        shutdown()


def run_sync(
    root: str, landing: str, catalog: str, sync_dir: str, tag: str
) -> tuple[bool, list[str], list[str]]:
    """`lake-assets sync`'s code path in a process of its own, after the go signal."""
    import dagster as dg

    from lake_assets.catalog import load_catalog
    from lake_assets.definitions import build_definitions
    from lake_assets.lib.engine import local_spark, shutdown
    from lake_assets.settings import Settings
    from lake_assets.sync import sync

    settings = Settings.load(root, landing, catalog, "local")
    defs = build_definitions(settings)
    local_spark()
    lines: list[str] = []
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            wait_for_go(sync_dir, tag)
            result = sync(settings, defs, load_catalog(settings.sources), instance, lines.append)
        return result.ok, result.failures, lines
    finally:
        shutdown()
