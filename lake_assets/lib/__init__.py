"""Dagster-free building blocks: landed-file parsing, CDC ordering and apply, Delta helpers."""
