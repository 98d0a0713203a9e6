"""Spark SQL type names (as the catalog declares them) <-> Arrow types."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
_SIMPLE = {
    "bigint": pa.int64(),
    "int": pa.int32(),
    "string": pa.string(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
_TRUE = {"true", "t", "1", "y", "yes"}
_FALSE = {"false", "f", "0", "n", "no"}


def arrow_type(spark_type: str) -> pa.DataType:
    if spark_type in _SIMPLE:
        return _SIMPLE[spark_type]
    m = _DECIMAL.match(spark_type)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    raise ValueError(f"unknown type {spark_type!r}")


def spark_type_name(t: pa.DataType) -> str:
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_int32(t) or pa.types.is_int16(t) or pa.types.is_int8(t):
        return "int"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    return str(t)


def utc(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A timestamp column as microseconds in UTC; a zone-less timestamp is UTC."""
    t = arr.type
    if pa.types.is_timestamp(t):
        if t.tz is None:
            arr = pc.cast(arr, pa.timestamp("us"))
            return (
                pc.assume_timezone(arr, "UTC")
                if len(arr)
                else arr.cast(pa.timestamp("us", tz="UTC"))
            )
        return pc.cast(arr, pa.timestamp("us", tz="UTC"))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        naive = pc.cast(pc.utf8_trim_whitespace(arr), pa.timestamp("us"))
        return naive.cast(pa.timestamp("us", tz="UTC"))
    raise TypeError(f"{t} is not a timestamp")


def from_text(arr: pa.Array | pa.ChunkedArray, spark_type: str) -> pa.Array | pa.ChunkedArray:
    """A csv column (strings, null where the field was empty) typed as the catalog declares."""
    if spark_type == "string":
        return arr
    if spark_type == "timestamp":
        return utc(arr)
    if spark_type == "boolean":
        low = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
        bad = pc.and_(pc.invert(pc.is_in(low, pa.array(sorted(_TRUE | _FALSE)))), pc.is_valid(low))
        if pc.any(bad).as_py():
            sample = pc.filter(arr, bad)[0].as_py()
            raise ValueError(f"{sample!r} is not a boolean")
        return _bool(low)
    target = arrow_type(spark_type)
    return pc.cast(pc.utf8_trim_whitespace(arr), target)


def _bool(low):
    is_true = pc.is_in(low, pa.array(sorted(_TRUE)))
    return pc.if_else(pc.is_valid(low), is_true, pa.scalar(None, pa.bool_()))


def conform(arr: pa.Array | pa.ChunkedArray, spark_type: str) -> pa.Array | pa.ChunkedArray:
    """A typed (parquet) column to the declared type, where that loses nothing; else TypeError."""
    target = arrow_type(spark_type)
    have = arr.type
    if spark_type == "timestamp" and pa.types.is_timestamp(have):
        return utc(arr)
    if have == target:
        return arr
    safe = (
        (
            pa.types.is_integer(have)
            and (pa.types.is_integer(target) and target.bit_width >= have.bit_width)
        )
        or (pa.types.is_integer(have) and pa.types.is_decimal(target))
        or (
            pa.types.is_decimal(have)
            and pa.types.is_decimal(target)
            and target.scale >= have.scale
            and target.precision - target.scale >= have.precision - have.scale
        )
        or (pa.types.is_floating(have) and pa.types.is_floating(target))
        or (pa.types.is_large_string(have) and pa.types.is_string(target))
        or (pa.types.is_date(have) and pa.types.is_date(target))
    )
    if not safe:
        raise TypeError(f"has type {spark_type_name(have)} but the catalog declares {spark_type}")
    return pc.cast(arr, target)


def widen(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """The type both a and b fit in without loss, or None where there is none."""
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        return pa.int64() if max(a.bit_width, b.bit_width) > 32 else pa.int32()
    if pa.types.is_floating(a) and pa.types.is_floating(b):
        return pa.float64()
    if pa.types.is_decimal(a) and pa.types.is_decimal(b):
        scale = max(a.scale, b.scale)
        whole = max(a.precision - a.scale, b.precision - b.scale)
        return pa.decimal128(min(38, whole + scale), scale)
    return None
