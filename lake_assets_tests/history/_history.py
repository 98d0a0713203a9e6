"""Helpers of the history tests: a catalog whose tables keep history, and history read back."""

from __future__ import annotations

import datetime as dt

from lake_assets_tests.assets._lake import SCHEMA, SRC, UTC
from lake_assets_tests.conftest import Lake

VERSION = ("_valid_from", "_valid_to", "_is_current")


def catalog(
    table: str,
    keys: list[str],
    history: str = "true",
    *,
    timestamp_column: str | None = "ts",
    fmt: str = "dms",
    columns: str = "",
) -> str:
    lines = ["sources:", f"  - name: {SRC}", f"    format: {fmt}", '    start_date: "2024-01-01"']
    if timestamp_column:
        lines.append(f"    timestamp_column: {timestamp_column}")
    lines += [
        "    tables:",
        f"      - name: {table}",
        f"        schema: {SCHEMA}",
        f"        primary_key: [{', '.join(keys)}]",
        f"        history: {history}",
    ]
    if columns:
        lines.append(f"        columns: {columns}")
    return "\n".join(lines) + "\n"


def history(lake: Lake, table: str, order_by: str) -> list[dict]:
    """The history's rows: source columns and the version columns, nothing else."""
    rows = lake.rows("bronze", SRC, f"{table}_history", order_by)
    return [{k: v for k, v in r.items() if not k.startswith("_") or k in VERSION} for r in rows]


def at(second: int | None) -> dt.datetime | None:
    """The commit time that stands for a sequence number: second `second` of 2024-01-02."""
    return None if second is None else dt.datetime(2024, 1, 2, 0, 0, second, tzinfo=UTC)


def v(values: dict, start: int | None, end: int | None) -> dict:
    """A version: its values, valid from `at(start)` to `at(end)`."""
    return {**values, "_valid_from": at(start), "_valid_to": at(end), "_is_current": end is None}
