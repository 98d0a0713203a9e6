"""Landed files -> the raw rows of one table (every change once, typed, ordered)."""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from lake_assets.catalog import Source, Table
from lake_assets.lib import storage
from lake_assets.lib import types as T
from lake_assets.lib.changes import ChangeFormat, LandedFile, LandedFileError, add_order_columns
from lake_assets.lib.dms import DmsFormat

FORMATS: dict[str, ChangeFormat] = {"dms": DmsFormat()}


def table_landing(landing_root: str, source: Source, table: Table) -> str:
    return f"{landing_root.rstrip('/')}/{source.name}/{table.schema}/{table.name}"


def landed_files(landing_root: str, source: Source, table: Table) -> list[LandedFile]:
    """The table's change files, one per name (a file landed twice, in two folders, is one)."""
    fs, base = storage.filesystem(table_landing(landing_root, source, table))
    fmt = FORMATS[source.format]
    by_name: dict[str, LandedFile] = {}
    for info in storage.list_files(fs, base):
        f = fmt.landed_file(source, info.path, info.rel, info.size, info.mtime_ns)
        if f is not None and f.name not in by_name:
            by_name[f.name] = f
    return sorted(by_name.values(), key=lambda f: (f.is_full_load is False, f.order_key))


def files_in(files: Iterable[LandedFile], start: dt.date, end: dt.date) -> list[LandedFile]:
    return [f for f in files if start <= f.partition_date <= end]


def read_changes(
    landing_root: str,
    source: Source,
    table: Table,
    files: list[LandedFile],
    progress: Callable[[str], None] | None = None,
) -> pa.Table:
    """All rows of the given files as one table with a schema every file fits.

    Raises LandedFileError naming the first file that cannot be read; nothing is returned
    for a partial set, so nothing of a bad file can enter the lake.
    """
    fs, _ = storage.filesystem(table_landing(landing_root, source, table))
    fmt = FORMATS[source.format]
    parts: list[pa.Table] = []
    first_seen: dict[str, tuple[pa.DataType, str]] = {}

    def read(f: LandedFile) -> pa.Table:
        return add_order_columns(fmt.read(source, table, fs, f), f)

    # Files are parsed on all cores (arrow's kernels release the GIL); results come back in
    # file order, so the first file that cannot be read is the one named.
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    try:
        for i, (f, rows) in enumerate(zip(files, pool.map(read, files))):
            for field in rows.schema:
                prev = first_seen.get(field.name)
                if prev is None:
                    first_seen[field.name] = (field.type, f.path)
                elif T.widen(prev[0], field.type) is None:
                    raise LandedFileError(
                        f"{f.path}: column {field.name!r} of table {source.name}.{table.name} has type "
                        f"{T.spark_type_name(field.type)}, but {prev[1]} has {T.spark_type_name(prev[0])}"
                    )
                else:
                    first_seen[field.name] = (T.widen(prev[0], field.type), prev[1])
            parts.append(rows)
            if progress and (i + 1) % 200 == 0:
                progress(f"read {i + 1}/{len(files)} files of {source.name}.{table.name}")
    finally:
        pool.shutdown(cancel_futures=True)  # after a bad file, files not started are not read
    if not parts:
        return empty_changes(table)
    target = pa.schema([pa.field(n, t) for n, (t, _) in first_seen.items()])
    aligned = []
    for p in parts:
        cols = []
        for field in target:
            if field.name in p.column_names:
                col = p.column(field.name)
                cols.append(col if col.type == field.type else col.cast(field.type))
            else:
                cols.append(pa.nulls(p.num_rows, field.type))
        aligned.append(pa.table(cols, schema=target))
    return pa.concat_tables(aligned)


def empty_changes(table: Table) -> pa.Table:
    fields = [pa.field(c, T.arrow_type(t)) for c, t in table.columns] or [
        pa.field(k, pa.string()) for k in table.primary_key
    ]
    fields += [
        pa.field("_op", pa.string()),
        pa.field("_commit_ts", pa.timestamp("us", tz="UTC")),
        pa.field("_file_pos", pa.int64()),
        pa.field("_source_file", pa.string()),
        pa.field("_seq", pa.string()),
        pa.field("_file_date", pa.date32()),
    ]
    return pa.schema(fields).empty_table()


def held_files(raw_path: str) -> dict[dt.date, set[str]]:
    """{partition date: names of the files whose changes raw holds} (read with delta-rs)."""
    from lake_assets.lib import delta

    held: dict[dt.date, set[str]] = defaultdict(set)
    if not delta.exists(raw_path):
        return held
    for day, name in delta.query(raw_path, "SELECT DISTINCT _file_date, _source_file FROM t"):
        held[day].add(name)
    return held


def pending_days(landing_root: str, lake_root: str, source: Source) -> dict[str, set[dt.date]]:
    """{table: days whose landed file names differ from the names raw holds for that day}.

    A table whose landing folder holds a file that is not a change file gets its first day,
    so its raw run fails with the message that names the file.
    """
    from lake_assets.keys import table_path

    out: dict[str, set[dt.date]] = {}
    for table in source.tables:
        try:
            files = landed_files(landing_root, source, table)
        except LandedFileError:
            out[table.name] = {source.start_date}
            continue
        landed: dict[dt.date, set[str]] = defaultdict(set)
        for f in files:
            landed[f.partition_date].add(f.name)
        held = held_files(table_path(lake_root, "raw", source.name, table.name))
        days = {d for d in set(landed) | set(held) if landed.get(d, set()) != held.get(d, set())}
        if days:
            out[table.name] = days
    return out
