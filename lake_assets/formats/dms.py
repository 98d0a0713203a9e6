"""AWS DMS S3-target files (parquet or csv): names, partitions, and rows.

Names: `LOAD<8 hex digits>.<ext>` for the full load, `yyyyMMdd-HHmmss<3-4 digits>.<ext>`
for CDC, flat in the table folder or under `yyyy/MM/dd/` date folders.

A reload (DMS "Reload table data") writes the table's full load again, its counter from
`LOAD00000001` in the same folder: a LOAD name raw holds, landed again with other content, is
a reload's, and so is every LOAD file first landed after one. A reload is an epoch: its
`LOAD00000001` also carries a truncate at the reload's time (the earliest value of its
timestamp column: when DMS transferred the rows), ordered just before its rows, and the
reload's rows are ordered among the CDC by that column (docs/formats.md).
"""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from lake_assets.catalog import Source, Table
from lake_assets.formats.base import (
    LandedFile,
    LandedFileError,
    LandingFormat,
    base_name,
    change_rows,
    check_column_name,
    is_bookkeeping,
)
from lake_assets.lib import types as T
from lake_assets.lib.changes import check_changes
from lake_assets.lib.storage import FileInfo

_LOAD = re.compile(r"^LOAD([0-9A-Fa-f]{8})\.(parquet|csv)$")
_CDC = re.compile(r"^(\d{8})-(\d{6})(\d{3,4})\.(parquet|csv)$")
_MAX_CSV_FIELDS = 4096


class DmsFormat(LandingFormat):
    """The AWS DMS S3 target, parquet or csv (`csv_header`, `columns` from the catalog)."""

    ops = ("I", "U", "D", "T")  # DMS writes no truncate: a reload's file carries one

    def is_reload(
        self, source: Source, table: Table, file: LandedFile, held_names, relanded: bool
    ) -> bool:
        if not file.is_full_load:
            return False
        if not relanded and not any(_is_reload_name(n) for n in held_names):
            return False
        if not source.timestamp_column:
            raise LandedFileError(
                f"{file.path}: a reload of {source.name}.{table.name} (a full-load file after "
                "the table's first load) cannot be placed among its changes without the "
                "source's timestamp_column (DMS TimestampColumnName)"
            )
        return True

    def identify(self, source: Source, table: Table, info: FileInfo) -> LandedFile | None:
        return self.landed_file(source, info.path, info.rel, info.size, info.mtime_ns)

    def landed_file(
        self, source: Source, path: str, rel: str, size: int = 0, mtime_ns: int = 0
    ) -> LandedFile | None:
        if is_bookkeeping(rel):
            return None
        name = rel.rsplit("/", 1)[-1]
        found = dict(path=path, rel=rel, name=name, size=size, mtime_ns=mtime_ns)
        m = _LOAD.match(name)
        if m:
            counter = int(m.group(1), 16)
            return LandedFile(
                **found,
                is_full_load=True,
                order_key=f"L{counter:017X}",
                partition_date=source.start_date,
                name_time=None,
            )
        m = _CDC.match(name)
        if m:
            day, hms, frac = m.group(1), m.group(2), m.group(3)
            try:
                when = dt.datetime.strptime(day + hms, "%Y%m%d%H%M%S").replace(
                    tzinfo=dt.timezone.utc
                )
            except ValueError:
                raise LandedFileError(f"{path}: the name is not a valid DMS time") from None
            when = when.replace(microsecond=int(frac.ljust(6, "0")))
            # frac padded to 4 digits so 3- and 4-digit names compare by time; the name itself
            # breaks a tie between `...123` and `...1230`.
            order_key = f"C{day}{hms}{frac.ljust(4, '0')}{len(frac)}"
            return LandedFile(
                **found,
                is_full_load=False,
                order_key=order_key,
                partition_date=max(when.date(), source.start_date),
                name_time=when,
            )
        raise LandedFileError(
            f"{path}: not an AWS DMS file name "
            "(expected LOAD<8 hex>.parquet|csv or yyyyMMdd-HHmmssfff.parquet|csv)"
        )

    def parse(self, source: Source, table: Table, file: LandedFile, data: bytes) -> pa.Table:
        try:
            if file.path.endswith(".parquet"):
                rows = self._typed(
                    source, table, pq.read_table(pa.BufferReader(data)), file, from_csv=False
                )
            else:
                rows = self._read_csv(source, table, data, file)
        except LandedFileError:
            raise
        except (pa.ArrowException, OSError, ValueError, TypeError) as e:
            raise LandedFileError(
                f"{file.path}: cannot be read as a DMS {file.path.rsplit('.', 1)[-1]} file: {e}"
            ) from None
        return rows

    # -- csv ------------------------------------------------------------------------------
    def _read_csv(self, source: Source, table: Table, raw: bytes, file: LandedFile) -> pa.Table:
        if not raw.strip():
            return self._typed(source, table, pa.table({}), file, from_csv=True)
        text_types = {f"f{i}": pa.string() for i in range(_MAX_CSV_FIELDS)}
        convert = pcsv.ConvertOptions(
            column_types=text_types,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        )
        parse = pcsv.ParseOptions(newlines_in_values=True)
        if source.csv_header:
            data = csv_with_header(raw, parse)
        else:
            if not table.columns:
                raise LandedFileError(
                    f"{file.path}: a csv file without a header row needs the table's `columns` "
                    "in the catalog "
                    f"(source {source.name!r} table {table.name!r}), or csv_header: true"
                )
            data = pcsv.read_csv(
                pa.py_buffer(raw),
                read_options=pcsv.ReadOptions(autogenerate_column_names=True),
                parse_options=parse,
                convert_options=convert,
            )
            declared = [c for c, _ in table.columns]
            lead = [source.timestamp_column] if source.timestamp_column else []
            n = data.num_columns
            if n == len(lead) + len(declared) + 1:
                names = ["Op"] + lead + declared
            elif file.is_full_load and n == len(lead) + len(declared):
                names = lead + declared
            else:
                want = len(lead) + len(declared) + 1
                raise LandedFileError(
                    f"{file.path}: rows have {n} fields; table {table.name!r} expects {want} "
                    f"(Op, {'the timestamp column, ' if lead else ''}"
                    f"then its {len(declared)} declared columns)"
                )
            data = data.rename_columns(names)
        return self._typed(source, table, data, file, from_csv=True)

    # -- both -----------------------------------------------------------------------------
    def _typed(
        self, source: Source, table: Table, data: pa.Table, file: LandedFile, from_csv: bool
    ) -> pa.Table:
        n = data.num_rows
        names = data.column_names
        if "Op" in names:
            # Checked against the vocabulary by raw, with the row's position and the table.
            op = pc.utf8_upper(pc.utf8_trim_whitespace(data.column("Op").cast(pa.string())))
            if file.is_full_load:
                op = pc.fill_null(op, "I")
        elif file.is_full_load:
            op = pa.repeat(pa.scalar("I", pa.string()), n)
        else:
            raise LandedFileError(f"{file.path}: a CDC file without the Op column")
        ts_col = source.timestamp_column
        if ts_col:
            if ts_col not in names:
                raise LandedFileError(f"{file.path}: the timestamp column {ts_col!r} is missing")
            try:
                commit = T.utc(data.column(ts_col))
            except (pa.ArrowException, TypeError) as e:
                raise LandedFileError(f"{file.path}: timestamp column {ts_col!r}: {e}") from None
        elif file.name_time is not None:
            commit = pa.repeat(pa.scalar(file.name_time, pa.timestamp("us", tz="UTC")), n)
        else:
            commit = pa.nulls(n, pa.timestamp("us", tz="UTC"))
        declared = table.column_types
        cols, fields = [], []
        for name in names:
            if name == "Op" or name == ts_col:
                continue
            check_column_name(file, name)
            arr = data.column(name)
            try:
                if name in declared:
                    arr = (
                        T.from_text(arr, declared[name])
                        if from_csv
                        else T.conform(arr, declared[name])
                    )
                elif pa.types.is_timestamp(arr.type):
                    arr = T.utc(arr)
                elif pa.types.is_large_string(arr.type):
                    arr = arr.cast(pa.string())
            except (pa.ArrowException, ValueError, TypeError) as e:
                raise LandedFileError(f"{file.path}: column {name!r}: {e}") from None
            cols.append(arr)
            fields.append(name)
        rows = change_rows(file, table, dict(zip(fields, cols)), op, commit)
        return _with_reload_truncate(source, table, file, rows)


