"""Files landed twice, re-runs, corrupt files and an idempotent sync."""

from __future__ import annotations

import shutil

import pyarrow as pa

from lake_assets.keys import asset_key
from lake_assets_tests.assets._lake import (
    SRC,
    assert_ok,
    bronze,
    catalog,
    cdc,
    has_table,
    load,
    r,
    raw,
    table_dir,
    ts,
)


def _all_tables(lake, *tables):
    """Every Delta table the lake holds for these tables, read back whole (content, not
    versions)."""
    out = {}
    for layer in ("raw", "bronze"):
        for t in tables:
            if has_table(lake, layer, t):
                rows = lake.rows(layer, SRC, t)
                out[(layer, t)] = sorted(rows, key=repr)
    return out


def test_file_landed_twice_is_held_once_and_reruns_add_nothing(lake, dagster_instance):
    lake.write_catalog(catalog("t"))
    load(
        lake, "t", 1, [r("I", "2024-01-01 00:00:00", 1, "a"), r("I", "2024-01-01 00:00:00", 2, "b")]
    )
    # The same CDC file (same name, same content) in the flat folder and in its date folder.
    dated = cdc(
        lake,
        "t",
        "2024-01-02 10:00:00.123",
        [
            r("U", "2024-01-02 10:00:00", 1, "a2"),
            r("D", "2024-01-02 10:00:01", 2),
            r("I", "2024-01-02 10:00:02", 3, "c"),
        ],
    )
    flat = table_dir(lake.landing, SRC, "public", "t") / dated.name
    shutil.copyfile(dated, flat)
    assert_ok(lake.sync())
    expected_raw = [
        {"id": 1, "v": "a", "_op": "I", "_source_file": "LOAD00000001.parquet", "_file_pos": 0},
        {"id": 2, "v": "b", "_op": "I", "_source_file": "LOAD00000001.parquet", "_file_pos": 1},
        {"id": 1, "v": "a2", "_op": "U", "_source_file": dated.name, "_file_pos": 0},
        {"id": 2, "v": None, "_op": "D", "_source_file": dated.name, "_file_pos": 1},
        {"id": 3, "v": "c", "_op": "I", "_source_file": dated.name, "_file_pos": 2},
    ]
    expected_bronze = [{"id": 1, "v": "a2"}, {"id": 3, "v": "c"}]
    assert raw(lake, "t") == expected_raw
    assert bronze(lake, "t") == expected_bronze
    before = _all_tables(lake, "t")

    # The same file lands again after the sync (rewritten in place, a new mtime): nothing to do.
    shutil.copyfile(dated, flat)
    assert_ok(lake.sync())
    assert raw(lake, "t") == expected_raw
    assert _all_tables(lake, "t") == before

    # The sensor's way: the partition materialized again, then bronze.
    job = lake.defs().resolve_implicit_global_asset_job_def()
    for day in ("2024-01-02", "2024-01-01"):
        res = job.execute_in_process(
            instance=dagster_instance,
            asset_selection=[asset_key("raw", SRC, "t")],
            partition_key=day,
            raise_on_error=False,
        )
        assert res.success
    assert raw(lake, "t") == expected_raw
    res = job.execute_in_process(
        instance=dagster_instance,
        asset_selection=[asset_key("bronze", SRC, "t")],
        raise_on_error=False,
    )
    assert res.success
    assert bronze(lake, "t") == expected_bronze
    assert _all_tables(lake, "t") == before  # the content; a no-op MERGE may still commit


def test_corrupt_file_fails_sync_naming_it_and_other_tables_still_sync(lake):
    lake.write_catalog(catalog("a", "b"))
    for t in ("a", "b"):
        load(lake, t, 1, [r("I", "2024-01-01 00:00:00", 1, f"{t}1")])
    assert_ok(lake.sync())
    raw_a_before = raw(lake, "a")
    bronze_a_version = lake.version("bronze", SRC, "a")

    good_a = cdc(lake, "a", "2024-01-02 09:00:00", [r("U", "2024-01-02 09:00:00", 1, "a1-new")])
    bad_dir = table_dir(lake.landing, SRC, "public", "a") / "2024" / "01" / "02"
    bad = bad_dir / "20240102-100000000.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file \x00\xff\x13\x37 garbage")
    cdc(
        lake,
        "b",
        "2024-01-02 09:00:00",
        [r("U", "2024-01-02 09:00:00", 1, "b1-new"), r("I", "2024-01-02 09:00:00", 2, "b2")],
    )
    res = lake.sync()
    assert not res.ok
    assert any(bad.name in f for f in res.failures), res.failures
    assert all(bad.name in f for f in res.failures if "/a" in f or " a" in f), res.failures
    assert all("\n" not in f for f in res.failures)
    # b synced; a is as it was: nothing of the bad file (nor of the run that met it) entered the
    # lake.
    assert bronze(lake, "b") == [{"id": 1, "v": "b1-new"}, {"id": 2, "v": "b2"}]
    assert raw(lake, "a") == raw_a_before
    assert bad.name not in {x["_source_file"] for x in raw(lake, "a")}
    assert bronze(lake, "a") == [{"id": 1, "v": "a1"}]
    assert lake.version("bronze", SRC, "a") == bronze_a_version

    # Removed: the next sync succeeds and a catches up.
    bad.unlink()
    assert_ok(lake.sync())
    assert bronze(lake, "a") == [{"id": 1, "v": "a1-new"}]
    assert [x["_source_file"] for x in raw(lake, "a")] == ["LOAD00000001.parquet", good_a.name]

    # Replaced by a good file of the same name: its rows enter the lake.
    cdc(lake, "a", "2024-01-02 10:00:00", [r("I", "2024-01-02 10:00:00", 2, "a2")])
    assert_ok(lake.sync())
    assert bronze(lake, "a") == [{"id": 1, "v": "a1-new"}, {"id": 2, "v": "a2"}]
    assert bronze(lake, "b") == [{"id": 1, "v": "b1-new"}, {"id": 2, "v": "b2"}]


