"""Extraction from PostgreSQL (`format: postgres`): what is new at the source, landed as files.

`logical` mode reads the changes of a logical replication slot (plugin `pgoutput`, through the
SQL functions `pg_logical_slot_peek_binary_changes` and `pg_replication_slot_advance`, over one
ordinary psycopg connection), lands them as parquet files, and only then confirms the slot's
position. A crash in between re-reads the same changes; each table's files are named by the
LSNs of the first and last transaction they hold, and a re-read skips, table by table, the
transactions a landed file already holds, so raw holds each change once.

The first extraction creates the publication (`FOR TABLE` the catalog's tables) and the slot
over a replication connection, whose exported snapshot the tables are loaded from, as inserts
with a null commit time (`LOAD-<lsn>-<part>.parquet`).

`snapshot` mode reads every table in one REPEATABLE READ transaction, in batches from a
server-side cursor, and lands each as a `format: snapshot` file named by the snapshot's time;
formats/postgres.py hands those to format snapshot's diff.

Landing layout, under `$LAKE_LANDING/<source>/`:
    <schema>/<table>/LOAD-<consistent LSN, 16 hex>-<part, 5 digits>.parquet
    <schema>/<table>/<yyyy>/<MM>/<dd>/<first commit LSN>-<last commit LSN>.parquet
    _postgres/state.json      the slot and its initial load (bookkeeping, read by no format)
Each file holds `_op`, `_commit_ts` and `_lsn` (the transaction's commit LSN), then the
table's columns; formats/postgres.py reads them back.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lake_assets.catalog import Source, Table
from lake_assets.lib import pgoutput, storage
from lake_assets.settings import source_dsn

Say = Callable[[str], None]
UTC_TS = pa.timestamp("us", tz="UTC")
STATE = "_postgres/state.json"
LOAD_NAME = re.compile(r"^LOAD-([0-9A-F]{16})-(\d{5})\.parquet$")
CDC_NAME = re.compile(r"^([0-9A-F]{16})-([0-9A-F]{16})\.parquet$")
_UNCONSTRAINED = pa.decimal128(38, 18)
_DEC_CTX = decimal.Context(prec=76)


class PostgresError(RuntimeError):
    """An extraction cannot go on; the message is one line naming the source and what to fix."""


# -- connecting ---------------------------------------------------------------------------------
def _redact(text: str, dsn: str) -> str:
    """The message without the password, whatever libpq or the server put in it."""
    import psycopg

    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        password = None
    line = " ".join(str(text).split())
    return line.replace(str(password), "***") if password else line


def connect(source: Source, replication: bool = False, autocommit: bool = True):
    """One connection as the source's `dsn_env` says, in UTC with ISO dates, each statement
    bounded by the source's `statement_timeout_s`."""
    import psycopg

    var = source.dsn_env
    dsn = source_dsn(var) if var else None
    if not dsn:
        raise PostgresError(
            f"source {source.name!r}: the environment variable {var} (its dsn_env) is not set; "
            "set it to a libpq connection string"
        )
    kwargs: dict[str, Any] = {"autocommit": autocommit, "connect_timeout": 10}
    if replication:
        kwargs["replication"] = "database"
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
        conn = psycopg.connect(dsn, **kwargs)
    except psycopg.Error as e:
        raise PostgresError(
            f"source {source.name!r}: cannot connect with the DSN in {var}: {_redact(e, dsn)}"
        ) from None
    if not replication:
        # Settings of the session, not of a transaction: set, then committed where one opened.
        conn.execute(
            "SELECT set_config('TimeZone', 'UTC', false), "
            "set_config('DateStyle', 'ISO', false), "
            "set_config('statement_timeout', %s, false), "
            "set_config('application_name', 'lake_assets', false)",
            (str(int(source.statement_timeout_s * 1000)),),
        )
        if not autocommit:
            conn.commit()
    return conn


