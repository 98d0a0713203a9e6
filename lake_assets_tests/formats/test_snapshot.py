"""`format: snapshot`: whole-table snapshots (parquet, csv, multi-part), diffed by key into raw's
changes, synced through the real assets into Delta tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lake_assets.formats.snapshot import SnapshotFormat
from lake_assets_tests.assets._lake import assert_ok, bronze, raw, utc

CATALOG = """
sources:
  - name: s
    format: snapshot
    start_date: "2024-01-01"
    csv_header: true
    tables:
      - name: t
        schema: public
        primary_key: [id]
        columns: {{id: bigint, v: string, n: int}}
{extra}
"""

SCHEMA = pa.schema([("id", pa.int64()), ("v", pa.string()), ("n", pa.int32())])


def _catalog(lake, extra: str = "") -> None:
    lake.write_catalog(CATALOG.format(extra=extra))


def _folder(lake) -> Path:
    path = lake.landing / "s" / "public" / "t"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _parquet(lake, name: str, rows: list[tuple], schema: pa.Schema = SCHEMA) -> Path:
    table = pa.Table.from_pylist([dict(zip(schema.names, r)) for r in rows], schema=schema)
    path = _folder(lake) / name
    pq.write_table(table, path)
    return path


def _csv(lake, name: str, text: str) -> Path:
    path = _folder(lake) / name
    path.write_text(text)
    return path


def _changes(lake) -> list[tuple]:
    return [
        (r["_op"], r["id"], r["v"], r["_commit_ts"], r["_source_file"])
        for r in raw(lake, "t", "_commit_ts")
    ]


def _state(lake) -> list[tuple]:
    return [(r["id"], r["v"], r["n"]) for r in bronze(lake, "t")]


T1, T2, T3 = utc(2024, 1, 2, 10, 0, 0), utc(2024, 1, 3, 10, 0, 0), utc(2024, 1, 4, 10, 0, 0)


def test_first_snapshot_is_all_inserts_then_changes_at_each_snapshot_time(lake):
    _catalog(lake)
    _parquet(lake, "20240102-100000.parquet", [(1, "a", 1), (2, "b", 2), (3, "c", 3)])
    assert_ok(lake.sync())
    first = "20240102-100000.parquet"
    assert _changes(lake) == [
        ("I", 1, "a", T1, first),
        ("I", 2, "b", T1, first),
        ("I", 3, "c", T1, first),
    ]
    # 1 unchanged, 2 changed (one column), 3 gone, 4 new.
    _parquet(lake, "20240103-100000.parquet", [(4, "d", 4), (2, "b", 20), (1, "a", 1)])
    assert_ok(lake.sync())
    second = "20240103-100000.parquet"
    assert _changes(lake)[3:] == [
        ("I", 4, "d", T2, second),
        ("U", 2, "b", T2, second),
        ("D", 3, None, T2, second),
    ]
    assert _state(lake) == [(1, "a", 1), (2, "b", 20), (4, "d", 4)]


def test_an_unchanged_snapshot_adds_no_change(lake):
    _catalog(lake)
    rows = [(1, "a", 1), (2, None, None)]
    _parquet(lake, "20240102-100000.parquet", rows)
    assert_ok(lake.sync())
    before = lake.version("raw", "s", "t")
    _parquet(lake, "20240103-100000.parquet", list(reversed(rows)))
    assert_ok(lake.sync())
    assert len(_changes(lake)) == 2
    assert lake.version("raw", "s", "t") == before  # no new raw rows at all
    assert_ok(lake.sync())  # and the unchanged snapshot is not new again
    assert lake.version("raw", "s", "t") == before


def test_a_multi_part_snapshot_in_csv_and_parquet_is_one_snapshot(lake, monkeypatch):
    monkeypatch.setattr(SnapshotFormat, "rows_per_range", 2)  # several key ranges
    _catalog(lake)
    _csv(lake, "20240102-100000-1.csv", "id,v,n\n1,a,1\n2,b,2\n")
    _csv(lake, "20240102-100000-2.csv", 'id,v,n\n3,"c, with comma",3\n4,,4\n5,e,5\n')
    assert_ok(lake.sync())
    assert _state(lake) == [
        (1, "a", 1),
        (2, "b", 2),
        (3, "c, with comma", 3),
        (4, None, 4),
        (5, "e", 5),
    ]
    # Parts of the next snapshot in parquet, numbered as Data Factory numbers them; key 3
    # moves from one part to another unchanged: no change.
    _parquet(lake, "20240103-100000_00000.parquet", [(5, "e", 5), (3, "c, with comma", 3)])
    _parquet(lake, "20240103-100000_00001.parquet", [(1, "A", 1), (6, "f", 6)])
    assert_ok(lake.sync())
    assert [(op, id, f) for op, id, _, ts, f in _changes(lake)[5:]] == [
        ("D", 2, "20240103-100000_00000.parquet"),
        ("D", 4, "20240103-100000_00000.parquet"),
        ("U", 1, "20240103-100000_00001.parquet"),
        ("I", 6, "20240103-100000_00001.parquet"),
    ]
    assert _state(lake) == [(1, "A", 1), (3, "c, with comma", 3), (5, "e", 5), (6, "f", 6)]
