"""A seeded model of an e-commerce database (the demo source ``shop``), landed as AWS DMS
writes its S3 target.

The model keeps a live database (customers, products, orders and their items) and moves it
forward one day at a time: customers sign up, change e-mail or country, a few close their
account; products are repriced, retired and added; orders are placed with 1-5 items and move
``placed -> paid -> shipped -> delivered`` over the following days, some are cancelled before
shipping or refunded after delivery, and a still-``placed`` order now and then gets an item
added or removed. Every change is a CDC row (``Op``, ``dms_commit_ts``, then the table's
columns), flushed into a few files per table per day the way DMS does:

    <landing>/<source>/<schema>/<table>/LOAD00000001.parquet              full load (no Op)
    <landing>/<source>/<schema>/<table>/YYYY/MM/DD/YYYYMMDD-HHMMSSfff.parquet   CDC

The state of the simulated database is kept under ``<landing>/<source>/_simulator/`` (a
folder DMS never writes; the lake ignores folders starting with ``_``), so repeated calls make
one consistent history. Each day draws from its own random stream, keyed by the seed and the
date, so four days in one call land the same bytes as two calls of two days.

Two clocks. The model runs on its own simulated clock, one day after another from the
history's first day, for as long as it is asked: it never stops at today. What lands is put
on the landing clock, which never passes now, because the lake cannot place a file dated
after today (raw's daily partitions end today) and a file from the future would be a lie.
Each call's simulated days fill one window of landed time, mapped linearly (so every order,
timestamp and commit keeps its order and every table's file names keep increasing):

- a new history from ``start`` fills the time from ``start`` up to now: the demo starts it
  ``--days`` days before today, so it runs at about real speed and ends now. It has no
  warm-up days (no order is dated before ``start``) and, with ``full_load=False`` (the
  demo's), no LOAD files: the shop's existing customers and products are its first inserts,
  at ``start``. Every landed file is then dated from ``start`` on, so any catalog places it
  in the same daily partition, and one whose ``start_date`` is ``start`` has no partition
  before the data. Days spread over two landed days or more each are quiet: DMS writes one
  file per table a day for them;
- a new history without ``start`` runs at real speed, ``days`` days ending when today began;
- a landed history goes on from where it stopped and fills the time from its end up to now,
  however short: ``simulate --days 7`` a minute after the last call lands seven simulated days
  within that minute. Nothing is ever shifted once landed, so the lake never sees a file move.

The mapping skips the last 10 s of every landed day, so a day's last file is named on that
day. The windows of all calls are kept in the state; a window's end is the call's "now", to
the millisecond, and the next window starts there.

The same history lands in other tools' files too (``landing_format``): Debezium's JSON lines
as the Kafka Connect S3 sink writes them, Fivetran's rows in DMS's layout, or whole-table
snapshots; docs/formats.md, "The simulator in every format".

Dagster-free on purpose: the CLI, the demo and the tests call :func:`simulate` directly.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import yaml

from lake_assets.lib.storage import filesystem

__all__ = [
    "SimulationError",
    "SimulationSummary",
    "History",
    "history",
    "simulate",
    "TABLES",
    "PRIMARY_KEYS",
    "TIMESTAMP_COLUMN",
    "STATUSES",
    "DIRTY_KINDS",
    "arrow_schema",
]


class SimulationError(RuntimeError):
    """The simulation cannot run as asked; the message says why and what to do."""


# --------------------------------------------------------------------------------------------
# The source's shape (CONTRACT.md, "Demo source shop"): column order is file order.

TIMESTAMP_COLUMN = "dms_commit_ts"

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "customers": (
        ("customer_id", "bigint"),
        ("email", "string"),
        ("full_name", "string"),
        ("country", "string"),
        ("created_at", "timestamp"),
        ("updated_at", "timestamp"),
    ),
    "products": (
        ("product_id", "bigint"),
        ("sku", "string"),
        ("name", "string"),
        ("category", "string"),
        ("unit_price", "decimal(10,2)"),
        ("active", "boolean"),
        ("updated_at", "timestamp"),
    ),
    "orders": (
        ("order_id", "bigint"),
        ("customer_id", "bigint"),
        ("status", "string"),
        ("order_ts", "timestamp"),
        ("updated_at", "timestamp"),
    ),
    "order_items": (
        ("order_id", "bigint"),
        ("line_no", "int"),
        ("product_id", "bigint"),
        ("quantity", "int"),
        ("unit_price", "decimal(10,2)"),
        ("discount", "decimal(10,2)"),
        ("updated_at", "timestamp"),
    ),
}
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "products": ("product_id",),
    "orders": ("order_id",),
    "order_items": ("order_id", "line_no"),
}

STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "refunded")
PLACED, PAID, SHIPPED, DELIVERED, CANCELLED, REFUNDED = range(6)
TERMINAL = -1

DIRTY_KINDS = (
    "email_no_at",
    "email_space",
    "email_upper_spaces",
    "country_unknown",
    "country_uk",
    "country_lower",
    "country_padded",
    "negative_quantity",
    "orphan_order",
)

_ARROW_TYPES = {
    "bigint": pa.int64(),
    "int": pa.int32(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "decimal(10,2)": pa.decimal128(10, 2),
}

# --------------------------------------------------------------------------------------------
# Volumes at scale 1 (per day unless "initial"); every one is multiplied by `scale`.

_RATES = {
    "initial_customers": 3000,
    "initial_products": 400,
    "signups": 60,
    "customer_updates": 30,
    "customer_deletes": 3,
    "reprices": 8,
    "retirements": 1,
    "new_products": 2,
    "orders": 300,
    "item_changes": 4,
}
_WARMUP_DAYS = 3  # days simulated before the full load, so it holds orders in every status
_WEEKDAY = np.array([0.95, 0.93, 0.97, 1.0, 1.06, 1.16, 1.08])  # Monday first
_GROWTH_PER_DAY = 0.003

# Shares of dirty rows (dirty=True only).
_P_BAD_EMAIL = 0.015
_P_BAD_COUNTRY = 0.015
_P_NEGATIVE_QTY = 0.01
_P_ORPHAN = 0.01
_ORPHAN_BASE = 1_000_000_000  # customer ids are issued from 1 and never reach this

# --------------------------------------------------------------------------------------------
# Time: microseconds since the epoch, UTC.

_US = 1_000_000
_HOUR = 3600 * _US
_MINUTE = 60 * _US
_DAY = 86_400 * _US
# No change commits in the last 10 s of a day, so the day's last flush (named by the time it
# is written) still falls on that day and in that day's date folder.
_CUTOFF = _DAY - 10 * _US
_FLUSH_HOURS = (4, 8, 12, 16, 20)  # DMS writes a file per table when its batch interval ends
_NEVER = np.iinfo(np.int64).max
_LOAD_MAX_ROWS = 250_000  # DMS splits a large full load into LOAD00000001, ...02, ...

# Orders per hour of the day (UTC), evenings busiest.
_HOUR_W = np.array(
    [
        1.0,
        0.6,
        0.4,
        0.3,
        0.3,
        0.4,
        0.8,
        1.5,
        2.2,
        2.8,
        3.0,
        3.2,
        3.4,
        3.2,
        3.0,
        3.0,
        3.2,
        3.6,
        4.2,
        4.8,
        5.0,
        4.4,
        3.2,
        1.8,
    ]
)
_HOUR_P = _HOUR_W / _HOUR_W.sum()


def _epoch_us(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * _DAY


def _fmt_ms(ts_us: int) -> str:
    t = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(ts_us))
    return t.strftime("%Y%m%d-%H%M%S") + f"{t.microsecond // 1000:03d}"


# --------------------------------------------------------------------------------------------
# People, places, things.

_COUNTRIES = [  # code, weight, name locale
    ("US", 20, "en"),
    ("GB", 11, "en"),
    ("DE", 13, "de"),
    ("FR", 9, "fr"),
    ("ES", 5, "es"),
    ("IT", 5, "it"),
    ("NL", 4, "nl"),
    ("PL", 4, "pl"),
    ("SE", 3, "nordic"),
    ("DK", 2, "nordic"),
    ("NO", 1.5, "nordic"),
    ("CA", 4, "en"),
    ("AU", 3, "en"),
    ("IE", 2, "ie"),
    ("AT", 2, "de"),
    ("CH", 2, "de"),
    ("BE", 2, "fr"),
    ("PT", 1.5, "pt"),
    ("BR", 2, "pt"),
    ("MX", 1.5, "es"),
]
_COUNTRY_CODES = np.array([c for c, _, _ in _COUNTRIES], dtype=object)
_COUNTRY_P = np.array([w for _, w, _ in _COUNTRIES], dtype=float)
_COUNTRY_P /= _COUNTRY_P.sum()
_COUNTRY_LOCALE = {c: loc for c, _, loc in _COUNTRIES}

_VOCABULARY = yaml.safe_load(
    (resources.files("lake_assets.sources.shop") / "vocabulary.yaml").read_text(encoding="utf-8")
)
# locale -> (first names, last names)
_NAMES = {loc: (v["first"], v["last"]) for loc, v in _VOCABULARY["names"].items()}

_GLOBAL_DOMAINS = [
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
]
_GLOBAL_DOMAIN_P = np.array([40, 12, 10, 10, 8, 3], dtype=float)
_GLOBAL_DOMAIN_P /= _GLOBAL_DOMAIN_P.sum()
_LOCAL_DOMAINS = {
    "US": ["comcast.net", "aol.com"],
    "GB": ["btinternet.com", "sky.com"],
    "DE": ["gmx.de", "web.de", "t-online.de"],
    "AT": ["gmx.at"],
    "CH": ["bluewin.ch"],
    "FR": ["orange.fr", "free.fr", "laposte.net"],
    "BE": ["skynet.be"],
    "ES": ["telefonica.net"],
    "MX": ["prodigy.net.mx"],
    "IT": ["libero.it", "virgilio.it"],
    "NL": ["ziggo.nl", "kpnmail.nl"],
    "PL": ["wp.pl", "onet.pl", "interia.pl"],
    "SE": ["telia.com"],
    "DK": ["mail.dk"],
    "NO": ["online.no"],
    "PT": ["sapo.pt"],
    "BR": ["uol.com.br", "bol.com.br"],
    "CA": ["rogers.com", "shaw.ca"],
    "AU": ["bigpond.com"],
    "IE": ["eircom.net"],
}
_TRANSLIT = str.maketrans(
    {
        "ł": "l",
        "Ł": "L",
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "Ae",
        "ß": "ss",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "œ": "oe",
    }
)

# category -> (code, median price, adjectives, nouns, variants)
_CATEGORIES = {
    name: (c["code"], c["median_price"], c["adjectives"], c["nouns"], c["variants"])
    for name, c in _VOCABULARY["categories"].items()
}
_CATEGORY_NAMES = list(_CATEGORIES)
# The first products of every catalog: names that need csv quoting (quotes, a line break).
_FORCED_PRODUCTS = [
    ("Home & Kitchen", 'Poster "Northern Lights", 50×70 cm', 2490),
    ("Office", "Greeting Card Set\n(12 cards, assorted)", 1295),
    ("Toys", 'Board Game "Café Paris", ages 10+', 3499),
]

# --------------------------------------------------------------------------------------------
# The simulated database's state.

_STATE_FILE = "state.json"
_STATE_VERSION = 1
_STATE_SCHEMAS = {
    "customers": pa.schema(
        [
            ("customer_id", pa.int64()),
            ("email", pa.string()),
            ("full_name", pa.string()),
            ("country", pa.string()),
            ("created_at", pa.int64()),
            ("updated_at", pa.int64()),
            ("n_orders", pa.int64()),
            ("propensity", pa.float64()),
        ]
    ),
    "products": pa.schema(
        [
            ("product_id", pa.int64()),
            ("sku", pa.string()),
            ("name", pa.string()),
            ("category", pa.string()),
            ("price", pa.int64()),
            ("active", pa.bool_()),
            ("updated_at", pa.int64()),
            ("popularity", pa.float64()),
        ]
    ),
    # open orders only: not yet terminal, or delivered with a refund still to come
    "orders": pa.schema(
        [
            ("order_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("status", pa.int8()),
            ("order_ts", pa.int64()),
            ("updated_at", pa.int64()),
            ("next_at", pa.int64()),
            ("next_status", pa.int8()),
            ("n_lines", pa.int32()),
        ]
    ),
    # the live lines of orders still `placed` (the only ones that change)
    "items": pa.schema(
        [
            ("order_id", pa.int64()),
            ("line_no", pa.int32()),
            ("product_id", pa.int64()),
            ("quantity", pa.int32()),
            ("price", pa.int64()),
            ("discount", pa.int64()),
            ("updated_at", pa.int64()),
        ]
    ),
}


def _empty(name: str) -> pd.DataFrame:
    return _STATE_SCHEMAS[name].empty_table().to_pandas()


def _append(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    if not len(a):
        return b.reset_index(drop=True)
    if not len(b):
        return a
    return pd.concat([a, b], ignore_index=True)


@dataclass
class SimulationSummary:
    """What one :func:`simulate` call landed."""

    source: str
    schema: str
    landing: str
    fmt: str
    days: int
    first_day: dt.date | None  # on the simulated clock
    last_day: dt.date | None
    full_load: bool
    files_written: int
    rows: dict[str, dict[str, int]]  # table -> {"load": n, "I": n, "U": n, "D": n}
    dirty_rows: dict[str, int] = field(default_factory=dict)  # kind -> rows injected
    files: list[str] = field(default_factory=list)  # paths relative to the landing root
    seconds: float = 0.0
    landed_from: dt.datetime | None = None  # on the landing clock (file names, commit times)
    landed_to: dt.datetime | None = None
    pace: str = ""  # how simulated time maps onto landed time
    landing_format: str = "dms"  # whose files: dms, debezium, fivetran

    @property
    def total_rows(self) -> int:
        return sum(sum(ops.values()) for ops in self.rows.values())

    def describe(self) -> str:
        span = f"{self.first_day} .. {self.last_day}" if self.days else "no days"
        lines = [
            f"simulated {self.days} day(s) of {self.source} ({span}) into {self.landing}: "
            f"{self.total_rows:,} rows in {self.files_written} {self.landing_format} "
            f"{self.fmt} files in "
            f"{self.seconds:.1f}s" + (" (with the full load)" if self.full_load else "")
        ]
        if self.landed_from:
            lines.append(
                f"  landed {self.landed_from:%Y-%m-%d %H:%M:%S} .. "
                f"{self.landed_to:%Y-%m-%d %H:%M:%S} UTC, {self.pace}"
            )
        for t, ops in self.rows.items():
            lines.append(f"  {t:<12} " + "  ".join(f"{k}={v:,}" for k, v in ops.items()))
        if any(self.dirty_rows.values()):
            kinds = ", ".join(f"{k}={v}" for k, v in self.dirty_rows.items() if v)
            lines.append(f"  dirty rows: {kinds}")
        return "\n".join(lines)


class _Changes:
    """Change rows per table, in columnar parts, until a day's files are written."""

    def __init__(self) -> None:
        self.parts: dict[str, list[dict[str, np.ndarray]]] = {t: [] for t in TABLES}

    def add(
        self,
        table: str,
        op: str,
        ts: np.ndarray,
        cols: dict[str, np.ndarray],
        key_only: np.ndarray | None = None,
    ) -> None:
        n = len(ts)
        if n == 0:
            return
        part = {
            "Op": np.full(n, op, dtype=object),
            "_ts": np.asarray(ts, dtype=np.int64),
            "_key_only": np.zeros(n, bool) if key_only is None else np.asarray(key_only, bool),
        }
        for name, _ in TABLES[table]:
            part[name] = np.asarray(cols[name])
        self.parts[table].append(part)

    def frame(self, table: str) -> dict[str, np.ndarray] | None:
        """The table's changes in commit order (ties keep the order they were made in)."""
        parts = self.parts[table]
        if not parts:
            return None
        keys = list(parts[0])
        out = {k: np.concatenate([p[k] for p in parts]) for k in keys}
        order = np.argsort(out["_ts"], kind="stable")
        return {k: v[order] for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# Arrow and file formats.


def _decimal_array(cents: np.ndarray, mask: np.ndarray | None) -> pa.Array:
    v = np.asarray(cents, dtype=np.int64)
    data = np.empty((len(v), 2), dtype=np.int64)  # 128-bit little-endian two's complement
    data[:, 0] = v
    data[:, 1] = v >> 63
    validity = None
    if mask is not None and mask.any():
        validity = pa.array(~mask).buffers()[1]
    return pa.Array.from_buffers(
        pa.decimal128(10, 2), len(v), [validity, pa.py_buffer(data.tobytes())]
    )


def _column(values: np.ndarray, typ: str, mask: np.ndarray | None) -> pa.Array:
    if mask is not None and not mask.any():
        mask = None
    if typ == "decimal(10,2)":
        return _decimal_array(values, mask)
    if typ == "string":
        return pa.array(values, type=pa.string(), mask=mask, from_pandas=False)
    if typ == "bigint":
        return pa.array(values.astype(np.int64), type=pa.int64(), mask=mask)
    if typ == "int":
        return pa.array(values.astype(np.int32), type=pa.int32(), mask=mask)
    if typ == "boolean":
        return pa.array(values.astype(bool), type=pa.bool_(), mask=mask)
    if typ == "timestamp":
        return pa.array(values.astype(np.int64), type=_ARROW_TYPES["timestamp"], mask=mask)
    raise ValueError(typ)


def _to_arrow(table: str, frame: dict[str, np.ndarray], with_op: bool) -> pa.Table:
    names, cols = [], []
    if with_op:
        names.append("Op")
        cols.append(pa.array(frame["Op"], type=pa.string()))
    names.append(TIMESTAMP_COLUMN)
    cols.append(_column(frame["_ts"], "timestamp", None))
    key_only = frame["_key_only"]
    for name, typ in TABLES[table]:
        mask = None if name in PRIMARY_KEYS[table] else key_only
        names.append(name)
        cols.append(_column(frame[name], typ, mask))
    return pa.Table.from_arrays(cols, names=names)


def arrow_schema(table: str, with_op: bool = True) -> pa.Schema:
    """The schema of the files the simulator lands for `table`."""
    fields = [pa.field("Op", pa.string())] if with_op else []
    fields.append(pa.field(TIMESTAMP_COLUMN, _ARROW_TYPES["timestamp"]))
    fields += [pa.field(n, _ARROW_TYPES[t]) for n, t in TABLES[table]]
    return pa.schema(fields)


def _csv_bytes(tbl: pa.Table) -> bytes:
    """DMS csv: no header, empty unquoted field = null, strings quoted only when needed."""
    if tbl.num_rows == 0:
        return b""
    fields = []
    for col in tbl.columns:
        t = col.type
        if pa.types.is_timestamp(t):
            s = pc.strftime(col, format="%Y-%m-%d %H:%M:%S")  # us unit: seconds carry .ffffff
        elif pa.types.is_string(t):
            needs = pc.or_(
                pc.match_substring_regex(col, r'[",\r\n]'), pc.equal(pc.utf8_length(col), 0)
            )
            quoted = pc.binary_join_element_wise('"', pc.replace_substring(col, '"', '""'), '"', "")
            s = pc.if_else(needs, quoted, col)
        else:
            s = pc.cast(col, pa.string())
        fields.append(pc.fill_null(s, ""))
    lines = pc.binary_join_element_wise(*fields, ",")
    return ("\n".join(lines.to_pylist()) + "\n").encode("utf-8")


def _parquet_bytes(tbl: pa.Table) -> bytes:
    buf = io.BytesIO()
    # Fixed options: the same table always gives the same bytes. No Arrow schema blob, as a
    # non-Arrow writer (DMS) leaves none; the parquet logical types carry everything.
    pq.write_table(
        tbl,
        buf,
        compression="snappy",
        version="2.6",
        use_dictionary=True,
        write_statistics=True,
        store_schema=False,
        row_group_size=1 << 20,
    )
    return buf.getvalue()


class _Writer:
    """Puts files under the landing root; to object stores several at a time."""

    def __init__(self, landing: str, source: str, schema: str, fmt: str) -> None:
        self.fs, self.base = filesystem(landing)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self.source, self.schema, self.fmt = source, schema, fmt
        self.files: list[str] = []
        self._pool = None if self.local else ThreadPoolExecutor(max_workers=8)
        self._pending: list[Future] = []

    def table_dir(self, table: str) -> str:
        return f"{self.source}/{self.schema}/{table}"

    def _put(self, path: str, data: bytes) -> None:
        if self.local:
            self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(path) as out:
            out.write(data)

    def put(self, rel: str, data: bytes) -> None:
        path = f"{self.base}/{rel}"
        if self._pool is None:
            self._put(path, data)
        else:
            self._pending.append(self._pool.submit(self._put, path, data))
            if len(self._pending) > 64:
                self.flush()

    def flush(self) -> None:
        """Wait for every file put so far; the first failure is raised."""
        pending, self._pending = self._pending, []
        for f in pending:
            f.result()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)

    def write(self, rel_no_ext: str, tbl: pa.Table) -> None:
        rel = f"{rel_no_ext}.{self.fmt}"
        self.put(rel, _csv_bytes(tbl) if self.fmt == "csv" else _parquet_bytes(tbl))
        self.files.append(rel)

    def write_cdc(self, table: str, name_us: int, tbl: pa.Table, cut_us: int = 0) -> None:
        """A file of change rows (DMS's layout: `Op`, the timestamp column, the columns),
        named by `name_us`; they are the changes committed before `cut_us`, after the last
        file's."""
        self.write(f"{self.table_dir(table)}/{_date_of(name_us):%Y/%m/%d}/{_fmt_ms(name_us)}", tbl)

    def write_load(self, table: str, counter: int, tbl: pa.Table) -> None:
        self.write(f"{self.table_dir(table)}/LOAD{counter:08X}", tbl)

    def state(self) -> dict:
        """What the next call's writer needs to go on (a Kafka topic's next offset)."""
        return {}


