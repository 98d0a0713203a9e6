"""The catalog's keys of format postgres: defaults, and each bad value refused in one line
naming the source and the key."""

from __future__ import annotations

import pytest

from lake_assets.catalog import CatalogError, parse_catalog


def _catalog(extra: str, fmt: str = "postgres") -> str:
    lines = ["sources:", "  - name: app", f"    format: {fmt}", '    start_date: "2024-01-01"']
    lines += [f"    {line}" for line in extra.splitlines()]
    lines += ["    tables:", "      - {name: orders, schema: public, primary_key: [order_id]}"]
    return "\n".join(lines) + "\n"


def test_defaults():
    source = parse_catalog(_catalog("dsn_env: APP_PG_DSN")).sources[0]
    assert (source.mode, source.slot, source.max_slot_lag_mb) == ("logical", None, 1024)
    assert (source.batch_size, source.statement_timeout_s) == (10_000, 60)


@pytest.mark.parametrize(
    "extra, fmt, words",
    [
        ("mode: logical", "postgres", ["source 'app'", "missing 'dsn_env'"]),
        ("dsn_env: APP-DSN", "postgres", ["source 'app'", "dsn_env 'APP-DSN'"]),
        ("dsn_env: X\nmode: stream", "postgres", ["source 'app'", "'mode'", "logical"]),
        ("dsn_env: X\nslot: Bad-Slot", "postgres", ["source 'app'", "slot 'Bad-Slot'"]),
        ("dsn_env: X\nmode: snapshot\nslot: s", "postgres", ["'slot' is for mode logical"]),
        ("dsn_env: X\nmax_slot_lag_mb: 0", "postgres", ["'max_slot_lag_mb'", "greater than 0"]),
        ("dsn_env: X\nbatch_size: -5", "postgres", ["'batch_size'", "greater than 0"]),
        ("dsn_env: X\nbatch_size: many", "postgres", ["'batch_size'", "integer"]),
        ("dsn_env: X\nstatement_timeout_s: 0", "postgres", ["'statement_timeout_s'"]),
        ("dsn_env: X\nbatch_sise: 10", "postgres", ["unknown key 'batch_sise'", "batch_size"]),
        ("dsn_env: X", "dms", ["'dsn_env' is for format postgres, not 'dms'"]),
        ("dsn_env: X\ntimestamp_column: ts", "postgres", ["'timestamp_column' is not for"]),
        ("dsn_env: X\ncsv_header: true", "postgres", ["'csv_header' is not for format postgres"]),
    ],
)
def test_bad_values_are_refused_in_one_line(extra, fmt, words):
    with pytest.raises(CatalogError) as e:
        parse_catalog(_catalog(extra, fmt), "cat.yaml")
    message = str(e.value)
    assert "\n" not in message and message.startswith("cat.yaml: ")
    for w in words:
        assert w in message, message
