"""Raw is every change ever landed: it adds the files it does not hold and loses nothing when
the landing zone loses a file; a name landed again with other content is refused."""

from __future__ import annotations

import shutil

from lake_assets.keys import asset_key
from lake_assets_tests.assets._lake import SRC, assert_ok, bronze, catalog, cdc, load, r, raw


def _land_seven(lake):
    load(lake, "t", 1, [r("I", "2024-01-01 00:00:00", i, f"l{i}") for i in (1, 2, 3)])
    first = cdc(
        lake,
        "t",
        "2024-01-02 10:00:00",
        [
            r("U", "2024-01-02 10:00:00", 1, "u1"),
            r("I", "2024-01-02 10:00:01", 4, "n4"),
            r("D", "2024-01-02 10:00:02", 2),
        ],
    )
    second = cdc(lake, "t", "2024-01-03 10:00:00", [r("U", "2024-01-03 10:00:00", 3, "u3")])
    return first, second


def test_landed_files_removed_after_the_sync_take_nothing_out_of_raw(lake):
    lake.write_catalog(catalog("t"))
    first, second = _land_seven(lake)
    assert_ok(lake.sync())
    held = raw(lake, "t")
    assert len(held) == 7
    expected = [{"id": 1, "v": "u1"}, {"id": 3, "v": "u3"}, {"id": 4, "v": "n4"}]
    assert bronze(lake, "t") == expected

    # The bucket's lifecycle expiry takes the oldest files.
    first.unlink()
    (lake.landing / SRC / "public" / "t" / "LOAD00000001.parquet").unlink()
    version = lake.version("raw", SRC, "t")
    assert_ok(lake.sync())
    assert raw(lake, "t") == held and lake.version("raw", SRC, "t") == version
    assert not any(line.startswith("  raw/") for line in lake.lines), lake.lines

    # New files still land and sync, on a day whose other file is gone too.
    second.unlink()
    later = cdc(lake, "t", "2024-01-03 11:00:00", [r("I", "2024-01-03 11:00:00", 5, "n5")])
    assert_ok(lake.sync())
    assert raw(lake, "t") == held + [
        {"id": 5, "v": "n5", "_op": "I", "_source_file": later.name, "_file_pos": 0}
    ]
    assert bronze(lake, "t") == expected + [{"id": 5, "v": "n5"}]


def test_a_run_with_nothing_new_writes_nothing(lake, dagster_instance):
    lake.write_catalog(catalog("t"))
    _land_seven(lake)
    assert_ok(lake.sync())
    version = lake.version("raw", SRC, "t")
    job = lake.defs().resolve_implicit_global_asset_job_def()
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        res = job.execute_in_process(
            instance=dagster_instance,
            asset_selection=[asset_key("raw", SRC, "t")],
            partition_key=day,
            raise_on_error=False,
        )
        assert res.success
    assert lake.version("raw", SRC, "t") == version


def test_a_name_landed_again_with_other_content_fails_naming_it_and_changes_nothing(lake):
    lake.write_catalog(catalog("t", "ok"))
    first, _ = _land_seven(lake)
    kept = lake.tmp / "kept.parquet"
    shutil.copyfile(first, kept)
    assert_ok(lake.sync())
    held, version = raw(lake, "t"), lake.version("raw", SRC, "t")

    # Other rows under the same name, in the flat folder (a copy the dated one no longer matches).
    first.unlink()
    cdc(
        lake,
        "t",
        "2024-01-02 10:00:00",
        [r("U", "2024-01-02 10:00:00", 1, "other content, other size")],
        date_folders=False,
    )
    cdc(lake, "ok", "2024-01-02 09:00:00", [r("I", "2024-01-02 09:00:00", 1, "ok")])
    res = lake.sync()
    assert not res.ok
    mine = [f for f in res.failures if "raw__s__t" in f]
    assert len(mine) == 1 and first.name in mine[0] and "other content" in mine[0], res.failures
    assert raw(lake, "t") == held and lake.version("raw", SRC, "t") == version
    assert bronze(lake, "ok") == [{"id": 1, "v": "ok"}]

    # The original content back: the next sync passes and adds nothing.
    (lake.landing / SRC / "public" / "t" / first.name).unlink()
    shutil.copyfile(kept, first)
    kept.unlink()
    assert_ok(lake.sync())
    assert raw(lake, "t") == held


def test_a_file_without_changes_is_not_new_again(lake):
    lake.write_catalog(catalog("t"))
    _land_seven(lake)
    cdc(lake, "t", "2024-01-04 10:00:00", [])
    assert_ok(lake.sync())
    assert_ok(lake.sync())
    assert not any(line.startswith("  raw/") for line in lake.lines), lake.lines
    assert len(raw(lake, "t")) == 7