class _FivetranWriter(_Writer):
    """Fivetran's rows in DMS's layout: each change the key's state at `_fivetran_synced` (its
    commit time: the simulated source is synced change by change), `_fivetran_deleted` for a
    delete; csv files have a header row."""

    def write(self, rel_no_ext: str, tbl: pa.Table) -> None:
        op = tbl.column("Op")
        rows = tbl.drop_columns(["Op", TIMESTAMP_COLUMN])
        rows = rows.append_column("_fivetran_deleted", pc.equal(op, "D"))
        rows = rows.append_column("_fivetran_synced", tbl.column(TIMESTAMP_COLUMN))
        rel = f"{rel_no_ext}.{self.fmt}"
        if self.fmt == "csv":
            data = (",".join(rows.column_names) + "\n").encode() + _csv_bytes(rows)
        else:
            data = _parquet_bytes(rows)
        self.put(rel, data)
        self.files.append(rel)


class _DebeziumWriter(_Writer):
    """Debezium's events of one Kafka partition per table, as the Kafka Connect S3 sink writes
    them with JsonFormat and schemas.enable=false (PostgreSQL connector, decimal.handling.mode
    string, timestamps as MicroTimestamp): `<topic>/partition=0/<topic>+0+<offset>.json`."""

    _OPS = {"I": "c", "U": "u", "D": "d"}

    def __init__(self, landing: str, source: str, schema: str, fmt: str, offsets: dict) -> None:
        super().__init__(landing, source, schema, fmt)
        self.offsets = {t: int(offsets.get(t, 0)) for t in TABLES}

    def topic(self, table: str) -> str:
        return f"{self.source}.{self.schema}.{table}"

    def write_cdc(self, table: str, name_us: int, tbl: pa.Table, cut_us: int = 0) -> None:
        topic, offset = self.topic(table), self.offsets[table]
        rel = f"{self.source}/{topic}/partition=0/{topic}+0+{offset:010d}.json"
        self.put(rel, self._lines(table, tbl))
        self.files.append(rel)
        self.offsets[table] = offset + tbl.num_rows

    def write_load(self, table: str, counter: int, tbl: pa.Table) -> None:
        raise SimulationError("a Debezium history has no full load")  # simulate() lands none

    def state(self) -> dict:
        return {"offsets": dict(self.offsets)}

    def _lines(self, table: str, tbl: pa.Table) -> bytes:
        cols = {}
        for name, typ in TABLES[table]:
            col = tbl.column(name)
            if typ == "timestamp":
                col = pc.cast(pc.cast(col, pa.timestamp("us")), pa.int64())
            elif typ.startswith("decimal"):
                col = pc.cast(col, pa.string())
            cols[name] = col.to_pylist()
        keys = PRIMARY_KEYS[table]
        commit_us = pc.cast(pc.cast(tbl.column(TIMESTAMP_COLUMN), pa.timestamp("us")), pa.int64())
        out = []
        for i, (op, us) in enumerate(zip(tbl.column("Op").to_pylist(), commit_us.to_pylist())):
            image = {c: v[i] for c, v in cols.items()}
            ms = us // 1000
            event = {
                "before": {k: image[k] for k in keys} if op == "D" else None,
                "after": None if op == "D" else image,
                "source": {
                    "version": "2.7.0.Final",
                    "connector": "postgresql",
                    "name": self.source,
                    "ts_ms": ms,
                    "snapshot": "false",
                    "db": self.source,
                    "schema": self.schema,
                    "table": table,
                },
                "op": self._OPS[op],
                "ts_ms": ms + 20,
            }
            out.append(json.dumps(event, separators=(",", ":")))
        return ("\n".join(out) + "\n").encode()


