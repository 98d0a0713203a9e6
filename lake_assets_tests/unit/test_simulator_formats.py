"""`lake-assets simulate --format`: the shop's history as DMS, Debezium or Fivetran files (that
the lake reads them alike is formats/test_formats_agree.py)."""

from __future__ import annotations

import json

import pyarrow.csv as pacsv
import pytest

from lake_assets.catalog import load_catalog
from lake_assets.cli import cmd_simulate, parser
from lake_assets.sources.shop.catalogs import catalog_text
from lake_assets.sources.shop.simulator import TABLES, history


def _simulate(tmp_path, *more: str) -> int:
    args = parser().parse_args(
        ["simulate", "--landing", str(tmp_path), "--lake-root", str(tmp_path / "lake")]
        + ["--days", "1", "--scale", "0.05", *more]
    )
    return cmd_simulate(args)


def _files(tmp_path, pattern: str) -> list:
    return sorted(p for p in (tmp_path / "shop").rglob(pattern) if "_simulator" not in p.parts)


def test_parquet_and_csv_are_still_dms_file_types(tmp_path):
    assert _simulate(tmp_path, "--format", "csv") == 0
    h = history(str(tmp_path))
    assert (h.landing_format, h.fmt) == ("dms", "csv")
    assert _files(tmp_path, "LOAD*.csv") and not _files(tmp_path, "*.parquet")
    assert _simulate(tmp_path / "b", "--format", "dms", "--file-type", "csv") == 0
    assert history(str(tmp_path / "b")).fmt == "csv"


def test_fivetran_files_carry_fivetran_columns_and_a_header_and_their_catalog(tmp_path, capsys):
    assert _simulate(tmp_path, "--format", "fivetran", "--file-type", "csv") == 0
    files = _files(tmp_path, "*.csv")
    assert files and not _files(tmp_path, "LOAD*")  # no full load: every file named by time
    customers = [f for f in files if f.parts[-5] == "customers"]
    got = pacsv.read_csv(customers[0])
    assert got.column_names == [c for c, _ in TABLES["customers"]] + [
        "_fivetran_deleted",
        "_fivetran_synced",
    ]
    out = capsys.readouterr().out
    path = out.rsplit("LAKE_SOURCES=", 1)[1].strip()
    assert load_catalog(path).source("shop").format == "fivetran"


def test_debezium_offsets_go_on_from_call_to_call(tmp_path):
    assert _simulate(tmp_path, "--format", "debezium") == 0
    first = _files(tmp_path, "shop.public.orders+0+*.json")
    lines = sum(len(f.read_bytes().splitlines()) for f in first)
    event = json.loads(first[0].read_bytes().splitlines()[0])
    assert event["op"] == "c" and event["source"]["table"] == "orders"
    assert isinstance(event["after"]["order_ts"], int)  # MicroTimestamp
    assert _simulate(tmp_path) == 0  # the landed history's format goes on
    later = [f for f in _files(tmp_path, "shop.public.orders+0+*.json") if f not in first]
    assert later and later[0].name == f"shop.public.orders+0+{lines:010d}.json"


def test_a_history_keeps_its_format(tmp_path, capsys):
    assert _simulate(tmp_path, "--format", "debezium") == 0
    assert _simulate(tmp_path, "--format", "dms") == 2
    assert "landed as debezium files" in capsys.readouterr().err
    assert _simulate(tmp_path / "b", "--format", "debezium", "--file-type", "csv") == 2


@pytest.mark.parametrize("fmt", ["dms", "debezium", "fivetran", "snapshot"])
def test_each_formats_catalog_is_the_packaged_one_but_for_format(fmt):
    text = catalog_text(fmt)
    shop = load_catalog_text(text).source("shop")
    packaged = load_catalog_text(catalog_text("dms")).source("shop")
    assert shop.format == fmt
    assert [t.model_dump() for t in shop.tables] == [t.model_dump() for t in packaged.tables]
    assert (shop.timestamp_column is None) == (fmt != "dms")


def load_catalog_text(text: str):
    from lake_assets.catalog import parse_catalog
    from lake_assets.settings import packaged_catalog

    return parse_catalog(text, packaged_catalog())


@pytest.mark.parametrize("file_type", ["parquet", "csv"])
def test_snapshots_go_on_from_the_last_one_landed(tmp_path, file_type):
    from lake_assets.sources.shop.simulator import simulate

    def ids(path) -> set[int]:
        if file_type == "csv":
            got = pacsv.read_csv(
                path, read_options=pacsv.ReadOptions(autogenerate_column_names=True)
            )
            return set(got.column(0).to_pylist())
        import pyarrow.parquet as pq

        return set(pq.read_table(path).column("customer_id").to_pylist())

    assert _simulate(tmp_path, "--format", "snapshot", "--file-type", file_type) == 0
    first = _files(tmp_path, f"public/customers/*.{file_type}")
    had = ids(first[-1])
    s = simulate(str(tmp_path), 1, scale=0.05)
    later = [tmp_path / f for f in s.files if "/customers/" in f]
    assert s.landing_format == "snapshot" and later
    # The whole table, not the day's changes alone: yesterday's customers, less today's deletes.
    assert len(had - ids(later[0])) <= s.rows["customers"]["D"]
    assert len(ids(later[0])) > s.rows["customers"]["I"] + s.rows["customers"]["U"]
