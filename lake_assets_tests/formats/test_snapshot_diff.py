"""The snapshot diff on its own (no lake): `snapshot.diff_tables`, names, and key ranges."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from lake_assets.formats import snapshot


def _t(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


SCHEMA = pa.schema(
    [
        ("a", pa.int64()),
        ("b", pa.string()),
        ("x", pa.float64()),
        ("tags", pa.list_(pa.string())),
    ]
)


def test_diff_by_composite_key_with_nulls_nan_and_lists():
    old = _t(
        [
            {"a": 1, "b": "k", "x": float("nan"), "tags": ["p"]},
            {"a": 1, "b": "l", "x": None, "tags": None},
            {"a": 2, "b": "k", "x": 1.0, "tags": ["p", "q"]},
            {"a": 3, "b": "k", "x": 1.0, "tags": []},
        ],
        SCHEMA,
    )
    new = _t(
        [
            {"a": 2, "b": "k", "x": 1.0, "tags": ["q", "p"]},  # list order differs: update
            {"a": 1, "b": "l", "x": None, "tags": None},  # nulls equal nulls: no change
            {"a": 1, "b": "k", "x": float("nan"), "tags": ["p"]},  # NaN equals NaN: no change
            {"a": 4, "b": "k", "x": 0.0, "tags": None},  # new
        ],
        SCHEMA,
    )
    rows, gone = snapshot.diff_tables(old, new, ["a", "b"])
    got = sorted((r["a"], r["b"], r["_old"]) for r in rows.to_pylist())
    assert got == [(2, "k", True), (4, "k", None)]
    assert gone.to_pylist() == [{"a": 3, "b": "k"}]
    same, none = snapshot.diff_tables(new, new, ["a", "b"])
    assert same.num_rows == 0 and none.num_rows == 0


def test_names_and_times():
    when = dt.datetime(2024, 1, 15, 9, 30, 12, 345678, tzinfo=dt.timezone.utc)
    assert snapshot.file_name(when) == "20240115-093012345.parquet"
    assert snapshot.file_name(when, 2, "csv") == "20240115-093012345-2.csv"
    assert snapshot.snapshot_time("20240115-093012_00001.parquet") == "20240115093012000"
    assert snapshot.snapshot_time("20240115-093012-7.csv") == "20240115093012000"
    assert snapshot.snapshot_time("LOAD00000001.parquet") is None


def test_key_ranges_cover_every_hash_once_and_match_the_stored_bounds():
    h = np.random.default_rng(0).integers(0, 2**64, 20000, dtype=np.uint64, endpoint=False)
    h = np.concatenate([h, np.array([0, 2**64 - 1, 2**63, 2**63 - 1], dtype=np.uint64)])
    signed = (h ^ np.uint64(1 << 63)).view(np.int64)
    for ranges in (1, 3, 7, 10):
        # The hashes on each side of every range's first value, where a bound is easy to miss.
        edges = [((i << 32) // ranges + d) << 32 for i in range(1, ranges) for d in (0, 1)]
        h = np.concatenate([h, np.array(edges, dtype=np.uint64)])
        h = np.concatenate([h, np.array([e - 1 for e in edges], dtype=np.uint64)])
        signed = (h ^ np.uint64(1 << 63)).view(np.int64)
        r = snapshot._range_of(h, ranges)
        assert r.min() >= 0 and r.max() < ranges
        for i in range(ranges):
            lo, hi = snapshot._range_bounds(i, ranges)
            inside = (signed >= lo) & (signed < hi if hi is not None else True)
            assert np.array_equal(inside, r == i)