# -- types --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnSpec:
    """How one column's text values become arrow values."""

    name: str
    arrow: pa.DataType
    load: Callable[[bytes], Any]
    quantize: bool = False  # unconstrained numeric, to 18 places


_SCALARS = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    26: pa.int64(),
    700: pa.float32(),
    701: pa.float64(),
    1082: pa.date32(),
    1114: UTC_TS,  # timestamp: as UTC
    1184: UTC_TS,  # timestamptz: in UTC (the session's time zone)
    17: pa.binary(),
    25: pa.string(),
    1043: pa.string(),
    1042: pa.string(),
    19: pa.string(),
    18: pa.string(),
    1700: None,  # numeric: by its typmod
}


def _text(data: bytes) -> str:
    return bytes(data).decode("utf-8")


class TypeMap:
    """Column types of the source, resolved once per extraction (domains to their base type,
    arrays to their element type); what is neither a known scalar nor an array of one is text."""

    def __init__(self, conn):
        from psycopg import pq
        from psycopg.adapt import Transformer

        self.conn = conn
        self.tx = Transformer()
        self.text_format = pq.Format.TEXT
        self.info: dict[int, tuple[str, int, int]] = {}  # oid: (typtype, basetype, elem)

    def _resolve(self, oids: Iterable[int]) -> None:
        todo = sorted({o for o in oids if o not in self.info and o not in _SCALARS})
        while todo:
            rows = self.conn.execute(
                "SELECT oid::int8, typtype::text, typbasetype::int8, typelem::int8 "
                "FROM pg_type WHERE oid = ANY(%s)",
                (todo,),
            ).fetchall()
            for oid, typtype, base, elem in rows:
                self.info[oid] = (typtype, base, elem if typtype == "b" else 0)
            more = {v for _o, (_t, b, e) in self.info.items() for v in (b, e) if v}
            todo = sorted(o for o in more if o not in self.info and o not in _SCALARS)

    def base(self, oid: int) -> int:
        while oid in self.info and self.info[oid][0] == "d":
            oid = self.info[oid][1]
        return oid

    def spec(self, name: str, oid: int, typmod: int) -> ColumnSpec:
        self._resolve([oid])
        oid = self.base(oid)
        if oid in _SCALARS:
            arrow, quantize = _SCALARS[oid], False
            if oid == 1700:
                arrow, quantize = _numeric_type(typmod)
            if arrow is None or pa.types.is_string(arrow):
                return ColumnSpec(name, pa.string(), _text)
            return ColumnSpec(name, arrow, self._loader(oid), quantize)
        elem = self.info.get(oid, ("", 0, 0))[2]
        elem = self.base(elem) if elem else 0
        if elem and elem in _SCALARS:
            arrow = _SCALARS[elem]
            if elem == 1700:
                arrow = _UNCONSTRAINED  # an array's typmod is its elements'
                typed = _numeric_type(typmod)[0]
                arrow = typed if typed is not None else arrow
            if arrow is None:
                arrow = pa.string()
            array_oid = self._array_oid(elem)
            if array_oid:
                return ColumnSpec(name, pa.list_(arrow), self._loader(array_oid))
        return ColumnSpec(name, pa.string(), _text)  # json, jsonb, uuid, enums, anything else

    def _array_oid(self, elem: int) -> int | None:
        from psycopg.postgres import types

        info = types.get(elem)
        return info.array_oid if info is not None and info.array_oid else None

    def _loader(self, oid: int) -> Callable[[bytes], Any]:
        return self.tx.get_loader(oid, self.text_format).load


def _numeric_type(typmod: int) -> tuple[pa.DataType | None, bool]:
    """numeric(p,s) -> decimal(p,s); unconstrained -> decimal(38,18); p > 38 -> text."""
    if typmod < 4:
        return _UNCONSTRAINED, True
    mod = typmod - 4
    precision, scale = (mod >> 16) & 0xFFFF, mod & 0x7FF
    if scale & 0x400:  # PostgreSQL 15 allows a negative scale: -1024..1000 in 11 bits
        scale -= 0x800
    if scale < 0:
        precision, scale = precision - scale, 0
    if precision > 38:
        return None, False
    return pa.decimal128(precision, scale), False


