"""Asset keys and the names of checks, built in one place."""

from __future__ import annotations

import dagster as dg

LAYERS = ("raw", "bronze", "silver", "gold")


def asset_key(layer: str, source: str, table: str) -> dg.AssetKey:
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}")
    return dg.AssetKey([layer, source, table])


def table_path(lake_root: str, layer: str, source: str, table: str) -> str:
    """Where the Delta table of an asset lives: <root>/<layer>/<source>/<table>."""
    return f"{lake_root.rstrip('/')}/{layer}/{source}/{table}"


def state_path(lake_root: str, source: str, table: str, name: str) -> str:
    """Bookkeeping the lake keeps for itself: tables (tombstones, fingerprints) and the folders
    a run writes for itself (resources/scratch.py)."""
    return f"{lake_root.rstrip('/')}/_state/{source}/{table}/{name}"


# The tags Dagster puts on a run of one partition or of a range of them (a single-run
# backfill). Public strings of its run API; their constants live in a private module.
PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