def test_file_with_a_wrong_schema_fails_sync_naming_it(lake):
    lake.write_catalog(catalog("a", "b"))
    load(lake, "a", 1, [r("I", "2024-01-01 00:00:00", 1, "a1")])
    load(lake, "b", 1, [r("I", "2024-01-01 00:00:00", 1, "b1")])
    assert_ok(lake.sync())
    raw_a = raw(lake, "a")
    # A CDC file without the Op column, then one without the timestamp column.
    no_op = cdc(
        lake,
        "a",
        "2024-01-02 09:00:00",
        [{"ts": ts("2024-01-02 09:00:00"), "id": 1, "v": "x"}],
        pa.schema([("ts", pa.timestamp("us")), ("id", pa.int64()), ("v", pa.string())]),
    )
    cdc(lake, "b", "2024-01-02 09:00:00", [r("U", "2024-01-02 09:00:00", 1, "b1-new")])
    res = lake.sync()
    assert not res.ok
    assert any(no_op.name in f for f in res.failures), res.failures
    assert bronze(lake, "b") == [{"id": 1, "v": "b1-new"}]
    assert raw(lake, "a") == raw_a and bronze(lake, "a") == [{"id": 1, "v": "a1"}]
    no_op.unlink()
    no_ts = cdc(
        lake,
        "a",
        "2024-01-02 09:00:00",
        [{"Op": "U", "id": 1, "v": "y"}],
        pa.schema([("Op", pa.string()), ("id", pa.int64()), ("v", pa.string())]),
    )
    res = lake.sync()
    assert not res.ok and any(no_ts.name in f for f in res.failures), res.failures
    assert raw(lake, "a") == raw_a and bronze(lake, "a") == [{"id": 1, "v": "a1"}]
    no_ts.unlink()
    assert_ok(lake.sync())
    assert raw(lake, "a") == raw_a and bronze(lake, "a") == [{"id": 1, "v": "a1"}]


def test_a_table_with_no_landed_files_syncs_ok_and_stays_absent(lake):
    lake.write_catalog(catalog("a", "b"))
    load(lake, "b", 1, [r("I", "2024-01-01 00:00:00", 1, "b1")])
    res = lake.sync()
    assert bronze(lake, "b") == [{"id": 1, "v": "b1"}]
    assert not has_table(lake, "raw", "a") and not has_table(lake, "bronze", "a")
    assert not has_table(lake, "silver", "a")
    assert_ok(res)


def test_second_sync_with_nothing_new_changes_nothing_and_prints_one_line_per_asset(lake):
    lake.write_catalog(catalog("a", "b"))
    load(lake, "a", 1, [r("I", "2024-01-01 00:00:00", i, f"a{i}") for i in range(5)])
    cdc(
        lake,
        "a",
        "2024-01-02 09:00:00",
        [r("U", "2024-01-02 09:00:00", 1, "u"), r("D", "2024-01-02 09:00:00", 2)],
    )
    cdc(lake, "a", "2024-01-04 09:00:00", [r("I", "2024-01-04 09:00:00", 9, "late")])
    cdc(lake, "b", "2024-01-03 09:00:00", [r("I", "2024-01-03 09:00:00", 1, "b")])
    assert_ok(lake.sync())
    first = list(lake.lines)
    for layer in ("raw", "bronze"):
        for t in ("a", "b"):
            mine = [
                line for line in first if line.split() and line.split()[0] == f"{layer}/{SRC}/{t}"
            ]
            assert len(mine) == 1, (layer, t, first)
            assert "rows=" in mine[0] and "seconds=" in mine[0], mine
    before = _all_tables(lake, "a", "b")
    assert_ok(lake.sync())
    second = list(lake.lines)
    assert _all_tables(lake, "a", "b") == before
    assert not any(line.startswith("  raw/") for line in second), second
    for t in ("a", "b"):
        mine = [line for line in second if line.split() and line.split()[0] == f"bronze/{SRC}/{t}"]
        assert len(mine) <= 1, second
        assert all("rows=" in line and "seconds=" in line for line in mine)
    assert bronze(lake, "a") == [
        {"id": 0, "v": "a0"},
        {"id": 1, "v": "u"},
        {"id": 3, "v": "a3"},
        {"id": 4, "v": "a4"},
        {"id": 9, "v": "late"},
    ]
