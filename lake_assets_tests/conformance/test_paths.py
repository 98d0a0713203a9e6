"""Local paths holding characters a URL encodes, through the engine and delta-rs."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from lake_assets.lib import storage

from ._delta import rows

SPECIAL = "my lake #1 (ü) 100%"


def _frame(spark):
    return spark.createDataFrame([(1, "a")], "k bigint, v string")


def test_surprise_the_engine_writes_delta_into_percent_encoded_twins(spark, tmp_path):
    (tmp_path / SPECIAL).mkdir()
    _frame(spark).write.format("delta").save(str(tmp_path / SPECIAL / "t"))
    assert not (tmp_path / SPECIAL / "t").exists()
    twins = sorted(p.name for p in tmp_path.iterdir() if p.name != SPECIAL)
    # The log in one twin, the data files in a twin of that twin.
    assert twins == [
        "my%20lake%20%231%20(%C3%BC)%20100%25",
        "my%2520lake%2520%25231%2520(%25C3%25BC)%2520100%2525",
    ]


def test_through_engine_path_the_engine_writes_in_place(spark, tmp_path):
    path = str(tmp_path / SPECIAL / "lake" / "t")
    _frame(spark).write.format("delta").save(storage.engine_path(path))
    _frame(spark).write.format("delta").mode("append").save(storage.engine_path(path))
    assert [p.name for p in tmp_path.iterdir()] == [SPECIAL]
    assert len(rows(path)) == 2  # delta-rs, at the real path
    assert spark.read.format("delta").load(storage.engine_path(path)).count() == 2


@pytest.mark.parametrize("name", ["space x", "hash#x", "paren(x)", "ü", "100%", "pct%2x"])
def test_delta_rs_reads_and_writes_at_the_real_path(tmp_path, name):
    path = str(tmp_path / name / "t")
    write_deltalake(path, pa.table({"k": [1]}))
    write_deltalake(path, pa.table({"k": [2]}), mode="append")
    assert DeltaTable(path).version() == 1
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_surprise_delta_rs_cannot_read_under_a_percent_escape(tmp_path):
    """A folder named with '%' and two hex digits: delta-rs writes the commit in place, then
    reads it at the path decoded once more (`%20` as a space), also through a file:// URL or a
    symbolic link (it resolves both to the real path). delta-kernel-rs#918."""
    path = tmp_path / "pct%20x" / "t"
    for uri in (str(path), path.as_uri()):
        with pytest.raises(DeltaError, match="pct x/t/_delta_log"):
            write_deltalake(uri, pa.table({"k": [1]}), mode="append")
    assert (path / "_delta_log" / "00000000000000000000.json").exists()
