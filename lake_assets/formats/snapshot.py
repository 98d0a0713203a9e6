"""Whole-table snapshots (an Azure Data Factory copy, a database dump, any full extract),
parquet or csv: a table's changes are the differences between consecutive snapshots by key.

Names: `<yyyyMMdd-HHmmss[fff]>[-<part>|_<part>].parquet|csv` (UTC), in the table's landing
folder or any folder under it; every file with one time prefix is one part of one snapshot
(`_<part>` is how a Data Factory copy with `maxRowsPerFile` numbers its files).

The diff of one snapshot against the one before: a new key is an insert (`I`), a key whose
columns differ an update (`U`, the whole new row), a key gone a delete (`D`, its key alone),
each at the snapshot's time. An insert or update is attributed to the part that holds the
row, at its position there; the deletes to the snapshot's first part, after its rows.

The snapshot before is not read again from the landing zone (landed files may expire): the lake
keeps the rows of the last snapshot it diffed in a Delta table,
`_state/<source>/<table>/snapshot/<time prefix>`, written before raw's write. Raw's held files
say which snapshot raw holds, so a state left by a run whose raw write failed is never used
(the next run removes it and diffs again).

Memory stays bounded whatever the table's size: every snapshot is spilled once to local scratch
files by ranges of a 64-bit hash of its key, and the diff works one range at a time (the
snapshot's range, the state's range, read by `_hash` from the state table).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.fs as pafs
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
from lake_assets.lib import delta, storage
from lake_assets.lib import types as T
from lake_assets.lib.storage import FileInfo

R = TypeVar("R")

_NAME = re.compile(r"^(\d{8})-(\d{6})(\d{3})?(?:[-_]([0-9A-Za-z]+))?\.(parquet|csv)$")
_HASH = "_hash"  # the key's 64-bit hash, as a signed int64 that sorts like the unsigned hash
_PART = "_part"  # a spilled row's part (index of its file in the snapshot)
_POS = "_file_pos"
_BATCH_ROWS = 262_144
_UTC = pa.timestamp("us", tz="UTC")


def snapshot_time(name: str) -> str | None:
    """A snapshot file name's time prefix as `yyyyMMddHHmmssfff` (sorts by time), else None."""
    m = _NAME.match(name)
    return f"{m.group(1)}{m.group(2)}{m.group(3) or '000'}" if m else None


def file_name(when: dt.datetime, part: int | None = None, ext: str = "parquet") -> str:
    """The landed name of a snapshot (or of its part) taken at `when` (UTC)."""
    when = when.astimezone(dt.timezone.utc) if when.tzinfo else when
    stamp = when.strftime("%Y%m%d-%H%M%S") + f"{when.microsecond // 1000:03d}"
    return f"{stamp}{'' if part is None else f'-{part}'}.{ext}"


@dataclasses.dataclass
class _Snapshot:
    key: str  # yyyyMMddHHmmssfff
    parts: list[LandedFile]
    schema: pa.Schema | None = None  # typed source columns, the same in every part
    rows: list[int] = dataclasses.field(default_factory=list)  # per part
    digests: list[str] = dataclasses.field(default_factory=list)  # per part
    spill: list[str] = dataclasses.field(default_factory=list)  # per range: an arrow file

    @property
    def time(self) -> dt.datetime:
        return self.parts[0].name_time


