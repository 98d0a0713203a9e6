"""Fivetran's rows, landed as files laid out as DMS lays them out (parquet, or csv with a header
row): each row the state of a key at `_fivetran_synced`, `_fivetran_deleted = true` a delete.

Names: `yyyyMMdd-HHmmss<3-4 digits>.parquet|csv`, flat in the table folder or under `yyyy/MM/dd/`
date folders; no `LOAD` files (Fivetran's first sync is rows like any other). A table synced in
Fivetran's history mode carries `_fivetran_start`, `_fivetran_end` and `_fivetran_active`
instead: each row is a version, read as the changes that made and ended it. docs/formats.md has
the rules; CONTRACT.md the promise.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from lake_assets.catalog import Source, Table
from lake_assets.formats.base import LandedFile, LandedFileError, change_rows, check_column_name
from lake_assets.formats.dms import DmsFormat, csv_with_header
from lake_assets.lib import types as T
from lake_assets.lib.storage import FileInfo

SYNCED = "_fivetran_synced"
DELETED = "_fivetran_deleted"
START, END, ACTIVE = "_fivetran_start", "_fivetran_end", "_fivetran_active"
HISTORY_COLUMNS = (START, END, ACTIVE)
# Fivetran's stand-in key of a table without one, and its order of such a table's rows: no
# source column, and no key the lake can apply changes by.
KEYLESS = ("_fivetran_id", "_fivetran_index")
# Fivetran ends a version 1 ms before the next one starts (its `_fivetran_end`).
_ONE_MS = dt.timedelta(milliseconds=1)
_TRUE, _FALSE = ("true", "t", "1"), ("false", "f", "0")


class FivetranFormat(DmsFormat):
    """Fivetran rows as upserts and deletes (`U`, `D`); history-mode rows as versions."""

    ops = ("U", "D")

    def identify(self, source: Source, table: Table, info: FileInfo) -> LandedFile | None:
        try:
            f = self.landed_file(source, info.path, info.rel, info.size, info.mtime_ns)
        except LandedFileError:
            raise LandedFileError(
                f"{info.path}: not a Fivetran file name as the lake reads them "
                "(expected yyyyMMdd-HHmmssfff.parquet|csv)"
            ) from None
        if f is not None and f.is_full_load:
            raise LandedFileError(
                f"{info.path}: a LOAD file in a Fivetran table's folder; Fivetran's rows "
                "land in files named by time (yyyyMMdd-HHmmssfff.parquet|csv)"
            )
        return f

    def parse(self, source: Source, table: Table, file: LandedFile, data: bytes) -> pa.Table:
        kind = file.name.rsplit(".", 1)[-1]
        try:
            rows = pq.read_table(pa.BufferReader(data)) if kind == "parquet" else _csv(data)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise LandedFileError(
                f"{file.path}: cannot be read as a Fivetran {kind} file: {e}"
            ) from None
        return _Rows(table, file, rows, from_csv=kind == "csv").changes()


def _csv(data: bytes) -> pa.Table:
    """A csv file with a header row, every field as text (typed later, by the catalog)."""
    if not data.strip():
        return pa.table({})
    return csv_with_header(data, pcsv.ParseOptions(newlines_in_values=True))


class _Rows:
    """One file's rows, their Fivetran columns read and checked, the source's own typed."""

    def __init__(self, table: Table, file: LandedFile, data: pa.Table, from_csv: bool) -> None:
        self.table, self.file, self.data, self.from_csv = table, file, data, from_csv
        self.names = data.column_names

    def fail(self, why: str, mask=None) -> LandedFileError:
        where = ""
        if mask is not None:
            row = pc.index(pc.fill_null(mask, False), True).as_py()
            where = f", row {row} (position in the file)"
        return LandedFileError(f"{self.file.path}: table {self.table.name!r}{where}: {why}")

    def changes(self) -> pa.Table:
        if self.data.num_columns == 0:  # an empty file: no rows, no columns
            return change_rows(self.file, self.table, {}, pa.array([], pa.string()), _ts([]))
        history = [c for c in HISTORY_COLUMNS if c in self.names]
        if history and len(history) < len(HISTORY_COLUMNS):
            missing = [c for c in HISTORY_COLUMNS if c not in self.names]
            raise self.fail(f"a history-mode file has {history} but not {missing}")
        columns = self.source_columns()
        self.check_keys(columns)
        return self.versions(columns) if history else self.upserts(columns)

    # -- the source's columns ---------------------------------------------------------------
    def source_columns(self) -> dict[str, pa.ChunkedArray]:
        declared = self.table.column_types
        out = {}
        for name in self.names:
            if name.startswith("_fivetran_"):
                continue  # Fivetran's own: read below, or not a source column (KEYLESS)
            check_column_name(self.file, name)
            arr = self.data.column(name)
            try:
                if name in declared:
                    arr = (
                        T.from_text(arr, declared[name])
                        if self.from_csv
                        else T.conform(arr, declared[name])
                    )
                elif pa.types.is_timestamp(arr.type):
                    arr = T.utc(arr)
                elif pa.types.is_large_string(arr.type):
                    arr = arr.cast(pa.string())
            except (pa.ArrowException, ValueError, TypeError) as e:
                raise self.fail(f"column {name!r}: {e}") from None
            out[name] = arr
        return out

    def check_keys(self, columns: dict) -> None:
        missing = [k for k in self.table.primary_key if k not in columns]
        if missing:
            hint = ""
            if any(c in self.names for c in KEYLESS):
                hint = (
                    "; it has Fivetran's _fivetran_id, the stand-in key of a source table "
                    "without one, which the lake cannot apply changes by"
                )
            raise self.fail(f"primary key column(s) {missing} missing{hint}")
        for k in self.table.primary_key:
            null = pc.is_null(columns[k])
            if pc.any(null).as_py():
                raise self.fail(f"primary key column {k!r} is null", null)

    # -- Fivetran's columns -----------------------------------------------------------------
    def timestamp(self, name: str) -> pa.ChunkedArray:
        if name not in self.names:
            raise self.fail(f"the column {name!r} is missing")
        try:
            ts = T.utc(self.data.column(name))
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise self.fail(f"column {name!r}: {e}") from None
        null = pc.is_null(ts)
        if pc.any(null).as_py():
            raise self.fail(f"{name} is null", null)
        return ts

    def boolean(self, name: str, null_is: bool | None) -> pa.ChunkedArray:
        arr = self.data.column(name)
        if pa.types.is_boolean(arr.type):
            flags = arr
        elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            low = pc.utf8_lower(pc.utf8_trim_whitespace(arr.cast(pa.string())))
            known = pc.is_in(low, pa.array(_TRUE + _FALSE))
            bad = pc.and_(pc.is_valid(low), pc.invert(known))
            if pc.any(bad).as_py():
                value = pc.filter(arr, bad)[0].as_py()
                raise self.fail(f"{name} is {value!r}, not true or false", bad)
            flags = pc.if_else(pc.is_valid(low), pc.is_in(low, pa.array(_TRUE)), None)
        else:
            raise self.fail(f"{name} has type {arr.type}, not boolean")
        if null_is is None:
            null = pc.is_null(flags)
            if pc.any(null).as_py():
                raise self.fail(f"{name} is null", null)
            return flags
        return pc.fill_null(flags, null_is)

    def upserts(self, columns: dict) -> pa.Table:
        """Live mode: every row an upsert at `_fivetran_synced`, a delete where deleted."""
        commit = self.timestamp(SYNCED)
        n = self.data.num_rows
        if DELETED in self.names:
            # A row synced before the table had the column has it null: not deleted.
            deleted = self.boolean(DELETED, null_is=False)
            op = pc.if_else(deleted, "D", "U")
        else:
            op = pa.repeat(pa.scalar("U", pa.string()), n)
        return change_rows(self.file, self.table, columns, op, commit)

    def versions(self, columns: dict) -> pa.Table:
        """History mode: each row a version, an upsert at `_fivetran_start`; a version no
        longer active also a delete at `_fivetran_end`, unless the file holds the version after
        it (starting 1 ms after that end): then it ended because that one began."""
        start, end = self.timestamp(START), self.data.column(END)
        active = self.boolean(ACTIVE, null_is=None)
        try:
            end = T.utc(end)
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise self.fail(f"column {END!r}: {e}") from None
        closed = pc.invert(active)
        no_end = pc.and_(closed, pc.is_null(end))
        if pc.any(no_end).as_py():
            raise self.fail(f"{END} is null in a version no longer active", no_end)
        n = self.data.num_rows
        keys = list(self.table.primary_key)
        ended = pc.and_(closed, pc.invert(self._followed(columns, keys, start, end)))
        idx = pc.indices_nonzero(ended)
        ups = change_rows(
            self.file, self.table, columns, pa.repeat(pa.scalar("U", pa.string()), n), start
        )
        # A delete carries its key alone, at a position after the file's rows (its row's n
        # later), so that at one instant a version's end follows its start.
        dels = change_rows(
            self.file,
            self.table,
            {
                c: pc.take(a, idx) if c in keys else pa.nulls(len(idx), a.type)
                for c, a in columns.items()
            },
            pa.repeat(pa.scalar("D", pa.string()), len(idx)),
            pc.take(end, idx),
            pc.add(pc.cast(idx, pa.int64()), n),
        )
        return pa.concat_tables([ups, dels.cast(ups.schema)])

    def _followed(self, columns: dict, keys: list[str], start, end) -> pa.Array:
        """Whether a version of the same key in this file starts 1 ms after each row's end."""
        n = self.data.num_rows
        here = pa.table(
            {**{f"k{i}": columns[k] for i, k in enumerate(keys)}, "at": pc.add(end, _ONE_MS)}
        ).append_column("_row", pa.array(np.arange(n, dtype=np.int64)))
        nexts = (
            pa.table({**{f"k{i}": columns[k] for i, k in enumerate(keys)}, "at": start})
            .group_by([f"k{i}" for i in range(len(keys))] + ["at"])
            .aggregate([])
        )
        found = here.join(
            nexts, keys=[f"k{i}" for i in range(len(keys))] + ["at"], join_type="inner"
        )
        flags = np.zeros(n, dtype=bool)
        flags[found.column("_row").to_numpy()] = True
        return pa.array(flags)


def _ts(values) -> pa.Array:
    return pa.array(values, pa.timestamp("us", tz="UTC"))
