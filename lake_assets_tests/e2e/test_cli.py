"""The console script as a user runs it: demo, sync with nothing new, simulate a day, sync,
simulate again; every option explains itself."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _run(args, env, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", "lake_assets.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_demo_then_sync_then_simulate_then_sync(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "DAGSTER_HOME"))}
    code, out, err = _run(["demo", "--days", "3", "--scale", "0.3"], env, tmp_path)
    assert code == 0, err[-3000:]
    lake = tmp_path / ".lake"
    for layer, table in [
        ("raw", "orders"),
        ("bronze", "orders"),
        ("silver", "customers"),
        ("gold", "daily_sales"),
    ]:
        assert (lake / layer / "shop" / table / "_delta_log").is_dir()
    assert "gold/shop/daily_sales" in out and "gross_revenue" in out
    assert "quality of silver/shop" in out
    assert (
        f"DAGSTER_HOME={lake / '_dagster'}" in out
        and f"dagster dev -w {lake / '_dagster' / 'lake_assets_workspace.yaml'}" in out
    )
    # Runs went into the instance the printed command opens.
    assert (lake / "_dagster" / "history").exists() or (lake / "_dagster" / "storage").exists()

    code, out, err = _run(["sync", "--lake-root", str(lake)], env, tmp_path)
    assert code == 0, err[-3000:]
    assert "raw/shop: nothing new landed" in out

    code, out, err = _run(["simulate", "--days", "1", "--lake-root", str(lake)], env, tmp_path)
    assert code == 0, err[-3000:]
    code, out, err = _run(["sync", "--lake-root", str(lake)], env, tmp_path)
    assert code == 0, err[-3000:]
    assert "raw/shop: 4 table(s)" in out
    assert "bronze/shop/orders" in out and "applied=" in out

    # However often: the new days fill the time since the last call, never the future.
    code, out, err = _run(["simulate", "--days", "2", "--lake-root", str(lake)], env, tmp_path)
    assert code == 0 and "simulated 2 day(s)" in out, err[-3000:]


def test_sync_with_a_bad_catalog_fails_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources:\n  - name: x\n    format: avro\n    start_date: '2024-01-01'\n"
        "    tables: [{name: t, schema: s, primary_key: [id]}]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    code, out, err = _run(
        ["sync", "--lake-root", str(tmp_path / "lake"), "--sources", str(bad)], env, tmp_path
    )
    assert code == 2
    assert err.strip() == (
        f"error: {bad}: source 'x': unknown format 'avro'; known formats: dms, debezium, "
        "fivetran, snapshot, postgres (a format of your own is package.module:ClassName)"
    )


def test_every_option_has_help_and_a_default():
    from lake_assets.cli import parser

    sub = next(a for a in parser()._actions if a.dest == "command")
    for name, p in sub.choices.items():
        text = " ".join(p.format_help().split("options:", 1)[1].split())
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, (name, action.option_strings)
                flags = " ".join(action.option_strings)
                shown = text.split(flags, 1)[1].split(" --", 1)[0]
                assert "default" in shown, (name, flags, shown)