class SnapshotFormat(LandingFormat):
    """Whole-table snapshots, parquet or csv (`csv_header`, `columns` from the catalog)."""

    ops = ("I", "U", "D")
    rows_per_range = 1_000_000  # the diff's unit of memory: rows of a snapshot per hash range

    # -- names ----------------------------------------------------------------------------
    def identify(self, source: Source, table: Table, info: FileInfo) -> LandedFile | None:
        if is_bookkeeping(info.rel):
            return None
        name = info.rel.rsplit("/", 1)[-1]
        m = _NAME.match(name)
        if not m:
            raise LandedFileError(
                f"{info.path}: not a snapshot file name "
                "(expected yyyyMMdd-HHmmss[fff][-<part>].parquet|csv)"
            )
        day, hms, frac, part = m.group(1), m.group(2), m.group(3) or "000", m.group(4) or ""
        try:
            when = dt.datetime.strptime(day + hms, "%Y%m%d%H%M%S").replace(
                tzinfo=dt.timezone.utc, microsecond=int(frac) * 1000
            )
        except ValueError:
            raise LandedFileError(f"{info.path}: the name is not a valid snapshot time") from None
        part_key = f"{int(part):012d}" if part.isdigit() else part
        return LandedFile(
            path=info.path,
            rel=info.rel,
            name=name,
            is_full_load=False,
            order_key=f"S{day}{hms}{frac}.{part_key}",
            partition_date=max(when.date(), source.start_date),
            name_time=when,
            size=info.size,
            mtime_ns=info.mtime_ns,
        )

    # -- one file alone: its rows, as inserts against an empty table ----------------------
    def parse(self, source: Source, table: Table, file: LandedFile, data: bytes) -> pa.Table:
        batches = list(self._batches(source, table, file, pa.BufferReader(data)))
        rows = pa.Table.from_batches(batches)
        n = rows.num_rows
        return change_rows(
            file,
            table,
            {c: rows.column(c) for c in rows.column_names},
            pa.repeat(pa.scalar("I", pa.string()), n),
            pa.repeat(pa.scalar(file.name_time, _UTC), n),
        )

    # -- a table's new snapshots, diffed ----------------------------------------------------
    def read_files(
        self, ctx: TableFiles, files: list[LandedFile], each: Callable[[FileChanges], R]
    ) -> Iterator[R]:
        if not files:
            return
        snaps = _grouped(files)
        applied = sorted(k for k in map(snapshot_time, ctx.held()) if k is not None)
        newest = applied[-1] if applied else None
        where = f"raw/{ctx.source.name}/{ctx.table.name}"
        for s in snaps:
            if newest is not None and s.key in applied:
                raise LandedFileError(
                    f"{s.parts[0].path}: a part of snapshot {_shown(s.key)}, which {where} "
                    "already holds; land the whole snapshot again under a later time prefix"
                )
            if newest is not None and s.key < newest:
                raise LandedFileError(
                    f"{s.parts[0].path}: snapshot {_shown(s.key)} is older than "
                    f"{_shown(newest)}, the newest snapshot {where} holds; a snapshot can only "
                    "follow the newest applied one"
                )
        states = ctx.state("snapshot")
        prior = f"{states}/{newest}" if newest is not None else None
        if prior is not None and not delta.exists(prior):
            raise LandedFileError(
                f"{snaps[0].parts[0].path}: the lake's state of the snapshot it applied last "
                f"({prior}) is missing, so the changes since it cannot be told"
            )
        _remove_other_states(states, newest)
        with tempfile.TemporaryDirectory(prefix="lake-snapshot-") as scratch:
            ranges = self._ranges(ctx, snaps, prior)
            for i, s in enumerate(snaps):
                self._spill(ctx, s, os.path.join(scratch, str(i)), ranges)
            out = f"{states}/{snaps[-1].key}"
            changes = self._diff_all(ctx, snaps, prior, ranges, out, scratch)
        for s in snaps:
            for p, f in enumerate(s.parts):
                yield each(FileChanges(f, changes[f.name], s.digests[p]))

    def _ranges(self, ctx: TableFiles, snaps: list[_Snapshot], prior: str | None) -> int:
        rows = [sum(_rows_estimate(ctx.fs, f) for f in s.parts) for s in snaps]
        if prior is not None:
            actions = delta.delta_table(prior).get_add_actions(flatten=True)
            rows.append(sum(n or 0 for n in actions.column("num_records").to_pylist()))
        return max(1, math.ceil(max(rows) / self.rows_per_range))

    # -- reading and spilling -------------------------------------------------------------
    def _spill(self, ctx: TableFiles, s: _Snapshot, folder: str, ranges: int) -> None:
        """Every row of the snapshot once, into one arrow file per key range, with its key's
        hash, part and position; the snapshot's schema, rows and digests are noted."""
        os.makedirs(folder)
        s.spill = [os.path.join(folder, f"{r}.arrow") for r in range(ranges)]
        writers: list[pa.ipc.RecordBatchFileWriter] = []
        try:
            for p, f in enumerate(s.parts):
                s.digests.append(_digest(ctx.fs, f))
                pos = 0
                with _open(ctx.fs, f) as stream:
                    for batch in self._batches(ctx.source, ctx.table, f, stream):
                        if s.schema is None:
                            s.schema = batch.schema
                            spilled = _spilled_schema(s.schema)
                            writers = [pa.ipc.new_file(path, spilled) for path in s.spill]
                        batch = _same_schema(s, f, batch)
                        _check_keys(ctx, f, batch, pos)
                        pos = _write_ranges(ctx.table, batch, p, pos, writers, ranges)
                s.rows.append(pos)
        finally:
            for w in writers:
                w.close()

    def _batches(self, source: Source, table: Table, file: LandedFile, stream) -> Iterator:
        """The file's rows in typed record batches (at least one, maybe empty)."""
        try:
            if file.name.endswith(".parquet"):
                reader = pq.ParquetFile(stream)
                raw = reader.iter_batches(batch_size=_BATCH_ROWS)
                first = reader.schema_arrow
                from_csv = False
            else:
                raw, first = _csv_batches(source, table, file, stream)
                from_csv = True
            yield _typed(table, file, first.empty_table(), from_csv, check=True)
            for b in raw:
                yield _typed(table, file, pa.Table.from_batches([b]), from_csv)
        except LandedFileError:
            raise
        except (pa.ArrowException, OSError, ValueError, TypeError) as e:
            raise LandedFileError(
                f"{file.path}: cannot be read as a snapshot "
                f"{file.name.rsplit('.', 1)[-1]} file: {e}"
            ) from None

    # -- the diff, one key range at a time --------------------------------------------------
    def _diff_all(
        self,
        ctx: TableFiles,
        snaps: list[_Snapshot],
        prior: str | None,
        ranges: int,
        out: str,
        scratch: str,
    ) -> dict[str, pa.Table]:
        """Each part's change rows; the last snapshot's rows written to `out` (a Delta table)."""
        found: dict[str, list[pa.Table]] = {f.name: [] for s in snaps for f in s.parts}
        deletes: dict[str, list[pa.Table]] = {s.key: [] for s in snaps}
        spilled = _spilled_schema(snaps[-1].schema)
        final = pa.schema([f for f in spilled if f.name not in (_PART, _POS)])
        keys = list(ctx.table.primary_key)
        kept = []  # per range: the rows of the last snapshot, for the state table
        for r in range(ranges):
            old = _prior_range(prior, r, ranges)
            for s in snaps:
                new = _read_spill(s.spill[r])
                _check_unique(ctx, s, new, keys)
                old = _aligned(ctx, s, old, new.schema)
                ins_upd, gone = diff_tables(old, new, keys)
                for p, f in enumerate(s.parts):
                    mine = ins_upd.filter(pc.equal(ins_upd.column(_PART), p))
                    if mine.num_rows:
                        found[f.name].append(mine)
                if gone.num_rows:
                    deletes[s.key].append(gone)
                old = new.drop_columns([_PART, _POS])
            kept.append(os.path.join(scratch, f"state-{r}.arrow"))
            with pa.ipc.new_file(kept[-1], final) as w:
                w.write_table(old.sort_by(_HASH).cast(final), max_chunksize=_BATCH_ROWS)
            del old
        # Written from the local files alone: delta-rs cannot be called from inside its writer.
        _write_state(out, final, (b for path in kept for b in _read_spill(path).to_batches()))
        return {
            f.name: self._part_changes(ctx, s, p, found[f.name], deletes[s.key])
            for s in snaps
            for p, f in enumerate(s.parts)
        }

    def _part_changes(
        self, ctx: TableFiles, s: _Snapshot, p: int, rows: list[pa.Table], gone: list[pa.Table]
    ) -> pa.Table:
        f = s.parts[p]
        cols = list(s.schema.names)
        upserts = _concat(rows, _spilled_schema(s.schema)).sort_by(_POS)
        op = pc.if_else(
            pc.is_valid(upserts.column("_old")),
            pa.scalar("U", pa.string()),
            pa.scalar("I", pa.string()),
        )
        parts = [_changes(upserts.select(cols), op, upserts.column(_POS), s.time)]
        if p == 0 and gone:
            dels = pa.concat_tables(gone).sort_by([(k, "ascending") for k in ctx.table.primary_key])
            key_cols = {
                c: dels.column(c) if c in ctx.table.primary_key else pa.nulls(dels.num_rows, t)
                for c, t in zip(s.schema.names, s.schema.types)
            }
            pos = pa.array(np.arange(dels.num_rows, dtype=np.int64) + s.rows[0])
            op_d = pa.repeat(pa.scalar("D", pa.string()), dels.num_rows)
            parts.append(_changes(pa.table(key_cols), op_d, pos, s.time))
        both = pa.concat_tables(parts)
        return change_rows(
            f,
            ctx.table,
            {c: both.column(c) for c in cols},
            both.column("_op"),
            both.column("_commit_ts"),
            both.column(_POS),
        )