class _SnapshotWriter(_Writer):
    """The whole table at each flush, as a full extract (an Azure Data Factory copy) lands it:
    `<table>/<yyyyMMdd-HHmmssfff>.parquet|csv`, named by the time it is taken, holding the
    changes committed before then. A continued history starts from its last snapshot."""

    def __init__(self, landing: str, source: str, schema: str, fmt: str, last: dict) -> None:
        super().__init__(landing, source, schema, fmt)
        self.last = dict(last)
        self.rows: dict[str, pa.Table] = {}

    def _held(self, table: str) -> pa.Table:
        if table not in self.rows:
            schema = pa.schema([(c, _ARROW_TYPES[t]) for c, t in TABLES[table]])
            rel = self.last.get(table)
            if rel is None:
                self.rows[table] = schema.empty_table()
            elif self.fmt == "csv":
                with self.fs.open_input_stream(f"{self.base}/{rel}") as f:
                    data = f.read()
                # As written by _csv_bytes: zone-less UTC times, "" for an empty string.
                naive = {
                    f.name: pa.timestamp("us") if pa.types.is_timestamp(f.type) else f.type
                    for f in schema
                }
                got = pcsv.read_csv(
                    pa.py_buffer(data),
                    read_options=pcsv.ReadOptions(column_names=schema.names),
                    convert_options=pcsv.ConvertOptions(
                        column_types=naive,
                        strings_can_be_null=True,
                        quoted_strings_can_be_null=False,
                        null_values=[""],
                    ),
                )
                self.rows[table] = pa.table(
                    [
                        pc.assume_timezone(got.column(f.name), "UTC")
                        if pa.types.is_timestamp(f.type)
                        else got.column(f.name)
                        for f in schema
                    ],
                    schema=schema,
                )
            else:
                with self.fs.open_input_file(f"{self.base}/{rel}") as f:
                    self.rows[table] = pq.read_table(f).cast(schema)
        return self.rows[table]

    def write_cdc(self, table: str, name_us: int, tbl: pa.Table, cut_us: int = 0) -> None:
        keys = list(PRIMARY_KEYS[table])
        cols = [c for c, _ in TABLES[table]]
        numbered = tbl.append_column("_i", pa.array(np.arange(tbl.num_rows, dtype=np.int64)))
        last = numbered.group_by(keys).aggregate([("_i", "max")]).column("_i_max")
        latest = numbered.take(last)
        kept = self._held(table).join(latest.select(keys), keys=keys, join_type="left anti")
        now = latest.filter(pc.not_equal(latest.column("Op"), "D")).select(cols)
        rows = pa.concat_tables([kept.select(cols), now.cast(kept.select(cols).schema)])
        rows = rows.sort_by([(k, "ascending") for k in keys])
        self.rows[table] = rows
        taken = cut_us or name_us
        rel = f"{self.table_dir(table)}/{_fmt_ms(taken)}.{self.fmt}"
        self.put(rel, _csv_bytes(rows) if self.fmt == "csv" else _parquet_bytes(rows))
        self.files.append(rel)
        self.last[table] = rel

    def write_load(self, table: str, counter: int, tbl: pa.Table) -> None:
        raise SimulationError("a snapshot history has no full load")  # simulate() lands none

    def state(self) -> dict:
        return {"snapshots": dict(self.last)}


LANDING_FORMATS = ("dms", "debezium", "fivetran", "snapshot")
_FILE_TYPES = {
    "dms": ("parquet", "csv"),
    "fivetran": ("parquet", "csv"),
    "snapshot": ("parquet", "csv"),
    "debezium": ("json",),
}


def _writer(landing: str, source: str, schema: str, opts, state: dict | None) -> _Writer:
    if opts.landing_format == "debezium":
        return _DebeziumWriter(landing, source, schema, opts.fmt, (state or {}).get("offsets", {}))
    if opts.landing_format == "snapshot":
        return _SnapshotWriter(
            landing, source, schema, opts.fmt, (state or {}).get("snapshots", {})
        )
    cls = _FivetranWriter if opts.landing_format == "fivetran" else _Writer
    return cls(landing, source, schema, opts.fmt)


# --------------------------------------------------------------------------------------------
# The model.


