"""Write AWS DMS files into a landing zone, for tests: exactly the layout of the contract."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

UTC = dt.timezone.utc


def ts(s: str) -> dt.datetime:
    """'2024-01-15 09:30:00' as a UTC datetime."""
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


def table_dir(landing: Path, source: str, schema: str, table: str) -> Path:
    d = Path(landing) / source / schema / table
    d.mkdir(parents=True, exist_ok=True)
    return d


def cdc_name(when: dt.datetime, ext: str = "parquet", digits: int = 3) -> str:
    frac = f"{when.microsecond:06d}"[:digits]
    return f"{when:%Y%m%d-%H%M%S}{frac}.{ext}"


def write_parquet(path: Path, rows: list[dict], schema: pa.Schema) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def write_cdc(
    landing,
    source,
    schema_name,
    table,
    when: dt.datetime,
    rows: list[dict],
    schema: pa.Schema,
    date_folders: bool = True,
    digits: int = 3,
) -> Path:
    d = table_dir(landing, source, schema_name, table)
    if date_folders:
        d = d / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}"
    return write_parquet(d / cdc_name(when, digits=digits), rows, schema)


def write_load(
    landing, source, schema_name, table, counter: int, rows: list[dict], schema: pa.Schema
) -> Path:
    d = table_dir(landing, source, schema_name, table)
    return write_parquet(d / f"LOAD{counter:08X}.parquet", rows, schema)


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.utime(path)
    return path