def to_arrow(spec: ColumnSpec, values: list, where: str) -> pa.Array:
    """A column's text values (bytes or None) as arrow, or an error naming the value's row."""
    out = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            value = spec.load(v)
            if spec.quantize:
                value = value.quantize(decimal.Decimal("1e-18"), context=_DEC_CTX)
        except Exception as e:  # a loader's own error (psycopg.DataError, …)
            raise PostgresError(
                f"{where} column {spec.name!r}: value {_text(v)[:40]!r} cannot be read: {e}"
            ) from None
        if isinstance(value, decimal.Decimal) and not value.is_finite():
            raise PostgresError(
                f"{where} column {spec.name!r}: {value} has no decimal value in the lake"
            )
        out.append(value)
    try:
        return pa.array(out, spec.arrow)
    except (pa.ArrowException, ValueError, TypeError) as e:
        raise PostgresError(f"{where} column {spec.name!r}: {e}") from None


def table_columns(conn, types: TypeMap, table: Table) -> list[ColumnSpec]:
    rows = conn.execute(
        "SELECT a.attname, a.atttypid::int8, a.atttypmod FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (qualified(table),),
    ).fetchall()
    return [types.spec(n, oid, mod) for n, oid, mod in rows]


def qualified(table: Table) -> str:
    return f'"{table.schema}"."{table.name}"'


# -- landing files ------------------------------------------------------------------------------
def table_root(landing: str, source: Source, table: Table) -> str:
    return f"{landing.rstrip('/')}/{source.name}/{table.schema}/{table.name}"


def write_parquet(uri: str, tables: Iterable[pa.Table], schema: pa.Schema | None = None) -> int:
    """Write the tables' rows as one parquet file, under a hidden name first, then moved into
    place: a reader sees the whole file or none. Returns the rows written."""
    fs, path = storage.filesystem(uri)
    folder, name = path.rsplit("/", 1)
    tmp = f"{folder}/.{name}.tmp"
    fs.create_dir(folder, recursive=True)
    n = 0
    writer = None
    try:
        with fs.open_output_stream(tmp) as out:
            for t in tables:
                if writer is None:
                    writer = pq.ParquetWriter(out, schema or t.schema)
                writer.write_table(t)
                n += t.num_rows
            if writer is None and schema is not None:
                writer = pq.ParquetWriter(out, schema)
            if writer is not None:
                writer.close()
        fs.move(tmp, path)
    except BaseException:
        try:
            fs.delete_file(tmp)
        except OSError:
            pass
        raise
    return n


def landed_watermarks(landing: str, source: Source) -> dict[str, int]:
    """{table: the commit LSN of the newest transaction its landed change files hold}."""
    out = {}
    for t in source.tables:
        fs, base = storage.filesystem(table_root(landing, source, t))
        marks = [
            int(m.group(2), 16)
            for f in storage.list_files(fs, base)
            if (m := CDC_NAME.match(f.rel.rsplit("/", 1)[-1]))
        ]
        out[t.name] = max(marks, default=0)
    return out


def read_state(landing: str, source: Source) -> dict | None:
    fs, path = storage.filesystem(f"{landing.rstrip('/')}/{source.name}/{STATE}")
    try:
        with fs.open_input_stream(path) as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None
    except OSError as e:
        if "not found" in str(e).lower() or "no such file" in str(e).lower():
            return None
        raise


def write_state(landing: str, source: Source, state: dict) -> None:
    fs, path = storage.filesystem(f"{landing.rstrip('/')}/{source.name}/{STATE}")
    folder = path.rsplit("/", 1)[0]
    fs.create_dir(folder, recursive=True)
    with fs.open_output_stream(path + ".tmp") as out:
        out.write(json.dumps(state, sort_keys=True).encode())
    fs.move(path + ".tmp", path)


