"""The LandingFormat interface as DMS implements it: listing, identity, digest, order."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from lake_assets import formats
from lake_assets.catalog import parse_catalog
from lake_assets.formats.base import LandedFileError
from lake_assets_tests.assets._lake import ROW, SCHEMA, r, ts
from lake_assets_tests.dms_files import table_dir, write_cdc, write_load

SRC = parse_catalog("""
sources:
  - name: s
    format: dms
    timestamp_column: ts
    start_date: "2024-01-01"
    tables: [{name: t, schema: public, primary_key: [id]}]
""").sources[0]
TABLE = SRC.tables[0]
FMT = formats.resolve(SRC)


def _land(landing):
    cdc = write_cdc(
        landing,
        "s",
        SCHEMA,
        "t",
        ts("2024-01-02 10:00:00"),
        [r("I", "2024-01-02 10:00:00", 2, "b")],
        ROW,
    )
    load = write_load(landing, "s", SCHEMA, "t", 1, [r("I", "2024-01-01 00:00:00", 1, "a")], ROW)
    return load, cdc


def test_files_are_listed_once_per_name_in_change_order_with_their_size(tmp_path):
    load, cdc = _land(tmp_path)
    shutil.copyfile(
        cdc, table_dir(tmp_path, "s", SCHEMA, "t") / cdc.name
    )  # landed twice, same content
    files = FMT.list_files(str(tmp_path), SRC, TABLE)
    assert [f.name for f in files] == [load.name, cdc.name]
    assert [f.size for f in files] == [load.stat().st_size, cdc.stat().st_size]
    assert [str(f.partition_date) for f in files] == ["2024-01-01", "2024-01-02"]


def test_a_name_landed_twice_with_other_content_is_an_error_naming_it(tmp_path):
    _, cdc = _land(tmp_path)
    (table_dir(tmp_path, "s", SCHEMA, "t") / cdc.name).write_bytes(b"other")
    with pytest.raises(LandedFileError, match=f"{cdc.name}: landed twice with other content"):
        FMT.list_files(str(tmp_path), SRC, TABLE)


def test_reading_a_file_gives_its_change_rows_and_the_digest_of_its_bytes(tmp_path):
    _, cdc = _land(tmp_path)
    file = FMT.list_files(str(tmp_path), SRC, TABLE)[1]
    got = FMT.read(SRC, TABLE, FMT.filesystem(str(tmp_path), SRC, TABLE), file)
    assert got.digest == hashlib.sha256(cdc.read_bytes()).hexdigest()[:32]
    assert got.rows.column_names == ["id", "v", "_op", "_commit_ts", "_file_pos"]
    assert got.rows.to_pylist()[0]["_op"] == "I"