def diff_tables(old: pa.Table, new: pa.Table, keys: list[str]) -> tuple[pa.Table, pa.Table]:
    """(the rows of `new` whose key is not in `old` or whose other columns differ, with a
    boolean `_old` that is null for a new key; the key columns of the rows of `old` whose key
    is not in `new`). Both tables hold each key once; columns compared are `new`'s but for
    the `_`-prefixed ones."""
    n_idx = pa.table({**{k: new.column(k) for k in keys}, "_ni": np.arange(new.num_rows)})
    o_idx = pa.table({**{k: old.column(k) for k in keys}, "_oi": np.arange(old.num_rows)})
    joined = n_idx.join(o_idx, keys, join_type="full outer")
    ni, oi = joined.column("_ni"), joined.column("_oi")
    both = pc.and_(pc.is_valid(ni), pc.is_valid(oi))
    added = pc.filter(ni, pc.is_null(oi))
    gone = old.select(keys).take(pc.filter(oi, pc.is_null(ni)))
    nb, ob = pc.filter(ni, both), pc.filter(oi, both)
    changed = pa.array(np.zeros(len(nb), dtype=bool))
    for c in new.column_names:
        if c in keys or c.startswith("_"):
            continue
        a = new.column(c).take(nb)
        b = old.column(c).take(ob) if c in old.column_names else pa.nulls(len(ob), a.type)
        changed = pc.or_(changed, _differs(a, b))
    updated = pc.filter(nb, changed)
    rows = new.take(pa.concat_arrays([added.combine_chunks(), updated.combine_chunks()]))
    marker = pa.concat_arrays(
        [pa.nulls(len(added), pa.bool_()), pa.array(np.ones(len(updated), dtype=bool))]
    )
    return rows.append_column("_old", marker), gone


