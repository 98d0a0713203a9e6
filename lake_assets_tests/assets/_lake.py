"""Helpers of the asset tests: catalogs, DMS rows, and the lake read back as plain rows."""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from lake_assets_tests.conftest import Lake
from lake_assets_tests.dms_files import UTC, table_dir, ts, write_cdc, write_load, write_parquet

__all__ = ["UTC", "Decimal", "ts", "write_cdc", "write_load", "write_parquet", "table_dir"]

SRC = "s"
SCHEMA = "public"

# Op, commit time, then the table's columns: the layout DMS writes with TimestampColumnName.
ROW = pa.schema(
    [("Op", pa.string()), ("ts", pa.timestamp("us")), ("id", pa.int64()), ("v", pa.string())]
)


def catalog(
    *tables: str | tuple[str, list[str]],
    source: str = SRC,
    timestamp_column: str | None = "ts",
    start_date: str = "2024-01-01",
    extra: str = "",
) -> str:
    """A one-source catalog; a table is a name (key `id`) or (name, [key columns])."""
    lines = [
        "sources:",
        f"  - name: {source}",
        "    format: dms",
        f'    start_date: "{start_date}"',
    ]
    if timestamp_column:
        lines.append(f"    timestamp_column: {timestamp_column}")
    if extra:
        lines += ["    " + line for line in textwrap.dedent(extra).strip().splitlines()]
    lines.append("    tables:")
    for t in tables:
        name, keys = (t, ["id"]) if isinstance(t, str) else t
        lines += [
            f"      - name: {name}",
            f"        schema: {SCHEMA}",
            f"        primary_key: [{', '.join(keys)}]",
        ]
    return "\n".join(lines) + "\n"


def r(op: str | None, when: str, id: int, v: str | None = None) -> dict:
    """One change row of ROW."""
    return {"Op": op, "ts": ts(when), "id": id, "v": v}


def cdc(
    lake: Lake,
    table: str,
    name_time: str,
    rows: list[dict],
    schema: pa.Schema = ROW,
    *,
    date_folders: bool = True,
    source: str = SRC,
) -> Path:
    """A CDC file named by `name_time` ('2024-01-02 10:00:00.123')."""
    return write_cdc(
        lake.landing, source, SCHEMA, table, ts(name_time), rows, schema, date_folders=date_folders
    )


def load(
    lake: Lake,
    table: str,
    counter: int,
    rows: list[dict],
    schema: pa.Schema = ROW,
    *,
    source: str = SRC,
) -> Path:
    return write_load(lake.landing, source, SCHEMA, table, counter, rows, schema)


def own(rows: list[dict], *keep: str) -> list[dict]:
    """The source's own columns of each row (and the named metadata columns)."""
    return [{k: v for k, v in row.items() if not k.startswith("_") or k in keep} for row in rows]


def bronze(
    lake: Lake, table: str, order_by: str = "id", *keep: str, source: str = SRC
) -> list[dict]:
    return own(lake.rows("bronze", source, table, order_by), *keep)


def raw(lake: Lake, table: str, *keep: str, source: str = SRC) -> list[dict]:
    """Raw in `_seq` order: the source columns, `_op`, `_source_file`, `_file_pos` (and `keep`)."""
    return own(lake.rows("raw", source, table, "_seq"), "_op", "_source_file", "_file_pos", *keep)


def has_table(lake: Lake, layer: str, table: str, source: str = SRC) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(str(lake.path(layer, source, table)))


def assert_ok(result) -> None:
    assert result.ok, result.failures


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def new_lake(tmp: Path) -> Lake:
    """A lake under `tmp`, for module-scoped fixtures (the `lake` fixture is per test)."""
    root, landing = tmp / "lake", tmp / "landing"
    root.mkdir(parents=True)
    landing.mkdir(parents=True)
    return Lake(tmp, root, landing, tmp / "catalog.yaml")
