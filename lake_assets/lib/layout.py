"""Where every table and bookkeeping folder of the lake lives (Dagster-free)."""

from __future__ import annotations

LAYERS = ("raw", "bronze", "silver", "gold")


def table_path(lake_root: str, layer: str, source: str, table: str) -> str:
    """Where the Delta table of an asset lives: <root>/<layer>/<source>/<table>."""
    return f"{lake_root.rstrip('/')}/{layer}/{source}/{table}"


def state_path(lake_root: str, source: str, table: str, name: str) -> str:
    """Bookkeeping the lake keeps for itself: tables (tombstones, fingerprints) and the folders
    a run writes for itself (resources/scratch.py)."""
    return f"{lake_root.rstrip('/')}/_state/{source}/{table}/{name}"