def _ascii(s: str) -> str:
    s = unicodedata.normalize("NFKD", s.translate(_TRANSLIT)).encode("ascii", "ignore").decode()
    return "".join(ch for ch in s.lower() if ch.isalnum())


def _times(rng: np.random.Generator, n: int, day_start: int) -> np.ndarray:
    """n commit times in the day, following the day's rhythm, in [00:01, cutoff)."""
    hours = rng.choice(24, size=n, p=_HOUR_P)
    frac = rng.random(n)
    lo = hours.astype(np.int64) * _HOUR
    lo[hours == 0] = _MINUTE
    hi = np.minimum((hours.astype(np.int64) + 1) * _HOUR, _CUTOFF)
    return day_start + lo + (frac * (hi - lo)).astype(np.int64)


def _round_price(rng: np.random.Generator, euros: np.ndarray) -> np.ndarray:
    whole = np.maximum(np.floor(euros), 1).astype(np.int64)
    ending = rng.choice(np.array([99, 49, 95, 0]), size=len(euros), p=[0.6, 0.2, 0.1, 0.1])
    return np.minimum(whole * 100 + ending, 9_999_999_999)


class _Shop:
    def __init__(self, seed: int, scale: float, dirty: bool) -> None:
        self.seed, self.scale, self.dirty = seed, scale, dirty
        self.start_day: dt.date | None = None
        self.next_ids = {"customer": 1, "product": 1, "order": 1}
        self.C = _empty("customers")
        self.P = _empty("products")
        self.O = _empty("orders")
        self.I = _empty("items")
        self.used_emails: set[str] = set()
        self.dirty_counts = {k: 0 for k in DIRTY_KINDS}

    # ---- randomness ---------------------------------------------------------------------
    def rng(self, day: dt.date, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, day.toordinal(), stream])

    def rate(self, name: str, day: dt.date) -> float:
        age = (day - self.start_day).days if self.start_day else 0
        return (
            _RATES[name]
            * self.scale
            * _WEEKDAY[day.weekday()]
            * (1 + _GROWTH_PER_DAY * max(age, 0))
        )

    # ---- people ---------------------------------------------------------------------------
    def _emails(
        self, rng: np.random.Generator, firsts: list[str], lasts: list[str], countries: np.ndarray
    ) -> list[str]:
        n = len(firsts)
        pattern = rng.integers(0, 8, n)
        num = rng.integers(1, 100, n)
        year = rng.integers(1960, 2006, n)
        local_dom = rng.random(n) < 0.35
        gdom = rng.choice(len(_GLOBAL_DOMAINS), size=n, p=_GLOBAL_DOMAIN_P)
        ldom = rng.integers(0, 3, n)
        out = []
        for i in range(n):
            f, last = _ascii(firsts[i]) or "user", _ascii(lasts[i]) or "mail"
            p = pattern[i]
            local = (
                f"{f}.{last}",
                f"{f}{last}",
                f"{f[0]}{last}",
                f"{f}.{last}{num[i]}",
                f"{f}_{last}",
                f"{last}.{f}",
                f"{f}{year[i]}",
                f"{f[0]}.{last}",
            )[p]
            doms = _LOCAL_DOMAINS.get(countries[i])
            dom = doms[ldom[i] % len(doms)] if (doms and local_dom[i]) else _GLOBAL_DOMAINS[gdom[i]]
            email, k = f"{local}@{dom}", 2
            while email in self.used_emails:
                email, k = f"{local}{k}@{dom}", k + 1
            self.used_emails.add(email)
            out.append(email)
        return out

    def _people(
        self, rng: np.random.Generator, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        countries = rng.choice(_COUNTRY_CODES, size=n, p=_COUNTRY_P)
        fi, li = rng.integers(0, 1 << 30, n), rng.integers(0, 1 << 30, n)
        firsts, lasts = [], []
        for i in range(n):
            fn, ln = _NAMES[_COUNTRY_LOCALE[countries[i]]]
            firsts.append(fn[fi[i] % len(fn)])
            lasts.append(ln[li[i] % len(ln)])
        names = np.array([f"{a} {b}" for a, b in zip(firsts, lasts)], dtype=object)
        emails = np.array(self._emails(rng, firsts, lasts, countries), dtype=object)
        return names, emails, countries.astype(object)

    def _dirty_people(
        self, rng: np.random.Generator, emails: np.ndarray, countries: np.ndarray
    ) -> None:
        """In place: malformed e-mails and country codes in a small share of customer rows."""
        n = len(emails)
        if not self.dirty or n == 0:
            return
        bad_e, kind_e = rng.random(n) < _P_BAD_EMAIL, rng.integers(0, 3, n)
        bad_c, kind_c = rng.random(n) < _P_BAD_COUNTRY, rng.integers(0, 4, n)
        for i in np.flatnonzero(bad_e):
            e = emails[i]
            local, _, dom = e.partition("@")
            if kind_e[i] == 0:
                emails[i] = f"{local}.{dom}"
                self.dirty_counts["email_no_at"] += 1
            elif kind_e[i] == 1:
                cut = max(1, len(local) // 2)
                emails[i] = f"{local[:cut]} {local[cut:]}@{dom}"
                self.dirty_counts["email_space"] += 1
            else:
                emails[i] = f"  {e.upper()} "
                self.dirty_counts["email_upper_spaces"] += 1
        for i in np.flatnonzero(bad_c):
            c = countries[i]
            if kind_c[i] == 0:
                countries[i] = "XX"
                self.dirty_counts["country_unknown"] += 1
            elif kind_c[i] == 1:
                countries[i] = "UK"
                self.dirty_counts["country_uk"] += 1
            elif kind_c[i] == 2:
                countries[i] = c.lower()
                self.dirty_counts["country_lower"] += 1
            else:
                countries[i] = f"  {c.lower()} "
                self.dirty_counts["country_padded"] += 1

    # ---- products -------------------------------------------------------------------------
    def _new_products(self, rng: np.random.Generator, n: int, forced: bool) -> pd.DataFrame:
        ids = self.next_ids["product"] + np.arange(n, dtype=np.int64)
        self.next_ids["product"] += n
        cat_i = rng.integers(0, len(_CATEGORY_NAMES), n)
        adj_i, noun_i, var_i = (rng.integers(0, 1 << 30, n) for _ in range(3))
        with_variant = rng.random(n) < 0.7
        z = rng.normal(0.0, 0.6, n)
        cats, names, euros = [], [], np.empty(n)
        for i in range(n):
            cat = _CATEGORY_NAMES[cat_i[i]]
            _, median, adjs, nouns, variants = _CATEGORIES[cat]
            name = f"{adjs[adj_i[i] % len(adjs)]} {nouns[noun_i[i] % len(nouns)]}"
            if with_variant[i]:
                name += f", {variants[var_i[i] % len(variants)]}"
            cats.append(cat)
            names.append(name)
            euros[i] = median * np.exp(z[i])
        prices = _round_price(rng, euros)
        if forced:
            for i, (cat, name, cents) in enumerate(_FORCED_PRODUCTS[:n]):
                cats[i], names[i], prices[i] = cat, name, cents
        skus = [f"{_CATEGORIES[c][0]}-{pid:06d}" for c, pid in zip(cats, ids)]
        return pd.DataFrame(
            {
                "product_id": ids,
                "sku": np.array(skus, dtype=object),
                "name": np.array(names, dtype=object),
                "category": np.array(cats, dtype=object),
                "price": prices.astype(np.int64),
                "active": np.ones(n, bool),
                "updated_at": np.zeros(n, np.int64),
                "popularity": rng.lognormal(0.0, 1.0, n),
            }
        )

    @staticmethod
    def _product_cols(P: pd.DataFrame) -> dict[str, np.ndarray]:
        return {
            "product_id": P["product_id"].to_numpy(),
            "sku": P["sku"].to_numpy(object),
            "name": P["name"].to_numpy(object),
            "category": P["category"].to_numpy(object),
            "unit_price": P["price"].to_numpy(),
            "active": P["active"].to_numpy(),
            "updated_at": P["updated_at"].to_numpy(),
        }

    @staticmethod
    def _customer_cols(C: pd.DataFrame) -> dict[str, np.ndarray]:
        return {
            k: C[k].to_numpy(object if C[k].dtype == object else None)
            for k in ("customer_id", "email", "full_name", "country", "created_at", "updated_at")
        }

    @staticmethod
    def _order_cols(orders: pd.DataFrame) -> dict[str, np.ndarray]:
        status = orders["status"].to_numpy().astype(int)
        return {
            "order_id": orders["order_id"].to_numpy(),
            "customer_id": orders["customer_id"].to_numpy(),
            "status": np.array(STATUSES, dtype=object)[status],
            "order_ts": orders["order_ts"].to_numpy(),
            "updated_at": orders["updated_at"].to_numpy(),
        }

    @staticmethod
    def _item_cols(items: pd.DataFrame) -> dict[str, np.ndarray]:
        return {
            "order_id": items["order_id"].to_numpy(),
            "line_no": items["line_no"].to_numpy(),
            "product_id": items["product_id"].to_numpy(),
            "quantity": items["quantity"].to_numpy(),
            "unit_price": items["price"].to_numpy(),
            "discount": items["discount"].to_numpy(),
            "updated_at": items["updated_at"].to_numpy(),
        }

    # ---- orders ---------------------------------------------------------------------------
    @staticmethod
    def _schedule(
        rng: np.random.Generator, status: np.ndarray, t: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """When each order moves next, and where to (TERMINAL: never)."""
        n = len(status)
        u = rng.random(n)
        quick = np.clip(rng.lognormal(np.log(25 * _MINUTE), 1.2, n), 2 * _MINUTE, 2 * _DAY)
        span = rng.random(n)
        delay = np.full(n, 0.0)
        nxt = np.full(n, TERMINAL, np.int8)
        s = status
        m = (s == PLACED) & (u < 0.92)
        nxt[m], delay[m] = PAID, quick[m]
        m = (s == PLACED) & (u >= 0.92)
        nxt[m], delay[m] = CANCELLED, 30 * _MINUTE + span[m] * 3 * _DAY
        m = (s == PAID) & (u < 0.97)
        nxt[m], delay[m] = SHIPPED, 4 * _HOUR + span[m] * 3 * _DAY
        m = (s == PAID) & (u >= 0.97)
        nxt[m], delay[m] = CANCELLED, _HOUR + span[m] * 1.5 * _DAY
        m = s == SHIPPED
        nxt[m], delay[m] = DELIVERED, _DAY + span[m] * 4 * _DAY
        m = (s == DELIVERED) & (u < 0.04)
        nxt[m], delay[m] = REFUNDED, 2 * _DAY + span[m] * 19 * _DAY
        at = np.asarray(t, np.int64) + delay.astype(np.int64)
        at[at % _DAY >= _CUTOFF] -= 15 * _US  # keep the day's last seconds free (see _CUTOFF)
        at[nxt == TERMINAL] = _NEVER
        return at, nxt

    def _lines(
        self,
        rng: np.random.Generator,
        order_ids: np.ndarray,
        first_line: np.ndarray,
        t: np.ndarray,
        n_lines: np.ndarray,
        avail: dict[str, np.ndarray],
    ) -> pd.DataFrame:
        """Order lines: products by popularity, the price of the moment, some discounted."""
        total = int(n_lines.sum())
        starts = np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
        oid = np.repeat(order_ids, n_lines)
        line = (np.arange(total) - starts + np.repeat(first_line, n_lines)).astype(np.int32)
        ts = np.repeat(t, n_lines)
        pi = rng.choice(len(avail["product_id"]), size=total, p=avail["p"])
        price = np.where(
            ts >= avail["repriced_at"][pi], avail["new_price"][pi], avail["old_price"][pi]
        )
        qty = np.minimum(rng.geometric(0.55, total), 12).astype(np.int32)
        pct = rng.choice(np.array([5, 10, 15, 20, 25]), size=total)
        has_disc = rng.random(total) < 0.2
        disc = np.where(has_disc, (qty.astype(np.int64) * price * pct) // 100, 0)
        if self.dirty:
            neg = rng.random(total) < _P_NEGATIVE_QTY
            qty[neg] = -rng.integers(1, 4, int(neg.sum())).astype(np.int32)
            disc[neg] = 0
            self.dirty_counts["negative_quantity"] += int(neg.sum())
        return pd.DataFrame(
            {
                "order_id": oid,
                "line_no": line,
                "product_id": avail["product_id"][pi],
                "quantity": qty,
                "price": price.astype(np.int64),
                "discount": disc.astype(np.int64),
                "updated_at": ts,
            }
        )

    # ---- one day ----------------------------------------------------------------------------
    def day(self, day: dt.date, ch: _Changes, stream: int = 0) -> dict[str, int]:
        rng = self.rng(day, stream)
        d0 = _epoch_us(day)
        stats: dict[str, int] = {}
        # the e-mails in use, exactly as a reloaded state would know them
        self.used_emails = set(self.C["email"].tolist())

        # Products: reprices, retirements (both of products active this morning), additions.
        P = self.P
        active_idx = np.flatnonzero(P["active"].to_numpy())
        n_rep = min(rng.poisson(self.rate("reprices", day)), len(active_idx) // 4)
        rep = np.sort(rng.choice(active_idx, n_rep, replace=False))
        rest = np.setdiff1d(active_idx, rep)
        n_ret = min(rng.poisson(self.rate("retirements", day)), max(len(active_idx) - 10, 0) // 10)
        ret = np.sort(rng.choice(rest, n_ret, replace=False))
        old_price = P["price"].to_numpy().copy()
        repriced_at = np.full(len(P), _NEVER, np.int64)
        if n_rep:
            t = _times(rng, n_rep, d0)
            new = _round_price(rng, old_price[rep] / 100 * rng.uniform(0.8, 1.2, n_rep))
            P.loc[rep, "price"] = new
            P.loc[rep, "updated_at"] = t
            repriced_at[rep] = t
            ch.add("products", "U", t, self._product_cols(P.iloc[rep]))
        if n_ret:
            t = _times(rng, n_ret, d0)
            P.loc[ret, "active"] = False
            P.loc[ret, "updated_at"] = t
            ch.add("products", "U", t, self._product_cols(P.iloc[ret]))
        orderable = np.setdiff1d(rest, ret)
        pop = P["popularity"].to_numpy()[orderable]
        avail = {
            "product_id": P["product_id"].to_numpy()[orderable],
            "p": pop / pop.sum(),
            "old_price": old_price[orderable],
            "new_price": P["price"].to_numpy()[orderable],
            "repriced_at": repriced_at[orderable],
        }
        n_new = rng.poisson(self.rate("new_products", day))
        if n_new:
            newp = self._new_products(rng, n_new, forced=False)
            newp["updated_at"] = np.sort(_times(rng, n_new, d0))
            ch.add("products", "I", newp["updated_at"].to_numpy(), self._product_cols(newp))
            self.P = _append(P, newp)

        # Customers: closures (only of customers who never ordered), changes, sign-ups.
        C = self.C
        n0 = len(C)
        cand = np.flatnonzero((C["n_orders"].to_numpy() == 0) & (C["created_at"].to_numpy() < d0))
        n_del = min(rng.poisson(self.rate("customer_deletes", day)), len(cand) // 2)
        dele = np.sort(rng.choice(cand, n_del, replace=False))
        others = np.setdiff1d(np.arange(n0), dele)
        n_upd = min(rng.poisson(self.rate("customer_updates", day)), len(others) // 2)
        upd = np.sort(rng.choice(others, n_upd, replace=False))
        if n_upd:
            t = _times(rng, n_upd, d0)
            change_email = rng.random(n_upd) < 0.6
            sub = C.iloc[upd]
            emails = sub["email"].to_numpy(object).copy()
            countries = sub["country"].to_numpy(object).copy()
            ei = np.flatnonzero(change_email)
            if len(ei):
                names = sub["full_name"].to_numpy(object)[ei]
                firsts = [s.split(" ", 1)[0] for s in names]
                lasts = [s.split(" ", 1)[-1] for s in names]
                emails[ei] = self._emails(rng, firsts, lasts, countries[ei])
            ci = np.flatnonzero(~change_email)
            if len(ci):
                moved = rng.choice(_COUNTRY_CODES, size=len(ci), p=_COUNTRY_P)
                same = moved == countries[ci]
                moved[same] = np.where(moved[same] == "DE", "AT", "DE")
                countries[ci] = moved
            self._dirty_people(rng, emails, countries)
            C.loc[upd, "email"] = emails
            C.loc[upd, "country"] = countries
            C.loc[upd, "updated_at"] = t
            ch.add("customers", "U", t, self._customer_cols(C.iloc[upd]))
        if n_del:
            t = _times(rng, n_del, d0)
            key_only = rng.random(n_del) < 0.4
            ch.add("customers", "D", t, self._customer_cols(C.iloc[dele]), key_only)
            C = C.drop(index=dele).reset_index(drop=True)
        # who may order today: customers of this morning who are still there
        eligible = np.flatnonzero(C["created_at"].to_numpy() < d0)
        n_sign = rng.poisson(self.rate("signups", day))
        stats["signups"] = n_sign
        if n_sign:
            t = np.sort(_times(rng, n_sign, d0))
            names, emails, countries = self._people(rng, n_sign)
            self._dirty_people(rng, emails, countries)
            ids = self.next_ids["customer"] + np.arange(n_sign, dtype=np.int64)
            self.next_ids["customer"] += n_sign
            newc = pd.DataFrame(
                {
                    "customer_id": ids,
                    "email": emails,
                    "full_name": names,
                    "country": countries,
                    "created_at": t,
                    "updated_at": t,
                    "n_orders": np.zeros(n_sign, np.int64),
                    "propensity": rng.lognormal(0.0, 1.0, n_sign),
                }
            )
            ch.add("customers", "I", t, self._customer_cols(newc))
            C = _append(C, newc)
        self.C = C

        # Orders placed today, with their lines.
        n_ord = rng.poisson(self.rate("orders", day)) if len(eligible) and len(orderable) else 0
        stats["orders"] = n_ord
        if n_ord:
            t = np.sort(_times(rng, n_ord, d0))
            prop = C["propensity"].to_numpy()[eligible]
            who = eligible[rng.choice(len(eligible), size=n_ord, p=prop / prop.sum())]
            cust = C["customer_id"].to_numpy()[who].copy()
            if self.dirty:
                orphan = rng.random(n_ord) < _P_ORPHAN
                cust[orphan] = _ORPHAN_BASE + rng.integers(0, 10**8, int(orphan.sum()))
                self.dirty_counts["orphan_order"] += int(orphan.sum())
                who = who[~orphan]
            counts = np.bincount(who, minlength=len(C))
            C["n_orders"] = C["n_orders"].to_numpy() + counts
            ids = self.next_ids["order"] + np.arange(n_ord, dtype=np.int64)
            self.next_ids["order"] += n_ord
            n_lines = rng.choice(np.arange(1, 6), size=n_ord, p=[0.42, 0.26, 0.16, 0.10, 0.06])
            status = np.full(n_ord, PLACED, np.int8)
            next_at, next_status = self._schedule(rng, status, t)
            neworders = pd.DataFrame(
                {
                    "order_id": ids,
                    "customer_id": cust,
                    "status": status,
                    "order_ts": t,
                    "updated_at": t,
                    "next_at": next_at,
                    "next_status": next_status,
                    "n_lines": n_lines.astype(np.int32),
                }
            )
            items = self._lines(rng, ids, np.ones(n_ord, np.int64), t, n_lines, avail)
            ch.add("orders", "I", t, self._order_cols(neworders))
            ch.add("order_items", "I", items["updated_at"].to_numpy(), self._item_cols(items))
            self.O = _append(self.O, neworders)
            self.I = _append(self.I, items)

        # A still-placed order gets an item added or removed, before it is paid or cancelled.
        orders = self.O
        lo = np.maximum(orders["order_ts"].to_numpy(), d0) + 1000
        hi = np.minimum(orders["next_at"].to_numpy(), d0 + _CUTOFF)
        cand = np.flatnonzero((orders["status"].to_numpy() == PLACED) & (hi - lo > 2 * _MINUTE))
        n_mod = min(rng.poisson(self.rate("item_changes", day)), len(cand)) if len(orderable) else 0
        if n_mod:
            pick = np.sort(rng.choice(cand, n_mod, replace=False))
            t = lo[pick] + (rng.random(n_mod) * (hi[pick] - lo[pick])).astype(np.int64)
            remove_wish = rng.random(n_mod) < 0.4
            line_pick = rng.integers(0, 1 << 30, n_mod)
            key_only = rng.random(n_mod) < 0.4
            lines_of = self.I.groupby("order_id", sort=False).indices
            oids = orders["order_id"].to_numpy()[pick]
            drop_rows, del_t, del_k, add = [], [], [], []
            for j in range(n_mod):
                rows = lines_of.get(oids[j], np.array([], dtype=np.int64))
                if remove_wish[j] and len(rows) >= 2:
                    drop_rows.append(int(rows[line_pick[j] % len(rows)]))
                    del_t.append(t[j])
                    del_k.append(key_only[j])
                else:
                    add.append(j)
            if drop_rows:
                gone = self.I.iloc[drop_rows]
                ch.add(
                    "order_items",
                    "D",
                    np.array(del_t, np.int64),
                    self._item_cols(gone),
                    np.array(del_k),
                )
                self.I = self.I.drop(index=self.I.index[drop_rows]).reset_index(drop=True)
            if add:
                add = np.array(add)
                first = orders["n_lines"].to_numpy()[pick[add]].astype(np.int64) + 1
                items = self._lines(
                    rng, oids[add], first, t[add], np.ones(len(add), np.int64), avail
                )
                orders.loc[pick[add], "n_lines"] = first.astype(np.int32)
                ch.add("order_items", "I", items["updated_at"].to_numpy(), self._item_cols(items))
                self.I = _append(self.I, items)

        # Orders move along their life cycle; an order can take more than one step a day.
        end = d0 + _CUTOFF
        steps = 0
        while True:
            due = np.flatnonzero(orders["next_at"].to_numpy() < end)
            if not len(due):
                break
            t = orders["next_at"].to_numpy()[due].copy()
            new_status = orders["next_status"].to_numpy()[due].copy()
            orders.loc[due, "status"] = new_status
            orders.loc[due, "updated_at"] = t
            ch.add("orders", "U", t, self._order_cols(orders.iloc[due]))
            steps += len(due)
            at, nxt = self._schedule(rng, new_status, t)
            orders.loc[due, "next_at"] = at
            orders.loc[due, "next_status"] = nxt
        stats["status_changes"] = steps
        self.O = orders[orders["next_status"].to_numpy() != TERMINAL].reset_index(drop=True)
        placed = self.O["order_id"].to_numpy()[self.O["status"].to_numpy() == PLACED]
        self.I = self.I[np.isin(self.I["order_id"].to_numpy(), placed)].reset_index(drop=True)
        return stats

    # ---- the database before the first day ------------------------------------------------
    def initial(self, start: dt.date, warmup: int = _WARMUP_DAYS) -> _Changes:
        """The database as it stands when the full load starts: its whole history as changes."""
        self.start_day = start
        rng = self.rng(start, 0x10AD)
        ch = _Changes()
        origin = _epoch_us(start - dt.timedelta(days=warmup))

        n_c = max(20, round(_RATES["initial_customers"] * self.scale))
        age = (rng.random(n_c) ** 1.6) * 730 * _DAY  # more recent sign-ups than old ones
        created = np.sort(origin - 60 * _US - age.astype(np.int64))
        edited = rng.random(n_c) < 0.3
        updated = np.where(
            edited, created + (rng.random(n_c) * (origin - created)).astype(np.int64), created
        )
        names, emails, countries = self._people(rng, n_c)
        self._dirty_people(rng, emails, countries)
        self.C = pd.DataFrame(
            {
                "customer_id": np.arange(1, n_c + 1, dtype=np.int64),
                "email": emails,
                "full_name": names,
                "country": countries,
                "created_at": created,
                "updated_at": updated,
                "n_orders": np.zeros(n_c, np.int64),
                "propensity": rng.lognormal(0.0, 1.0, n_c),
            }
        )
        self.next_ids["customer"] = n_c + 1
        ch.add("customers", "I", updated, self._customer_cols(self.C))

        n_p = max(len(_FORCED_PRODUCTS) + 10, round(_RATES["initial_products"] * self.scale))
        P = self._new_products(rng, n_p, forced=True)
        P["updated_at"] = origin - 60 * _US - (rng.random(n_p) * 180 * _DAY).astype(np.int64)
        retired = rng.random(n_p) < 0.05
        retired[: len(_FORCED_PRODUCTS)] = False
        P["active"] = ~retired
        self.P = P
        ch.add("products", "I", P["updated_at"].to_numpy(), self._product_cols(P))

        for k in range(warmup, 0, -1):
            self.day(start - dt.timedelta(days=k), ch, stream=1)
        return ch


def _collapse(table: str, frame: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The table as of the end of the changes: the last change per key, deletes dropped."""
    keys = PRIMARY_KEYS[table]
    df = pd.DataFrame({k: frame[k] for k in ("Op", *[c for c, _ in TABLES[table]])})
    df = df.drop_duplicates(subset=list(keys), keep="last")
    df = df[df["Op"] != "D"].sort_values(list(keys), kind="stable")
    out = {c: df[c].to_numpy() for c in df.columns}
    out["_key_only"] = np.zeros(len(df), bool)
    return out


# --------------------------------------------------------------------------------------------
# The timeline: the simulated clock, and where on the landing clock its changes land.

_MS = 1000
_MIN_WINDOW = _US  # the real clock is waited for until a call has at least this much to fill
_STALE_CLOCK = 60 * _US  # a landed history ending further ahead of the clock is an error
_QUIET_RATIO = 2  # landed days per simulated day from which DMS writes one file a day


def _usable(t):
    """Landed time without the last 10 s of each day (see _CUTOFF), as one continuous line."""
    return (t // _DAY) * _CUTOFF + np.minimum(t % _DAY, _CUTOFF)


def _from_usable(u):
    return (u // _CUTOFF) * _DAY + u % _CUTOFF


def _date_of(ts_us: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(ts_us) // _DAY)


def _datetime_of(ts_us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=int(ts_us))


def _us_of(when: dt.datetime) -> int:
    if when.tzinfo is None:  # a time without a zone is UTC, as everywhere in the lake
        when = when.replace(tzinfo=dt.timezone.utc)
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class _Segment:
    """One call's simulated days [sim_from, sim_to) and the landed time [land_from, land_to)
    they fill: the identity at real speed, else a linear map over usable landed time."""

    sim_from: int
    sim_to: int
    land_from: int
    land_to: int

    @property
    def identity(self) -> bool:
        return (self.sim_from, self.sim_to) == (self.land_from, self.land_to)

    @property
    def ratio(self) -> float:
        """Landed time per simulated time: 1 at real speed, below 1 when compressed."""
        return (self.land_to - self.land_from) / (self.sim_to - self.sim_from)

    def land(self, t: np.ndarray) -> np.ndarray:
        if self.identity:
            return t.copy()
        lo, hi = _usable(self.land_from), _usable(self.land_to)
        frac = (t - self.sim_from).astype(np.float64) / (self.sim_to - self.sim_from)
        return _from_usable(lo + np.floor(frac * (hi - lo)).astype(np.int64))


class _Timeline:
    """Every call's segment, in order: maps any simulated instant to its landed one."""

    def __init__(self, segments: list[_Segment]) -> None:
        self.segments = segments

    def land(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, np.int64)
        if not self.segments:
            return t.copy()
        first = self.segments[0]
        # Older values (sign-ups years before the full load) keep their distance to the start.
        out = t + (first.land_from - first.sim_from)
        starts = np.array([s.sim_from for s in self.segments], np.int64)
        idx = np.searchsorted(starts, t, side="right") - 1
        for j in np.unique(idx[idx >= 0]):
            m = idx == j
            out[m] = self.segments[j].land(t[m])
        return out


def _joined(segments: list[_Segment], seg: _Segment | None) -> list[_Segment]:
    """The segments with `seg` added; real-speed days right after real-speed days join theirs,
    so two calls of two days keep the same state as one call of four."""
    if seg is None:
        return segments
    if segments and segments[-1].identity and seg.identity and segments[-1].sim_to == seg.sim_from:
        last = segments[-1]
        return segments[:-1] + [_Segment(last.sim_from, seg.sim_to, last.land_from, seg.land_to)]
    return segments + [seg]


class _Clock:
    """Now, to the millisecond: the real clock, or a fixed one (`now`, or midnight of `today`)."""

    def __init__(self, now: dt.datetime | None, today: dt.date | None) -> None:
        self.fixed = _us_of(now) if now is not None else (_epoch_us(today) if today else None)

    def now(self) -> int:
        if self.fixed is not None:
            return self.fixed // _MS * _MS
        return time.time_ns() // 1_000_000 * _MS

    def end_after(self, begin: int) -> int:
        """The end of a landing window opening at `begin`: now, once there is room after it."""
        need = _MS if self.fixed is not None else _MIN_WINDOW
        end = self.now()
        while _usable(end) - _usable(begin) < need:
            if self.fixed is not None or begin - end > _STALE_CLOCK:
                raise SimulationError(
                    f"the landed history ends at {_datetime_of(begin):%Y-%m-%d %H:%M:%S.%f} UTC "
                    f"and the clock reads {_datetime_of(end):%Y-%m-%d %H:%M:%S.%f}: nothing can "
                    "land between them without a file dated in the future"
                )
            time.sleep(0.05)  # seconds at most: a call right after another, or at midnight
            end = self.now()
        return end


def _pace(seg: _Segment) -> str:
    if seg.identity:
        return "at real speed"
    seconds = seg.ratio * 86_400
    for unit, size in (("days", 86_400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"one simulated day in {seconds / size:,.1f} {unit}"
    return f"one simulated day in {seconds:.3f} seconds"


# --------------------------------------------------------------------------------------------
# State on the landing zone.


def _state_paths(base: str, source: str) -> tuple[str, str]:
    d = f"{base}/{source}/_simulator"
    return d, f"{d}/{_STATE_FILE}"


def _save_state(fs: pafs.FileSystem, base: str, source: str, shop: _Shop, meta: dict) -> None:
    d, state_file = _state_paths(base, source)
    if isinstance(fs, pafs.LocalFileSystem):
        fs.create_dir(d, recursive=True)
    frames = (("customers", shop.C), ("products", shop.P), ("orders", shop.O), ("items", shop.I))
    for name, df in frames:
        tbl = pa.Table.from_pandas(df, schema=_STATE_SCHEMAS[name], preserve_index=False)
        with fs.open_output_stream(f"{d}/state.{name}.parquet") as out:
            out.write(_parquet_bytes(tbl))
    # written last: a run that dies midway leaves the previous state, and the next run lands
    # the same days again with the same names and bytes
    with fs.open_output_stream(state_file) as out:
        out.write((json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())


def _load_meta(fs: pafs.FileSystem, base: str, source: str) -> dict | None:
    _, state_file = _state_paths(base, source)
    if fs.get_file_info(state_file).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(state_file) as f:
        meta = json.loads(f.read().decode())
    if meta.get("version") != _STATE_VERSION:
        raise SimulationError(
            f"{state_file}: simulator state version {meta.get('version')!r} is "
            f"not {_STATE_VERSION}; land into a fresh landing zone"
        )
    # A state written before the timeline was kept landed every day at real speed.
    start, last = (dt.date.fromisoformat(meta[k]) for k in ("start_day", "last_day"))
    real = [_epoch_us(start), _epoch_us(last + dt.timedelta(days=1))]
    meta.setdefault("segments", [real * 2] if last >= start else [])
    meta.setdefault("landed_to", real[1])
    meta.setdefault("scale", 1.0)
    meta.setdefault("dirty", False)
    meta.setdefault("dirty_rows", {})
    meta.setdefault("warmup", _WARMUP_DAYS)
    meta.setdefault("full_load", True)
    meta.setdefault("landing_format", "dms")
    return meta


def _load_state(fs: pafs.FileSystem, base: str, source: str) -> dict | None:
    meta = _load_meta(fs, base, source)
    if meta is None:
        return None
    d, _ = _state_paths(base, source)
    meta["frames"] = {}
    for name, schema in _STATE_SCHEMAS.items():
        with fs.open_input_file(f"{d}/state.{name}.parquet") as f:
            meta["frames"][name] = pq.read_table(f, schema=schema).to_pandas()
    return meta


def _has_files(fs: pafs.FileSystem, path: str) -> bool:
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return False
    sel = pafs.FileSelector(path, recursive=True, allow_not_found=True)
    return any(f.type == pafs.FileType.File for f in fs.get_file_info(sel))


@dataclass(frozen=True)
class History:
    """What the simulator has landed so far for a source (its state, without the tables)."""

    source: str
    days: int
    first_day: dt.date  # the simulated clock's first and last day
    last_day: dt.date
    landed_from: dt.datetime
    landed_to: dt.datetime
    fmt: str
    seed: int
    scale: float
    dirty: bool
    dirty_rows: dict[str, int]  # kind -> rows injected over the whole history
    warmup_days: int  # simulated days folded into its first rows, dated before first_day
    full_load: bool  # its first rows are LOAD files (else CDC inserts at its first instant)
    landing_format: str = "dms"

    def describe(self) -> str:
        return (
            f"{self.days} simulated day(s) of {self.source} ({self.landing_format} {self.fmt}, "
            f"seed {self.seed}, "
            f"scale {self.scale:g}, {'dirty' if self.dirty else 'clean'}), landed "
            f"{self.landed_from:%Y-%m-%d %H:%M:%S} .. {self.landed_to:%Y-%m-%d %H:%M:%S} UTC"
        )


def history(landing: str, source: str = "shop") -> History | None:
    """The history the simulator has landed under `landing` for `source`, or None."""
    fs, base = filesystem(landing)
    meta = _load_meta(fs, base, source)
    if meta is None:
        return None
    first, last = (dt.date.fromisoformat(meta[k]) for k in ("start_day", "last_day"))
    segments = meta["segments"]
    return History(
        source=source,
        days=(last - first).days + 1,
        first_day=first,
        last_day=last,
        landed_from=_datetime_of(segments[0][2] if segments else _epoch_us(first)),
        landed_to=_datetime_of(meta["landed_to"]),
        fmt=meta["fmt"],
        seed=meta["seed"],
        scale=meta["scale"],
        dirty=meta["dirty"],
        dirty_rows=dict(meta["dirty_rows"]),
        warmup_days=meta["warmup"],
        full_load=meta["full_load"],
        landing_format=meta["landing_format"],
    )


# --------------------------------------------------------------------------------------------
# Landing the files.


def _landed(table: str, frame: dict[str, np.ndarray], timeline: _Timeline) -> dict[str, np.ndarray]:
    """The frame with every timestamp (commit time and columns) moved to the landing clock."""
    out = dict(frame)
    for name in ("_ts", *[c for c, typ in TABLES[table] if typ == "timestamp"]):
        out[name] = timeline.land(frame[name])
    return out


def _flushes(
    seg: _Segment, rng: Callable[[dt.date], np.random.Generator]
) -> tuple[list[int], dict[str, list[int]]]:
    """When DMS flushes each table's batch in `seg`, and the time each file is named by.

    A file holds the changes committed after the previous flush and before its own. Per landed
    day: at _FLUSH_HOURS and at the cutoff, named a latency later (days stretched over two or
    more are quiet: one file a day, at the cutoff); last, at the segment's end, named by it.
    """
    offsets = [h * _HOUR for h in _FLUSH_HOURS] + [_CUTOFF]
    quiet = seg.ratio >= _QUIET_RATIO
    points: list[int] = []
    names: dict[str, list[int]] = {t: [] for t in TABLES}
    day, last = _date_of(seg.land_from), _date_of(seg.land_to - 1)
    while day <= last:
        g = rng(day)
        latency_ms = {t: g.integers(150, 8000, len(offsets)) for t in TABLES}  # a stable stream
        for i, off in enumerate(offsets):
            at = _epoch_us(day) + off
            if (quiet and i < len(offsets) - 1) or not seg.land_from < at < seg.land_to:
                continue
            points.append(at)
            for t in TABLES:
                names[t].append(min(at + int(latency_ms[t][i]) * _MS, seg.land_to - _MS))
        day += dt.timedelta(days=1)
    points.append(seg.land_to)
    for t in TABLES:
        names[t].append(seg.land_to)
    return points, names


def _count_ops(rows: dict[str, int], ops: np.ndarray) -> None:
    kinds, counts = np.unique(ops.astype(str), return_counts=True)
    for op, c in zip(kinds, counts):
        rows[op] += int(c)


def _write_cdc(
    writer: _Writer,
    ch: _Changes,
    timeline: _Timeline,
    seg: _Segment,
    rng: Callable[[dt.date], np.random.Generator],
    rows: dict[str, dict[str, int]],
) -> int:
    points, names = _flushes(seg, rng)
    written = 0
    for table in TABLES:
        frame = ch.frame(table)
        if frame is None:
            continue
        frame = _landed(table, frame, timeline)
        cuts = np.searchsorted(frame["_ts"], points, side="left")
        assert cuts[-1] == len(frame["_ts"]), "a change committed after the segment's end"
        lo = 0
        for hi, name, point in zip(cuts, names[table], points):
            if hi > lo:
                part = {k: v[lo:hi] for k, v in frame.items()}
                writer.write_cdc(table, name, _to_arrow(table, part, True), point)
                written += 1
                _count_ops(rows[table], part["Op"])
            lo = hi
    return written


def _write_load(
    writer: _Writer,
    ch: _Changes,
    timeline: _Timeline,
    load_ts: int,
    rows: dict[str, dict[str, int]],
) -> int:
    written = 0
    for table in TABLES:
        frame = ch.frame(table)
        full = _collapse(table, frame) if frame is not None else None
        n = 0 if full is None else len(full["Op"])
        rows[table]["load"] += n
        if not n:
            continue
        full["_ts"] = np.full(n, load_ts, np.int64)
        full = _landed(table, full, timeline)
        for k, lo in enumerate(range(0, n, _LOAD_MAX_ROWS), start=1):
            part = {c: v[lo : lo + _LOAD_MAX_ROWS] for c, v in full.items()}
            # DMS writes full-load rows without Op unless IncludeOpForFullLoad is set
            writer.write_load(table, k, _to_arrow(table, part, False))
            written += 1
    return written


# --------------------------------------------------------------------------------------------
# One call.


@dataclass(frozen=True)
class _Options:
    seed: int
    scale: float
    fmt: str  # the file type
    dirty: bool
    landing_format: str = "dms"


def _check_args(days, seed, scale, fmt, source: str, schema: str, landing_format=None) -> None:
    if landing_format is not None and landing_format not in LANDING_FORMATS:
        raise SimulationError(
            f"landing_format must be one of {', '.join(LANDING_FORMATS)}, not {landing_format!r}"
        )
    if fmt is not None and fmt not in ("parquet", "csv", "json"):
        raise SimulationError(f"fmt must be 'parquet', 'csv' or 'json', not {fmt!r}")
    if not isinstance(days, int) or days < 0:
        raise SimulationError(f"days must be a whole number >= 0, not {days!r}")
    if seed is not None and (not isinstance(seed, int) or seed < 0):
        raise SimulationError(f"seed must be a whole number >= 0, not {seed!r}")
    if scale is not None and not scale > 0:
        raise SimulationError(f"scale must be positive, not {scale!r}")
    for what, value in (("source", source), ("schema", schema)):
        if not value or "/" in value or value.startswith("_"):
            raise SimulationError(f"{what} {value!r} cannot be a landing folder name")


def _options(
    state: dict | None, seed, scale, fmt, dirty, schema: str, where: str, landing_format=None
) -> _Options:
    """The call's options: as asked, else the landed history's, else a new history's defaults."""
    if state is None:
        lf = landing_format or "dms"
        if fmt is not None and fmt not in _FILE_TYPES[lf]:
            raise SimulationError(f"{lf} files are {' or '.join(_FILE_TYPES[lf])}, not {fmt!r}")
        return _Options(
            7 if seed is None else seed, scale or 1.0, fmt or _FILE_TYPES[lf][0], bool(dirty), lf
        )
    if (landing_format or state["landing_format"]) != state["landing_format"]:
        raise SimulationError(
            f"{where} holds a history landed as {state['landing_format']} files; continue with "
            f"landing_format={state['landing_format']!r} (asked: {landing_format!r})"
        )
    if state["schema"] != schema or (fmt or state["fmt"]) != state["fmt"]:
        raise SimulationError(
            f"{where} holds {state['fmt']} files of schema {state['schema']!r}; continue with "
            f"fmt={state['fmt']!r}, schema={state['schema']!r} (asked: {fmt!r}, {schema!r})"
        )
    if seed is not None and seed != state["seed"]:
        raise SimulationError(
            f"{where} holds the history of seed {state['seed']}, which goes on "
            f"with that seed; seed {seed} needs an empty landing zone"
        )
    return _Options(
        state["seed"],
        scale or state["scale"],
        state["fmt"],
        state["dirty"] if dirty is None else dirty,
        state["landing_format"],
    )


def _plan(
    state: dict | None, days: int, start: dt.date | None, clock: _Clock
) -> tuple[dt.date, int, _Segment | None]:
    """(first simulated day, the full load's landed time, the segment the days fill)."""
    if state is not None:
        first = dt.date.fromisoformat(state["last_day"]) + dt.timedelta(days=1)
        land_from = state["landed_to"]
    elif start is None:  # a new history at real speed, ending when today began
        today = _date_of(clock.now())
        first = today - dt.timedelta(days=days)
        if not days:
            return first, _epoch_us(first), None
        span = (_epoch_us(first), _epoch_us(today))
        return first, span[0], _Segment(*span, *span)
    else:
        first, land_from = start, _epoch_us(start)
        if land_from > clock.now():
            raise SimulationError(f"a history starting {start} would land in the future")
    if not days:
        return first, land_from, None
    sim_from = _epoch_us(first)
    seg = _Segment(sim_from, sim_from + days * _DAY, land_from, clock.end_after(land_from))
    return first, land_from, seg


def _restore(shop: _Shop, state: dict) -> None:
    shop.start_day = dt.date.fromisoformat(state["start_day"])
    shop.next_ids = dict(state["next_ids"])
    fr = state["frames"]
    shop.C, shop.P, shop.O, shop.I = fr["customers"], fr["products"], fr["orders"], fr["items"]
    shop.used_emails = set(shop.C["email"].tolist())


def _day_line(
    source: str,
    day: dt.date,
    stats: dict[str, int],
    ch: _Changes,
    n_before: int,
    timeline: _Timeline,
    note: str,
) -> str:
    n_rows = sum(len(p["_ts"]) for parts in ch.parts.values() for p in parts) - n_before
    line = (
        f"{source} {day}: {stats.get('orders', 0)} orders, {stats.get('signups', 0)} sign-ups, "
        f"{stats.get('status_changes', 0)} status changes; {n_rows} rows"
    )
    seg = timeline.segments[-1]
    if not seg.identity:
        d0 = _epoch_us(day)
        lo, hi = (_datetime_of(t) for t in timeline.land(np.array([d0, d0 + _CUTOFF])))
        line += f", landed {lo:%Y-%m-%d %H:%M:%S} .. {hi:%Y-%m-%d %H:%M:%S}"
    return line + note


def _as_inserts(initial: _Changes, at: int) -> _Changes:
    """The database `initial` ends with, as CDC inserts committed at `at`: a DMS task with no
    full load, replicating from the moment the database opened."""
    ch = _Changes()
    for table in TABLES:
        frame = initial.frame(table)
        if frame is not None:
            rows = _collapse(table, frame)
            ch.add(table, "I", np.full(len(rows["Op"]), at, np.int64), rows)
    return ch


def _simulate_days(
    shop: _Shop,
    first: dt.date,
    days: int,
    timeline: _Timeline,
    source: str,
    progress: Callable[[str], None] | None,
    ch: _Changes,
    note: str,
) -> _Changes:
    """Every change of the call's days, in one batch: files are cut on the landing clock."""
    before = 0
    for k in range(days):
        day = first + dt.timedelta(days=k)
        stats = shop.day(day, ch)
        if progress:
            progress(_day_line(source, day, stats, ch, before, timeline, note if k == 0 else ""))
        before = sum(len(p["_ts"]) for parts in ch.parts.values() for p in parts)
    return ch


def simulate(
    landing: str,
    days: int,
    *,
    seed: int | None = None,
    scale: float | None = None,
    fmt: str | None = None,
    dirty: bool | None = None,
    source: str = "shop",
    schema: str = "public",
    progress: Callable[[str], None] | None = None,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
    start: dt.date | None = None,
    full_load: bool = True,
    landing_format: str | None = None,
) -> SimulationSummary:
    """Land `days` more simulated days of the shop's history under `landing` as DMS files.

    A new history (no simulator state for `source` under `landing`) starts with the full load:
    without `start`, its days run at real speed and end when today began; with `start`, they
    fill the time from `start` up to now. A landed history goes on where it stopped, its new
    days filling the time from its end up to now. Now is the real clock unless `now` is given,
    or midnight of `today`. `seed`, `scale`, `fmt` and `dirty` default to the landed history's
    (7, 1.0, parquet, clean for a new one); a continued history keeps its seed and format.
    Without `full_load`, a new history's existing rows land as CDC inserts at its first
    instant, not as LOAD files: every file is then dated, and lands in the same daily
    partition whatever a catalog's start_date (a full load belongs to the first partition).

    `landing_format` says which tool's files land (default: the landed history's, else dms):
    `dms` (`fmt` parquet or csv), `fivetran` (DMS's layout, `_fivetran_synced` and
    `_fivetran_deleted` for `Op` and the timestamp column; parquet or csv with a header row) or
    `debezium` (JSON lines as the Kafka Connect S3 sink writes them, `fmt` json). Every format
    lands the same changes of the same history; only DMS has a full load (the others' first
    rows are inserts at the history's first instant, whatever `full_load` says).
    """
    started = time.monotonic()
    _check_args(days, seed, scale, fmt, source, schema, landing_format)
    fs, base = filesystem(landing)
    state = _load_state(fs, base, source)
    if state is None and _has_files(fs, f"{base}/{source}"):
        raise SimulationError(
            f"{landing}/{source} already holds files but no simulator state "
            f"({source}/_simulator/{_STATE_FILE}); simulate into an empty landing zone"
        )
    opts = _options(state, seed, scale, fmt, dirty, schema, f"{landing}/{source}", landing_format)
    full_load = full_load and opts.landing_format == "dms"
    first, load_ts, seg = _plan(state, days, start, _Clock(now, today))
    segments = [_Segment(*s) for s in state["segments"]] if state else []
    timeline = _Timeline(_joined(segments, seg))
    shop = _Shop(opts.seed, opts.scale, opts.dirty)
    # No warm-up before `start`: no order dated before the history's first partition.
    warmup = state["warmup"] if state else _WARMUP_DAYS if start is None else 0
    rows = {t: {"load": 0, "I": 0, "U": 0, "D": 0} for t in TABLES}
    files = 0
    writer = _writer(landing, source, schema, opts, state)
    ch, note = _Changes(), ""
    try:
        if state is None and full_load:
            initial = shop.initial(first, warmup)
            files += _write_load(writer, initial, timeline, load_ts, rows)
            note = " (after the full load)"
        elif state is None:
            ch = _as_inserts(shop.initial(first, warmup), _epoch_us(first))
            note = " (after the shop's existing customers and products, as inserts)"
        else:
            _restore(shop, state)
        if seg:
            ch = _simulate_days(shop, first, days, timeline, source, progress, ch, note)
            files += _write_cdc(writer, ch, timeline, seg, lambda d: shop.rng(d, 2), rows)
        writer.flush()  # every data file is in place before the state says so
    finally:
        writer.close()

    last = first + dt.timedelta(days=days - 1)
    injected = {
        k: (state["dirty_rows"].get(k, 0) if state else 0) + v for k, v in shop.dirty_counts.items()
    }
    meta = {
        "version": _STATE_VERSION,
        "source": source,
        "schema": schema,
        "fmt": opts.fmt,
        "landing_format": opts.landing_format,
        **writer.state(),
        "seed": opts.seed,
        "scale": opts.scale,
        "dirty": opts.dirty,
        "start_day": shop.start_day.isoformat(),
        "last_day": last.isoformat(),
        "next_ids": shop.next_ids,
        "dirty_rows": injected,
        "warmup": warmup,
        "full_load": state["full_load"] if state else full_load,
        "segments": [[s.sim_from, s.sim_to, s.land_from, s.land_to] for s in timeline.segments],
        "landed_to": seg.land_to if seg else load_ts if state is None else state["landed_to"],
    }
    _save_state(fs, base, source, shop, meta)
    return SimulationSummary(
        source=source,
        schema=schema,
        landing=landing,
        fmt=opts.fmt,
        days=days,
        first_day=first if days else None,
        last_day=last if days else None,
        full_load=state is None and full_load,
        files_written=files,
        rows=rows,
        dirty_rows=dict(shop.dirty_counts),
        files=list(writer.files),
        seconds=time.monotonic() - started,
        landed_from=_datetime_of(seg.land_from) if seg else None,
        landed_to=_datetime_of(seg.land_to) if seg else None,
        pace=_pace(seg) if seg else "",
        landing_format=opts.landing_format,
    )