def _is_reload_name(name: str) -> bool:
    return name != base_name(name) and _LOAD.match(base_name(name)) is not None


def _with_reload_truncate(source: Source, table: Table, file: LandedFile, rows: pa.Table):
    """A reload's first file starts with a truncate at the reload's time (its earliest row's),
    at position -1: before its rows at that time (`_seq` pads it to `00000000-1`)."""
    check_changes(source, table, file, rows, ("I", "U", "D"))  # a DMS file has no truncate
    m = _LOAD.match(file.rel.rsplit("/", 1)[-1])
    if not file.reload or m is None or int(m.group(1), 16) != 1 or rows.num_rows == 0:
        return rows
    at = pc.min(rows.column("_commit_ts"))
    if not at.is_valid:
        column = source.timestamp_column
        raise LandedFileError(f"{file.path}: a reload's rows have no time in {column!r}")
    first = {
        f.name: pa.nulls(1, f.type)
        for f in rows.schema
        if f.name not in ("_op", "_commit_ts", "_file_pos")
    }
    truncate = pa.table(
        {
            **first,
            "_op": pa.array(["T"], pa.string()),
            "_commit_ts": pa.array([at.as_py()], rows.schema.field("_commit_ts").type),
            "_file_pos": pa.array([-1], pa.int64()),
        },
        schema=rows.schema,
    )
    return pa.concat_tables([truncate, rows])


def csv_with_header(raw: bytes, parse: pcsv.ParseOptions) -> pa.Table:
    """A csv file with a header row, every field as text (typed later, by the catalog); an
    empty field is null, an empty quoted one the empty string."""
    names = pcsv.open_csv(pa.BufferReader(raw), parse_options=parse).schema.names
    return pcsv.read_csv(
        pa.py_buffer(raw),
        read_options=pcsv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=parse,
        convert_options=pcsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    )
