"""The `maintenance` job on a synced lake: every table keeps its rows, raw's and bronze's files
are compacted, VACUUM follows the catalog's retention, each table gets a checkpoint; and a sync
that runs while maintenance works on the same tables ends right."""

from __future__ import annotations

import threading

import pytest

from lake_assets.catalog import CatalogError, load_catalog
from lake_assets.defs import maintenance
from lake_assets.resources.lake import LakeResource
from lake_assets_tests.conftest import read_delta

from ._lake import SRC, assert_ok, bronze, catalog, cdc, load, r


def _land_day(lake, day: int, first_id: int) -> None:
    for hour in range(3):  # three files a day: raw's partition is rewritten three times
        cdc(
            lake,
            "a",
            f"2024-01-0{day} 1{hour}:00:00.000",
            [r("U", f"2024-01-0{day} 1{hour}:00:00", first_id + hour, f"d{day}h{hour}")]
            + [r("I", f"2024-01-0{day} 1{hour}:00:01", 100 * day + hour, "new")],
        )
        assert_ok(lake.sync())


def _tables(lake) -> dict[str, list[dict]]:
    lr = LakeResource(root=str(lake.root))
    src = load_catalog(str(lake.catalog)).sources[0]
    return {
        f"{layer}/{name}": sorted(read_delta(path), key=repr)
        for layer, name, path in maintenance.lake_tables(lr, src)
    }


def _run_job(lake):
    job = lake.defs().resolve_job_def("maintenance")
    result = job.execute_in_process(instance=lake.instance)
    assert result.success
    return result


def _synced(lake, extra: str = ""):
    lake.write_catalog(catalog("a", extra=extra))
    load(lake, "a", 1, [r("I", "2024-01-01 00:00:00", i, f"v{i}") for i in range(1, 11)])
    assert_ok(lake.sync())
    _land_day(lake, 2, 1)
    return lake


@pytest.fixture
def synced(lake):
    return _synced(lake, "vacuum_retention_hours: 0")


def test_maintenance_keeps_every_row_and_compacts_raw_and_bronze(synced):
    lake = synced
    before = _tables(lake)
    assert {"raw/a", "bronze/a", "silver/a", "_state/a/tombstones"} <= set(before)
    bronze_dir = lake.path("bronze", SRC, "a")
    from deltalake import DeltaTable

    raw_files = len(DeltaTable(str(lake.path("raw", SRC, "a"))).file_uris())
    assert raw_files > 2  # the engine writes a day in several files
    _run_job(lake)
    assert _tables(lake) == before
    assert len(DeltaTable(str(bronze_dir)).file_uris()) == 1
    raw = DeltaTable(str(lake.path("raw", SRC, "a")))
    assert len(raw.file_uris()) == 2  # one a day
    for layer in ("raw", "bronze", "silver"):
        log = lake.path(layer, SRC, "a") / "_delta_log"
        assert list(log.glob("*.checkpoint.parquet")), layer
    # Retention 0: nothing older than the latest version is kept.
    parquet = list(lake.path("raw", SRC, "a").glob("_file_date=*/*.parquet"))
    assert len(parquet) == 2
    # The lake still syncs after it, and bronze is what the changes say.
    _land_day(lake, 3, 4)
    rows = {x["id"]: x["v"] for x in bronze(lake, "a")}
    assert rows[4] == "d3h0" and rows[1] == "d2h0" and rows[302] == "new" and len(rows) == 16


def test_the_default_retention_keeps_the_replaced_files(lake):
    lake.write_catalog(catalog("a"))
    load(lake, "a", 1, [r("I", "2024-01-01 00:00:00", i, f"v{i}") for i in range(1, 4)])
    assert_ok(lake.sync())
    _land_day(lake, 2, 1)
    raw_dir = lake.path("raw", SRC, "a")
    on_disk = len(list(raw_dir.glob("_file_date=*/*.parquet")))
    _run_job(lake)
    # Nothing removed: 7 days' retention; the compacted files are added beside the old ones.
    assert len(list(raw_dir.glob("_file_date=*/*.parquet"))) > on_disk


def test_a_misspelled_retention_key_is_refused(lake):
    lake.write_catalog(catalog("a", extra="vacuum_retention_hour: 0"))
    with pytest.raises(CatalogError, match="vacuum_retention_hours"):
        load_catalog(str(lake.catalog))


def test_a_sync_during_maintenance_ends_right(lake):
    """Maintenance compacts raw, bronze and the tombstones over and over while syncs write
    them; every sync succeeds and bronze ends as its changes say. (The default retention: with
    none, VACUUM removes files a running sync is reading, and that sync fails.)"""
    lake = _synced(lake)
    lr = LakeResource(root=str(lake.root))
    src = load_catalog(str(lake.catalog)).sources[0]
    stop, rounds, errors = threading.Event(), [], []

    def maintain() -> None:
        while not stop.is_set():
            try:
                maintenance.maintain_source(lr, src, embedded=True)
                rounds.append(1)
            except Exception as e:  # a conflict of maintenance's own commit: it tries again
                errors.append(e)

    worker = threading.Thread(target=maintain)
    worker.start()
    try:
        _land_day(lake, 3, 4)
        _land_day(lake, 4, 7)
    finally:
        stop.set()
        worker.join()
    assert len(rounds) >= 2, (rounds, errors)
    print("maintenance rounds", len(rounds), "errors", [type(e).__name__ for e in errors])
    rows = {x["id"]: x["v"] for x in bronze(lake, "a")}
    assert rows[4] == "d3h0" and rows[9] == "d4h2" and rows[1] == "d2h0"
    assert len(rows) == 10 + 9
    assert len(read_delta(lake.path("raw", SRC, "a"))) == 10 + 18
