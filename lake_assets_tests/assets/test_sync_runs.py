"""How `sync` splits its work into Dagster runs, and what a run keeps in memory."""

from __future__ import annotations

import dagster as dg

from lake_assets.resources.io_manager import LocalRows, MustHold

from ._lake import SRC, assert_ok, bronze, catalog, cdc, load, r


def test_the_last_raw_run_also_runs_everything_downstream(lake):
    lake.write_catalog(catalog("a", "b"))
    load(lake, "a", 1, [r("I", "2024-01-01 00:00:00", 1, "a1")])
    load(lake, "b", 1, [r("I", "2024-01-01 00:00:00", 1, "b1")])
    # Days 01-01..01-02 and 01-04: two ranges, so two raw runs; the second one also runs
    # bronze and silver of both tables.
    cdc(lake, "a", "2024-01-02 09:00:00", [r("U", "2024-01-02 09:00:00", 1, "a2")])
    cdc(lake, "b", "2024-01-04 09:00:00", [r("U", "2024-01-04 09:00:00", 1, "b4")])
    with dg.DagsterInstance.ephemeral() as instance:
        assert_ok(lake.sync(instance))
        runs = instance.get_runs()
        selections = sorted(sorted("/".join(k.path) for k in run.asset_selection) for run in runs)
    assert selections == [
        [
            "bronze/s/a",
            "bronze/s/b",
            "raw/s/b",
            "silver/s/a",
            "silver/s/a_quarantine",
            "silver/s/b",
            "silver/s/b_quarantine",
        ],
        ["raw/s/a", "raw/s/b"],
    ], selections
    assert bronze(lake, "a") == [{"id": 1, "v": "a2"}] and bronze(lake, "b") == [
        {"id": 1, "v": "b4"}
    ]


def test_a_failing_raw_step_in_the_last_run_skips_only_its_own_table_downstream(lake):
    lake.write_catalog(catalog("a", "b"))
    load(lake, "a", 1, [r("I", "2024-01-01 00:00:00", 1, "a1")])
    bad = load(lake, "b", 1, [r("I", "2024-01-01 00:00:00", 1, "b1")])
    bad.write_bytes(b"not parquet")
    res = lake.sync()
    assert not res.ok
    assert [f for f in res.failures if bad.name in f] and all(
        bad.name in f for f in res.failures
    ), res.failures
    assert bronze(lake, "a") == [{"id": 1, "v": "a1"}]
    assert not lake.path("bronze", SRC, "b").exists() and not lake.path("silver", SRC, "b").exists()


def test_a_run_keeps_no_landed_rows_once_they_are_written(lake):
    """An in-process run keeps every step's output until it ends; raw's output is then an empty
    shell, not the landed rows (which would otherwise stay in memory while bronze runs)."""
    lake.write_catalog(catalog("a"))
    load(lake, "a", 1, [r("I", "2024-01-01 00:00:00", i, f"a{i}") for i in range(3)])
    defs = lake.defs()
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        res = job.execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(["raw", SRC, "a"])],
            partition_key="2024-01-01",
        )
        out = res.output_for_node("raw__s__a")
    assert isinstance(out, MustHold) and isinstance(out.output, LocalRows)
    assert out.output.rows is None
    assert len(lake.rows("raw", SRC, "a")) == 3


def test_sync_says_where_it_recorded_lists_every_asset_and_prints_quality(lake):
    lake.write_catalog(
        catalog(
            "a",
            extra="""
        models:
          - {name: counted, sql: "SELECT COUNT(*) AS n FROM {{ silver.a }}"}
    """,
        )
    )
    load(
        lake,
        "a",
        1,
        [r("I", "2024-01-01 00:00:00", 1, "a1"), r("I", "2024-01-01 00:00:00", 2, None)],
    )
    with dg.DagsterInstance.ephemeral() as instance:
        assert_ok(lake.sync(instance))
        first = list(lake.lines)
        assert_ok(lake.sync(instance))
        again = list(lake.lines)
    assert first[0].startswith("runs recorded in an ephemeral Dagster instance")
    # silver was written: its quality, one line per table
    assert "quality of silver/s (rows quarantined by rule):" in first
    assert any(line.split()[:3] == ["a", "2", "0"] for line in first), first
    # nothing new: every asset of the run has its line, written or not, and no quality
    (announced,) = [line for line in again if line.startswith("bronze, silver, gold:")]
    listed = [line.split()[0] for line in again if line.startswith("  ")]
    assert announced == f"bronze, silver, gold: {len(listed)} asset(s)", again
    assert sorted(listed) == ["bronze/s/a", "gold/s/counted", "silver/s/a", "silver/s/a_quarantine"]
    assert not any(line.startswith("quality of") for line in again), again