def _differs(a, b) -> pa.Array:
    """Null-aware inequality: two nulls are equal; NaN equals NaN."""
    t = a.type
    if pa.types.is_nested(t) or pa.types.is_dictionary(t):
        xs, ys = a.to_pylist(), b.to_pylist()
        return pa.array([x != y for x, y in zip(xs, ys)], pa.bool_())
    eq = pc.fill_null(pc.equal(a, b), False)
    eq = pc.or_(eq, pc.and_(pc.is_null(a), pc.is_null(b)))
    if pa.types.is_floating(t):
        eq = pc.or_(eq, pc.fill_null(pc.and_(pc.is_nan(a), pc.is_nan(b)), False))
    return pc.invert(eq)


# -- helpers -------------------------------------------------------------------------------
def _grouped(files: list[LandedFile]) -> list[_Snapshot]:
    out: dict[str, _Snapshot] = {}
    for f in sorted(files, key=lambda f: f.order_key):
        key = snapshot_time(f.name)
        out.setdefault(key, _Snapshot(key, [])).parts.append(f)
    return list(out.values())


def _shown(key: str) -> str:
    return f"{key[:8]}-{key[8:14]}{key[14:]}"


def _remove_other_states(states: str, keep: str | None) -> None:
    """States but the one of the snapshot raw holds last: superseded, or left by a run whose
    raw write did not happen."""
    fs, base = storage.filesystem(states)
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        return
    for d in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        name = d.path.rstrip("/").rsplit("/", 1)[-1]
        if d.type == pafs.FileType.Directory and name != keep:
            storage.remove_tree(f"{states}/{name}")


def _rows_estimate(fs, f: LandedFile) -> int:
    if f.name.endswith(".parquet"):
        try:
            with fs.open_input_file(f.path) as stream:
                return pq.ParquetFile(stream).metadata.num_rows
        except (pa.ArrowException, OSError):
            return 0  # named when it is read
    return f.size // 32


def _open(fs, f: LandedFile):
    try:
        return fs.open_input_file(f.path)
    except OSError as e:
        raise LandedFileError(f"{f.path}: cannot be read: {e}") from None


def _digest(fs, f: LandedFile) -> str:
    h = hashlib.sha256()
    with _open(fs, f) as stream:
        while chunk := stream.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()[:32]


