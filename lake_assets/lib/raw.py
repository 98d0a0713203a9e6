"""Landed files -> the raw rows of one table (every change once, typed, ordered), and what raw
already holds of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass

import pyarrow as pa

from lake_assets import formats
from lake_assets.catalog import Source, Table
from lake_assets.formats.base import FileChanges, LandedFile, LandedFileError, TableFiles
from lake_assets.lib import delta, storage
from lake_assets.lib import types as T
from lake_assets.lib.changes import check_changes, raw_rows
from lake_assets.lib.layout import state_path, table_path


def landed_files(landing_root: str, source: Source, table: Table) -> list[LandedFile]:
    """The table's change files, one per name, in change order."""
    return formats.resolve(source).list_files(landing_root, source, table)


def files_in(files: Iterable[LandedFile], start: dt.date, end: dt.date) -> list[LandedFile]:
    return [f for f in files if start <= f.partition_date <= end]


@dataclass(frozen=True)
class Held:
    """A landed file whose changes raw holds, as raw recorded it with them."""

    day: dt.date
    size: int | None  # None: held by a raw written before sizes were recorded
    digest: str | None


def held_files(lake_root: str, source: str, table: str) -> dict[str, Held]:
    """{file name: what raw holds of it}, with the files that had no rows (read with delta-rs:
    no engine needed)."""

    raw_path = table_path(lake_root, "raw", source, table)
    have = {f.name for f in delta.arrow_schema(raw_path)} if delta.exists(raw_path) else set()
    size = "_file_size" if "_file_size" in have else "CAST(NULL AS BIGINT)"
    digest = "_file_digest" if "_file_digest" in have else "CAST(NULL AS STRING)"
    sql = f"SELECT DISTINCT _source_file, _file_date, {size}, {digest} FROM t"
    rows = delta.query(raw_path, sql) if have else []
    empty = empty_files_path(lake_root, source, table)
    if delta.exists(empty):
        rows += delta.query(empty, "SELECT DISTINCT name, day, size, CAST(NULL AS STRING) FROM t")
    return {name: Held(day, n, d) for name, day, n, d in rows}


def empty_files_path(lake_root: str, source: str, table: str) -> str:
    # Files without a change have no row in raw to say raw has seen them: kept here instead.
    # Apart from raw's rows, as there is nothing of them to keep atomically with.
    return state_path(lake_root, source, table, "empty_files")


def record_empty(spark, lake_root: str, source: str, table: str, files: list[LandedFile]) -> None:
    """Remember files read that had no changes, so that they are not new again (an append: a
    file recorded twice by two runs at once is still one name)."""
    if not files:
        return
    marks = pa.table(
        {
            "name": pa.array([f.name for f in files], pa.string()),
            "day": pa.array([f.partition_date for f in files], pa.date32()),
            "size": pa.array([f.size for f in files], pa.int64()),
        }
    )
    spark.createDataFrame(marks).write.format("delta").mode("append").save(
        storage.engine_path(empty_files_path(lake_root, source, table))
    )


def read_changes(
    landing_root: str,
    source: Source,
    table: Table,
    files: list[LandedFile],
    progress: Callable[[str], None] | None = None,
    lake_schema: pa.Schema | None = None,
    lake_root: str | None = None,
) -> pa.Table:
    """All rows of the given files as one table with a schema every file fits, and the types
    raw already has (`lake_schema`) too, so a type widens the same way in one sync or several.

    Raises LandedFileError naming the first file that cannot be read; nothing is returned
    for a partial set, so nothing of a bad file can enter the lake. `lake_root` is where a
    format that keeps state of its own (a snapshot's) finds it.
    """
    fmt = formats.resolve(source)
    fs = fmt.filesystem(landing_root, source, table)
    where = f"raw/{source.name}/{table.name}"
    types = _TypesSeen(source, table, {f.name: (f.type, where) for f in lake_schema or []})
    parts: list[pa.Table] = []

    def finish(got: FileChanges) -> tuple[LandedFile, pa.Table]:
        check_changes(source, table, got.file, got.rows, fmt.ops)
        return got.file, raw_rows(got)

    def held() -> set[str]:
        return set(held_files(lake_root, source.name, table.name)) if lake_root else set()

    ctx = TableFiles(source, table, fs, lake_root, held)
    # Results come back in file order, so the first file that cannot be read is the one named.
    with closing(fmt.read_files(ctx, files, finish)) as reads:
        for i, (f, rows) in enumerate(reads):
            types.add(f, rows.schema)
            parts.append(rows)
            if progress and (i + 1) % 200 == 0:
                progress(f"read {i + 1}/{len(files)} files of {source.name}.{table.name}")
    if not parts:
        return empty_changes(table)
    present = list(dict.fromkeys(n for p in parts for n in p.column_names))
    target = types.schema(present)
    return pa.concat_tables([_aligned(p, target) for p in parts])


class _TypesSeen:
    """Each column's type over the files read so far, and where that type was first seen."""

    def __init__(self, source: Source, table: Table, seen: dict[str, tuple[pa.DataType, str]]):
        self.name = f"{source.name}.{table.name}"
        self.seen = seen

    def add(self, f: LandedFile, schema: pa.Schema) -> None:
        for field in schema:
            prev = self.seen.get(field.name)
            wide = field.type if prev is None else T.widen(prev[0], field.type)
            if wide is None:
                raise LandedFileError(
                    f"{f.path}: column {field.name!r} of table {self.name} has type "
                    f"{T.spark_type_name(field.type)}, "
                    f"but {prev[1]} has {T.spark_type_name(prev[0])}"
                )
            self.seen[field.name] = (wide, prev[1] if prev else f.path)

    def schema(self, present: list[str]) -> pa.Schema:
        # Columns of the lake that no file read has stay out: the write fills them with nulls.
        return pa.schema([pa.field(n, self.seen[n][0]) for n in present])


def _aligned(part: pa.Table, target: pa.Schema) -> pa.Table:
    cols = [
        part.column(f.name).cast(f.type)
        if f.name in part.column_names
        else pa.nulls(part.num_rows, f.type)
        for f in target
    ]
    return pa.table(cols, schema=target)


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
        pa.field("_file_size", pa.int64()),
        pa.field("_file_digest", pa.string()),
    ]
    return pa.schema(fields).empty_table()
