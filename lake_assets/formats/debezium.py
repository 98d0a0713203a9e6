"""Debezium change events, landed by the Kafka Connect S3 sink as JSON lines (or gzipped).

Names: `<topic>+<kafkaPartition>+<startOffset>.json[.gz]`, anywhere under the topic's folder
(the sink's `partition=<p>/` folders, or time-based ones). Each line is one record value: an
event (`before`, `after`, `source`, `op`), bare or as `{"schema": …, "payload": …}`; `null`
(a tombstone) is no change. docs/formats.md has the rules; CONTRACT.md the promise.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lake_assets.catalog import Source, Table
from lake_assets.formats.base import (
    LandedFile,
    LandedFileError,
    LandingFormat,
    change_rows,
    check_column_name,
    is_bookkeeping,
)
from lake_assets.lib import types as T
from lake_assets.lib.storage import FileInfo

_NAME = re.compile(r"^(?P<topic>.+)\+(?P<partition>\d{1,10})\+(?P<offset>\d{1,19})\.json(\.gz)?$")
_OPS = {"r": "I", "c": "I", "u": "U", "d": "D", "t": "T"}
_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_HEAD_LINES = 1000  # lines read, at most, to find a file's first event (its raw day)
_HEAD_CHUNK = 1 << 16

Decode = Callable[[Any], Any]


class DebeziumEventError(ValueError):
    """One line is not a change event the lake can hold (raised with the line's reason)."""


def topic_of(source: Source, table: Table) -> str:
    """The table's topic: the catalog's `topic`, else Debezium's `<prefix>.<schema>.<table>`."""
    return table.topic or f"{source.name}.{table.schema}.{table.name}"


class DebeziumFormat(LandingFormat):
    """Debezium through the Kafka Connect S3 sink's JsonFormat, with or without schemas."""

    def table_root(self, landing_root: str, source: Source, table: Table) -> str:
        return f"{landing_root.rstrip('/')}/{source.name}/{topic_of(source, table)}"

    def identify(self, source: Source, table: Table, info: FileInfo) -> LandedFile | None:
        if is_bookkeeping(info.rel):
            return None
        name = info.rel.rsplit("/", 1)[-1]
        m = _NAME.match(name)
        if not m:
            raise LandedFileError(
                f"{info.path}: not a Kafka Connect S3 sink JSON file name "
                "(expected <topic>+<partition>+<start offset>.json or .json.gz)"
            )
        if m.group("topic") != topic_of(source, table):
            raise LandedFileError(
                f"{info.path}: a file of topic {m.group('topic')!r} in the folder of topic "
                f"{topic_of(source, table)!r} (table {source.name}.{table.name})"
            )
        partition, offset = int(m.group("partition")), int(m.group("offset"))
        return LandedFile(
            path=info.path,
            rel=info.rel,
            name=name,
            is_full_load=False,
            # Offsets order a partition's events; partitions share no key, so their order
            # among each other is only a convention (docs/formats.md).
            order_key=f"P{partition:010d}O{offset:019d}",
            partition_date=source.start_date,  # dated by its first event in list_files
            name_time=None,
            size=info.size,
            mtime_ns=info.mtime_ns,
            ordered_by_file=True,
        )

    def list_files(self, landing_root: str, source: Source, table: Table) -> list[LandedFile]:
        # A file's raw day is that of its first event's commit: in the content, not the name.
        files = super().list_files(landing_root, source, table)
        fs = self.filesystem(landing_root, source, table)
        return [dataclasses.replace(f, partition_date=_raw_day(fs, f, source)) for f in files]

    def parse(self, source: Source, table: Table, file: LandedFile, data: bytes) -> pa.Table:
        events = _Events(table)
        for pos, line in enumerate(data.split(b"\n")):
            try:
                events.add(pos, _record_value(line))
            except (DebeziumEventError, ValueError, TypeError, KeyError, OverflowError) as e:
                raise LandedFileError(f"{file.path}: line {pos + 1}: {_reason(e)}") from None
        return events.rows(file)


def _reason(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"not JSON ({e.msg} at column {e.colno})"
    if isinstance(e, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(e) if not isinstance(e, KeyError) else f"missing {e}"


def _record_value(line: bytes) -> tuple[dict, dict | None] | None:
    """(the event, the schema of its row images) of one line; None for a line of no change."""
    if not line.strip():
        return None
    value = json.loads(line.decode("utf-8"))
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DebeziumEventError(f"a JSON {type(value).__name__}, not a Debezium change event")
    if set(value) == {"schema", "payload"}:  # schemas.enable=true
        if value["payload"] is None:
            return None
        return value["payload"], _row_fields(value["schema"])
    return value, None


def _row_fields(envelope: Any) -> dict[str, tuple[Decode, pa.DataType]]:
    """{column: its decoder and type}, from the envelope schema's `after` (or `before`)."""
    fields = {f.get("field"): f for f in (envelope or {}).get("fields") or ()}
    image = fields.get("after") or fields.get("before") or {}
    # Every line repeats its schema: its text is what finds the decoders made for it before.
    return _decoders(json.dumps(image.get("fields") or [], sort_keys=True))


@lru_cache(maxsize=256)
def _decoders(fields_json: str) -> dict[str, tuple[Decode, pa.DataType]]:
    return {f["field"]: _decoder(f) for f in json.loads(fields_json)}


@dataclasses.dataclass
class _Column:
    values: list
    type: pa.DataType | None  # None: inferred from the values


class _Events:
    """A file's change events, decoded into columns as they are read."""

    def __init__(self, table: Table):
        self.table = table
        self.declared = {c: T.arrow_type(t) for c, t in table.columns}
        self.columns: dict[str, _Column] = {c: _Column([], t) for c, t in self.declared.items()}
        self.ops: list[str] = []
        self.commit_ms: list[int] = []
        self.pos: list[int] = []

    def add(self, pos: int, record: tuple[dict, dict | None] | None) -> None:
        """One line's event (None: a line of no change), its columns decoded."""
        if record is None:
            return
        event, schema = record
        op = _op(event)
        row = self._image(op, event)
        commit = _commit_ms(event)
        for name, raw in row.items():
            self._column(name, schema).values.append(self._decode(name, raw, schema))
        for col in self.columns.values():  # columns this event lacks are null for it
            col.values.extend([None] * (len(self.ops) + 1 - len(col.values)))
        self.ops.append(op)
        self.commit_ms.append(commit)
        self.pos.append(pos)

    def _image(self, op: str, event: dict) -> dict:
        if op == "T":
            return {}
        side = "before" if op == "D" else "after"
        image = event.get(side)
        if not isinstance(image, dict):
            raise DebeziumEventError(f"op {event['op']!r} without `{side}`")
        missing = [k for k in self.table.primary_key if image.get(k) is None]
        if missing:
            raise DebeziumEventError(f"op {event['op']!r}: `{side}` lacks key column(s) {missing}")
        if op == "D":  # a delete carries its key; the other columns are null
            return {k: image[k] for k in self.table.primary_key}
        return image

    def _column(self, name: str, schema: dict | None) -> _Column:
        col = self.columns.get(name)
        if col is None:
            col = self.columns[name] = _Column([None] * len(self.ops), None)
        if schema is not None and name in schema and name not in self.declared:
            col.type = _wider(name, col.type, schema[name][1])
        return col

    def _decode(self, name: str, raw: Any, schema: dict | None) -> Any:
        if raw is None:
            return None
        try:
            if schema is not None and name in schema:
                return schema[name][0](raw)
            return _by_declared(self.declared.get(name))(raw)
        except (ValueError, TypeError, ArithmeticError) as e:
            shown = repr(raw) if len(repr(raw)) <= 60 else repr(raw)[:57] + "..."
            raise DebeziumEventError(f"column {name!r}: {shown} cannot be read: {e}") from None

    def rows(self, file: LandedFile) -> pa.Table:
        columns = {}
        for name, col in self.columns.items():
            check_column_name(file, name)
            try:
                arr = pa.array(col.values, type=col.type)
            except (pa.ArrowException, ValueError, TypeError, OverflowError) as e:
                raise LandedFileError(f"{file.path}: column {name!r}: {e}") from None
            columns[name] = arr.cast(pa.string()) if pa.types.is_null(arr.type) else arr
        ms = pa.array(self.commit_ms, pa.int64())
        commit = pc.multiply(ms, 1000).cast(pa.timestamp("us", tz="UTC"))
        op = pa.array(self.ops, pa.string())
        return change_rows(file, self.table, columns, op, commit, pa.array(self.pos, pa.int64()))


def _op(event: dict) -> str:
    op = event.get("op")
    if op not in _OPS:
        raise DebeziumEventError(
            f"op {op!r} is not a Debezium change op (r, c, u, d, t)"
            if "op" in event
            else "no `op`: not a Debezium change event (flattened by an SMT?)"
        )
    return _OPS[op]


def _commit_ms(event: dict) -> int:
    ms = (event.get("source") or {}).get("ts_ms")
    if not isinstance(ms, int) or isinstance(ms, bool):
        raise DebeziumEventError(f"source.ts_ms is {ms!r}, not a time in milliseconds")
    return ms


def _wider(name: str, have: pa.DataType | None, new: pa.DataType) -> pa.DataType:
    wide = new if have is None else T.widen(have, new)
    if wide is None:
        raise DebeziumEventError(
            f"column {name!r} changes type within the file ({T.spark_type_name(have)} to "
            f"{T.spark_type_name(new)})"
        )
    return wide


# -- values by their Kafka Connect schema ---------------------------------------------------


def _decoder(field: dict) -> tuple[Decode, pa.DataType]:
    name, kind = field.get("name"), field.get("type")
    params = field.get("parameters") or {}
    if name == "org.apache.kafka.connect.data.Decimal":
        scale = int(params.get("scale", 0))
        precision = min(int(params.get("connect.decimal.precision", 38)), 38)
        return (lambda v: _unscaled(v, scale)), pa.decimal128(max(precision, scale), scale)
    if name in _LOGICAL:
        return _LOGICAL[name]
    if kind == "array":
        item, item_type = _decoder(field.get("items") or {})
        return (lambda v: [None if x is None else item(x) for x in v]), pa.list_(item_type)
    if kind in ("struct", "map"):  # geometries and the like: their JSON text
        return _json_text, pa.string()
    if kind not in _PRIMITIVE:
        raise DebeziumEventError(f"unknown Kafka Connect type {kind!r}")
    return _PRIMITIVE[kind]


def _unscaled(value: str, scale: int) -> Decimal:
    # Kafka Connect's Decimal: the unscaled value, big-endian two's complement, base64 in JSON.
    n = int.from_bytes(base64.b64decode(value, validate=True), "big", signed=True)
    return Decimal(f"{n}E-{scale}")


def _variable_scale(value: dict) -> Decimal:
    return _unscaled(value["value"], int(value["scale"]))


def _since_epoch(unit_per_second: int) -> Decode:
    def decode(v: int) -> dt.datetime:
        if not isinstance(v, int):
            raise TypeError(f"a {type(v).__name__}, not an integer")
        # µs is the lake's precision: nanoseconds are cut to it (toward the past).
        return _EPOCH + dt.timedelta(microseconds=v * 1_000_000 // unit_per_second)

    return decode


def _time_of_day(unit_per_second: int) -> Decode:
    # Text, as the lake has no time type; MySQL's TIME runs past 24 hours and below zero.
    def decode(v: int) -> str:
        micros = abs(v) * 1_000_000 // unit_per_second
        seconds, us = divmod(micros, 1_000_000)
        sign = "-" if v < 0 else ""
        return f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{us:06d}"

    return decode


def _zoned(v: str) -> dt.datetime:
    # ISO 8601 with an offset; Python reads 6 fraction digits at most, Debezium may send 9.
    text = re.sub(r"(\.\d{6})\d+", r"\1", v.strip().replace("Z", "+00:00"))
    when = dt.datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=_UTC)).astimezone(_UTC)


def _days(v: int) -> dt.date:
    if not isinstance(v, int):
        raise TypeError(f"a {type(v).__name__}, not a number of days")
    return dt.date(1970, 1, 1) + dt.timedelta(days=v)


def _same(v: Any) -> Any:
    return v


def _json_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


_TS = pa.timestamp("us", tz="UTC")
_LOGICAL: dict[str, tuple[Decode, pa.DataType]] = {
    "io.debezium.data.VariableScaleDecimal": (_variable_scale, pa.decimal128(38, 18)),
    "io.debezium.time.Date": (_days, pa.date32()),
    "org.apache.kafka.connect.data.Date": (_days, pa.date32()),
    "io.debezium.time.Time": (_time_of_day(1000), pa.string()),
    "org.apache.kafka.connect.data.Time": (_time_of_day(1000), pa.string()),
    "io.debezium.time.MicroTime": (_time_of_day(1_000_000), pa.string()),
    "io.debezium.time.NanoTime": (_time_of_day(1_000_000_000), pa.string()),
    "io.debezium.time.Timestamp": (_since_epoch(1000), _TS),
    "org.apache.kafka.connect.data.Timestamp": (_since_epoch(1000), _TS),
    "io.debezium.time.MicroTimestamp": (_since_epoch(1_000_000), _TS),
    "io.debezium.time.NanoTimestamp": (_since_epoch(1_000_000_000), _TS),
    "io.debezium.time.ZonedTimestamp": (_zoned, _TS),
}
# Json, Uuid, Enum, Xml, Year, Bits, ZonedTime, … are their primitive type, as they are sent.
# By Kafka's JsonConverter names (`float`, `double`), as sent: Arrow refuses a value of another
# JSON type when it builds the column.
_PRIMITIVE: dict[str, tuple[Decode, pa.DataType]] = {
    "int8": (_same, pa.int32()),
    "int16": (_same, pa.int32()),
    "int32": (_same, pa.int32()),
    "int64": (_same, pa.int64()),
    "float": (_same, pa.float64()),
    "double": (_same, pa.float64()),
    "boolean": (_same, pa.bool_()),
    "string": (_same, pa.string()),
    "bytes": (lambda v: base64.b64decode(v, validate=True), pa.binary()),
}


# -- values by the catalog's `columns` (no schema in the record) ------------------------------

_PLAIN_DECIMAL = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)$")


@cache
def _by_declared(target: pa.DataType | None) -> Decode:
    if target is None:
        return lambda v: _json_text(v) if isinstance(v, (dict, list)) else v
    if pa.types.is_decimal(target):
        return lambda v: _loose_decimal(v, target.scale)
    if pa.types.is_date(target):
        return lambda v: dt.date.fromisoformat(v) if isinstance(v, str) else _days(v)
    if pa.types.is_timestamp(target):
        return lambda v: _zoned(v) if isinstance(v, str) else _epoch_guess(v)
    if pa.types.is_string(target):
        return _json_text
    return _same


def _loose_decimal(v: Any, scale: int) -> Decimal:
    """A decimal in any of Debezium's `decimal.handling.mode`s: precise (base64 of the unscaled
    value, at the declared scale), string, double; or a VariableScaleDecimal struct."""
    if isinstance(v, dict):
        return _variable_scale(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return Decimal(repr(v))
    if not isinstance(v, str):
        raise TypeError(f"a {type(v).__name__}, not a decimal")
    # Base64 has no '.', and its length is a multiple of 4: digits that are not are text.
    if _PLAIN_DECIMAL.match(v) and ("." in v or len(v) % 4 or v[0] in "+-"):
        return Decimal(v)
    return _unscaled(v, scale)


def _epoch_guess(v: int) -> dt.datetime:
    """An integer timestamp without its schema: Debezium sends ms (Timestamp), µs
    (MicroTimestamp) or ns (NanoTimestamp); told apart by magnitude (docs/formats.md)."""
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"a {type(v).__name__}, not a timestamp")
    unit = 1000 if abs(v) < 10**14 else 1_000_000 if abs(v) < 10**17 else 1_000_000_000
    return _since_epoch(unit)(v)


# -- a file's raw day ---------------------------------------------------------------------

_DAYS: dict[tuple[str, int, int], dt.date | None] = {}


def _raw_day(fs, file: LandedFile, source: Source) -> dt.date:
    """The UTC day of the file's first event's commit (`source.ts_ms`); the source's start date
    where it is earlier or where the file has none that can be read (its raw run then names the
    line). Kept by path, size and modification time: the landing sensor lists often."""
    key = (file.path, file.size, file.mtime_ns)
    if key not in _DAYS:
        _DAYS[key] = _first_commit_day(fs, file.path)
    day = _DAYS[key]
    return max(day, source.start_date) if day else source.start_date


def _first_commit_day(fs, path: str) -> dt.date | None:
    try:
        for line in _head_lines(fs, path):
            record = _record_value(line)
            if record is not None:
                return (_EPOCH + dt.timedelta(milliseconds=_commit_ms(record[0]))).date()
    except (OSError, ValueError, TypeError, AttributeError, OverflowError):
        return None
    return None


def _head_lines(fs, path: str) -> Iterator[bytes]:
    """The file's first lines (a `.gz` file is read decompressed, by its extension)."""
    with fs.open_input_stream(path) as stream:
        rest, count = b"", 0
        while count < _HEAD_LINES:
            chunk = stream.read(_HEAD_CHUNK)
            if not chunk:
                yield rest
                return
            *lines, rest = (rest + chunk).split(b"\n")
            count += len(lines)
            yield from lines
