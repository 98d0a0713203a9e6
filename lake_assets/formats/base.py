"""The one interface every landing format implements, and what raw needs of a landed file.

A format knows its landing layout (which files are a table's, in which order, on which raw
day) and how to turn one file into change rows, or, where a file's changes depend on more than
the file (a snapshot: the snapshot before it, all its parts), a table's new files at once
(`read_files`). Everything after that (raw, bronze, the
landing sensor, sync) sees only this interface and the rows' columns: the source's own, typed,
plus `_op` (one of OPS), `_commit_ts` and `_file_pos`; raw adds `_source_file` and `_seq`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake_assets.lib import storage

if TYPE_CHECKING:  # the catalog names formats by BUILT_IN: no import of it at load
    from lake_assets.catalog import Source, Table

# Insert, update, delete, truncate (a truncate's source columns are null).
OPS = ("I", "U", "D", "T")


class LandedFileError(ValueError):
    """A landed file cannot enter the lake; the message names the file."""


@dataclass(frozen=True)
class LandedFile:
    path: str  # inside the landing filesystem
    rel: str  # relative to the table's landing folder
    name: str  # its identity, with its size and digest (landed twice, same content: one file)
    is_full_load: bool
    order_key: str  # fixed-width, sorts files of the same kind in change order
    partition_date: dt.date  # its raw partition: the source's start_date at the earliest
    name_time: dt.datetime | None  # the time in a file's name (UTC), where the name has one
    size: int = 0
    mtime_ns: int = 0
    # True where the file's position in `order_key` orders its changes and commit times need
    # not (a Kafka partition: by offset); `_seq` then leaves commit times out.
    ordered_by_file: bool = False


@dataclass(frozen=True)
class FileChanges:
    """One file read: its change rows and the digest of the bytes they came from."""

    file: LandedFile
    rows: pa.Table
    digest: str


R = TypeVar("R")


@dataclass(frozen=True)
class TableFiles:
    """What a format may need to read a table's new files besides the files: the landing
    filesystem, where the lake keeps the table's bookkeeping, and the landed files raw holds."""

    source: Source
    table: Table
    fs: object  # the landing filesystem (pyarrow.fs.FileSystem)
    lake_root: str | None
    held: Callable[[], Collection[str]]  # names of the landed files raw holds (read when asked)

    def state(self, name: str) -> str:
        """A path of the table's bookkeeping in the lake: `_state/<source>/<table>/<name>`."""
        if self.lake_root is None:
            raise ValueError(f"table {self.source.name}.{self.table.name}: no lake root given")
        return f"{self.lake_root.rstrip('/')}/_state/{self.source.name}/{self.table.name}/{name}"


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def is_bookkeeping(rel: str) -> bool:
    """Hidden files and `_`-prefixed folders or files: a tool's own, not change data."""
    return any(part.startswith(("_", ".")) for part in rel.split("/"))


def check_column_name(file: LandedFile, name: str) -> None:
    if name.startswith("_"):
        raise LandedFileError(
            f"{file.path}: column {name!r} starts with '_', which the lake reserves"
        )


def change_rows(
    file: LandedFile,
    table: Table,
    columns: dict[str, pa.Array | pa.ChunkedArray],
    op: pa.Array | pa.ChunkedArray,
    commit: pa.Array | pa.ChunkedArray,
    pos: pa.Array | None = None,
) -> pa.Table:
    """What `parse` returns: the source columns, then `_op`, `_commit_ts` and `_file_pos` (the
    row's index in the file unless given). A truncate has no key, so a file of truncates alone
    may lack the key columns."""
    missing = [k for k in table.primary_key if k not in columns]
    if missing and pc.any(pc.not_equal(pc.fill_null(op, ""), "T")).as_py():
        raise LandedFileError(
            f"{file.path}: primary key column(s) {missing} of table {table.name!r} missing"
        )
    if pos is None:
        pos = pa.array(np.arange(len(op), dtype=np.int64))
    return pa.table({**columns, "_op": op, "_commit_ts": commit, "_file_pos": pos})


class LandingFormat(ABC):
    """A landing format. Subclasses name files (`identify`) and parse them (`parse`); a format
    with a layout of its own overrides `table_root` or `list_files`."""

    ops: tuple[str, ...] = OPS  # the `_op` values its files may hold

    def table_root(self, landing_root: str, source: Source, table: Table) -> str:
        return f"{landing_root.rstrip('/')}/{source.name}/{table.schema}/{table.name}"

    def list_files(self, landing_root: str, source: Source, table: Table) -> list[LandedFile]:
        """The table's change files, one per name, in change order (a file landed twice, in two
        folders with the same content, is one; with other content, an error naming both)."""
        fs, base = storage.filesystem(self.table_root(landing_root, source, table))
        by_name: dict[str, LandedFile] = {}
        for info in storage.list_files(fs, base):
            f = self.identify(source, table, info)
            if f is None:
                continue
            seen = by_name.setdefault(f.name, f)
            if seen.size != f.size:
                raise LandedFileError(
                    f"{f.path}: landed twice with other content "
                    f"({f.size} bytes; {seen.path} has {seen.size})"
                )
        return self.ordered(by_name.values())

    def ordered(self, files) -> list[LandedFile]:
        return sorted(files, key=lambda f: (not f.is_full_load, f.order_key))

    def filesystem(self, landing_root: str, source: Source, table: Table):
        return storage.filesystem(self.table_root(landing_root, source, table))[0]

    def read(self, source: Source, table: Table, fs, file: LandedFile) -> FileChanges:
        """The file's change rows; its digest is of the bytes read, so both describe one content."""
        try:
            with fs.open_input_stream(file.path) as f:
                data = f.read()
        except OSError as e:  # gone since it was listed, or unreadable: still named
            raise LandedFileError(f"{file.path}: cannot be read: {e}") from None
        return FileChanges(file, self.parse(source, table, file, data), digest_of(data))

    def read_files(
        self, ctx: TableFiles, files: list[LandedFile], each: Callable[[FileChanges], R]
    ) -> Iterator[R]:
        """`each` of every file's changes, one per file, in the order of `files`. By default each
        file is read alone (`read`), on all cores; a format whose changes need more than one file,
        or what the lake already holds, overrides this. Raises LandedFileError naming the first
        file that cannot be read, and reads no file after it."""
        pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
        try:
            yield from pool.map(lambda f: each(self.read(ctx.source, ctx.table, ctx.fs, f)), files)
        finally:
            pool.shutdown(cancel_futures=True)  # after a bad file, files not started are not read

    @abstractmethod
    def identify(self, source: Source, table: Table, info: storage.FileInfo) -> LandedFile | None:
        """A file found under the table's landing folder (None: not a change file); raises
        LandedFileError for a file that should be one but is not named as the format names them."""

    @abstractmethod
    def parse(self, source: Source, table: Table, file: LandedFile, data: bytes) -> pa.Table:
        """The rows of one file: the source columns, then `_op`, `_commit_ts`, `_file_pos`.
        Raises LandedFileError naming the file when it cannot be read."""
