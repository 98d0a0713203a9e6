"""What every change format produces, and the total order of a table's changes.

A format (AWS DMS today; Debezium or snapshots later) turns each landed file into rows
carrying the source's columns plus `_op`, `_commit_ts` and `_file_pos`. Everything after
that (raw, bronze) is format-agnostic and sees only these columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from lake_assets.catalog import Source, Table

OPS = ("I", "U", "D")
UTC_TS = pa.timestamp("us", tz="UTC")
# _seq = kind | commit micros | file order key | position: its lexical order is the order in
# which changes happened (full load first, then commit time, then file, then position).
_MICROS_OFFSET = 10**17  # keeps pre-1970 instants positive so padding sorts them right
META_COLUMNS = ("_op", "_commit_ts", "_source_file", "_file_pos", "_seq", "_file_date")


class LandedFileError(ValueError):
    """A landed file cannot enter the lake; the message names the file."""


@dataclass(frozen=True)
class LandedFile:
    path: str  # inside the landing filesystem
    rel: str  # relative to the table's landing folder
    name: str  # the file's own name: its identity (a file landed twice is one file)
    is_full_load: bool
    order_key: str  # fixed-width, sorts files of the same kind in change order
    partition_date: dt.date  # the raw partition it belongs to
    name_time: dt.datetime | None  # the time in a CDC file's name (UTC)
    size: int = 0
    mtime_ns: int = 0


class ChangeFormat(Protocol):
    """One landed-file format: naming (which files, which partition) and parsing."""

    def landed_file(self, source: Source, path: str, rel: str, size: int, mtime_ns: int) -> LandedFile | None:
        """Classify a file found in the table's landing folder (None: not a change file)."""

    def read(self, source: Source, table: Table, fs, file: LandedFile) -> pa.Table:
        """The file's rows: the source columns, then `_op`, `_commit_ts`, `_file_pos`."""


def add_order_columns(rows: pa.Table, file: LandedFile) -> pa.Table:
    """Add `_source_file`, `_seq` and `_file_date` to a parsed file's rows."""
    n = rows.num_rows
    kind = "0" if file.is_full_load else "1"
    ts = rows.column("_commit_ts")
    micros = pc.add(pc.fill_null(pc.cast(pc.cast(ts, pa.timestamp("us")), pa.int64()), 0), _MICROS_OFFSET)
    micros_s = pc.utf8_lpad(pc.cast(micros, pa.string()), 19, "0")
    pos_s = pc.utf8_lpad(pc.cast(rows.column("_file_pos"), pa.string()), 10, "0")
    prefix = f"{kind}."
    middle = f".{file.order_key}."
    # Constants as scalars (repeated by arrow), not Python lists of n values: the lists cost
    # more than all the rest of reading a file.
    seq = pc.binary_join_element_wise(
        pa.scalar(prefix, pa.string()),
        micros_s,
        pa.scalar(middle, pa.string()),
        pos_s,
        "",
    )
    rows = rows.append_column("_source_file", pa.repeat(pa.scalar(file.name, pa.string()), n))
    rows = rows.append_column("_seq", seq)
    rows = rows.append_column("_file_date", pa.repeat(pa.scalar(file.partition_date, pa.date32()), n))
    return rows
