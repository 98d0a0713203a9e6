"""`format: postgres`: the files lib/postgres.py lands from a PostgreSQL database.

Names (logical mode), under `<source>/<schema>/<table>/`:
    LOAD-<consistent LSN>-<part>.parquet              the initial load, from the slot's snapshot
    <yyyy>/<MM>/<dd>/<first LSN>-<last LSN>.parquet   changes of the transactions committed at
                                                      those LSNs (16 hex digits each)
A file's changes are in commit order; files are ordered by their LSNs, which is the order of
the server's commits, so `_seq` orders by file and position (not by commit time).

Mode snapshot lands `<yyyyMMdd-HHmmssfff>.parquet` per table (the snapshot's time), which format
snapshot identifies and diffs against the snapshot before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from lake_assets.catalog import Source, Table
from lake_assets.formats.base import (
    FileChanges,
    LandedFile,
    LandedFileError,
    LandingFormat,
    TableFiles,
    change_rows,
    check_column_name,
    is_bookkeeping,
)
from lake_assets.lib import types as T
from lake_assets.lib.postgres import CDC_NAME, LOAD_NAME
from lake_assets.lib.storage import FileInfo

_META = ("_op", "_commit_ts", "_lsn")
R = TypeVar("R")


def _snapshots():
    from lake_assets.formats import by_name

    return by_name("snapshot")


class PostgresFormat(LandingFormat):
    """mode logical: the slot's files, read here; mode snapshot: whole-table snapshots, read
    and diffed by format snapshot."""

    def identify(self, source: Source, table: Table, info: FileInfo) -> LandedFile | None:
        if source.mode == "snapshot":
            return _snapshots().identify(source, table, info)
        if is_bookkeeping(info.rel):
            return None
        name = info.rel.rsplit("/", 1)[-1]
        found = dict(
            path=info.path, rel=info.rel, name=name, size=info.size, mtime_ns=info.mtime_ns
        )
        m = LOAD_NAME.match(name)
        if m and "/" not in info.rel:
            return LandedFile(
                **found,
                is_full_load=True,
                order_key=f"L{m.group(1)}{m.group(2)}",
                partition_date=source.start_date,
                name_time=None,
            )
        m = CDC_NAME.match(name)
        if m:
            try:
                day = dt.datetime.strptime(info.rel.rsplit("/", 1)[0], "%Y/%m/%d").date()
            except ValueError:
                raise LandedFileError(
                    f"{info.path}: a change file outside a yyyy/MM/dd folder"
                ) from None
            return LandedFile(
                **found,
                is_full_load=False,
                order_key=f"C{m.group(1)}{m.group(2)}",
                partition_date=max(day, source.start_date),
                name_time=None,
                ordered_by_file=True,
            )
        raise LandedFileError(
            f"{info.path}: not a file of format postgres (expected LOAD-<lsn>-<part>.parquet, "
            "or yyyy/MM/dd/<first lsn>-<last lsn>.parquet)"
        )

    def read_files(
        self, ctx: TableFiles, files: list[LandedFile], each: Callable[[FileChanges], R]
    ) -> Iterator[R]:
        if ctx.source.mode == "snapshot":
            return _snapshots().read_files(ctx, files, each)
        return super().read_files(ctx, files, each)

    def parse(self, source: Source, table: Table, file: LandedFile, data: bytes) -> pa.Table:
        if source.mode == "snapshot":
            return _snapshots().parse(source, table, file, data)
        try:
            rows = pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as e:
            raise LandedFileError(f"{file.path}: cannot be read as parquet: {e}") from None
        missing = [c for c in _META if c not in rows.column_names]
        if missing:
            raise LandedFileError(f"{file.path}: column(s) {missing} missing")
        declared = table.column_types
        columns = {}
        for name in rows.column_names:
            if name in _META:
                continue
            check_column_name(file, name)
            arr = rows.column(name)
            try:
                columns[name] = T.conform(arr, declared[name]) if name in declared else arr
            except (pa.ArrowException, ValueError, TypeError) as e:
                raise LandedFileError(f"{file.path}: column {name!r}: {e}") from None
        return change_rows(
            file, table, columns, rows.column("_op"), T.utc(rows.column("_commit_ts"))
        )
