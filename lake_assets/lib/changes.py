"""Raw's schema, shared by every format: the columns raw adds to a file's change rows, the
total order of a table's changes (`_seq`), and the checks every change row must pass."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from lake_assets.catalog import Source, Table
from lake_assets.formats.base import OPS, FileChanges, LandedFile, LandedFileError

__all__ = [
    "OPS",
    "META_COLUMNS",
    "LandedFile",
    "LandedFileError",
    "add_order_columns",
    "check_changes",
    "raw_rows",
]

# _seq = kind | commit micros | file order key | position: its lexical order is the order in
# which changes happened (full load first, then commit time, then file, then position). A
# file `ordered_by_file` (a Kafka partition's) counts as having no commit time: by file alone.
_MICROS_OFFSET = 10**17  # keeps pre-1970 instants positive so padding sorts them right
# What raw adds to a format's rows. `_file_size` and `_file_digest` say which landed files raw
# holds, in the same commit as their rows; bronze does not carry them (lib/cdc.py RAW_ONLY).
META_COLUMNS = ("_op", "_commit_ts", "_source_file", "_file_pos", "_seq", "_file_date")
META_COLUMNS += ("_file_size", "_file_digest")


def add_order_columns(rows: pa.Table, file: LandedFile) -> pa.Table:
    """Add `_source_file`, `_seq` and `_file_date` to a parsed file's rows."""
    n = rows.num_rows
    kind = "0" if file.is_full_load and not file.reload else "1"
    ts = rows.column("_commit_ts")
    if file.ordered_by_file:
        ts = pa.nulls(n, ts.type)
    micros = pc.add(
        pc.fill_null(pc.cast(pc.cast(ts, pa.timestamp("us")), pa.int64()), 0), _MICROS_OFFSET
    )
    micros_s = pc.utf8_lpad(pc.cast(micros, pa.string()), 19, "0")
    pos_s = pc.utf8_lpad(pc.cast(rows.column("_file_pos"), pa.string()), 10, "0")
    # Constants as scalars (repeated by arrow), not Python lists of n values: the lists cost
    # more than all the rest of reading a file.
    seq = pc.binary_join_element_wise(
        pa.scalar(f"{kind}.", pa.string()),
        micros_s,
        pa.scalar(f".{file.order_key}.", pa.string()),
        pos_s,
        "",
    )
    rows = rows.append_column("_source_file", pa.repeat(pa.scalar(file.name, pa.string()), n))
    rows = rows.append_column("_seq", seq)
    return rows.append_column(
        "_file_date", pa.repeat(pa.scalar(file.partition_date, pa.date32()), n)
    )


def raw_rows(read: FileChanges) -> pa.Table:
    """A read file's rows as raw holds them: ordered, and marked with the file's identity."""
    rows = add_order_columns(read.rows, read.file)
    n = rows.num_rows
    rows = rows.append_column("_file_size", pa.repeat(pa.scalar(read.file.size, pa.int64()), n))
    return rows.append_column("_file_digest", pa.repeat(pa.scalar(read.digest, pa.string()), n))


def check_changes(source: Source, table: Table, file: LandedFile, rows: pa.Table, ops=OPS) -> None:
    """Refuse a file with a change raw cannot hold: an unknown `_op`, or a null primary key
    (but for a truncate, which has no key). The message names file, row and table."""
    op = rows.column("_op")
    bad = pc.invert(pc.fill_null(pc.is_in(op, pa.array(ops, pa.string())), False))
    if pc.any(bad).as_py():
        found = pc.filter(op, bad)[0].as_py()
        raise _refused(
            source, table, file, rows, bad, f"_op {found!r} is not one of {', '.join(ops)}"
        )
    keyed = pc.not_equal(pc.fill_null(op, ""), "T")
    for key in table.primary_key:
        if key not in rows.column_names:
            continue  # a format that lacks a key column says so itself, naming it
        null = pc.and_(pc.is_null(rows.column(key)), keyed)
        if pc.any(null).as_py():
            raise _refused(source, table, file, rows, null, f"primary key column {key!r} is null")


def _refused(source: Source, table: Table, file: LandedFile, rows: pa.Table, mask, why: str):
    pos = pc.filter(rows.column("_file_pos"), mask)[0].as_py()
    count = pc.sum(pc.cast(mask, pa.int64())).as_py()
    more = f" ({count} rows like it)" if count > 1 else ""
    return LandedFileError(
        f"{file.path}: row {pos} (position in the file) of table {source.name}.{table.name}: "
        f"{why}{more}"
    )
