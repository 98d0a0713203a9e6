"""Bronze against the source table, value by value."""

from __future__ import annotations

import datetime as dt
import json
import uuid


def _norm(src, lake):
    if isinstance(src, dt.datetime) and src.tzinfo is None:
        return src.replace(tzinfo=dt.timezone.utc), lake  # timestamp (no zone): as UTC
    if isinstance(src, uuid.UUID):
        return str(src), lake
    if isinstance(src, (dict, list)) and isinstance(lake, str):
        return src, json.loads(lake)  # json/jsonb: the lake holds its text
    return src, lake


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} chars)"


def source_columns(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def assert_bronze_equals(lake, db, source: str, table: str, key: str) -> None:
    expected = db.rows(table, key)
    path = lake.path("bronze", source, table)
    got = (
        [source_columns(r) for r in lake.rows("bronze", source, table, key)]
        if path.exists()
        else []
    )
    assert len(got) == len(expected), f"{table}: bronze {len(got)} rows, source {len(expected)}"
    for want, have in zip(expected, got):
        assert set(have) == set(want), f"{table}: columns {sorted(have)} != {sorted(want)}"
        for col, value in want.items():
            a, b = _norm(value, have[col])
            assert a == b, (
                f"{table} {key}={want[key]} column {col}: source {_short(a)}, bronze {_short(b)}"
            )