# -- the slot -----------------------------------------------------------------------------------
@dataclass
class Extracted:
    """What one extraction did, for the asset's materialization."""

    changes: int = 0
    files: int = 0
    loaded_rows: int = 0
    batches: int = 0
    confirmed_lsn: str = ""
    retained_bytes: int = 0  # WAL the slot keeps the server from removing (from restart_lsn)
    lag_bytes: int = 0  # WAL not yet confirmed (from confirmed_flush_lsn)
    per_table: dict[str, int] = field(default_factory=dict)


def slot_name(source: Source) -> str:
    return source.slot or f"lake_assets_{source.name}"


def _slot(conn, slot: str):
    return conn.execute(
        "SELECT plugin, confirmed_flush_lsn::text FROM pg_replication_slots "
        "WHERE slot_name = %s AND database = current_database()",
        (slot,),
    ).fetchone()


def slot_lag(conn, slot: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (pg_current_wal_lsn() - restart_lsn)::int8, "
        "(pg_current_wal_lsn() - confirmed_flush_lsn)::int8 "
        "FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    return (row[0] or 0, row[1] or 0) if row else (0, 0)


def _check_tables(conn, source: Source) -> None:
    for t in source.tables:
        found = conn.execute("SELECT to_regclass(%s)", (qualified(t),)).fetchone()[0]
        if found is None:
            raise PostgresError(
                f"source {source.name!r} table {t.name!r}: {t.schema}.{t.name} does not exist "
                "in the database"
            )
        cols = {
            r[0]
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                "AND attnum > 0 AND NOT attisdropped",
                (qualified(t),),
            )
        }
        missing = [k for k in t.primary_key if k not in cols]
        if missing:
            raise PostgresError(
                f"source {source.name!r} table {t.name!r}: primary key column(s) {missing} "
                f"are not columns of {t.schema}.{t.name}"
            )


def _publish(conn, source: Source, publication: str) -> None:
    """The publication FOR TABLE the catalog's tables, each with REPLICA IDENTITY FULL (an
    update's old row, whole: it gives back the TOASTed values an update left unchanged)."""
    for t in source.tables:
        ident = conn.execute(
            "SELECT relreplident::text FROM pg_class WHERE oid = to_regclass(%s)", (qualified(t),)
        ).fetchone()[0]
        if ident != "f":
            conn.execute(f"ALTER TABLE {qualified(t)} REPLICA IDENTITY FULL")
    exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,))
    names = ", ".join(qualified(t) for t in source.tables)
    if exists.fetchone() is None:
        conn.execute(f'CREATE PUBLICATION "{publication}" FOR TABLE {names}')
        return
    have = {
        (s, n)
        for s, n in conn.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
            (publication,),
        )
    }
    missing = [t for t in source.tables if (t.schema, t.name) not in have]
    if missing:
        conn.execute(
            f'ALTER PUBLICATION "{publication}" ADD TABLE '
            + ", ".join(qualified(t) for t in missing)
        )


def _check_published(conn, source: Source, publication: str) -> None:
    """Every table of the catalog is in the publication: else its changes would never come."""
    have = {
        (s, n)
        for s, n in conn.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
            (publication,),
        )
    }
    missing = [f"{t.schema}.{t.name}" for t in source.tables if (t.schema, t.name) not in have]
    if missing:
        raise PostgresError(
            f"source {source.name!r}: table(s) {', '.join(missing)} are not in the publication "
            f"{publication!r} the slot was loaded with; to load them, drop the slot and remove "
            f"the landing zone's {source.name}/{STATE}, then sync"
        )


def _remove_loads(landing: str, source: Source) -> None:
    for t in source.tables:
        fs, base = storage.filesystem(table_root(landing, source, t))
        for f in storage.list_files(fs, base):
            if LOAD_NAME.match(f.rel):
                fs.delete_file(f.path)