def _csv_batches(source: Source, table: Table, file: LandedFile, stream):
    parse = pcsv.ParseOptions(newlines_in_values=True)
    if source.csv_header:
        read = pcsv.ReadOptions(block_size=16 << 20)
        names = None
    else:
        if not table.columns:
            raise LandedFileError(
                f"{file.path}: a csv file without a header row needs the table's `columns` "
                f"in the catalog (source {source.name!r} table {table.name!r}), "
                "or csv_header: true"
            )
        names = [c for c, _ in table.columns]
        read = pcsv.ReadOptions(column_names=names, block_size=16 << 20)
    head = stream.read(1)
    stream.seek(0)
    if not head:  # an empty file: no header, no rows
        schema = pa.schema([pa.field(n, pa.string()) for n in names or []])
        return iter(()), schema
    probe = pcsv.open_csv(stream, read_options=read, parse_options=parse)
    names = probe.schema.names
    stream.seek(0)
    convert = pcsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        null_values=[""],
    )
    reader = pcsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
    return reader, reader.schema


def _typed(table: Table, file: LandedFile, data: pa.Table, from_csv: bool, check=False):
    """A batch's columns typed as the catalog declares (parquet: checked to agree)."""
    if check:
        missing = [k for k in table.primary_key if k not in data.column_names]
        if missing:
            raise LandedFileError(
                f"{file.path}: primary key column(s) {missing} of table {table.name!r} missing"
            )
    declared = table.column_types
    cols = {}
    for name in data.column_names:
        check_column_name(file, name)
        arr = data.column(name)
        try:
            if name in declared:
                typed = T.from_text if from_csv else T.conform
                arr = typed(arr, declared[name])
            elif pa.types.is_timestamp(arr.type):
                arr = T.utc(arr)
            elif pa.types.is_large_string(arr.type):
                arr = arr.cast(pa.string())
        except (pa.ArrowException, ValueError, TypeError) as e:
            raise LandedFileError(f"{file.path}: column {name!r}: {e}") from None
        cols[name] = arr
    out = pa.table(cols)
    return out.combine_chunks().to_batches()[0] if out.num_rows else _empty_batch(out.schema)


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


def _spilled_schema(schema: pa.Schema) -> pa.Schema:
    fields = [pa.field(_HASH, pa.int64()), *schema]
    return pa.schema([*fields, pa.field(_PART, pa.int32()), pa.field(_POS, pa.int64())])


def _same_schema(s: _Snapshot, f: LandedFile, batch: pa.RecordBatch) -> pa.RecordBatch:
    if batch.schema.equals(s.schema):
        return batch
    if sorted(batch.schema.names) != sorted(s.schema.names):
        raise LandedFileError(
            f"{f.path}: its columns {batch.schema.names} are not those of the snapshot's "
            f"first part {s.parts[0].name} ({s.schema.names})"
        )
    try:
        return pa.Table.from_batches([batch]).select(s.schema.names).cast(s.schema).to_batches()[0]
    except (pa.ArrowException, IndexError) as e:
        if batch.num_rows == 0:
            return _empty_batch(s.schema)
        raise LandedFileError(
            f"{f.path}: its column types are not those of the snapshot's first part "
            f"{s.parts[0].name}: {e}"
        ) from None


def _check_keys(ctx: TableFiles, f: LandedFile, batch: pa.RecordBatch, pos: int) -> None:
    for k in ctx.table.primary_key:
        null = pc.is_null(batch.column(k))
        if pc.any(null).as_py():
            row = pos + pc.index(null, True).as_py()
            raise LandedFileError(
                f"{f.path}: row {row} (position in the file) of table "
                f"{ctx.source.name}.{ctx.table.name}: primary key column {k!r} is null"
            )


