"""Asset keys and the names of checks, built in one place."""

from __future__ import annotations

import dagster as dg

from lake_assets.lib.layout import LAYERS, state_path, table_path

__all__ = ["LAYERS", "asset_key", "state_path", "table_path"]


def asset_key(layer: str, source: str, table: str) -> dg.AssetKey:
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}")
    return dg.AssetKey([layer, source, table])


def extract_key(source: str) -> dg.AssetKey:
    """The extraction of a source the lake reads directly (defs/extract): upstream of raw."""
    return dg.AssetKey(["extract", source])


# The tags Dagster puts on a run of one partition or of a range of them (a single-run
# backfill). Public strings of its run API; their constants live in a private module.
PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