def initial_load(source: Source, landing: str, say: Say, out: Extracted) -> None:
    """Create the slot (and its publication), and land every table as of its exported
    snapshot. A load that stopped half-way (state `loading`) drops its slot and starts over."""
    slot = slot_name(source)
    state = read_state(landing, source)
    with connect(source) as conn:
        _check_tables(conn, source)
        if _slot(conn, slot) is not None:
            if not (state and state.get("phase") == "loading" and state.get("slot") == slot):
                raise PostgresError(
                    f"source {source.name!r}: replication slot {slot!r} exists but the landing "
                    f"zone holds no initial load from it; drop it "
                    f"(SELECT pg_drop_replication_slot('{slot}')) or name another slot"
                )
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        _remove_loads(landing, source)
        write_state(landing, source, {"phase": "loading", "slot": slot})
        _publish(conn, source, slot)
    repl = connect(source, replication=True)
    try:
        cur = repl.execute(
            f"CREATE_REPLICATION_SLOT \"{slot}\" LOGICAL pgoutput (SNAPSHOT 'export')"
        )
        _name, consistent, snapshot, _plugin = cur.fetchone()
        say(f"created replication slot {slot} at {consistent}")
        with connect(source, autocommit=False) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            repl.close()  # the snapshot is imported: the slot's connection is done
            lsn = pgoutput.lsn_int(consistent)
            types = TypeMap(conn)
            for t in source.tables:
                name = f"LOAD-{lsn:016X}-00000.parquet"
                n = write_parquet(
                    f"{table_root(landing, source, t)}/{name}",
                    *_load_batches(conn, types, source, t),
                )
                out.loaded_rows += n
                out.per_table[t.name] = out.per_table.get(t.name, 0) + n
                out.files += 1
                say(f"loaded {source.name}.{t.name}: {n} row(s) as of {consistent}")
            conn.rollback()
    finally:
        repl.close()
    write_state(landing, source, {"phase": "loaded", "slot": slot, "snapshot_lsn": consistent})


