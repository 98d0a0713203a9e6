"""DMS file names: which files, which partition, and the order of changes (`_seq`)."""

import datetime as dt

import pyarrow as pa
import pytest

from lake_assets.catalog import parse_catalog
from lake_assets.formats.base import LandedFileError
from lake_assets.formats.dms import DmsFormat
from lake_assets.lib.changes import add_order_columns

SRC = parse_catalog("""
sources:
  - name: s
    format: dms
    start_date: "2024-01-01"
    tables: [{name: t, schema: public, primary_key: [id]}]
""").sources[0]
FMT = DmsFormat()


def f(rel):
    return FMT.landed_file(SRC, f"/x/{rel}", rel)


def test_full_load_and_cdc_names():
    load = f("LOAD0000000A.parquet")
    assert (
        load.is_full_load and load.partition_date == dt.date(2024, 1, 1) and load.name_time is None
    )
    cdc = f("2024/01/15/20240115-093012345.csv")
    assert not cdc.is_full_load and cdc.partition_date == dt.date(2024, 1, 15)
    assert cdc.name_time == dt.datetime(2024, 1, 15, 9, 30, 12, 345000, tzinfo=dt.timezone.utc)
    assert f("20240115-0930121234.parquet").name_time.microsecond == 123400


def test_hex_load_counters_order_numerically():
    names = [
        "LOAD0000000A.parquet",
        "LOAD00000009.parquet",
        "LOAD00000010.parquet",
        "LOAD0000000F.parquet",
    ]
    ordered = sorted((f(n) for n in names), key=lambda x: x.order_key)
    assert [x.name for x in ordered] == [
        "LOAD00000009.parquet",
        "LOAD0000000A.parquet",
        "LOAD0000000F.parquet",
        "LOAD00000010.parquet",
    ]


def test_three_and_four_digit_fractions_order_by_time():
    a, b, c = (
        f("20240115-093012345.parquet"),
        f("20240115-0930123449.parquet"),
        f("20240115-0930123451.parquet"),
    )
    assert sorted([c, a, b], key=lambda x: x.order_key) == [b, a, c]


def test_cdc_before_start_date_lands_in_first_partition():
    assert f("20231231-235959000.parquet").partition_date == dt.date(2024, 1, 1)


def test_hidden_and_underscore_folders_are_not_change_files():
    assert f("_simulator/state.json") is None and f(".tmp/x.parquet") is None


def test_unknown_names_are_errors_naming_the_file():
    with pytest.raises(LandedFileError, match="/x/notes.txt: not an AWS DMS file name"):
        f("notes.txt")


def _seq(file, ts, n=2):
    rows = pa.table(
        {
            "id": list(range(n)),
            "_op": ["U"] * n,
            "_commit_ts": pa.array([ts] * n, pa.timestamp("us", tz="UTC")),
            "_file_pos": pa.array(range(n), pa.int64()),
        }
    )
    return add_order_columns(rows, file).column("_seq").to_pylist()


def test_seq_orders_full_load_first_then_time_then_file_then_position():
    early = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    late = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    load = _seq(
        f("LOAD00000001.parquet"), late
    )  # a full load with later timestamps still comes first
    cdc_a = _seq(f("20240115-093012345.parquet"), early)
    cdc_b = _seq(f("20240115-093012346.parquet"), early)  # same commit time: file name decides
    pre_epoch = _seq(
        f("20240115-093012347.parquet"), dt.datetime(1960, 1, 1, tzinfo=dt.timezone.utc)
    )
    assert load[0] < load[1] < cdc_a[0] < cdc_a[1] < cdc_b[0]
    assert load[1] < pre_epoch[0] < cdc_a[0]  # commit time before file name, also before 1970
