"""extract/<source> through Dagster: its materialization carries the changes and the slot's
lag, its WARN check fails past max_slot_lag_mb, and its sensor asks for a run per tick."""

from __future__ import annotations

import dagster as dg

from lake_assets.catalog import parse_catalog
from lake_assets.defs.extract.assets import SLOT_LAG_CHECK, extract_asset
from lake_assets.defs.extract.sensors import extract_sensor
from lake_assets.keys import extract_key
from lake_assets.resources.lake import LandingResource

TABLES = "- {name: items, schema: public, primary_key: [id]}"


def _materialize(source, landing):
    return dg.materialize(
        [extract_asset(source)], resources={"landing": LandingResource(root=str(landing))}
    )


def test_materialization_shows_changes_and_slot_lag_and_warns_past_the_limit(pgdb, tmp_path):
    pgdb.sql("CREATE TABLE items (id int PRIMARY KEY, v text)", "INSERT INTO items VALUES (1, 'a')")
    # 0.001 MB = 1048 bytes: less than the WAL a slot retains after a few changes.
    text = pgdb.catalog("app", TABLES, extra="max_slot_lag_mb: 0.001")
    source = parse_catalog(text).sources[0]
    res = _materialize(source, tmp_path)
    meta = res.asset_materializations_for_node("extract__app")[0].metadata
    assert meta["loaded_rows"].value == 1 and meta["changes"].value == 0
    pgdb.sql(*[f"INSERT INTO items VALUES ({i}, repeat('x', 200))" for i in range(2, 12)])
    res = _materialize(source, tmp_path)
    meta = res.asset_materializations_for_node("extract__app")[0].metadata
    assert meta["changes"].value == 10 and meta["changes/items"].value == 10
    assert meta["slot_retained_wal_bytes"].value > 1048
    assert meta["slot_lag_bytes"].value >= 0
    (check,) = res.get_asset_check_evaluations()
    assert check.check_name == SLOT_LAG_CHECK and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert res.success  # a warning, not a failure

    roomy = parse_catalog(pgdb.catalog("app", TABLES)).sources[0]  # the default, 1024 MB
    (check,) = _materialize(roomy, tmp_path).get_asset_check_evaluations()
    assert check.passed


def test_sensor_requests_one_extraction_at_a_time(pgdb):
    source = parse_catalog(pgdb.catalog("app", TABLES)).sources[0]
    sensor = extract_sensor(source)
    with dg.instance_for_test() as instance:
        request = sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(request, dg.RunRequest)
        assert request.asset_selection == [extract_key("app")]
        instance.add_run(
            dg.DagsterRun(
                job_name="__ASSET_JOB",
                run_id="r1",
                status=dg.DagsterRunStatus.STARTED,
                tags={"lake/extract": "app"},
            )
        )
        assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