def extract_snapshot(source: Source, landing: str, say: Say = lambda _m: None) -> Extracted:
    """mode snapshot: every table as of one REPEATABLE READ snapshot, landed in the layout of
    `format: snapshot` (`<yyyyMMdd-HHmmssfff>.parquet`, the snapshot's time), which diffs it
    against the snapshot before it."""
    from lake_assets.formats.snapshot import file_name

    out = Extracted()
    with connect(source, autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        # The transaction's first statement takes its snapshot; now() is its start.
        taken = conn.execute("SELECT now()").fetchone()[0].astimezone(dt.timezone.utc)
        _check_tables(conn, source)
        types = TypeMap(conn)
        for t in source.tables:
            uri = f"{table_root(landing, source, t)}/{file_name(taken)}"
            batches, schema = _load_batches(conn, types, source, t, meta=False)
            n = write_parquet(uri, batches, schema)
            out.loaded_rows += n
            out.per_table[t.name] = n
            out.files += 1
            say(f"snapshot of {source.name}.{t.name}: {n} row(s) as of {taken.isoformat()}")
        conn.rollback()
    return out


def _load_batches(conn, types: TypeMap, source: Source, table: Table, meta: bool = True):
    """(the batches of a table's rows, their schema), read through a server-side cursor of
    `batch_size` rows a fetch: the table is never held whole."""
    specs = table_columns(conn, types, table)
    lead = [("_op", pa.string()), ("_commit_ts", UTC_TS), ("_lsn", pa.int64())] if meta else []
    schema = pa.schema(lead + [(s.name, s.arrow) for s in specs])
    select = ", ".join(f'"{s.name}"::text' for s in specs)
    where = f"source {source.name!r} table {table.name!r}"

    def batches():
        cur = conn.cursor(name=f"lake_load_{table.name}"[:63], binary=False)
        cur.adapters.register_loader("text", _bytes_loader())
        cur.execute(f"SELECT {select} FROM {qualified(table)}")
        while rows := cur.fetchmany(source.batch_size):
            cols = list(zip(*rows))
            n = len(rows)
            arrays = [pa.array(["I"] * n), pa.nulls(n, UTC_TS), pa.nulls(n, pa.int64())]
            arrays = arrays if meta else []
            arrays += [to_arrow(s, list(c), where) for s, c in zip(specs, cols)]
            yield pa.Table.from_arrays(arrays, schema=schema)
        cur.close()

    return batches(), schema


@cache
def _bytes_loader():
    """A loader that keeps a text value as its bytes: every column is typed by to_arrow."""
    from psycopg.adapt import Loader

    class BytesLoader(Loader):
        def load(self, data):
            return bytes(data)

    return BytesLoader


# -- changes ------------------------------------------------------------------------------------
@dataclass
class _TableRows:
    """One table's changes in a batch: (op, commit time, commit LSN, relation, values)."""

    rows: list = field(default_factory=list)
    first: int = 0
    last: int = 0


def confirm(conn, slot: str, lsn: int) -> None:
    """Move the slot's confirmed position past `lsn`: only after the files are landed."""
    conn.execute(
        "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, pgoutput.lsn_text(lsn))
    )


def extract(source: Source, landing: str, say: Say = lambda _m: None) -> Extracted:
    """Everything committed since the slot's confirmed position, landed, then confirmed."""
    if source.mode == "snapshot":
        return extract_snapshot(source, landing, say)
    out = Extracted()
    slot = slot_name(source)
    state = read_state(landing, source)
    if not state or state.get("phase") != "loaded" or state.get("slot") != slot:
        initial_load(source, landing, say, out)
    with connect(source) as conn:
        if _slot(conn, slot) is None:
            raise PostgresError(
                f"source {source.name!r}: replication slot {slot!r} is gone (dropped at the "
                f"source?): changes since the last extraction are lost; to reload the tables, "
                f"remove {landing.rstrip('/')}/{source.name}/{STATE} and the lake's tables of "
                f"{source.name!r}, then sync"
            )
        _check_published(conn, source, slot)
        types = TypeMap(conn)
        by_name = {(t.schema, t.name): t for t in source.tables}
        while True:
            marks = landed_watermarks(landing, source)
            batch = _read_batch(conn, source, slot, by_name)
            if batch is None:
                break
            tables, end_lsn, n = batch
            written = _land(source, landing, types, tables, marks, out)
            out.changes += written
            out.batches += 1
            confirm(conn, slot, end_lsn)
            out.confirmed_lsn = pgoutput.lsn_text(end_lsn)
            say(f"extracted {n} message(s), {written} new change(s); confirmed {out.confirmed_lsn}")
        out.retained_bytes, out.lag_bytes = slot_lag(conn, slot)
    return out


def _read_batch(conn, source: Source, slot: str, by_name: dict):
    """The next whole transactions (about `batch_size` messages) after the confirmed position:
    ({table: its rows}, the end LSN of the last commit, messages), or None when there are none."""
    rows = conn.execute(
        "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s, "
        "'proto_version', '1', 'publication_names', %s)",
        (slot, source.batch_size, slot),
    ).fetchall()
    if not rows:
        return None
    relations: dict[int, pgoutput.Relation] = {}
    tables: dict[str, _TableRows] = {}
    begin: pgoutput.Begin | None = None
    pending: list[tuple[str, str, pgoutput.Relation, tuple]] = []
    end_lsn = 0
    for (data,) in rows:
        msg = pgoutput.decode(data)
        if isinstance(msg, pgoutput.Begin):
            begin, pending = msg, []
        elif isinstance(msg, pgoutput.Relation):
            relations[msg.relid] = msg
        elif isinstance(msg, pgoutput.Change):
            rel = relations[msg.relid]
            table = by_name.get((rel.namespace, rel.name))
            if table is not None:
                pending.extend(_changes(source, table, rel, msg))
        elif isinstance(msg, pgoutput.Truncate):
            for relid in msg.relids:
                rel = relations[relid]
                table = by_name.get((rel.namespace, rel.name))
                if table is not None:
                    pending.append((table.name, "T", rel, (None,) * len(rel.columns)))
        elif isinstance(msg, pgoutput.Commit):
            commit_time = begin.commit_time if begin else msg.commit_time
            for name, op, rel, values in pending:
                t = tables.setdefault(name, _TableRows(first=msg.commit_lsn))
                t.rows.append((op, commit_time, msg.commit_lsn, rel, values))
                t.last = msg.commit_lsn
            pending, end_lsn = [], msg.end_lsn
    return tables, end_lsn, len(rows)


def _changes(source: Source, table: Table, rel: pgoutput.Relation, msg: pgoutput.Change):
    """One change as (table, op, relation, values); an update of the key is a delete of the
    old key and an insert of the new one; a TOASTed value left unchanged is the old row's."""
    names = [c.name for c in rel.columns]
    key_idx = [names.index(k) for k in table.primary_key]

    def key_only(values):
        return tuple(values[i] if i in key_idx else None for i in range(len(values)))

    if msg.kind == "I":
        return [(table.name, "I", rel, msg.new)]
    if msg.kind == "D":
        return [(table.name, "D", rel, key_only(msg.old))]
    new = msg.new
    if pgoutput.UNCHANGED in new:
        if msg.old is None or msg.old_is_key_only:
            col = names[new.index(pgoutput.UNCHANGED)]
            raise PostgresError(
                f"source {source.name!r} table {table.name!r}: an update left the TOASTed value "
                f"of column {col!r} out and the old row was not sent; set REPLICA IDENTITY FULL "
                f"on {table.schema}.{table.name}"
            )
        new = tuple(o if v is pgoutput.UNCHANGED else v for v, o in zip(new, msg.old))
    if msg.old is not None and any(msg.old[i] != new[i] for i in key_idx):
        return [(table.name, "D", rel, key_only(msg.old)), (table.name, "I", rel, new)]
    return [(table.name, "U", rel, new)]


def _land(
    source: Source,
    landing: str,
    types: TypeMap,
    tables: dict[str, _TableRows],
    marks: dict[str, int],
    out: Extracted,
) -> int:
    """Each table's changes of the batch as one file, but for the transactions a landed file
    of the table already holds (a batch read again after a crash)."""
    written = 0
    for name, t in sorted(tables.items()):
        rows = [r for r in t.rows if r[2] > marks.get(name, 0)]
        if not rows:
            continue
        table = source.table(name)
        first, last = rows[0][2], rows[-1][2]
        day = rows[0][1].astimezone(dt.timezone.utc)
        uri = (
            f"{table_root(landing, source, table)}/{day:%Y/%m/%d}/{first:016X}-{last:016X}.parquet"
        )
        data = _change_table(source, table, types, rows)
        write_parquet(uri, [data])
        written += data.num_rows
        out.files += 1
        out.per_table[name] = out.per_table.get(name, 0) + data.num_rows
    return written


def _change_table(source: Source, table: Table, types: TypeMap, rows: list) -> pa.Table:
    """The rows as arrow, grouped by the relation they were decoded with (a column added in
    the batch: the rows before it lack it, null)."""
    where = f"source {source.name!r} table {table.name!r}"
    parts = []
    start = 0
    while start < len(rows):
        rel = rows[start][3]
        end = start
        while end < len(rows) and rows[end][3] is rel:
            end += 1
        group = rows[start:end]
        cols = list(zip(*(r[4] for r in group))) or [()] * len(rel.columns)
        arrays = {
            "_op": pa.array([r[0] for r in group], pa.string()),
            "_commit_ts": pa.array([r[1] for r in group], UTC_TS),
            "_lsn": pa.array([r[2] for r in group], pa.int64()),
        }
        for col, values in zip(rel.columns, cols):
            spec = types.spec(col.name, col.type_oid, col.typmod)
            arrays[col.name] = to_arrow(spec, list(values), where)
        parts.append(pa.table(arrays))
        start = end
    return pa.concat_tables(parts, promote_options="permissive")