def key_hash(rows: pa.Table | pa.RecordBatch, keys: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's key (pandas' hash_pandas_object), unsigned."""
    frame = pd.DataFrame({k: rows.column(k).to_pandas() for k in keys})
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(np.uint64)


def _range_of(h: np.ndarray, ranges: int) -> np.ndarray:
    return ((h >> np.uint64(32)) * np.uint64(ranges)) >> np.uint64(32)


def _range_bounds(r: int, ranges: int) -> tuple[int, int | None]:
    """The signed `_hash` values [lo, hi) of range r (hi None: no upper bound)."""

    def start(i: int) -> int:
        return (-(-(i << 32) // ranges) << 32) - (1 << 63)

    return start(r), (start(r + 1) if r + 1 < ranges else None)


def _write_ranges(table: Table, batch, part: int, pos: int, writers, ranges: int) -> int:
    n = batch.num_rows
    if n == 0:
        return pos
    h = key_hash(batch, list(table.primary_key))
    signed = (h ^ np.uint64(1 << 63)).view(np.int64)
    r = _range_of(h, ranges)
    order = np.argsort(r, kind="stable")
    bounds = np.searchsorted(r[order], np.arange(ranges + 1))
    full = pa.RecordBatch.from_arrays(
        [
            pa.array(signed),
            *batch.columns,
            pa.repeat(pa.scalar(part, pa.int32()), n),
            pa.array(np.arange(pos, pos + n, dtype=np.int64)),
        ],
        schema=_spilled_schema(batch.schema),
    )
    for i in range(ranges):
        lo, hi = bounds[i], bounds[i + 1]
        if hi > lo:
            writers[i].write_batch(full.take(pa.array(order[lo:hi])))
    return pos + n


def _read_spill(path: str) -> pa.Table:
    with pa.memory_map(path) as source:
        return pa.ipc.open_file(source).read_all()


def _prior_range(prior: str | None, r: int, ranges: int) -> pa.Table | None:
    if prior is None:
        return None
    lo, hi = _range_bounds(r, ranges)
    where = f"{_HASH} >= {lo}" + (f" AND {_HASH} < {hi}" if hi is not None else "")
    from deltalake import QueryBuilder

    got = (
        QueryBuilder()
        .register("t", delta.delta_table(prior))
        .execute(f"SELECT * FROM t WHERE {where}")
    )
    return pa.table(got.read_all())


def _aligned(ctx: TableFiles, s: _Snapshot, old: pa.Table | None, schema: pa.Schema) -> pa.Table:
    """The prior rows with the new snapshot's columns and types (null where it had none)."""
    cols = {}
    for field in schema:
        if field.name in (_PART, _POS):
            continue
        if old is None or field.name not in old.column_names:
            cols[field.name] = pa.nulls(0 if old is None else old.num_rows, field.type)
            continue
        arr = old.column(field.name)
        if arr.type != field.type:
            try:
                arr = arr.cast(field.type)
            except (pa.ArrowException, ValueError) as e:
                raise LandedFileError(
                    f"{s.parts[0].path}: column {field.name!r} has type "
                    f"{T.spark_type_name(field.type)}, which the snapshot before's "
                    f"{T.spark_type_name(arr.type)} cannot become: {e}"
                ) from None
        cols[field.name] = arr
    return pa.table(cols)


def _check_unique(ctx: TableFiles, s: _Snapshot, rows: pa.Table, keys: list[str]) -> None:
    if rows.num_rows == 0:
        return
    counts = rows.group_by(keys).aggregate([(_PART, "count"), (_PART, "min")])
    twice = counts.filter(pc.greater(counts.column(f"{_PART}_count"), 1))
    if twice.num_rows:
        first = twice.slice(0, 1).to_pylist()[0]
        key = {k: first[k] for k in keys}
        raise LandedFileError(
            f"{s.parts[first[f'{_PART}_min']].path}: key {key} of table "
            f"{ctx.source.name}.{ctx.table.name} appears {first[f'{_PART}_count']} times in "
            f"snapshot {_shown(s.key)} (a snapshot holds each key once)"
        )


def _concat(rows: list[pa.Table], spilled: pa.Schema) -> pa.Table:
    if not rows:
        return spilled.append(pa.field("_old", pa.bool_())).empty_table()
    return pa.concat_tables(rows)


def _changes(cols: pa.Table, op, pos, when: dt.datetime) -> pa.Table:
    n = cols.num_rows
    return (
        cols.append_column("_op", op)
        .append_column("_commit_ts", pa.repeat(pa.scalar(when, _UTC), n))
        .append_column(_POS, pos)
    )


def _write_state(path: str, schema: pa.Schema, batches) -> None:
    from deltalake import write_deltalake

    storage.remove_tree(path)
    reader = pa.RecordBatchReader.from_batches(schema, batches)
    write_deltalake(
        path, reader, mode="overwrite", storage_options=storage.storage_options(path) or None
    )
