"""A format of one's own (the tests' JSON lines) drives raw -> bronze -> silver -> a model
through the same sync, with no change to the lake's code: only its `module:Class` name in the
catalog."""

from __future__ import annotations

from lake_assets_tests.assets._lake import assert_ok, raw
from lake_assets_tests.formats.jsonl_format import NAME, write_batch

CATALOG = f"""
sources:
  - name: j
    format: "{NAME}"
    start_date: "2024-01-01"
    tables:
      - name: items
        schema: app
        primary_key: [id]
        columns: {{id: bigint, label: string, qty: int}}
    models:
      - name: quantities
        primary_key: [label]
        sql: >-
          SELECT label, CAST(SUM(qty) AS BIGINT) AS qty
          FROM {{{{ silver.items }}}} GROUP BY label
"""


def _batch(lake, day, n, *lines):
    return write_batch(lake.landing, "j", "app", "items", day, n, list(lines))


def _line(op, when, id, label=None, qty=None):
    return {"op": op, "ts": when, "id": id, "label": label, "qty": qty}


def test_json_lines_batches_sync_through_raw_bronze_silver_and_a_model(lake):
    lake.write_catalog(CATALOG)
    first = _batch(
        lake,
        "2024-01-02",
        1,
        _line("I", "2024-01-02T09:00:00", 1, "a", 1),
        _line("I", "2024-01-02T09:00:01", 2, "b", 2),
    )
    _batch(lake, "2024-01-02", 2, _line("U", "2024-01-02T10:00:00", 1, "a2", 10))
    assert_ok(lake.sync())
    _batch(
        lake,
        "2024-01-03",
        3,
        _line("D", "2024-01-03T09:00:00", 2),
        _line("i", "2024-01-03T09:00:01", 3, "c", 3),
    )
    first.unlink()  # expired from the landing zone: raw keeps its changes
    assert_ok(lake.sync())
    want = [{"id": 1, "label": "a2", "qty": 10}, {"id": 3, "label": "c", "qty": 3}]
    for layer in ("bronze", "silver"):
        got = lake.rows(layer, "j", "items", "id")
        assert [{k: x[k] for k in ("id", "label", "qty")} for x in got] == want, layer
    assert lake.rows("gold", "j", "quantities", "label") == [
        {"label": "a2", "qty": 10},
        {"label": "c", "qty": 3},
    ]
    assert [(x["_op"], x["id"], x["_source_file"]) for x in raw(lake, "items", source="j")] == [
        ("I", 1, "20240102-1.jsonl"),
        ("I", 2, "20240102-1.jsonl"),
        ("U", 1, "20240102-2.jsonl"),
        ("D", 2, "20240103-3.jsonl"),
        ("I", 3, "20240103-3.jsonl"),
    ]
    assert_ok(lake.sync())
    assert not any(line.startswith("  raw/") for line in lake.lines), lake.lines


def test_an_own_format_file_that_cannot_be_read_fails_naming_it(lake):
    lake.write_catalog(CATALOG)
    bad = _batch(lake, "2024-01-02", 1, _line("I", "2024-01-02T09:00:00", 1, "a", 1))
    bad.write_text("{not json\n")
    res = lake.sync()
    assert not res.ok and any(bad.name in f and "not JSON lines" in f for f in res.failures), (
        res.failures
    )
    bad.unlink()
    assert_ok(lake.sync())


def test_raw_holds_a_truncate_as_one_change_with_null_source_columns(lake, dagster_instance):
    from lake_assets.keys import asset_key

    lake.write_catalog(CATALOG)
    _batch(
        lake,
        "2024-01-02",
        1,
        _line("I", "2024-01-02T09:00:00", 1, "a", 1),
        {"op": "t", "ts": "2024-01-02T09:00:01"},
    )
    job = lake.defs().resolve_implicit_global_asset_job_def()
    res = job.execute_in_process(
        instance=dagster_instance,
        partition_key="2024-01-02",
        asset_selection=[asset_key("raw", "j", "items")],
        raise_on_error=False,
    )
    assert res.success
    got = [(x["_op"], x["id"], x["label"]) for x in raw(lake, "items", source="j")]
    assert got == [("I", 1, "a"), ("T", None, None)]
